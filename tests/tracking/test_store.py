"""The TrackingStore contract, run on SQLite, PostgreSQL and REST (a real server)."""

from __future__ import annotations

import math
import uuid
from pathlib import Path
from typing import Any

import pytest

from loopml.errors import (
    AlreadyExists,
    ArtifactNotFound,
    ExperimentNotFound,
    InvalidInput,
    InvalidState,
    NotFound,
    RunNotFound,
    StoreError,
)
from loopml.tracking import Metric, Param, RunBatch, RunStatus, RunTag, TrackingStore


def _exp(store: TrackingStore, name: str | None = None) -> str:
    return store.create_experiment(name or f"exp-{uuid.uuid4().hex[:8]}")


# -- experiments -------------------------------------------------------------------------------
def test_create_and_get_experiment(tracking_store: TrackingStore) -> None:
    eid = tracking_store.create_experiment("alpha", tags={"team": "ml"})
    exp = tracking_store.get_experiment(eid)
    assert exp.name == "alpha"
    assert exp.tags == {"team": "ml"}
    assert exp.lifecycle_stage == "active"
    assert exp.artifact_location.endswith(f"/{eid}")
    assert tracking_store.find_experiment_by_name("alpha") == exp
    assert tracking_store.find_experiment_by_name("nope") is None


def test_experiment_name_is_unique(tracking_store: TrackingStore) -> None:
    tracking_store.create_experiment("dup")
    with pytest.raises(AlreadyExists, match="dup"):
        tracking_store.create_experiment("dup")


@pytest.mark.parametrize("bad", ["", "   ", "x" * 501])
def test_experiment_name_is_validated(tracking_store: TrackingStore, bad: str) -> None:
    with pytest.raises(InvalidInput):
        tracking_store.create_experiment(bad)


def test_missing_experiment(tracking_store: TrackingStore) -> None:
    with pytest.raises(ExperimentNotFound):
        tracking_store.get_experiment("987654")
    with pytest.raises(InvalidInput):
        tracking_store.get_experiment("not-a-number")


def test_rename_delete_restore_purge(tracking_store: TrackingStore) -> None:
    eid = tracking_store.create_experiment("old")
    tracking_store.rename_experiment(eid, "new")
    assert tracking_store.get_experiment(eid).name == "new"
    other = tracking_store.create_experiment("other")
    with pytest.raises(AlreadyExists):
        tracking_store.rename_experiment(other, "new")

    run = tracking_store.create_run(eid)
    tracking_store.delete_experiment(eid)
    assert tracking_store.get_experiment(eid).lifecycle_stage == "deleted"
    assert tracking_store.get_run(run.info.run_id).info.lifecycle_stage == "deleted"
    with pytest.raises(InvalidState):
        tracking_store.delete_experiment(eid)
    with pytest.raises(InvalidState):
        tracking_store.create_run(eid)
    # The name stays taken while the experiment can still be restored...
    with pytest.raises(AlreadyExists, match="purge"):
        tracking_store.create_experiment("new")
    tracking_store.restore_experiment(eid)
    assert tracking_store.get_run(run.info.run_id).info.lifecycle_stage == "active"

    with pytest.raises(InvalidState):
        tracking_store.purge_experiment(eid)  # only deleted experiments can be purged
    tracking_store.delete_experiment(eid)
    tracking_store.purge_experiment(eid)
    with pytest.raises(ExperimentNotFound):
        tracking_store.get_experiment(eid)
    with pytest.raises(RunNotFound):
        tracking_store.get_run(run.info.run_id)
    # ...and is free again once it is purged.
    assert tracking_store.create_experiment("new") != eid


def test_restore_keeps_runs_deleted_before(tracking_store: TrackingStore) -> None:
    eid = _exp(tracking_store)
    kept = tracking_store.create_run(eid).info.run_id
    trashed = tracking_store.create_run(eid).info.run_id
    tracking_store.delete_run(trashed)
    tracking_store.delete_experiment(eid)
    tracking_store.restore_experiment(eid)
    assert tracking_store.get_run(kept).info.lifecycle_stage == "active"
    assert tracking_store.get_run(trashed).info.lifecycle_stage == "deleted"


def test_search_experiments_pages(tracking_store: TrackingStore) -> None:
    ids = [tracking_store.create_experiment(f"page-{i}") for i in range(5)]
    tracking_store.delete_experiment(ids[0])
    first = tracking_store.search_experiments(max_results=2)
    assert len(first) == 2 and first.token
    second = tracking_store.search_experiments(max_results=2, page_token=first.token)
    names = [e.name for e in [*first, *second]]
    assert names == [f"page-{i}" for i in range(1, 5)]
    assert second.token is None
    deleted = tracking_store.search_experiments(view_type="DELETED_ONLY")
    assert [e.name for e in deleted] == ["page-0"]
    assert len(tracking_store.search_experiments(view_type="ALL")) == 5
    found = tracking_store.search_experiments(filter_string="name ILIKE 'PAGE-3%'")
    assert [e.name for e in found] == ["page-3"]
    with pytest.raises(InvalidInput):
        tracking_store.search_experiments(view_type="SOME")
    with pytest.raises(InvalidInput):
        tracking_store.search_experiments(page_token="garbage!")
    with pytest.raises(InvalidInput):
        tracking_store.search_experiments(max_results=0)


def test_experiment_tags(tracking_store: TrackingStore) -> None:
    eid = _exp(tracking_store)
    tracking_store.set_experiment_tag(eid, "k", "v1")
    tracking_store.set_experiment_tag(eid, "k", "v2")
    assert tracking_store.get_experiment(eid).tags == {"k": "v2"}


def test_default_experiment(tracking_store: TrackingStore) -> None:
    first = tracking_store.get_default_experiment_id()
    assert first == tracking_store.get_default_experiment_id() == "0"
    assert tracking_store.get_experiment(first).name == "Default"


def test_unknown_workspace(tracking_store: TrackingStore) -> None:
    with pytest.raises(NotFound, match="workspace"):
        tracking_store.for_workspace("nowhere").create_experiment("x")


# -- runs --------------------------------------------------------------------------------------
def test_create_and_get_run(tracking_store: TrackingStore) -> None:
    eid = _exp(tracking_store)
    run = tracking_store.create_run(eid, run_name="first", tags={"a": "b"}, user_id="ann")
    got = tracking_store.get_run(run.info.run_id)
    assert got.info.run_name == "first"
    assert got.info.status == RunStatus.RUNNING
    assert got.info.user_id == "ann"
    assert got.info.end_time is None
    assert got.data.tags["a"] == "b"
    assert got.data.tags["mlflow.runName"] == "first"
    assert got.info.artifact_uri.endswith(f"{run.info.run_id}/artifacts")


def test_run_gets_a_name_when_none_is_given(tracking_store: TrackingStore) -> None:
    run = tracking_store.create_run(_exp(tracking_store))
    assert run.info.run_name.count("-") == 2


def test_nested_run_records_parent(tracking_store: TrackingStore) -> None:
    eid = _exp(tracking_store)
    parent = tracking_store.create_run(eid).info.run_id
    child = tracking_store.create_run(eid, parent_run_id=parent)
    assert child.info.parent_run_id == parent
    assert tracking_store.get_run(child.info.run_id).data.tags["mlflow.parentRunId"] == parent
    with pytest.raises(RunNotFound):
        tracking_store.create_run(eid, parent_run_id=uuid.uuid4().hex)


def test_update_run(tracking_store: TrackingStore) -> None:
    run_id = tracking_store.create_run(_exp(tracking_store)).info.run_id
    info = tracking_store.update_run(run_id, status="FINISHED", end_time=123, run_name="renamed")
    assert (info.status, info.end_time, info.run_name) == ("FINISHED", 123, "renamed")
    assert tracking_store.get_run(run_id).data.tags["mlflow.runName"] == "renamed"
    with pytest.raises(InvalidInput, match="status"):
        tracking_store.update_run(run_id, status="DONE")


@pytest.mark.parametrize("bad_id", ["", "x" * 32, "123", "../../etc/passwd"])
def test_bad_run_ids(tracking_store: TrackingStore, bad_id: str) -> None:
    with pytest.raises((InvalidInput, NotFound)):
        tracking_store.get_run(bad_id)


def test_missing_run(tracking_store: TrackingStore) -> None:
    with pytest.raises(RunNotFound):
        tracking_store.get_run(uuid.uuid4().hex)
    with pytest.raises(RunNotFound):
        tracking_store.log_batch(uuid.uuid4().hex, metrics=[Metric("m", 1.0, 1, 0)])


def test_delete_and_restore_run(tracking_store: TrackingStore) -> None:
    run_id = tracking_store.create_run(_exp(tracking_store)).info.run_id
    tracking_store.delete_run(run_id)
    assert tracking_store.get_run(run_id).info.lifecycle_stage == "deleted"
    with pytest.raises(InvalidState):
        tracking_store.log_batch(run_id, tags=[RunTag("t", "v")])
    tracking_store.restore_run(run_id)
    tracking_store.log_batch(run_id, tags=[RunTag("t", "v")])
    with pytest.raises(InvalidState):
        tracking_store.restore_run(run_id)


# -- params, metrics, tags ---------------------------------------------------------------------
def test_params_are_immutable(tracking_store: TrackingStore) -> None:
    run_id = tracking_store.create_run(_exp(tracking_store)).info.run_id
    tracking_store.log_batch(run_id, params=[Param("lr", "0.1"), Param("depth", "3")])
    tracking_store.log_batch(run_id, params=[Param("lr", "0.1")])  # the same value is fine
    with pytest.raises(InvalidInput, match="lr"):
        tracking_store.log_batch(
            run_id, params=[Param("lr", "0.2")], metrics=[Metric("m", 1.0, 1, 0)]
        )
    run = tracking_store.get_run(run_id)
    assert run.data.params == {"lr": "0.1", "depth": "3"}
    assert run.data.metrics == {}  # the failed batch wrote nothing at all
    with pytest.raises(InvalidInput, match="twice"):
        tracking_store.log_batch(run_id, params=[Param("x", "1"), Param("x", "2")])


def test_metric_history_and_latest(tracking_store: TrackingStore) -> None:
    run_id = tracking_store.create_run(_exp(tracking_store)).info.run_id
    points = [Metric("loss", 1.0 / (s + 1), 1000 + s, s) for s in range(50)]
    tracking_store.log_batch(run_id, metrics=points[25:])
    tracking_store.log_batch(run_id, metrics=points[:25])  # out of order on purpose
    history = tracking_store.get_metric_history(run_id, "loss")
    assert history == points
    # Latest is the highest step, not the last logged.
    assert tracking_store.get_run(run_id).data.metrics["loss"] == pytest.approx(1 / 50)
    # A same-step point logged later replaces the latest value.
    tracking_store.log_batch(run_id, metrics=[Metric("loss", 7.0, 1049, 49)])
    assert tracking_store.get_run(run_id).data.metrics["loss"] == 7.0
    assert tracking_store.get_metric_history(run_id, "none") == []


def test_duplicate_points_are_kept(tracking_store: TrackingStore) -> None:
    run_id = tracking_store.create_run(_exp(tracking_store)).info.run_id
    same = [Metric("m", 1.0, 5, 0)] * 3
    tracking_store.log_batch(run_id, metrics=same)
    assert len(tracking_store.get_metric_history(run_id, "m")) == 3


def test_non_finite_metric_values(tracking_store: TrackingStore) -> None:
    run_id = tracking_store.create_run(_exp(tracking_store)).info.run_id
    values = [math.nan, math.inf, -math.inf, 0.0, -1.5e300]
    tracking_store.log_batch(run_id, metrics=[Metric("v", v, 1, s) for s, v in enumerate(values)])
    got = [m.value for m in tracking_store.get_metric_history(run_id, "v")]
    assert math.isnan(got[0]) and got[1:] == values[1:]
    tracking_store.log_batch(run_id, metrics=[Metric("n", math.nan, 1, 0)])
    assert math.isnan(tracking_store.get_run(run_id).data.metrics["n"])


@pytest.mark.parametrize(
    "metric",
    [
        Metric("", 1.0, 1, 0),
        Metric("bad key!", 1.0, 1, 0),
        Metric("../escape", 1.0, 1, 0),
        Metric("k", "high", 1, 0),  # type: ignore[arg-type]
        Metric("k", 1.0, 1, 1.5),  # type: ignore[arg-type]
        Metric("x" * 251, 1.0, 1, 0),
    ],
)
def test_bad_metrics_are_rejected(tracking_store: TrackingStore, metric: Metric) -> None:
    run_id = tracking_store.create_run(_exp(tracking_store)).info.run_id
    with pytest.raises(InvalidInput):
        tracking_store.log_batch(run_id, metrics=[metric])


def test_param_value_length_limit(tracking_store: TrackingStore) -> None:
    run_id = tracking_store.create_run(_exp(tracking_store)).info.run_id
    tracking_store.log_batch(run_id, params=[Param("ok", "x" * 6000)])
    with pytest.raises(InvalidInput, match="6000"):
        tracking_store.log_batch(run_id, params=[Param("long", "x" * 6001)])


def test_finished_run_refuses_metrics_but_takes_tags(tracking_store: TrackingStore) -> None:
    run_id = tracking_store.create_run(_exp(tracking_store)).info.run_id
    tracking_store.update_run(run_id, status="FINISHED")
    with pytest.raises(InvalidState, match="FINISHED"):
        tracking_store.log_batch(run_id, metrics=[Metric("m", 1.0, 1, 0)])
    with pytest.raises(InvalidState):
        tracking_store.log_batch(run_id, params=[Param("p", "1")])
    tracking_store.log_batch(run_id, tags=[RunTag("reviewed", "yes")])
    assert tracking_store.get_run(run_id).data.tags["reviewed"] == "yes"


def test_tags_overwrite_and_delete(tracking_store: TrackingStore) -> None:
    run_id = tracking_store.create_run(_exp(tracking_store)).info.run_id
    tracking_store.log_batch(run_id, tags=[RunTag("t", "1"), RunTag("t", "2")])
    assert tracking_store.get_run(run_id).data.tags["t"] == "2"
    tracking_store.delete_tag(run_id, "t")
    assert "t" not in tracking_store.get_run(run_id).data.tags
    with pytest.raises(NotFound):
        tracking_store.delete_tag(run_id, "t")


def test_write_batches_is_atomic_across_runs(tracking_store: TrackingStore) -> None:
    eid = _exp(tracking_store)
    good = tracking_store.create_run(eid).info.run_id
    done = tracking_store.create_run(eid).info.run_id
    tracking_store.update_run(done, status="FINISHED")
    with pytest.raises(InvalidState):
        tracking_store.write_batches(
            [
                RunBatch(good, metrics=[Metric("m", 1.0, 1, 0)]),
                RunBatch(done, metrics=[Metric("m", 1.0, 1, 0)]),
            ]
        )
    assert tracking_store.get_metric_history(good, "m") == []


def test_batch_end_sets_status(tracking_store: TrackingStore) -> None:
    run_id = tracking_store.create_run(_exp(tracking_store)).info.run_id
    tracking_store.write_batches(
        [RunBatch(run_id, metrics=[Metric("m", 2.0, 1, 0)], status="FAILED", end_time=99)]
    )
    info = tracking_store.get_run(run_id).info
    assert (info.status, info.end_time) == ("FAILED", 99)


# -- search ------------------------------------------------------------------------------------
def _populate(store: TrackingStore, n: int = 12) -> tuple[str, list[str]]:
    eid = _exp(store)
    ids = []
    for i in range(n):
        run_id = store.create_run(eid, start_time=1000 + i, run_name=f"run-{i}").info.run_id
        store.log_batch(
            run_id,
            metrics=[Metric("acc", i / n, 1, 0)],
            params=[Param("model", "rf" if i % 2 else "lr")],
            tags=[RunTag("team", "a" if i < 6 else "b")],
        )
        ids.append(run_id)
    return eid, ids


def test_search_runs_filter_and_order(tracking_store: TrackingStore) -> None:
    eid, ids = _populate(tracking_store)
    found = tracking_store.search_runs(
        [eid],
        filter_string="metrics.acc > 0.3 and params.model = 'rf' and tags.team != 'a'",
        order_by=["metrics.acc DESC"],
    )
    assert [r.info.run_id for r in found] == [ids[11], ids[9], ids[7]]
    assert found[0].data.params == {"model": "rf"}
    default_order = tracking_store.search_runs([eid])
    assert [r.info.run_id for r in default_order] == ids[::-1]  # newest first


def test_search_runs_pages(tracking_store: TrackingStore) -> None:
    eid, ids = _populate(tracking_store)
    seen: list[str] = []
    token = None
    while True:
        page = tracking_store.search_runs(
            [eid], order_by=["attributes.start_time ASC"], max_results=5, page_token=token
        )
        seen.extend(r.info.run_id for r in page)
        token = page.token
        if token is None:
            break
    assert seen == ids


def test_search_runs_view_type(tracking_store: TrackingStore) -> None:
    eid, ids = _populate(tracking_store, 3)
    tracking_store.delete_run(ids[0])
    assert len(tracking_store.search_runs([eid])) == 2
    deleted = tracking_store.search_runs([eid], view_type="DELETED_ONLY")
    assert [r.info.run_id for r in deleted] == [ids[0]]


@pytest.mark.parametrize(
    ("filter_string", "position"),
    [
        ("metrics.acc >", "13"),
        ("metrics.acc > 'high'", "14"),
        ("status = 'FINISHED'", "0"),
        ("params.model = 'rf' and", "23"),
    ],
)
def test_search_runs_bad_filter(
    tracking_store: TrackingStore, filter_string: str, position: str
) -> None:
    eid = _exp(tracking_store)
    with pytest.raises(InvalidInput, match=f"position {position}"):
        tracking_store.search_runs([eid], filter_string=filter_string)


def test_search_runs_bad_arguments(tracking_store: TrackingStore) -> None:
    eid = _exp(tracking_store)
    with pytest.raises(InvalidInput):
        tracking_store.search_runs([eid], max_results=0)
    with pytest.raises(InvalidInput):
        tracking_store.search_runs([eid], page_token="nope")
    with pytest.raises(InvalidInput):
        tracking_store.search_runs([eid], order_by=["metrics.acc SIDEWAYS"])


# -- artifacts ---------------------------------------------------------------------------------
def test_artifacts_round_trip(tracking_store: TrackingStore, tmp_path: Path) -> None:
    run_id = tracking_store.create_run(_exp(tracking_store)).info.run_id
    src = tmp_path / "src.bin"
    payload = bytes(range(256)) * 9000  # ~2.3 MB: several chunks
    src.write_bytes(payload)
    tracking_store.upload_artifact(run_id, src, "data/blob.bin")
    (tmp_path / "note.txt").write_text("hi")
    tracking_store.upload_artifact(run_id, tmp_path / "note.txt", "note.txt")
    top = tracking_store.list_artifacts(run_id)
    assert [(f.path, f.is_dir) for f in top] == [("data", True), ("note.txt", False)]
    inner = tracking_store.list_artifacts(run_id, "data")
    assert [(f.path, f.file_size) for f in inner] == [("data/blob.bin", len(payload))]
    assert b"".join(tracking_store.iter_artifact(run_id, "data/blob.bin")) == payload
    out = tracking_store.download_artifacts(run_id, "", tmp_path / "out")
    assert (out / "data" / "blob.bin").read_bytes() == payload
    assert (out / "note.txt").read_text() == "hi"
    tracking_store.delete_artifact(run_id, "data")
    assert [f.path for f in tracking_store.list_artifacts(run_id)] == ["note.txt"]


def test_missing_artifact(tracking_store: TrackingStore) -> None:
    run_id = tracking_store.create_run(_exp(tracking_store)).info.run_id
    with pytest.raises(ArtifactNotFound):
        b"".join(tracking_store.iter_artifact(run_id, "nope.txt"))
    assert tracking_store.list_artifacts(run_id, "nothing-here") == []


@pytest.mark.parametrize("bad", ["../outside.txt", "a/../../b", "/etc/passwd"])
def test_artifact_paths_cannot_escape(
    tracking_store: TrackingStore, tmp_path: Path, bad: str
) -> None:
    run_id = tracking_store.create_run(_exp(tracking_store)).info.run_id
    src = tmp_path / "f.txt"
    src.write_text("x")
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises((InvalidInput, NotFound)):
        tracking_store.upload_artifact(run_id, src, bad)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize("when", [2**70, -(2**64)])
def test_out_of_range_times_are_rejected(tracking_store: TrackingStore, when: int) -> None:
    eid = _exp(tracking_store)
    with pytest.raises(InvalidInput, match="out of range"):
        tracking_store.create_run(eid, start_time=when)
    run_id = tracking_store.create_run(eid).info.run_id
    with pytest.raises(InvalidInput, match="out of range"):
        tracking_store.log_batch(run_id, metrics=[Metric("m", 1.0, when, 0)])
    with pytest.raises(InvalidInput, match="out of range"):
        tracking_store.update_run(run_id, status="FINISHED", end_time=when)


def test_purge_removes_artifacts_and_never_reuses_the_id(
    tracking_store: TrackingStore, tmp_path: Path
) -> None:
    eid = tracking_store.create_experiment("to-purge")
    run_id = tracking_store.create_run(eid).info.run_id
    src = tmp_path / "a.txt"
    src.write_text("x")
    tracking_store.upload_artifact(run_id, src, "a.txt")
    tracking_store.delete_experiment(eid)
    tracking_store.purge_experiment(eid)
    again = tracking_store.create_experiment("to-purge")
    assert again != eid
    fresh = tracking_store.create_run(again).info.run_id
    assert tracking_store.list_artifacts(fresh) == []


def test_purge_spares_a_location_the_user_chose(tmp_path: Path) -> None:
    from loopml.tracking import SqlTrackingStore

    store = SqlTrackingStore(f"sqlite:///{tmp_path / 's.db'}", str(tmp_path / "root"))
    mine = tmp_path / "mine"
    eid = store.create_experiment("custom", artifact_location=str(mine))
    run_id = store.create_run(eid).info.run_id
    (tmp_path / "f.txt").write_text("keep me")
    store.upload_artifact(run_id, tmp_path / "f.txt", "f.txt")
    store.delete_experiment(eid)
    store.purge_experiment(eid)
    assert (mine / run_id / "artifacts" / "f.txt").read_text() == "keep me"


def test_server_confines_artifact_locations(server_factory: Any, tmp_path: Path) -> None:
    from loopml.tracking import RestTrackingStore

    root = tmp_path / "srv-artifacts"
    server = server_factory(artifact_uri=str(root))
    store = RestTrackingStore(server.url)
    try:
        for outside in (str(tmp_path / "elsewhere"), f"{root}/../escape", "s3://someone/else"):
            with pytest.raises(InvalidInput, match="outside"):
                store.create_experiment(f"e-{uuid.uuid4().hex[:6]}", artifact_location=outside)
        with pytest.raises(InvalidInput):
            store.create_experiment("nul", artifact_location=f"{root}/a\x00b")
        inside = store.create_experiment("inside", artifact_location=str(root / "team-a"))
        assert store.get_experiment(inside).artifact_location == str(root / "team-a")
    finally:
        store.close()


def test_download_refuses_a_listing_that_escapes(tmp_path: Path) -> None:
    from loopml.store import FileInfo
    from loopml.tracking import SqlTrackingStore

    class Hostile(SqlTrackingStore):
        def list_artifacts(self, run_id: str, path: str | None = None) -> list[FileInfo]:
            return [FileInfo("../../escaped.txt", False, 1)]

    store = Hostile(f"sqlite:///{tmp_path / 'h.db'}", str(tmp_path / "root"))
    run_id = store.create_run(store.get_default_experiment_id()).info.run_id
    with pytest.raises((InvalidInput, StoreError)):
        store.download_artifacts(run_id, "", tmp_path / "out" / "deep")
    assert not (tmp_path / "escaped.txt").exists()
    assert not (tmp_path / "out" / "escaped.txt").exists()


def test_search_experiments_filter_and_order(tracking_store: TrackingStore) -> None:
    a = tracking_store.create_experiment("alpha-1", tags={"team": "vision"})
    b = tracking_store.create_experiment("Alpha-2", tags={"team": "nlp"})
    c = tracking_store.create_experiment("beta", tags={"team": "vision"})

    def names(**kwargs: Any) -> list[str]:
        return [e.name for e in tracking_store.search_experiments(**kwargs)]

    assert names(filter_string="name LIKE 'alpha%'") == ["alpha-1"]
    assert names(filter_string="name ILIKE 'alpha%'") == ["alpha-1", "Alpha-2"]
    assert names(filter_string="tags.team = 'vision'") == ["alpha-1", "beta"]
    assert names(filter_string="tags.team = 'vision' AND name != 'beta'") == ["alpha-1"]
    created = tracking_store.get_experiment(b).creation_time
    assert set(names(filter_string=f"creation_time >= {created}")) >= {"Alpha-2", "beta"}
    assert names(order_by=["name DESC"])[:3] == ["beta", "Alpha-2", "alpha-1"]
    assert names(filter_string="attribute.name = 'beta'", order_by=["experiment_id"]) == ["beta"]
    assert {a, b, c} <= {e.experiment_id for e in tracking_store.search_experiments()}
    for bad in ("name > 'x'", "colour = 'red'", "name = 'a' OR name = 'b'", "creation_time = 'x'"):
        with pytest.raises(InvalidInput, match="experiment filter"):
            tracking_store.search_experiments(filter_string=bad)
    with pytest.raises(InvalidInput, match="order_by"):
        tracking_store.search_experiments(order_by=["colour"])


def test_run_keys_and_experiment_stats(tracking_store: TrackingStore) -> None:
    from loopml.tracking import SqlTrackingStore

    if not isinstance(tracking_store, SqlTrackingStore):
        pytest.skip("a SQL store's helpers for the web UI (served over HTTP by the server)")
    eid, ids = _populate(tracking_store, n=4)
    other = _exp(tracking_store)
    run_b = tracking_store.create_run(other, start_time=5000).info.run_id
    tracking_store.log_batch(
        run_b, metrics=[Metric("b_only", 1.0, 1, 0)], params=[Param("b_param", "1")]
    )
    gone = tracking_store.create_run(eid, start_time=9000).info.run_id
    tracking_store.log_batch(gone, metrics=[Metric("deleted_only", 1.0, 1, 0)])
    tracking_store.delete_run(gone)
    keys = tracking_store.run_keys([eid])
    assert keys["metrics"] == ["acc"]
    assert keys["params"] == ["model"]
    assert "team" in keys["tags"] and "b_param" not in keys["params"]
    assert tracking_store.run_keys([eid, other])["metrics"] == ["acc", "b_only"]
    # past a few hundred distinct keys in the database, one set-based query: the same answer
    import loopml.tracking._sql as sql_store

    many = pytest.MonkeyPatch()
    many.setattr(sql_store, "_KEY_PROBES", 1)
    try:
        assert tracking_store.run_keys([eid]) == keys
    finally:
        many.undo()
    stats = tracking_store.experiment_stats([eid, other])
    assert stats[eid] == {"runs": 4, "last_run_time": 1003}  # the deleted run is not counted
    assert stats[other] == {"runs": 1, "last_run_time": 5000}
