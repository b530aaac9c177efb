"""Webhook delivery: signed HTTP POSTs of registry events, retried with backoff, recorded.

Deliveries are rows of ``webhook_deliveries`` written with the change they report (an outbox).
Any process holding the database may send them: a delivery is claimed with a conditional update
(so two dispatchers never send the same attempt), posted, and its outcome recorded. Failed
attempts are retried after ``webhook_backoff_seconds`` doubling each time, up to
``webhook_max_attempts``; then the delivery is ``failed``.

Each POST carries the JSON payload and the headers ``X-Loopml-Event``, ``X-Loopml-Delivery`` and
``X-Loopml-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the secret>``;
``verify_signature`` checks one on the receiving side.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import Connection, select, update

from loopml.config import get_settings
from loopml.errors import InvalidInput
from loopml.store import Database
from loopml.store.tables import webhook_deliveries, webhooks

__all__ = ["WebhookDispatcher", "sign_payload", "validate_webhook_url", "verify_signature"]

_log = logging.getLogger("loopml.registry.webhooks")
_LEASE_MS = 120_000  # a claimed attempt is retried if its sender vanished for this long
_BATCH = 100


def validate_webhook_url(url: Any) -> str:
    """An ``http(s)://host[:port]/...`` URL, else ``InvalidInput``."""
    if not isinstance(url, str) or len(url) > 2000:
        raise InvalidInput("url must be a string of at most 2000 characters")
    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        httpx.URL(url)  # what the sender will parse
    except (ValueError, httpx.InvalidURL):
        ok = False
    if not ok or any(ord(c) < 32 or c == "\x7f" for c in url):
        raise InvalidInput(f"url {url!r:.200} must be an http:// or https:// URL with a host")
    return url


def sign_payload(secret: str, body: bytes, timestamp: int) -> str:
    """The ``X-Loopml-Signature`` header value for ``body`` sent at ``timestamp`` (seconds)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify_signature(
    secret: str, body: bytes, header: str, *, tolerance_seconds: int = 300
) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` and is at most ``tolerance_seconds``
    old (a receiver's check against forged and replayed deliveries)."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        stamp = int(fields["t"])
        expected = sign_payload(secret, body, stamp).split("v1=", 1)[1]
        fresh = abs(time.time() - stamp) <= tolerance_seconds
        return fresh and hmac.compare_digest(expected.encode(), fields["v1"].encode())
    except (KeyError, ValueError, UnicodeEncodeError, AttributeError, TypeError):
        return False


class WebhookDispatcher:
    """Sends due deliveries of one database, on demand or from a background thread."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._poll_interval = 1.0
        self._forever = False

    # -- background ----------------------------------------------------------------------------
    def start(self, *, poll_interval: float = 1.0) -> None:
        """Run until ``stop()``, polling for due deliveries every ``poll_interval`` seconds."""
        self._poll_interval = poll_interval
        self._forever = True
        self._ensure_thread()
        self._wake.set()

    def wake_after_commit(self, conn: Connection) -> None:
        """Make sure a sender runs soon: the deliveries are visible once ``conn`` commits."""
        del conn  # the thread re-checks for a while, so an uncommitted write is not missed
        self._ensure_thread()
        self._wake.set()

    def stop(self) -> None:
        """Stop the background thread (pending deliveries stay for the next dispatcher)."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)
        self._thread = None
        self._stop.clear()

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive() or self._stop.is_set():
                self._thread = threading.Thread(
                    target=self._loop, name="loopml-webhooks", daemon=True
                )
                self._thread.start()

    def _loop(self) -> None:
        idle_since = time.monotonic()
        while not self._stop.is_set():
            try:
                sent = self.dispatch_due()
                wait = self._seconds_to_next_due()
            except Exception:  # noqa: BLE001 - a broken database must not kill the thread
                _log.exception("webhook dispatch failed; retrying")
                sent, wait = 0, self._poll_interval
            if sent or wait is not None:
                idle_since = time.monotonic()
            elif not self._forever and time.monotonic() - idle_since > 3.0:
                with self._lock:  # embedded: nothing pending for a while, so let the thread go
                    if not self._wake.is_set():
                        self._thread = None
                        return
            timeout = self._poll_interval if wait is None else min(wait, self._poll_interval)
            self._wake.wait(timeout=max(timeout, 0.01))
            self._wake.clear()

    def _seconds_to_next_due(self) -> float | None:
        d = webhook_deliveries.c
        with self.db.read() as conn:
            due = conn.execute(
                select(d.next_attempt_time)
                .where(d.status == "pending")
                .order_by(d.next_attempt_time)
                .limit(1)
            ).scalar()
        if due is None:
            return None
        return max(0.0, due / 1000 - time.time())

    # -- sending -------------------------------------------------------------------------------
    def dispatch_due(self, *, timeout: float = 30.0) -> int:
        """Send every delivery due now (up to a batch); returns how many were attempted."""
        deadline = time.monotonic() + timeout
        d, w = webhook_deliveries.c, webhooks.c
        now = time.time_ns() // 1_000_000
        with self.db.read() as conn:
            due = conn.execute(
                select(
                    d.delivery_id,
                    d.next_attempt_time,
                    d.attempts,
                    d.event,
                    d.payload,
                    w.url,
                    w.secret,
                )
                .join(webhooks, w.webhook_id == d.webhook_id)
                .where(d.status == "pending", d.next_attempt_time <= now)
                .order_by(d.delivery_id)
                .limit(_BATCH)
            ).fetchall()
        attempted = 0
        settings = get_settings()
        with httpx.Client(timeout=settings.webhook_timeout_seconds) as client:
            for row in due:
                if time.monotonic() > deadline:
                    break
                if not self._claim(row.delivery_id, row.next_attempt_time, now):
                    continue  # another dispatcher took it
                attempted += 1
                self._send(
                    client, row, settings.webhook_max_attempts, settings.webhook_backoff_seconds
                )
        return attempted

    def _claim(self, delivery_id: int, seen_due: int, now: int) -> bool:
        d = webhook_deliveries.c
        with self.db.write() as conn:
            claimed = conn.execute(
                update(webhook_deliveries)
                .where(
                    d.delivery_id == delivery_id,
                    d.status == "pending",
                    d.next_attempt_time == seen_due,
                )
                .values(
                    next_attempt_time=now + _LEASE_MS,
                    attempts=d.attempts + 1,
                    last_attempt_time=now,
                )
            ).rowcount
        return bool(claimed)

    def _send(self, client: httpx.Client, row: Any, max_attempts: int, backoff: float) -> None:
        body = row.payload.encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "loopml-webhooks",
            "X-Loopml-Event": row.event,
            "X-Loopml-Delivery": str(row.delivery_id),
            "X-Loopml-Signature": sign_payload(row.secret, body, int(time.time())),
        }
        status: int | None = None
        error: str | None = None
        try:
            response = client.post(row.url, content=body, headers=headers)
            status = response.status_code
            if not 200 <= status < 300:
                # The body is not kept: a receiver's answer is not the caller's to read back.
                error = f"HTTP {status}"
        except Exception as exc:  # noqa: BLE001 - any failure is a failed attempt, recorded
            error = f"{type(exc).__name__}: {exc}"[:500]
        attempts = row.attempts + 1
        now = time.time_ns() // 1_000_000
        values: dict[str, Any] = {"response_status": status, "error": error}
        if error is None:
            values["status"] = "delivered"
        elif attempts >= max_attempts:
            values["status"] = "failed"
        else:
            values["next_attempt_time"] = now + int(backoff * 1000 * 2 ** (attempts - 1))
        with self.db.write() as conn:
            conn.execute(
                update(webhook_deliveries)
                .where(webhook_deliveries.c.delivery_id == row.delivery_id)
                .values(**values)
            )
        if error is not None:
            _log.warning("webhook delivery %s to %s failed: %s", row.delivery_id, row.url, error)
