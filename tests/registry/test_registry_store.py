"""The RegistryStore contract, run on SQLite, PostgreSQL and REST (a real server).

Every test builds its data through the pair's own tracking store (real runs, real artifacts) and
its own names; expectations are written out by hand, never derived from the code under test.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from loopml.errors import AlreadyExists, InvalidInput, InvalidState, NotFound
from loopml.registry import ModelEvent, ModelVersion, ModelVersionStatus, RegistryStore, Stage
from loopml.tracking import TrackingStore

Stores = tuple[TrackingStore, RegistryStore]


def _uid() -> str:
    return uuid.uuid4().hex[:8]


def _run_id(tracking: TrackingStore) -> str:
    return tracking.create_run(tracking.create_experiment(f"exp-{_uid()}")).info.run_id


def _model(stores: Stores, versions: int = 0, **kwargs: Any) -> tuple[str, str]:
    """A new registered model with ``versions`` versions from one real run; (name, run_id)."""
    tracking, registry = stores
    name = f"model-{_uid()}"
    registry.create_registered_model(name, **kwargs)
    run_id = _run_id(tracking)
    for _ in range(versions):
        registry.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)
    return name, run_id


def _versions(found: list[ModelVersion]) -> list[tuple[str, str]]:
    return [(v.name, v.version) for v in found]


def _token(payload: Any) -> str:
    """A page token in the store's encoding (hex of JSON) but with content it never issues."""
    return json.dumps(payload).encode().hex()


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


# -- registered models -------------------------------------------------------------------------
def test_create_and_get_registered_model(stores: Stores) -> None:
    _, registry = stores
    name = f"model-{_uid()}"
    created = registry.create_registered_model(
        name, tags={"team": "vision", "tier": "1"}, description="detects cats"
    )
    assert created.name == name
    assert created.tags == {"team": "vision", "tier": "1"}
    assert created.description == "detects cats"
    assert created.aliases == {}
    assert created.latest_versions == []
    assert created.workspace == "default"
    assert created.creation_timestamp == created.last_updated_timestamp > 0
    assert registry.get_registered_model(name) == created


def test_registered_model_name_is_unique(stores: Stores) -> None:
    name, _ = _model(stores)
    with pytest.raises(AlreadyExists, match=name):
        stores[1].create_registered_model(name)


def test_registered_model_name_is_validated(stores: Stores) -> None:
    bad = ["a/b", "a@b", "", "   ", " padded", "x" * 257, "line\nbreak", 7, None]
    assert _not_rejected(stores[1].create_registered_model, bad) == []
    assert list(stores[1].search_registered_models()) == []


def test_missing_registered_model(stores: Stores) -> None:
    _, registry = stores
    missing = f"missing-{_uid()}"
    with pytest.raises(NotFound):
        registry.get_registered_model(missing)
    with pytest.raises(NotFound):
        registry.update_registered_model(missing, description="x")
    with pytest.raises(NotFound):
        registry.rename_registered_model(missing, f"other-{_uid()}")
    with pytest.raises(NotFound):
        registry.delete_registered_model(missing)
    with pytest.raises(NotFound):
        registry.set_registered_model_tag(missing, "k", "v")
    with pytest.raises(NotFound):
        registry.create_model_version(missing, "registry:")


def test_rename_carries_versions_aliases_and_history(stores: Stores) -> None:
    _, registry = stores
    old, _ = _model(stores, versions=2, tags={"k": "v"})
    registry.set_registered_model_alias(old, "champion", 2, reason="best")
    history_before = registry.get_model_history(old)
    new = f"renamed-{_uid()}"

    renamed = registry.rename_registered_model(old, new)

    assert renamed.name == new
    assert renamed.tags == {"k": "v"}
    assert renamed.aliases == {"champion": "2"}
    with pytest.raises(NotFound):
        registry.get_registered_model(old)
    assert registry.get_model_version(new, 1).name == new
    assert registry.get_model_version_by_alias(new, "champion").version == "2"
    moved = registry.get_model_history(new)
    assert [(e.seq, e.kind, e.version, e.to_version) for e in moved] == [
        (e.seq, e.kind, e.version, e.to_version) for e in history_before
    ]
    assert {e.name for e in moved} == {new}
    assert _versions(registry.search_model_versions(filter_string=f"name = '{new}'")) == [
        (new, "2"),
        (new, "1"),
    ]
    # The old name is free again, and a model made with it starts from nothing.
    again = registry.create_registered_model(old)
    assert again.aliases == {} and again.latest_versions == []
    assert list(registry.get_model_history(old)) == []


def test_rename_to_a_taken_name(stores: Stores) -> None:
    _, registry = stores
    a, _ = _model(stores)
    b, _ = _model(stores)
    with pytest.raises(AlreadyExists, match=b):
        registry.rename_registered_model(a, b)
    with pytest.raises(InvalidInput):
        registry.rename_registered_model(a, "has/slash")
    assert registry.get_registered_model(a).name == a


def test_update_registered_model_description(stores: Stores) -> None:
    _, registry = stores
    name, _ = _model(stores, description="first")
    before = registry.get_registered_model(name)
    time.sleep(0.01)
    updated = registry.update_registered_model(name, description="second")
    assert updated.description == "second"
    assert updated.last_updated_timestamp > before.last_updated_timestamp
    assert updated.creation_timestamp == before.creation_timestamp
    assert registry.get_registered_model(name).description == "second"


def test_delete_registered_model(stores: Stores) -> None:
    _, registry = stores
    name, run_id = _model(stores, versions=2)
    registry.set_registered_model_alias(name, "prod", 1)
    registry.delete_registered_model(name)

    with pytest.raises(NotFound):
        registry.get_registered_model(name)
    with pytest.raises(NotFound):
        registry.get_model_version(name, 1)
    assert list(registry.search_model_versions(filter_string=f"run_id = '{run_id}'")) == []
    # The name is free again: a fresh model, versions counted from 1, no aliases, no history.
    registry.create_registered_model(name)
    assert registry.create_model_version(name, f"runs:/{run_id}/model").version == "1"
    with pytest.raises(NotFound):
        registry.get_model_version_by_alias(name, "prod")
    assert [e.kind for e in registry.get_model_history(name)] == ["version_created"]


def test_registered_model_tags(stores: Stores) -> None:
    _, registry = stores
    name, _ = _model(stores, tags={"a": "1"})
    registry.set_registered_model_tag(name, "b", "2")
    registry.set_registered_model_tag(name, "a", "overwritten")
    assert registry.get_registered_model(name).tags == {"a": "overwritten", "b": "2"}
    registry.delete_registered_model_tag(name, "a")
    assert registry.get_registered_model(name).tags == {"b": "2"}
    with pytest.raises(NotFound, match="a"):
        registry.delete_registered_model_tag(name, "a")
    with pytest.raises(InvalidInput):
        registry.set_registered_model_tag(name, "bad key!", "v")
    with pytest.raises(InvalidInput):
        registry.set_registered_model_tag(name, "k", "x" * 8001)


# -- searching models --------------------------------------------------------------------------
def test_search_registered_models_filters(stores: Stores) -> None:
    _, registry = stores
    u = _uid()
    fraise, framboise, grape = f"fraise-{u}", f"Framboise-{u}", f"grape-{u}"
    registry.create_registered_model(fraise, tags={"kind": "berry"})
    registry.create_registered_model(framboise, tags={"kind": "berry", "colour": "red"})
    registry.create_registered_model(grape, tags={"kind": "vine"})

    def names(filter_string: str) -> set[str]:
        return {m.name for m in registry.search_registered_models(filter_string=filter_string)}

    assert names(f"name = '{grape}'") == {grape}
    assert names(f"name != '{grape}'") == {fraise, framboise}
    assert names("name LIKE 'fr%'") == {fraise}  # LIKE is case-sensitive
    assert names("name LIKE 'Fr%'") == {framboise}
    assert names("name ILIKE 'fr%'") == {fraise, framboise}
    assert names("name ILIKE '%APE%'") == {grape}
    assert names("tags.kind = 'berry'") == {fraise, framboise}
    assert names("tags.colour = 'red'") == {framboise}
    assert names("tags.kind = 'berry' AND name LIKE 'fr%'") == {fraise}
    assert names("tags.nothing = 'x'") == set()
    assert names("") == {fraise, framboise, grape}


def test_search_registered_models_order_by(stores: Stores) -> None:
    _, registry = stores
    u = _uid()
    a, b, c = f"a-{u}", f"B-{u}", f"c-{u}"
    for name in (a, b, c):
        registry.create_registered_model(name)
        time.sleep(0.01)
    registry.set_registered_model_tag(a, "touched", "yes")  # a is now the last updated

    def names(order_by: list[str]) -> list[str]:
        return [m.name for m in registry.search_registered_models(order_by=order_by)]

    assert names(["name"]) == [a, b, c]
    assert names(["name DESC"]) == [c, b, a]
    assert names(["creation_timestamp"]) == [a, b, c]
    assert names(["last_updated_timestamp"]) == [b, c, a]
    assert names(["last_updated_timestamp DESC"]) == [a, c, b]


def test_search_registered_models_pages(stores: Stores) -> None:
    _, registry = stores
    u = _uid()
    expected = [f"page-{i}-{u}" for i in range(7)]
    for name in reversed(expected):
        registry.create_registered_model(name)

    pages = []
    token = None
    while True:
        page = registry.search_registered_models(
            max_results=3, order_by=["name"], page_token=token
        )
        pages.append([m.name for m in page])
        token = page.token
        if token is None:
            break
        assert len(pages) < 5, "paging does not end"
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [n for p in pages for n in p] == expected  # no duplicates, no gaps, in order


def test_search_registered_models_bad_arguments(stores: Stores) -> None:
    _model(stores)
    bad: list[dict[str, Any]] = [
        {"filter_string": "name > 'a'"},
        {"filter_string": "colour = 'red'"},
        {"filter_string": "name = 'a' OR name = 'b'"},
        {"filter_string": "name = 3"},
        {"filter_string": "name = 'a' AND"},
        {"filter_string": "name = 'unterminated"},
        {"filter_string": "version_number = 1"},
        {"filter_string": 42},
        {"order_by": ["colour"]},
        {"order_by": ["name SIDEWAYS"]},
        {"order_by": ["version_number"]},
        {"order_by": "name"},
        {"page_token": "garbage!"},
        {"page_token": "zz"},
        {"page_token": _token([1])},
        {"page_token": _token({"offset": -3})},
        {"page_token": _token({"offset": "many"})},
        {"max_results": 0},
        {"max_results": -1},
        {"max_results": 50_001},
        {"max_results": True},
        {"max_results": "10"},
    ]
    assert _not_rejected(lambda kw: stores[1].search_registered_models(**kw), bad) == []


# -- versions ----------------------------------------------------------------------------------
def test_create_model_version_from_a_run(stores: Stores) -> None:
    tracking, registry = stores
    name, _ = _model(stores)
    run_id = _run_id(tracking)
    digest = hashlib.sha256(b"manifest").hexdigest()

    created = registry.create_model_version(
        name,
        f"runs:/{run_id}/model",
        run_id=run_id,
        tags={"framework": "sklearn"},
        description="first cut",
        user_id="ann",
        manifest_digest=digest,
        dataset_versions=["ds:train@3"],
        feature_views=["fv:users"],
    )

    assert created.name == name
    assert created.version == "1"
    assert created.source == f"runs:/{run_id}/model"
    assert created.run_id == run_id
    assert created.status == ModelVersionStatus.READY
    assert created.current_stage == Stage.NONE
    assert created.tags == {"framework": "sklearn"}
    assert created.description == "first cut"
    assert created.user_id == "ann"
    assert created.aliases == []
    assert created.manifest_digest == digest
    assert created.dataset_versions == ["ds:train@3"]
    assert created.feature_views == ["fv:users"]
    assert registry.get_model_version(name, 1) == created
    assert registry.get_model_version(name, "1") == created
    model = registry.get_registered_model(name)
    assert [(v.version, v.current_stage) for v in model.latest_versions] == [("1", "None")]


def test_model_version_needs_an_existing_run(stores: Stores) -> None:
    tracking, registry = stores
    name, _ = _model(stores)
    ghost = uuid.uuid4().hex
    with pytest.raises(NotFound):
        registry.create_model_version(name, f"runs:/{ghost}/model")
    with pytest.raises(NotFound):
        registry.create_model_version(name, "registry:", run_id=ghost)
    real = _run_id(tracking)
    with pytest.raises(InvalidInput):  # the source names another run than run_id
        registry.create_model_version(name, f"runs:/{real}/model", run_id=_run_id(tracking))
    for bad_source in ("", "runs://model", f"models:/{name}/1"):
        with pytest.raises(InvalidInput):
            registry.create_model_version(name, bad_source)
    # Nothing above consumed a version number.
    assert registry.create_model_version(name, f"runs:/{real}/model").version == "1"


def test_version_numbers_are_never_reused(stores: Stores) -> None:
    _, registry = stores
    name, run_id = _model(stores, versions=3)
    source = f"runs:/{run_id}/model"
    assert [
        v.version
        for v in registry.search_model_versions(
            filter_string=f"name = '{name}'", order_by=["version_number"]
        )
    ] == ["1", "2", "3"]
    registry.delete_model_version(name, 3)
    assert registry.create_model_version(name, source).version == "4"
    registry.delete_model_version(name, 4)
    registry.delete_model_version(name, "2")
    assert registry.create_model_version(name, source).version == "5"
    with pytest.raises(NotFound):
        registry.get_model_version(name, 3)
    remaining = registry.search_model_versions(filter_string=f"name = '{name}'")
    assert [v.version for v in remaining] == ["5", "1"]


def test_update_model_version_description(stores: Stores) -> None:
    _, registry = stores
    name, _ = _model(stores, versions=1)
    before = registry.get_model_version(name, 1)
    time.sleep(0.01)
    updated = registry.update_model_version(name, 1, description="tuned")
    assert updated.description == "tuned"
    assert updated.last_updated_timestamp > before.last_updated_timestamp
    assert registry.get_model_version(name, 1).description == "tuned"
    with pytest.raises(InvalidInput):
        registry.update_model_version(name, 1, status="DONE")
    with pytest.raises(NotFound):
        registry.update_model_version(name, 9, description="x")


def test_model_version_tags(stores: Stores) -> None:
    _, registry = stores
    name, _ = _model(stores, versions=2)
    registry.set_model_version_tag(name, 1, "env", "dev")
    registry.set_model_version_tag(name, 1, "env", "prod")
    registry.set_model_version_tag(name, "1", "owner", "ann")
    assert registry.get_model_version(name, 1).tags == {"env": "prod", "owner": "ann"}
    assert registry.get_model_version(name, 2).tags == {}
    registry.delete_model_version_tag(name, 1, "env")
    assert registry.get_model_version(name, 1).tags == {"owner": "ann"}
    with pytest.raises(NotFound):
        registry.delete_model_version_tag(name, 1, "env")
    with pytest.raises(NotFound):
        registry.set_model_version_tag(name, 7, "k", "v")
    with pytest.raises(InvalidInput):
        registry.set_model_version_tag(name, 1, "", "v")


def test_delete_model_version(stores: Stores) -> None:
    _, registry = stores
    name, _ = _model(stores, versions=2)
    registry.set_model_version_tag(name, 2, "k", "v")
    registry.delete_model_version(name, 2)
    with pytest.raises(NotFound):
        registry.get_model_version(name, 2)
    with pytest.raises(NotFound):
        registry.delete_model_version(name, 2)
    assert [
        v.version for v in registry.search_model_versions(filter_string=f"name = '{name}'")
    ] == ["1"]
    assert list(registry.search_model_versions(filter_string="tags.k = 'v'")) == []
    assert [v.version for v in registry.get_registered_model(name).latest_versions] == ["1"]


def test_bad_version_is_invalid_input(stores: Stores) -> None:
    _, registry = stores
    name, _ = _model(stores, versions=1)
    bad = ["abc", 0, -1, "-1", True, "1.5", "", 2**31, None]
    assert _not_rejected(lambda v: registry.get_model_version(name, v), bad) == []
    assert _not_rejected(lambda v: registry.set_registered_model_alias(name, "p", v), bad) == []
    assert _not_rejected(lambda v: registry.delete_model_version(name, v), bad) == []
    assert registry.get_model_version(name, " 1 ").version == "1"


def test_unicode_digit_version_is_invalid_input(stores: Stores) -> None:
    name, _ = _model(stores, versions=1)
    with pytest.raises(InvalidInput):
        stores[1].get_model_version(name, "²")


def test_missing_version_is_not_found(stores: Stores) -> None:
    _, registry = stores
    name, _ = _model(stores, versions=1)
    for call in (
        lambda: registry.get_model_version(name, 2),
        lambda: registry.delete_model_version(name, 99),
        lambda: registry.transition_model_version_stage(name, 2, "Staging"),
        lambda: registry.get_model_version(f"missing-{_uid()}", 1),
    ):
        with pytest.raises(NotFound):
            call()


def test_bad_model_name_is_invalid_input(stores: Stores) -> None:
    _, registry = stores
    bad = ["a/b", "a@b"]
    assert _not_rejected(lambda n: registry.get_model_version(n, 1), bad) == []
    assert _not_rejected(registry.get_registered_model, bad) == []
    assert _not_rejected(lambda n: registry.create_model_version(n, "registry:"), bad) == []


def test_manifest_digest_must_be_hex(stores: Stores) -> None:
    name, _ = _model(stores)
    with pytest.raises(InvalidInput):
        stores[1].create_model_version(name, "registry:", manifest_digest="z" * 64)


def test_create_model_version_bad_arguments(stores: Stores) -> None:
    _, registry = stores
    name, _ = _model(stores)
    bad: list[dict[str, Any]] = [
        {"manifest_digest": "abc"},
        {"manifest_digest": "a" * 63},
        {"manifest_digest": "a" * 65},
        {"manifest_digest": 12},
        {"dataset_versions": "ds:train@1"},
        {"feature_views": [1, 2]},
        {"status": "FAILED_REGISTRATION"},
        {"status": "READYISH"},
        {"tags": {"bad key!": "v"}},
        {"description": 5},
        {"run_id": ""},
    ]
    assert (
        _not_rejected(lambda kw: registry.create_model_version(name, "registry:", **kw), bad) == []
    )
    # None of the refused calls consumed a version number.
    assert registry.create_model_version(name, "registry:").version == "1"


# -- searching versions ------------------------------------------------------------------------
def test_search_model_versions(stores: Stores) -> None:
    tracking, registry = stores
    m, n = f"m-{_uid()}", f"n-{_uid()}"
    r1, r2 = _run_id(tracking), _run_id(tracking)
    registry.create_registered_model(m)
    registry.create_registered_model(n)
    for model, run in ((m, r1), (m, r1), (m, r2), (n, r2)):
        registry.create_model_version(model, f"runs:/{run}/model", run_id=run)
    registry.set_model_version_tag(m, 2, "k", "v")
    registry.set_model_version_tag(n, 1, "k", "other")
    registry.transition_model_version_stage(m, 3, "Production")

    def found(filter_string: str, **kwargs: Any) -> list[tuple[str, str]]:
        return _versions(registry.search_model_versions(filter_string=filter_string, **kwargs))

    assert found(f"name = '{m}'") == [(m, "3"), (m, "2"), (m, "1")]
    assert sorted(found(f"run_id = '{r2}'")) == [(m, "3"), (n, "1")]
    assert sorted(found(f"run_id IN ('{r1}', '{r2}')")) == [(m, "1"), (m, "2"), (m, "3"), (n, "1")]
    assert found(f"run_id IN ('{r1}')") == [(m, "2"), (m, "1")]
    assert found(f"name = '{m}' AND version_number >= 2") == [(m, "3"), (m, "2")]
    assert found("version_number >= 2") == [(m, "3"), (m, "2")]
    assert found("current_stage = 'Production'") == [(m, "3")]
    assert found("tags.k = 'v'") == [(m, "2")]
    assert found(f"source = 'runs:/{r2}/model' AND name = '{n}'") == [(n, "1")]
    assert found(f"name = '{m}'", order_by=["version_number DESC"]) == [
        (m, "3"),
        (m, "2"),
        (m, "1"),
    ]
    assert found(f"name = '{m}'", order_by=["version_number"]) == [(m, "1"), (m, "2"), (m, "3")]

    first = registry.search_model_versions(
        filter_string=f"name = '{m}'", max_results=2, order_by=["version_number"]
    )
    assert _versions(first) == [(m, "1"), (m, "2")] and first.token
    rest = registry.search_model_versions(
        filter_string=f"name = '{m}'",
        max_results=2,
        order_by=["version_number"],
        page_token=first.token,
    )
    assert _versions(rest) == [(m, "3")] and rest.token is None


def test_search_model_versions_bad_arguments(stores: Stores) -> None:
    _model(stores, versions=1)
    bad: list[dict[str, Any]] = [
        {"filter_string": "version_number >= 'two'"},
        {"filter_string": "run_id > 'a'"},
        {"filter_string": "stage = 'Production'"},
        {"filter_string": "run_id IN ()"},
        {"filter_string": "version_number LIKE 2"},
        {"filter_string": "run_id = 'a' OR run_id = 'b'"},
        {"order_by": ["version_number SIDEWAYS"]},
        {"order_by": ["run_id"]},
        {"page_token": "not-a-token"},
        {"max_results": 0},
    ]
    assert _not_rejected(lambda kw: stores[1].search_model_versions(**kw), bad) == []


def test_get_latest_versions(stores: Stores) -> None:
    _, registry = stores
    name, _ = _model(stores, versions=4)
    registry.transition_model_version_stage(name, 1, "Production")
    registry.transition_model_version_stage(name, 2, "Staging")
    registry.transition_model_version_stage(name, 4, "Production")

    def latest(stages: list[str] | None) -> list[tuple[str, str]]:
        return [(v.version, v.current_stage) for v in registry.get_latest_versions(name, stages)]

    assert latest(["Production"]) == [("4", "Production")]
    assert latest(["staging", "PRODUCTION"]) == [("2", "Staging"), ("4", "Production")]
    assert sorted(latest(None)) == [("2", "Staging"), ("3", "None"), ("4", "Production")]
    assert latest(["Archived"]) == []
    with pytest.raises(InvalidInput):
        registry.get_latest_versions(name, ["Shipping"])
    with pytest.raises(NotFound):
        registry.get_latest_versions(f"missing-{_uid()}", ["Production"])


# -- aliases -----------------------------------------------------------------------------------
def test_set_and_move_an_alias(stores: Stores) -> None:
    _, registry = stores
    name, _ = _model(stores, versions=2)

    first = registry.set_registered_model_alias(name, "champion", 1, user_id="ann", reason="go")
    assert (first.kind, first.alias, first.from_version, first.to_version) == (
        "alias",
        "champion",
        None,
        "1",
    )
    assert (first.user_id, first.reason, first.name) == ("ann", "go", name)
    assert registry.get_model_version_by_alias(name, "champion").version == "1"
    assert registry.get_model_version(name, 1).aliases == ["champion"]
    assert registry.get_registered_model(name).aliases == {"champion": "1"}

    moved = registry.set_registered_model_alias(
        name, "champion", "2", user_id="bob", reason="better auc"
    )
    assert (moved.kind, moved.from_version, moved.to_version) == ("alias", "1", "2")
    assert (moved.user_id, moved.reason) == ("bob", "better auc")
    assert moved.seq > first.seq and moved.timestamp >= first.timestamp
    assert registry.get_model_version_by_alias(name, "champion").version == "2"
    assert registry.get_model_version(name, 1).aliases == []
    assert registry.get_model_version(name, 2).aliases == ["champion"]
    assert registry.get_registered_model(name).aliases == {"champion": "2"}

    history = registry.get_model_history(name, alias="champion")
    assert list(history) == [moved, first]


def test_two_aliases_on_one_version(stores: Stores) -> None:
    _, registry = stores
    name, _ = _model(stores, versions=1)
    registry.set_registered_model_alias(name, "prod", 1)
    registry.set_registered_model_alias(name, "canary", 1)
    assert sorted(registry.get_model_version(name, 1).aliases) == ["canary", "prod"]
    assert registry.get_registered_model(name).aliases == {"prod": "1", "canary": "1"}


def test_setting_the_same_version_adds_no_history(stores: Stores) -> None:
    _, registry = stores
    name, _ = _model(stores, versions=1)
    first = registry.set_registered_model_alias(name, "prod", 1)
    again = registry.set_registered_model_alias(name, "prod", "1", reason="again")
    assert again.seq == first.seq
    assert [e.to_version for e in registry.get_model_history(name, alias="prod")] == ["1"]


def test_delete_an_alias(stores: Stores) -> None:
    _, registry = stores
    name, _ = _model(stores, versions=1)
    registry.set_registered_model_alias(name, "prod", 1)
    registry.delete_registered_model_alias(name, "prod", user_id="ann", reason="incident")
    with pytest.raises(NotFound):
        registry.get_model_version_by_alias(name, "prod")
    assert registry.get_registered_model(name).aliases == {}
    assert registry.get_model_version(name, 1).aliases == []
    last = registry.get_model_history(name, alias="prod")[0]
    assert (last.kind, last.from_version, last.to_version) == ("alias_deleted", "1", None)
    assert (last.user_id, last.reason) == ("ann", "incident")
    with pytest.raises(NotFound):
        registry.delete_registered_model_alias(name, "prod")


def test_reserved_and_malformed_aliases(stores: Stores) -> None:
    _, registry = stores
    name, _ = _model(stores, versions=1)
    bad = ["latest", "Latest", "v3", "V12", "a/b", "a b", "", "x@y", "a.b", "x" * 256, 3]
    assert _not_rejected(lambda a: registry.set_registered_model_alias(name, a, 1), bad) == []
    assert _not_rejected(lambda a: registry.get_model_version_by_alias(name, a), bad) == []
    assert registry.get_registered_model(name).aliases == {}
    assert list(registry.get_model_history(name, kinds=["alias"])) == []


def test_alias_to_a_missing_version_or_model(stores: Stores) -> None:
    _, registry = stores
    name, _ = _model(stores, versions=1)
    with pytest.raises(NotFound):
        registry.set_registered_model_alias(name, "prod", 2)
    with pytest.raises(NotFound):
        registry.set_registered_model_alias(f"missing-{_uid()}", "prod", 1)
    with pytest.raises(NotFound):
        registry.get_model_version_by_alias(name, "prod")
    assert list(registry.get_model_history(name, alias="prod")) == []


def test_deleting_a_version_drops_its_aliases_and_records_it(stores: Stores) -> None:
    _, registry = stores
    name, _ = _model(stores, versions=2)
    registry.set_registered_model_alias(name, "prod", 2)
    registry.set_registered_model_alias(name, "canary", 2)
    registry.set_registered_model_alias(name, "shadow", 1)

    registry.delete_model_version(name, 2)

    assert registry.get_registered_model(name).aliases == {"shadow": "1"}
    for alias in ("prod", "canary"):
        with pytest.raises(NotFound):
            registry.get_model_version_by_alias(name, alias)
        last = registry.get_model_history(name, alias=alias)[0]
        assert (last.kind, last.from_version, last.to_version) == ("alias_deleted", "2", None)
        assert "deleted" in last.reason
    newest = registry.get_model_history(name, kinds=["version_deleted"])
    assert [e.version for e in newest] == ["2"]


# -- history -----------------------------------------------------------------------------------
def test_model_history(stores: Stores) -> None:
    _, registry = stores
    name, _ = _model(stores, versions=2)
    registry.set_registered_model_alias(name, "prod", 1)
    registry.set_registered_model_alias(name, "prod", 2)
    registry.set_registered_model_alias(name, "staging", 1)
    registry.transition_model_version_stage(name, 1, "Staging")
    registry.delete_registered_model_alias(name, "staging")

    full = list(registry.get_model_history(name))
    assert [(e.kind, e.alias, e.version, e.to_version) for e in full] == [
        ("alias_deleted", "staging", None, None),
        ("stage", None, "1", None),
        ("alias", "staging", "1", "1"),
        ("alias", "prod", "2", "2"),
        ("alias", "prod", "1", "1"),
        ("version_created", None, "2", None),
        ("version_created", None, "1", None),
    ]
    seqs = [e.seq for e in full]
    assert seqs == sorted(seqs, reverse=True) and len(set(seqs)) == len(seqs)
    stamps = [e.timestamp for e in full]
    assert stamps == sorted(stamps, reverse=True)

    assert [e.to_version for e in registry.get_model_history(name, alias="prod")] == ["2", "1"]
    assert [e.kind for e in registry.get_model_history(name, alias="staging")] == [
        "alias_deleted",
        "alias",
    ]
    assert [e.version for e in registry.get_model_history(name, kinds=["version_created"])] == [
        "2",
        "1",
    ]
    assert [e.seq for e in registry.get_model_history(name, kinds=["alias", "stage"])] == [
        e.seq for e in full if e.kind in ("alias", "stage")
    ]

    pages: list[ModelEvent] = []
    token = None
    for _ in range(3):
        page = registry.get_model_history(name, max_results=3, page_token=token)
        pages.extend(page)
        token = page.token
    assert token is None
    assert pages == full


def test_model_history_bad_arguments(stores: Stores) -> None:
    name, _ = _model(stores, versions=1)
    bad: list[dict[str, Any]] = [
        {"kinds": ["bogus"]},
        {"kinds": "alias"},
        {"alias": "latest"},
        {"max_results": 0},
        {"page_token": "garbage!"},
    ]
    assert _not_rejected(lambda kw: stores[1].get_model_history(name, **kw), bad) == []


def test_model_history_of_a_missing_model(stores: Stores) -> None:
    with pytest.raises(NotFound):
        stores[1].get_model_history(f"missing-{_uid()}")


def _version_at(registry: RegistryStore, name: str, alias: str, ts: int) -> str | None:
    found = registry.get_alias_at(name, alias, ts)
    return None if found is None else found.version


def test_get_alias_at(stores: Stores) -> None:
    _, registry = stores
    name, _ = _model(stores, versions=3)
    moves = []
    for version in (1, 2, 3):
        moves.append(registry.set_registered_model_alias(name, "production", version))
        time.sleep(0.01)
    registry.delete_registered_model_alias(name, "production")
    deleted = registry.get_model_history(name, alias="production")[0]
    assert deleted.kind == "alias_deleted"
    t1, t2, t3 = (e.timestamp for e in moves)
    t4 = deleted.timestamp
    assert t1 < t2 < t3 < t4  # the sleeps separate the moves on the millisecond clock

    def at(ts: int) -> str | None:
        return _version_at(registry, name, "production", ts)

    assert at(t1 - 1) is None  # before the alias was ever set
    assert at(t1) == "1"
    assert at(t2 - 1) == "1"
    assert at(t2) == "2"
    assert at((t2 + t3) // 2) == "2"
    assert at(t3) == "3"
    assert at(t4 - 1) == "3"
    assert at(t4) is None  # deleted
    assert at(t4 + 60_000) is None
    assert registry.get_alias_at(name, "production", t2) == registry.get_model_version(name, 2)
    assert _version_at(registry, name, "never-set", t3) is None
    with pytest.raises(InvalidInput):
        registry.get_alias_at(name, "production", "yesterday")  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        registry.get_alias_at(f"missing-{_uid()}", "production", t3)


# -- rollback ----------------------------------------------------------------------------------
def test_rollback_walks_back_through_the_moves(stores: Stores) -> None:
    _, registry = stores
    name, _ = _model(stores, versions=3)
    for version in (1, 2, 3):
        registry.set_registered_model_alias(name, "production", version)

    back = registry.rollback(name, "production", user_id="oncall", reason="latency regression")
    assert (back.kind, back.alias, back.from_version, back.to_version) == (
        "rollback",
        "production",
        "3",
        "2",
    )
    assert (back.user_id, back.reason) == ("oncall", "latency regression")
    assert registry.get_model_version_by_alias(name, "production").version == "2"
    assert registry.get_model_history(name, alias="production")[0] == back
    assert registry.get_alias_at(name, "production", back.timestamp) == (
        registry.get_model_version(name, 2)
    )

    again = registry.rollback(name)  # "production" is the default alias
    assert (again.from_version, again.to_version) == ("2", "1")
    assert again.reason  # a reason is recorded even when none is given
    assert registry.get_model_version_by_alias(name, "production").version == "1"

    with pytest.raises(InvalidState):
        registry.rollback(name, "production")
    assert registry.get_model_version_by_alias(name, "production").version == "1"

    # A new move after rollbacks: rolling back undoes that move, to where it came from.
    registry.set_registered_model_alias(name, "production", 3)
    undo = registry.rollback(name, "production")
    assert (undo.from_version, undo.to_version) == ("3", "1")
    with pytest.raises(InvalidState):
        registry.rollback(name, "production")


def test_rollback_needs_an_alias_with_a_past(stores: Stores) -> None:
    _, registry = stores
    name, _ = _model(stores, versions=2)
    with pytest.raises(NotFound):
        registry.rollback(name, "production")
    with pytest.raises(NotFound):
        registry.rollback(f"missing-{_uid()}", "production")
    registry.set_registered_model_alias(name, "production", 1)
    with pytest.raises(InvalidState):  # set once: nothing to go back to
        registry.rollback(name, "production")
    with pytest.raises(InvalidInput):
        registry.rollback(name, "latest")


def test_rollback_skips_deleted_versions(stores: Stores) -> None:
    _, registry = stores
    name, _ = _model(stores, versions=3)
    for version in (1, 2, 3):
        registry.set_registered_model_alias(name, "production", version)
    registry.delete_model_version(name, 2)
    back = registry.rollback(name, "production")
    assert (back.from_version, back.to_version) == ("3", "1")
    assert registry.get_model_version_by_alias(name, "production").version == "1"


def test_rollback_after_the_alias_was_deleted_and_set_again(stores: Stores) -> None:
    _, registry = stores
    name, _ = _model(stores, versions=3)
    registry.set_registered_model_alias(name, "production", 1)
    registry.set_registered_model_alias(name, "production", 2)
    registry.delete_registered_model_alias(name, "production")
    registry.set_registered_model_alias(name, "production", 3)
    # Before its last move the alias pointed nowhere: there is nothing to roll back to.
    with pytest.raises(InvalidState):
        registry.rollback(name, "production")


# -- stages ------------------------------------------------------------------------------------
def test_transition_stage(stores: Stores) -> None:
    _, registry = stores
    name, _ = _model(stores, versions=1)
    staged = registry.transition_model_version_stage(
        name, 1, "staging", user_id="ann", reason="qa"
    )
    assert staged.current_stage == "Staging"
    assert registry.get_model_version(name, 1).current_stage == "Staging"
    produced = registry.transition_model_version_stage(name, "1", "PRODUCTION", user_id="bob")
    assert produced.current_stage == "Production"

    events = registry.get_model_history(name, kinds=["stage"])
    assert [(e.version, e.from_stage, e.to_stage, e.user_id) for e in events] == [
        ("1", "Staging", "Production", "bob"),
        ("1", "None", "Staging", "ann"),
    ]
    assert events[1].reason == "qa"


def test_archive_existing_versions(stores: Stores) -> None:
    _, registry = stores
    name, _ = _model(stores, versions=3)
    registry.transition_model_version_stage(name, 1, "Production")
    registry.transition_model_version_stage(name, 2, "Staging")
    before = registry.get_model_history(name, kinds=["stage"])[0].seq

    promoted = registry.transition_model_version_stage(
        name, 3, "Production", archive_existing_versions=True
    )

    assert promoted.current_stage == "Production"
    assert registry.get_model_version(name, 1).current_stage == "Archived"
    assert registry.get_model_version(name, 2).current_stage == "Staging"  # another stage
    assert [v.version for v in registry.get_latest_versions(name, ["Production"])] == ["3"]
    recorded = [e for e in registry.get_model_history(name, kinds=["stage"]) if e.seq > before]
    assert {(e.version, e.from_stage, e.to_stage) for e in recorded} == {
        ("3", "None", "Production"),
        ("1", "Production", "Archived"),
    }
    assert len(recorded) == 2


def test_bad_transitions(stores: Stores) -> None:
    _, registry = stores
    name, _ = _model(stores, versions=1)
    bad: list[tuple[Any, bool]] = [
        ("Prod", False),
        ("", False),
        (None, False),
        ("Archived", True),
        ("None", True),
    ]
    assert (
        _not_rejected(
            lambda case: registry.transition_model_version_stage(
                name, 1, case[0], archive_existing_versions=case[1]
            ),
            bad,
        )
        == []
    )
    assert registry.get_model_version(name, 1).current_stage == "None"
    assert list(registry.get_model_history(name, kinds=["stage"])) == []


# -- version files -----------------------------------------------------------------------------
def test_run_version_lists_and_streams_the_run_files(stores: Stores, tmp_path: Path) -> None:
    tracking, registry = stores
    run_id = _run_id(tracking)
    weights = bytes(range(256)) * 5000  # over 1 MB: several chunks
    (tmp_path / "weights.bin").write_bytes(weights)
    (tmp_path / "MLmodel").write_text("flavors: {}\n")
    (tmp_path / "notes.txt").write_text("not part of the model")
    tracking.upload_artifact(run_id, tmp_path / "weights.bin", "model/data/weights.bin")
    tracking.upload_artifact(run_id, tmp_path / "MLmodel", "model/MLmodel")
    tracking.upload_artifact(run_id, tmp_path / "notes.txt", "notes.txt")
    name = f"model-{_uid()}"
    registry.create_registered_model(name)
    registry.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)

    top = registry.list_version_artifacts(name, 1)
    assert [(f.path, f.is_dir) for f in top] == [("MLmodel", False), ("data", True)]
    inner = registry.list_version_artifacts(name, 1, "data")
    assert [(f.path, f.file_size) for f in inner] == [("data/weights.bin", len(weights))]
    assert b"".join(registry.iter_version_artifact(name, 1, "data/weights.bin")) == weights

    out = registry.download_version(name, 1, tmp_path / "out")
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "MLmodel",
        "data/weights.bin",
    ]
    assert (out / "data" / "weights.bin").read_bytes() == weights
    assert (out / "MLmodel").read_text() == "flavors: {}\n"


def test_registry_version_takes_uploads_until_ready(stores: Stores, tmp_path: Path) -> None:
    _, registry = stores
    name, _ = _model(stores)
    (tmp_path / "model.pkl").write_bytes(b"\x80\x04pickle")
    (tmp_path / "conda.yaml").write_text("name: env\n")
    pending = registry.create_model_version(
        name, "registry:", status=ModelVersionStatus.PENDING_REGISTRATION
    )
    assert pending.status == "PENDING_REGISTRATION"
    registry.upload_version_artifact(name, 1, tmp_path / "model.pkl", "model.pkl")
    registry.upload_version_artifact(name, 1, tmp_path / "conda.yaml", "env/conda.yaml")

    ready = registry.update_model_version(name, 1, status="READY", status_message="uploaded")
    assert (ready.status, ready.status_message) == ("READY", "uploaded")
    with pytest.raises(InvalidState):
        registry.upload_version_artifact(name, 1, tmp_path / "model.pkl", "late.pkl")
    with pytest.raises(InvalidState):  # a READY version does not go back to pending
        registry.update_model_version(name, 1, status="PENDING_REGISTRATION")

    assert [(f.path, f.is_dir) for f in registry.list_version_artifacts(name, 1)] == [
        ("env", True),
        ("model.pkl", False),
    ]
    assert b"".join(registry.iter_version_artifact(name, 1, "model.pkl")) == b"\x80\x04pickle"
    out = registry.download_version(name, 1, tmp_path / "out")
    assert (out / "model.pkl").read_bytes() == b"\x80\x04pickle"
    assert (out / "env" / "conda.yaml").read_text() == "name: env\n"
    assert not (out / "late.pkl").exists()


def test_only_pending_registry_versions_take_uploads(stores: Stores, tmp_path: Path) -> None:
    _, registry = stores
    name, _ = _model(stores, versions=1)  # a runs:/ version
    registry.create_model_version(name, "registry:")  # READY from the start
    (tmp_path / "f.bin").write_bytes(b"x")
    for version in (1, 2):
        with pytest.raises(InvalidState):
            registry.upload_version_artifact(name, version, tmp_path / "f.bin", "f.bin")
    pending = registry.create_model_version(name, "registry:", status="PENDING_REGISTRATION")
    with pytest.raises(InvalidInput):
        registry.upload_version_artifact(name, pending.version, tmp_path / "f.bin", "../up.bin")


def test_delete_a_registry_version_with_files(stores: Stores, tmp_path: Path) -> None:
    _, registry = stores
    name, _ = _model(stores)
    registry.create_model_version(name, "registry:", status="PENDING_REGISTRATION")
    (tmp_path / "model.pkl").write_bytes(b"weights")
    registry.upload_version_artifact(name, 1, tmp_path / "model.pkl", "model.pkl")
    registry.update_model_version(name, 1, status="READY")

    registry.delete_model_version(name, 1)

    with pytest.raises(NotFound):
        registry.get_model_version(name, 1)


# -- workspaces and backends -------------------------------------------------------------------
def test_unknown_workspace(stores: Stores) -> None:
    with pytest.raises(NotFound, match="workspace"):
        stores[1].for_workspace("nowhere").create_registered_model(f"model-{_uid()}")


def test_sqlite_and_postgres_do_not_share_data(tmp_path: Path, pg_uri: str) -> None:
    from loopml.registry._sql import SqlRegistryStore

    lite = SqlRegistryStore(f"sqlite:///{tmp_path / 'lite.db'}", str(tmp_path / "lite"))
    pg = SqlRegistryStore(pg_uri, str(tmp_path / "pg"))
    try:
        shared, only_lite = f"model-{_uid()}", f"model-{_uid()}"
        lite.create_registered_model(shared, description="lite")
        lite.create_registered_model(only_lite)
        pg.create_registered_model(shared, description="pg")  # the name is free there
        assert {m.name for m in lite.search_registered_models()} == {shared, only_lite}
        assert [m.name for m in pg.search_registered_models()] == [shared]
        assert pg.get_registered_model(shared).description == "pg"
        with pytest.raises(NotFound):
            pg.get_registered_model(only_lite)
    finally:
        lite.close()
        pg.close()


# -- review findings: each would have failed before its fix ------------------------------------
def test_rollback_after_deleting_a_middle_version_then_stops(stores: Stores) -> None:
    _, registry = stores
    name, _ = _model(stores, versions=3)
    for version in (1, 2, 3):
        registry.set_registered_model_alias(name, "production", version)
    registry.delete_model_version(name, 2)
    assert registry.rollback(name, "production").to_version == "1"
    with pytest.raises(InvalidState, match="no earlier version"):
        registry.rollback(name, "production")


def test_dot_names_are_refused(stores: Stores) -> None:
    _, registry = stores
    for bad in (".", ".."):
        with pytest.raises(InvalidInput, match="'.' or '..'"):
            registry.create_registered_model(bad)


def test_history_records_the_calling_user(stores: Stores) -> None:
    import getpass

    _, registry = stores
    name, _ = _model(stores, versions=1)
    registry.set_registered_model_alias(name, "production", 1)
    registry.set_registered_model_alias(name, "staging", 1, user_id="ci-bot")
    by_alias = {e.alias: e.user_id for e in registry.get_model_history(name, kinds=["alias"])}
    assert by_alias == {"production": getpass.getuser(), "staging": "ci-bot"}
    with pytest.raises(InvalidInput, match="user_id"):
        registry.set_registered_model_alias(name, "canary", 1, user_id="u" * 300)


def test_a_pending_version_gets_no_alias_and_is_announced_when_ready(
    stores: Stores, tmp_path: Path
) -> None:
    _, registry = stores
    name, _ = _model(stores)
    pending = registry.create_model_version(
        name, "registry:", status=ModelVersionStatus.PENDING_REGISTRATION
    )
    with pytest.raises(InvalidState, match="READY"):
        registry.set_registered_model_alias(name, "production", pending.version)
    assert registry.get_model_history(name, kinds=["version_created"]) == []
    registry.update_model_version(name, pending.version, status=ModelVersionStatus.READY)
    (created,) = registry.get_model_history(name, kinds=["version_created"])
    assert created.version == pending.version
    registry.set_registered_model_alias(name, "production", pending.version)


def test_oversized_filters_are_invalid_input(stores: Stores) -> None:
    _, registry = stores
    name, _ = _model(stores, versions=2)
    assert len(registry.search_model_versions(filter_string="version_number >= 2")) == 1
    for text in (
        "version_number > " + "9" * 5000,
        " AND ".join([f"name = '{name}'"] * 300),
    ):
        with pytest.raises(InvalidInput):
            registry.search_model_versions(filter_string=text)
