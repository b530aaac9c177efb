"""The DeploymentStore contract, run on SQLite, PostgreSQL and REST (a real server).

Every test makes its own deployments in a database of its own; model URIs are plain strings
(the store never loads a model). Expected variants are written out by hand, never derived from
the code under test.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from loopml.errors import AlreadyExists, InvalidInput, InvalidState, NotFound
from loopml.serving import (
    BatchingConfig,
    Deployment,
    DeploymentStore,
    Guardrails,
    VariantSpec,
    get_deployment_store,
)

V = VariantSpec
ONE = (V("main", "models:/m/1"),)
TWO = (V("main", "models:/m/1", 90.0), V("b", "models:/m/2", 10.0, "canary"))


@pytest.fixture(params=["sqlite", "postgres", "rest"])
def deployment_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DeploymentStore]:
    """The same deployment store contract on SQLite, PostgreSQL and REST (a real server)."""
    if request.param == "sqlite":
        uri = f"sqlite:///{tmp_path / 'store.db'}"
    elif request.param == "postgres":
        uri = request.getfixturevalue("pg_uri")
    else:
        uri = request.getfixturevalue("server_factory")().url
    store = get_deployment_store(uri)
    expected = "RestDeploymentStore" if request.param == "rest" else "SqlDeploymentStore"
    assert type(store).__name__ == expected
    yield store
    store.close()


def _variants(dep: Deployment) -> list[tuple[str, str, float, str]]:
    return [(v.name, v.model_uri, v.weight, v.role) for v in dep.variants]


def _not_rejected(call: Callable[[Any], object], cases: list[Any]) -> list[Any]:
    """The cases for which ``call`` did not raise ``InvalidInput`` (with what happened)."""
    wrong: list[Any] = []
    for case in cases:
        try:
            call(case)
        except InvalidInput:
            continue
        except Exception as exc:  # noqa: BLE001 - report every wrong outcome at once
            wrong.append((case, f"{type(exc).__name__}: {exc}"))
        else:
            wrong.append((case, "accepted"))
    return wrong


# -- create, get, list, delete -----------------------------------------------------------------
def test_create_get_list_delete(deployment_store: DeploymentStore) -> None:
    store = deployment_store
    created = store.create_deployment(
        "recs",
        TWO,
        unit_key="user_id",
        batching=BatchingConfig(max_batch_size=8, max_latency_ms=2.5, max_queue=100),
        description="recommendations",
        user_id="alice",
    )
    assert created.name == "recs"
    assert _variants(created) == [
        ("main", "models:/m/1", 90.0, "primary"),
        ("b", "models:/m/2", 10.0, "canary"),
    ]
    assert created.unit_key == "user_id"
    assert created.batching == BatchingConfig(8, 2.5, 100)
    assert created.description == "recommendations"
    assert created.revision == 1
    assert created.rollout is None
    assert created.created_at == created.updated_at > 0
    assert store.get_deployment("recs") == created

    other = store.create_deployment("ads", ONE)
    assert other.unit_key is None and other.description == ""
    assert other.batching == BatchingConfig()
    assert [d.name for d in store.list_deployments()] == ["ads", "recs"]
    assert store.list_deployments() == [other, created]

    store.delete_deployment("recs")
    with pytest.raises(NotFound, match="recs"):
        store.get_deployment("recs")
    with pytest.raises(NotFound, match="recs"):
        store.list_events("recs")
    assert store.list_deployments() == [other]
    again = store.create_deployment("recs", ONE)  # the name is free again, history fresh
    assert again.revision == 1
    assert [e.kind for e in store.list_events("recs")] == ["created"]


def test_name_is_unique(deployment_store: DeploymentStore) -> None:
    deployment_store.create_deployment("recs", ONE)
    with pytest.raises(AlreadyExists, match="recs"):
        deployment_store.create_deployment("recs", TWO)
    assert _variants(deployment_store.get_deployment("recs")) == [
        ("main", "models:/m/1", 100.0, "primary")
    ]


def test_missing_deployment(deployment_store: DeploymentStore) -> None:
    store = deployment_store
    calls: list[Callable[[], object]] = [
        lambda: store.get_deployment("nope"),
        lambda: store.delete_deployment("nope"),
        lambda: store.update_deployment("nope", description="x"),
        lambda: store.set_traffic("nope", {"main": 50}),
        lambda: store.promote("nope", "b"),
        lambda: store.rollback("nope"),
        lambda: store.start_rollout("nope", "models:/m/2"),
        lambda: store.decide_rollout("nope", "advance", expected_revision=1),
        lambda: store.list_events("nope"),
    ]
    for call in calls:
        with pytest.raises(NotFound, match="nope"):
            call()


def test_names_are_validated(deployment_store: DeploymentStore) -> None:
    store = deployment_store
    bad = ["", " recs", "a/b", "a b", "-x", ".x", "x" * 256, "line\nbreak", "a?b", 7, None]
    assert _not_rejected(lambda name: store.create_deployment(name, ONE), bad) == []
    assert _not_rejected(store.get_deployment, bad) == []
    assert store.list_deployments() == []
    assert store.create_deployment("a.b-c_1", ONE).name == "a.b-c_1"
    assert store.create_deployment("x" * 255, ONE).name == "x" * 255


@pytest.mark.parametrize(
    ("variants", "words"),
    [
        ([V("a", "m1"), V("a", "m2", 0.0, "canary")], "unique"),
        ([V("a", "m1", 50.0, "canary"), V("b", "m2", 50.0, "canary")], "primary"),
        ([V("a", "m1"), V("b", "m2")], "primary"),
        ([V("a", "m1", 0.0), V("b", "m2", 0.0, "canary")], "weight > 0"),
        ([V("a", "m1", 0.0), V("s", "m2", 100.0, "shadow")], "weight > 0"),
        ([], "primary"),
        ([V("a", "")], "model_uri"),
    ],
)
def test_bad_variants_are_rejected(
    deployment_store: DeploymentStore, variants: list[VariantSpec], words: str
) -> None:
    with pytest.raises(InvalidInput, match=words):
        deployment_store.create_deployment("recs", variants)
    assert deployment_store.list_deployments() == []


def test_variant_weight_and_role_are_checked() -> None:
    """Out-of-range weights and unknown roles never make a variant (so never reach a store)."""
    for weight in (-1.0, 100.5, 1e9):
        with pytest.raises(InvalidInput, match="weight"):
            V("a", "m1", weight)
    with pytest.raises(InvalidInput, match="role"):
        V("a", "m1", 100.0, "boss")


def test_bad_unit_key(deployment_store: DeploymentStore) -> None:
    for key in ("", "k" * 256, "a\x00b"):
        with pytest.raises(InvalidInput, match="unit_key"):
            deployment_store.create_deployment("recs", ONE, unit_key=key)
    assert deployment_store.list_deployments() == []


# -- update, traffic, promote, rollback --------------------------------------------------------
def test_update_deployment(deployment_store: DeploymentStore) -> None:
    store = deployment_store
    store.create_deployment("recs", ONE, unit_key="user_id")
    dep = store.update_deployment(
        "recs", description="v2", batching=BatchingConfig(max_batch_size=4), user_id="bob"
    )
    assert (dep.description, dep.batching.max_batch_size, dep.unit_key) == ("v2", 4, "user_id")
    assert dep.revision == 2
    dep = store.update_deployment("recs", unit_key="")  # "" clears it
    assert dep.unit_key is None and dep.revision == 3
    dep = store.update_deployment("recs", variants=TWO, unit_key="session")
    assert _variants(dep) == [
        ("main", "models:/m/1", 90.0, "primary"),
        ("b", "models:/m/2", 10.0, "canary"),
    ]
    assert dep.unit_key == "session" and dep.description == "v2" and dep.revision == 4
    assert store.get_deployment("recs") == dep
    events = store.list_events("recs")
    assert [(e.revision, e.kind) for e in events] == [
        (1, "created"),
        (2, "updated"),
        (3, "updated"),
        (4, "updated"),
    ]
    assert events[1].user_id == "bob"
    assert events[1].detail["fields"] == ["batching", "description"]
    with pytest.raises(InvalidInput, match="primary"):
        store.update_deployment("recs", variants=[V("a", "m1", 50.0, "canary")])
    assert store.get_deployment("recs").revision == 4


def test_set_traffic(deployment_store: DeploymentStore) -> None:
    store = deployment_store
    store.create_deployment("recs", TWO)
    dep = store.set_traffic("recs", {"b": 30}, user_id="carol")
    assert _variants(dep) == [
        ("main", "models:/m/1", 90.0, "primary"),
        ("b", "models:/m/2", 30.0, "canary"),
    ]
    assert dep.revision == 2
    dep = store.set_traffic("recs", {"main": 50.5, "b": 49.5})
    assert [v.weight for v in dep.variants] == [50.5, 49.5] and dep.revision == 3

    with pytest.raises(InvalidInput, match="ghost"):
        store.set_traffic("recs", {"ghost": 10})
    with pytest.raises(InvalidInput, match="weight"):
        store.set_traffic("recs", {"b": 150})
    with pytest.raises(InvalidInput, match="weight"):
        store.set_traffic("recs", {"b": -1})
    with pytest.raises(InvalidInput, match="weight"):
        store.set_traffic("recs", {"b": "ten"})  # type: ignore[dict-item]
    with pytest.raises(InvalidInput, match="weight > 0"):
        store.set_traffic("recs", {"main": 0, "b": 0})
    with pytest.raises(InvalidInput):
        store.set_traffic("recs", {})
    assert store.get_deployment("recs") == dep
    event = store.list_events("recs")[1]
    assert (event.kind, event.user_id, event.detail["weights"]) == ("traffic", "carol", {"b": 30})


def test_numpy_numbers_are_accepted(deployment_store: DeploymentStore) -> None:
    """Weights and statistics computed with NumPy (as the rollout driver's are) go through."""
    store = deployment_store
    store.create_deployment("recs", TWO)
    dep = store.set_traffic("recs", {"main": np.int64(70), "b": np.float64(30.5)})
    assert [v.weight for v in dep.variants] == [70.0, 30.5]
    dep = store.start_rollout("recs", "models:/m/3", steps=[np.int64(10), np.float64(100)])
    stats = {"requests": np.int64(40), "error_rate": np.float64(0.25)}
    dep = store.decide_rollout("recs", "rollback", expected_revision=dep.revision, stats=stats)
    assert store.list_events("recs")[-1].detail["stats"] == {"requests": 40, "error_rate": 0.25}


def test_promote(deployment_store: DeploymentStore) -> None:
    store = deployment_store
    store.create_deployment(
        "recs",
        [*TWO, V("s", "models:/m/3", 100.0, "shadow"), V("c", "models:/m/4", 5.0, "canary")],
    )
    with pytest.raises(InvalidState, match="main"):
        store.promote("recs", "main")
    with pytest.raises(InvalidInput, match="ghost"):
        store.promote("recs", "ghost")
    dep = store.promote("recs", "b")
    # b's model becomes the primary's with all the traffic; the other canaries leave
    assert _variants(dep) == [
        ("main", "models:/m/2", 100.0, "primary"),
        ("s", "models:/m/3", 100.0, "shadow"),
    ]
    assert dep.revision == 2
    event = store.list_events("recs")[-1]
    assert (event.kind, event.detail["variant"], event.detail["model_uri"]) == (
        "promoted",
        "b",
        "models:/m/2",
    )


def test_rollback_to_previous_revision(deployment_store: DeploymentStore) -> None:
    store = deployment_store
    store.create_deployment("recs", TWO)
    with pytest.raises(InvalidState, match="roll back"):
        store.rollback("recs")
    store.update_deployment("recs", description="no variants changed")
    with pytest.raises(InvalidState, match="roll back"):
        store.rollback("recs")
    store.set_traffic("recs", {"b": 40})
    dep = store.rollback("recs", user_id="dave")
    assert _variants(dep) == [
        ("main", "models:/m/1", 90.0, "primary"),
        ("b", "models:/m/2", 10.0, "canary"),
    ]
    assert dep.revision == 4
    dep = store.promote("recs", "b")
    dep = store.rollback("recs")
    assert _variants(dep) == [
        ("main", "models:/m/1", 90.0, "primary"),
        ("b", "models:/m/2", 10.0, "canary"),
    ]
    assert dep.revision == 6
    events = store.list_events("recs")
    assert [e.kind for e in events] == [
        "created",
        "updated",
        "traffic",
        "rolled_back",
        "promoted",
        "rolled_back",
    ]
    assert events[3].user_id == "dave"


# -- rollouts ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("steps", "words"),
    [
        ([50, 25, 100], "increase"),
        ([5, 5, 100], "increase"),
        ([5, 50], "last rollout step must be 100"),
        ([0, 100], "percentages"),
        ([-5, 100], "percentages"),
        ([5, 150], "percentages"),
        ([], "percentages"),
        (["a", 100], "steps"),
    ],
)
def test_rollout_steps_are_validated(
    deployment_store: DeploymentStore, steps: list[Any], words: str
) -> None:
    before = deployment_store.create_deployment("recs", ONE)
    with pytest.raises(InvalidInput, match=words):
        deployment_store.start_rollout("recs", "models:/m/2", steps=steps)
    assert deployment_store.get_deployment("recs") == before


def test_rollout_options_are_validated(deployment_store: DeploymentStore) -> None:
    store = deployment_store
    before = store.create_deployment("recs", ONE)
    with pytest.raises(InvalidInput, match="interval"):
        store.start_rollout("recs", "models:/m/2", interval_seconds=-1)
    with pytest.raises(InvalidInput, match="target"):
        store.start_rollout("recs", "")
    with pytest.raises(InvalidInput, match="max_error_rate"):
        store.start_rollout("recs", "m2", guardrails=Guardrails(max_error_rate=2.0))
    with pytest.raises(InvalidInput, match="decision"):
        store.decide_rollout("recs", "maybe", expected_revision=1)
    assert store.get_deployment("recs") == before


def test_rollout_advances_to_success(deployment_store: DeploymentStore) -> None:
    store = deployment_store
    store.create_deployment(
        "recs", [V("main", "models:/m/1"), V("s", "models:/m/9", 50.0, "shadow")]
    )
    rails = Guardrails(
        max_error_rate=0.1, max_p99_ms=250.0, min_requests=5, rules=("p50_ms < 90",)
    )
    dep = store.start_rollout(
        "recs", "models:/m/2", steps=(10, 50, 100), interval_seconds=0, guardrails=rails
    )
    assert _variants(dep) == [
        ("main", "models:/m/1", 90.0, "primary"),
        ("canary", "models:/m/2", 10.0, "canary"),
        ("s", "models:/m/9", 50.0, "shadow"),
    ]
    assert dep.revision == 2
    rollout = dep.rollout
    assert rollout is not None
    assert (rollout.status, rollout.step, rollout.percent) == ("running", 0, 10.0)
    assert rollout.steps == (10.0, 50.0, 100.0)
    assert rollout.guardrails == rails
    assert rollout.target_uri == "models:/m/2"
    assert [(v.name, v.model_uri) for v in rollout.previous_variants] == [
        ("main", "models:/m/1"),
        ("s", "models:/m/9"),
    ]
    assert store.get_deployment("recs") == dep

    stats = {"requests": 40, "errors": 0, "error_rate": 0.0, "p50_ms": 3.5, "p99_ms": 9.0}
    dep = store.decide_rollout("recs", "advance", expected_revision=2, stats=stats)
    assert _variants(dep) == [
        ("main", "models:/m/1", 50.0, "primary"),
        ("canary", "models:/m/2", 50.0, "canary"),
        ("s", "models:/m/9", 50.0, "shadow"),
    ]
    assert dep.rollout is not None and (dep.rollout.step, dep.rollout.status) == (1, "running")
    dep = store.decide_rollout("recs", "advance", expected_revision=3, stats=stats)
    assert _variants(dep) == [
        ("main", "models:/m/2", 100.0, "primary"),
        ("s", "models:/m/9", 50.0, "shadow"),
    ]
    assert dep.revision == 4
    assert dep.rollout is not None
    assert (dep.rollout.status, dep.rollout.step) == ("succeeded", 2)
    assert dep.rollout.finished_at is not None
    with pytest.raises(InvalidState, match="no rollout"):
        store.decide_rollout("recs", "advance", expected_revision=4)
    events = store.list_events("recs")
    assert [(e.revision, e.kind) for e in events] == [
        (1, "created"),
        (2, "rollout_started"),
        (3, "rollout_step"),
        (4, "rollout_succeeded"),
    ]
    assert events[2].detail["stats"] == stats
    assert events[3].user_id == "loopml"
    # a finished rollout leaves the way free for the next one
    dep = store.start_rollout("recs", "models:/m/3", steps=(50, 100))
    assert dep.rollout is not None and dep.rollout.status == "running"


def test_one_step_rollout_finishes_at_once(deployment_store: DeploymentStore) -> None:
    deployment_store.create_deployment("recs", ONE)
    dep = deployment_store.start_rollout("recs", "models:/m/2", steps=[100])
    assert _variants(dep) == [("main", "models:/m/2", 100.0, "primary")]
    assert dep.rollout is not None and dep.rollout.status == "succeeded"
    assert deployment_store.list_events("recs")[-1].kind == "rollout_succeeded"


def test_rollout_rollback_restores_the_variants_before_it(
    deployment_store: DeploymentStore,
) -> None:
    store = deployment_store
    before = [*TWO, V("s", "models:/m/9", 100.0, "shadow")]
    store.create_deployment("recs", before)
    dep = store.start_rollout("recs", "models:/m/5", steps=(20, 60, 100))
    assert _variants(dep) == [
        ("main", "models:/m/1", 80.0, "primary"),
        ("canary", "models:/m/5", 20.0, "canary"),
        ("s", "models:/m/9", 100.0, "shadow"),
    ]
    dep = store.decide_rollout("recs", "advance", expected_revision=dep.revision)
    stats = {"requests": 50, "errors": 25, "error_rate": 0.5}
    dep = store.decide_rollout(
        "recs", "rollback", expected_revision=dep.revision, reason="too many errors", stats=stats
    )
    assert dep.variants == tuple(before)
    assert dep.rollout is not None
    assert (dep.rollout.status, dep.rollout.reason) == ("rolled_back", "too many errors")
    assert dep.rollout.finished_at is not None
    event = store.list_events("recs")[-1]
    assert (event.kind, event.detail["reason"], event.detail["stats"]) == (
        "rollout_rolled_back",
        "too many errors",
        stats,
    )
    assert event.detail["variants"] == [v.to_dict() for v in before]


def test_rollout_blocks_other_changes(deployment_store: DeploymentStore) -> None:
    store = deployment_store
    store.create_deployment("recs", TWO)
    running = store.start_rollout("recs", "models:/m/2", steps=(10, 100))
    with pytest.raises(InvalidState, match="rollout"):
        store.start_rollout("recs", "models:/m/3")
    with pytest.raises(InvalidState, match="rollout"):
        store.set_traffic("recs", {"main": 50})
    with pytest.raises(InvalidState, match="rollout"):
        store.update_deployment("recs", variants=ONE)
    assert store.get_deployment("recs") == running
    dep = store.rollback("recs")  # by hand: stops it, back to the variants before it
    assert dep.variants == TWO
    assert dep.rollout is not None and dep.rollout.status == "rolled_back"
    assert store.set_traffic("recs", {"b": 20}).revision == dep.revision + 1


def test_decide_with_stale_revision(deployment_store: DeploymentStore) -> None:
    store = deployment_store
    store.create_deployment("recs", ONE)
    dep = store.start_rollout("recs", "models:/m/2", steps=(10, 50, 100))
    store.update_deployment("recs", description="moved on")  # another change wins the race
    for decision in ("advance", "rollback"):
        with pytest.raises(InvalidState, match="revision"):
            store.decide_rollout("recs", decision, expected_revision=dep.revision)
    now = store.get_deployment("recs")
    assert now.revision == dep.revision + 1 and now.variants == dep.variants
    assert now.rollout == dep.rollout


# -- history -----------------------------------------------------------------------------------
def test_events_record_every_change(deployment_store: DeploymentStore) -> None:
    store = deployment_store
    results = [store.create_deployment("recs", TWO, user_id="erin")]
    changes: list[Callable[[], Deployment]] = [
        lambda: store.set_traffic("recs", {"b": 25}),
        lambda: store.update_deployment("recs", description="d"),
        lambda: store.rollback("recs"),
        lambda: store.start_rollout("recs", "models:/m/7", steps=(50, 100)),
        lambda: store.decide_rollout("recs", "advance", expected_revision=5),
        lambda: store.update_deployment(
            "recs", variants=[V("main", "models:/m/7"), V("x", "models:/m/8", 0.0, "canary")]
        ),
        lambda: store.promote("recs", "x"),
    ]
    for change in changes:
        results.append(change())
    assert [r.revision for r in results] == list(range(1, 9))
    events = store.list_events("recs")
    assert [e.revision for e in events] == list(range(1, 9))
    assert [e.kind for e in events] == [
        "created",
        "traffic",
        "updated",
        "rolled_back",
        "rollout_started",
        "rollout_succeeded",
        "updated",
        "promoted",
    ]
    for event, dep in zip(events, results, strict=True):
        assert event.detail["variants"] == [v.to_dict() for v in dep.variants], event.kind
    times = [e.time for e in events]
    assert times == sorted(times) and times[0] > 0
    assert events[0].user_id == "erin"
    assert store.get_deployment("recs") == results[-1]


def test_workspaces_are_separate(deployment_store: DeploymentStore) -> None:
    store = deployment_store
    store.create_deployment("recs", ONE)
    other = store.for_workspace("elsewhere")
    assert other.workspace == "elsewhere"
    assert other.list_deployments() == []
    with pytest.raises(NotFound):
        other.get_deployment("recs")
    with pytest.raises(NotFound, match="workspace"):
        other.create_deployment("recs", ONE)
    assert [d.name for d in store.list_deployments()] == ["recs"]


def test_concurrent_changes_lose_no_revision(deployment_store: DeploymentStore) -> None:
    """Each thread sets its own canary's weight; a lost update would revert another's weight
    or reuse a revision."""
    store = deployment_store
    threads_n, changes_n = 6, 5
    canaries = [V(f"c{i}", f"models:/m/{i}", 0.0, "canary") for i in range(threads_n)]
    store.create_deployment("recs", [V("main", "models:/m/main"), *canaries])
    seen: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(threads_n)

    def work(i: int) -> None:
        try:
            start.wait()
            for k in range(1, changes_n + 1):
                seen.append(store.set_traffic("recs", {f"c{i}": float(k)}).revision)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    total = threads_n * changes_n
    assert sorted(seen) == list(range(2, total + 2))  # each change its own revision
    dep = store.get_deployment("recs")
    assert dep.revision == total + 1
    assert {v.name: v.weight for v in dep.variants if v.role == "canary"} == {
        f"c{i}": float(changes_n) for i in range(threads_n)
    }
    events = store.list_events("recs")
    assert [e.revision for e in events] == list(range(1, total + 2))
