"""Webhook delivery against a real HTTP receiver on 127.0.0.1, on every registry backend.

The receiver is ``http.server.ThreadingHTTPServer`` in a thread; it records each request and can
answer 500 to the first N requests (or to all) to exercise retries. Delivery is driven either by
``dispatch_webhooks()`` in a loop with a deadline, or left to the background dispatcher.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from loopml.config import reset_settings
from loopml.errors import InvalidInput, NotFound
from loopml.registry import EVENTS, RegistryStore, WebhookDelivery
from loopml.registry._webhooks import sign_payload, verify_signature
from loopml.tracking import TrackingStore

Stores = tuple[TrackingStore, RegistryStore]
SECRET = "s3cret-for-tests"


@dataclass(frozen=True)
class Received:
    """One request the receiver got, and the status it answered."""

    path: str
    headers: dict[str, str]
    body: bytes
    answered: int
    arrived: float  # time.monotonic()

    @property
    def payload(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


class Receiver:
    """A real HTTP server recording POSTs; answers 500 to the first ``fail_first`` requests."""

    def __init__(self, *, fail_first: int = 0, always_fail: bool = False) -> None:
        self.fail_first = fail_first
        self.always_fail = always_fail
        self._lock = threading.Lock()
        self._requests: list[Received] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    n = len(receiver._requests) + 1
                    fail = receiver.always_fail or n <= receiver.fail_first
                    status = 500 if fail else 200
                    receiver._requests.append(
                        Received(
                            self.path,
                            {k.lower(): v for k, v in self.headers.items()},
                            body,
                            status,
                            time.monotonic(),
                        )
                    )
                reply = b"boom" if fail else b"ok"
                self.send_response(status)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass  # keep the test output clean

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def requests(self) -> list[Received]:
        with self._lock:
            return list(self._requests)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


@pytest.fixture
def receiver_factory() -> Iterator[Callable[..., Receiver]]:
    """Starts receivers on free loopback ports; stops them after the test."""
    started: list[Receiver] = []

    def make(**kwargs: Any) -> Receiver:
        started.append(Receiver(**kwargs))
        return started[-1]

    yield make
    for receiver in started:
        receiver.stop()


@pytest.fixture
def registry(stores: Stores) -> RegistryStore:
    return stores[1]


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOPML_WEBHOOK_BACKOFF_SECONDS", "0.05")
    monkeypatch.setenv("LOOPML_WEBHOOK_MAX_ATTEMPTS", "3")
    reset_settings()


def _uid() -> str:
    return uuid.uuid4().hex[:8]


def _model(registry: RegistryStore, versions: int) -> str:
    name = f"model-{_uid()}"
    registry.create_registered_model(name)
    for _ in range(versions):
        registry.create_model_version(name, "registry:")
    return name


def _settle(
    registry: RegistryStore, webhook_id: str, *, seconds: float = 15.0
) -> list[WebhookDelivery]:
    """Drive delivery until none of the webhook's deliveries is pending (newest first).

    Deliveries are written in the same transaction as the change they report, so every one the
    test caused exists once its registry call has returned.
    """
    deadline = time.monotonic() + seconds
    while True:
        registry.dispatch_webhooks(timeout=5)
        deliveries = registry.list_webhook_deliveries(webhook_id)
        if all(d.status != "pending" for d in deliveries):
            return deliveries
        if time.monotonic() > deadline:
            pytest.fail(f"deliveries did not settle: {deliveries}")
        time.sleep(0.02)


def _wait_for(predicate: Callable[[], bool], what: str, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


# -- managing webhooks -------------------------------------------------------------------------
def test_create_list_delete_webhook(registry: RegistryStore) -> None:
    hook = registry.create_webhook(
        "https://hooks.example.com/loopml",
        events=["alias.set", "stage.transitioned"],
        secret=SECRET,
        model_name="fraud",
        description="pager",
    )
    assert len(hook.id) > 0
    assert (hook.url, hook.events, hook.model_name, hook.description, hook.active) == (
        "https://hooks.example.com/loopml",
        ["alias.set", "stage.transitioned"],
        "fraud",
        "pager",
        True,
    )
    assert SECRET not in json.dumps(hook.to_dict())  # the secret is never handed back
    every = registry.create_webhook("http://127.0.0.1:9/all", secret=SECRET)
    assert every.events == list(EVENTS) and every.model_name is None

    assert registry.list_webhooks() == [hook, every]
    assert registry.list_webhook_deliveries(hook.id) == []
    registry.delete_webhook(hook.id)
    assert registry.list_webhooks() == [every]
    with pytest.raises(NotFound):
        registry.delete_webhook(hook.id)
    with pytest.raises(NotFound):
        registry.list_webhook_deliveries(hook.id)


def test_create_webhook_rejects_bad_input(registry: RegistryStore) -> None:
    ok = {"url": "https://hooks.example.com/x", "secret": SECRET}
    bad: list[dict[str, Any]] = [
        {"url": "ftp://hooks.example.com/x"},
        {"url": "not a url"},
        {"url": "http://"},
        {"url": "https://x.example.com/" + "a" * 2000},
        {"secret": "short"},
        {"secret": ""},
        {"events": ["model.exploded"]},
        {"events": ["alias.set", "nope"]},
        {"events": []},
        {"events": "alias.set"},
        {"model_name": "a/b"},
    ]
    wrong = []
    for change in bad:
        try:
            registry.create_webhook(**{**ok, **change})
        except InvalidInput:
            continue
        wrong.append(change)
    assert wrong == []
    assert registry.list_webhooks() == []


# -- delivering --------------------------------------------------------------------------------
def test_an_alias_move_delivers_one_signed_post(
    registry: RegistryStore, receiver_factory: Callable[..., Receiver]
) -> None:
    receiver = receiver_factory()
    name = _model(registry, versions=2)
    registry.set_registered_model_alias(name, "champion", 1)  # before the webhook: not sent
    hook = registry.create_webhook(receiver.url, events=["alias.set"], secret=SECRET)

    moved = registry.set_registered_model_alias(
        name, "champion", 2, user_id="ann", reason="better auc"
    )
    [delivery] = _settle(registry, hook.id)

    [request] = receiver.requests
    assert request.path == "/hook"
    assert request.payload == {
        "event": "alias.set",
        "workspace": "default",
        "model": name,
        "timestamp": moved.timestamp,
        "seq": moved.seq,
        "kind": "alias",
        "alias": "champion",
        "version": "2",
        "from_version": "1",
        "to_version": "2",
        "user_id": "ann",
        "reason": "better auc",
    }
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-loopml-event"] == "alias.set"
    assert request.headers["x-loopml-delivery"] == str(delivery.id)
    signature = request.headers["x-loopml-signature"]
    assert verify_signature(SECRET, request.body, signature)
    assert not verify_signature("another-secret", request.body, signature)
    assert not verify_signature(SECRET, request.body.replace(b"champion", b"champio_"), signature)
    # The header is the documented HMAC-SHA256 of "<t>.<body>", checked independently here.
    stamp = signature.split(",")[0].removeprefix("t=")
    expected = hmac.new(SECRET.encode(), f"{stamp}.".encode() + request.body, hashlib.sha256)
    assert signature == f"t={stamp},v1={expected.hexdigest()}"

    assert delivery.webhook_id == hook.id
    assert delivery.event == "alias.set"
    assert delivery.payload == request.payload
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("delivered", 1, 200)
    assert delivery.error is None
    assert delivery.last_attempt_timestamp is not None
    # Delivered once: more dispatching sends nothing again.
    registry.dispatch_webhooks()
    assert len(receiver.requests) == 1


def test_a_failing_receiver_is_retried_until_delivered(
    registry: RegistryStore, receiver_factory: Callable[..., Receiver], fast_retries: None
) -> None:
    receiver = receiver_factory(fail_first=2)
    name = _model(registry, versions=1)
    hook = registry.create_webhook(receiver.url, events=["alias.set"], secret=SECRET)
    registry.set_registered_model_alias(name, "prod", 1)

    [delivery] = _settle(registry, hook.id)

    assert (delivery.status, delivery.attempts, delivery.response_status) == ("delivered", 3, 200)
    requests = receiver.requests
    assert [r.answered for r in requests] == [500, 500, 200]
    assert {r.headers["x-loopml-delivery"] for r in requests} == {str(delivery.id)}
    assert {r.body for r in requests} == {requests[0].body}  # the same event each time
    assert all(verify_signature(SECRET, r.body, r.headers["x-loopml-signature"]) for r in requests)
    # Backoff doubles from 0.05 s: only lower bounds (a slow machine can only widen the gaps);
    # the margin covers the millisecond rounding of the due times.
    first_gap = requests[1].arrived - requests[0].arrived
    second_gap = requests[2].arrived - requests[1].arrived
    assert first_gap >= 0.045 and second_gap >= 0.095, (first_gap, second_gap)


def test_a_receiver_that_always_fails_ends_failed(
    registry: RegistryStore, receiver_factory: Callable[..., Receiver], fast_retries: None
) -> None:
    receiver = receiver_factory(always_fail=True)
    name = _model(registry, versions=1)
    hook = registry.create_webhook(receiver.url, events=["alias.set"], secret=SECRET)
    registry.set_registered_model_alias(name, "prod", 1)

    [delivery] = _settle(registry, hook.id)

    assert (delivery.status, delivery.attempts, delivery.response_status) == ("failed", 3, 500)
    assert delivery.error is not None and "500" in delivery.error
    assert len(receiver.requests) == 3  # LOOPML_WEBHOOK_MAX_ATTEMPTS
    registry.dispatch_webhooks()
    assert len(receiver.requests) == 3  # a failed delivery is not tried again


def test_a_webhook_of_one_model_ignores_the_others(
    registry: RegistryStore, receiver_factory: Callable[..., Receiver]
) -> None:
    receiver = receiver_factory()
    mine, other = _model(registry, versions=1), _model(registry, versions=1)
    hook = registry.create_webhook(
        receiver.url, events=["alias.set", "model_version.created"], secret=SECRET, model_name=mine
    )
    registry.set_registered_model_alias(other, "prod", 1)
    registry.create_model_version(other, "registry:")
    registry.transition_model_version_stage(mine, 1, "Staging")  # an event it did not ask for
    registry.set_registered_model_alias(mine, "prod", 1)
    registry.create_model_version(mine, "registry:")

    deliveries = _settle(registry, hook.id)

    assert [(d.event, d.payload["model"]) for d in deliveries] == [
        ("model_version.created", mine),
        ("alias.set", mine),
    ]
    assert sorted(r.payload["event"] for r in receiver.requests) == [
        "alias.set",
        "model_version.created",
    ]
    assert {r.payload["model"] for r in receiver.requests} == {mine}


def test_every_registry_event_is_recorded(
    registry: RegistryStore, receiver_factory: Callable[..., Receiver]
) -> None:
    receiver = receiver_factory()
    hook = registry.create_webhook(receiver.url, secret=SECRET)  # every event
    name, renamed = f"model-{_uid()}", f"renamed-{_uid()}"
    registry.create_registered_model(name)
    registry.create_model_version(name, "registry:")
    registry.set_registered_model_alias(name, "prod", 1)
    registry.transition_model_version_stage(name, 1, "Production")
    registry.delete_registered_model_alias(name, "prod")
    registry.rename_registered_model(name, renamed)
    registry.delete_model_version(renamed, 1)
    registry.delete_registered_model(renamed)
    expected = [
        ("registered_model.created", name),
        ("model_version.created", name),
        ("alias.set", name),
        ("stage.transitioned", name),
        ("alias.deleted", name),
        ("registered_model.renamed", renamed),
        ("model_version.deleted", renamed),
        ("registered_model.deleted", renamed),
    ]

    deliveries = _settle(registry, hook.id)

    assert [(d.event, d.payload["model"]) for d in deliveries] == expected[::-1]  # newest first
    assert all(d.status == "delivered" and d.event == d.payload["event"] for d in deliveries)
    assert [d.event for d in registry.list_webhook_deliveries(hook.id, max_results=2)] == [
        "registered_model.deleted",
        "model_version.deleted",
    ]
    by_event = {d.event: d.payload for d in deliveries}
    assert by_event["registered_model.renamed"]["previous_name"] == name
    assert (
        by_event["stage.transitioned"]["from_stage"],
        by_event["stage.transitioned"]["to_stage"],
    ) == (
        "None",
        "Production",
    )
    assert by_event["alias.deleted"]["from_version"] == "1"
    assert sorted(r.payload["event"] for r in receiver.requests) == sorted(e for e, _ in expected)

    registry.delete_webhook(hook.id)
    with pytest.raises(NotFound):
        registry.list_webhook_deliveries(hook.id)


def test_a_rollback_is_delivered_as_an_alias_move(
    registry: RegistryStore, receiver_factory: Callable[..., Receiver]
) -> None:
    receiver = receiver_factory()
    name = _model(registry, versions=2)
    registry.set_registered_model_alias(name, "production", 1)
    registry.set_registered_model_alias(name, "production", 2)
    hook = registry.create_webhook(receiver.url, events=["alias.set"], secret=SECRET)
    back = registry.rollback(name, "production", reason="errors up")

    [delivery] = _settle(registry, hook.id)

    assert delivery.event == "alias.set"
    assert {k: delivery.payload[k] for k in ("kind", "from_version", "to_version", "reason")} == {
        "kind": "rollback",
        "from_version": "2",
        "to_version": "1",
        "reason": "errors up",
    }
    assert delivery.payload["seq"] == back.seq
    assert [r.payload for r in receiver.requests] == [delivery.payload]


def test_the_background_dispatcher_delivers(
    registry: RegistryStore, receiver_factory: Callable[..., Receiver]
) -> None:
    receiver = receiver_factory()
    name = _model(registry, versions=1)
    hook = registry.create_webhook(receiver.url, events=["alias.set"], secret=SECRET)
    registry.set_registered_model_alias(name, "prod", 1)  # no dispatch_webhooks() call

    _wait_for(lambda: len(receiver.requests) == 1, "the background delivery")
    _wait_for(
        lambda: registry.list_webhook_deliveries(hook.id)[0].status == "delivered",
        "the delivery to be recorded",
    )
    assert receiver.requests[0].payload["alias"] == "prod"


# -- verifying signatures ----------------------------------------------------------------------
def test_verify_signature_rejects_forged_stale_and_malformed_headers() -> None:
    body = b'{"event": "alias.set"}'
    now = int(time.time())
    good = sign_payload(SECRET, body, now)
    assert verify_signature(SECRET, body, good)
    assert not verify_signature("not-the-secret", body, good)
    assert not verify_signature(SECRET, body + b" ", good)
    assert not verify_signature(SECRET, body, sign_payload(SECRET, body, now - 301))
    assert not verify_signature(SECRET, body, sign_payload(SECRET, body, now + 301))
    assert verify_signature(
        SECRET, body, sign_payload(SECRET, body, now - 600), tolerance_seconds=900
    )
    for header in ("", "nonsense", f"t={now}", "v1=abc", f"t=soon,{good.split(',')[1]}"):
        assert not verify_signature(SECRET, body, header), header


def test_verify_signature_rejects_a_non_ascii_signature() -> None:
    body = b'{"event": "alias.set"}'
    assert verify_signature(SECRET, body, f"t={int(time.time())},v1=\u00e9") is False
