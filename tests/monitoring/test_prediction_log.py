"""The prediction log: writes off the request path, partitions, filters, bounds, failures, S3."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

import loopml.monitoring as monitoring
from loopml.config import reset_settings
from loopml.errors import InvalidInput, InvalidState, StoreError
from loopml.monitoring import PredictionLog, expand_inputs, read_predictions, summarize

# Two instants one second either side of midnight UTC: two date partitions.
LATE = datetime(2024, 3, 1, 23, 59, 59, tzinfo=UTC).timestamp()
EARLY = datetime(2024, 3, 2, 0, 0, 1, tzinfo=UTC).timestamp()
NEVER = 3600.0  # a flush interval no test waits for

COLUMNS = [
    "prediction_id",
    "request_id",
    "row_index",
    "time",
    "deployment",
    "variant",
    "model_name",
    "model_version",
    "unit_id",
    "inputs",
    "outputs",
    "latency_ms",
    "status",
    "error",
]


@pytest.fixture
def log_factory(tmp_path: Path) -> Iterator[Callable[..., PredictionLog]]:
    """Makes prediction logs (default folder under tmp_path) and closes them after the test."""
    made: list[PredictionLog] = []

    def make(uri: Any = None, **kwargs: Any) -> PredictionLog:
        kwargs.setdefault("flush_interval", NEVER)
        log = PredictionLog(str(tmp_path / "log") if uri is None else uri, **kwargs)
        made.append(log)
        return log

    yield make
    for log in made:
        log.close()


def append(log: PredictionLog, **overrides: Any) -> str:
    """Append one request with sensible defaults."""
    args: dict[str, Any] = {
        "deployment": "fraud",
        "variant": "a",
        "model_name": "fraud-model",
        "model_version": "1",
        "inputs": {"x": 1.0},
        "outputs": 0.5,
        "latency_ms": 3.0,
    }
    args.update(overrides)
    return log.append(**args)


def wait_until(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll ``predicate`` until it holds; fail (without asserting any timing) past a deadline."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.01)


def data_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_public_surface_is_pinned() -> None:
    assert monitoring.__all__ == [
        "MAX_OUTCOMES_PER_CALL",
        "AlertEngine",
        "AlertEvent",
        "AlertRule",
        "ColumnDrift",
        "DriftReport",
        "Monitor",
        "PredictionLog",
        "QualityReport",
        "ReferenceProfile",
        "RuleStatus",
        "SqlMonitorStore",
        "check",
        "detect_drift",
        "expand_inputs",
        "get_monitor",
        "log_outcome",
        "log_outcomes",
        "parse_duration",
        "profile_reference",
        "quality",
        "read_predictions",
        "register_action",
        "register_notifier",
        "render_report",
        "report_data",
        "save_report",
        "summarize",
    ]


def test_append_and_read_back(log_factory: Callable[..., PredictionLog], tmp_path: Path) -> None:
    log = log_factory()
    request_id = log.append(
        deployment="fraud",
        variant="a",
        model_name="fraud-model",
        model_version=7,
        inputs={"amount": np.float32(12.5), "country": "FR", "n": np.int64(3)},
        outputs={"label": 1, "proba": np.array([0.25, 0.75])},
        latency_ms=4.5,
        unit_id="user-1",
        time=LATE,
    )
    assert log.pending == 1
    log.flush()
    assert (log.pending, log.written, log.dropped) == (0, 1, 0)

    df = read_predictions(tmp_path / "log")
    assert list(df.columns) == COLUMNS
    row = df.iloc[0]
    assert row["prediction_id"] == row["request_id"] == request_id
    assert row["row_index"] == 0
    assert row["time"] == pd.Timestamp(LATE, unit="s", tz="UTC")
    assert (row["deployment"], row["variant"], row["model_name"]) == ("fraud", "a", "fraud-model")
    assert (row["model_version"], row["unit_id"], row["status"]) == ("7", "user-1", "ok")
    assert pd.isna(row["error"])
    assert orjson.loads(row["inputs"]) == {"amount": 12.5, "country": "FR", "n": 3}
    assert orjson.loads(row["outputs"]) == {"label": 1, "proba": [0.25, 0.75]}
    assert row["latency_ms"] == 4.5


def test_one_row_per_instance(log_factory: Callable[..., PredictionLog], tmp_path: Path) -> None:
    log = log_factory()
    batch = append(
        log,
        inputs=[{"x": 1}, {"x": 2}, {"x": 3}],
        outputs=np.array([[0.1, 0.9], [0.2, 0.8], [0.3, 0.7]]),
        prediction_id="req-1",
        time=LATE,
    )
    failed = append(
        log, inputs=[], outputs=None, status="error", error="bad payload", time=LATE + 0.5
    )
    assert batch == "req-1"
    log.close()

    df = read_predictions(tmp_path / "log")
    assert df["prediction_id"].tolist() == ["req-1:0", "req-1:1", "req-1:2", failed]
    assert df["request_id"].tolist() == ["req-1"] * 3 + [failed]
    assert df["row_index"].tolist() == [0, 1, 2, 0]
    assert [orjson.loads(s) for s in df["outputs"][:3]] == [[0.1, 0.9], [0.2, 0.8], [0.3, 0.7]]
    # A request without instances (one that failed to parse, say) is still one row.
    assert pd.isna(df["inputs"].iloc[3]) and pd.isna(df["outputs"].iloc[3])
    assert (df["status"].iloc[3], df["error"].iloc[3]) == ("error", "bad payload")
    assert expand_inputs(df)["x"].tolist()[:3] == [1, 2, 3]


def test_append_rejects_misaligned_input(log_factory: Callable[..., PredictionLog]) -> None:
    log = log_factory()
    with pytest.raises(InvalidInput, match="one per input instance"):
        append(log, inputs=[{"x": 1}, {"x": 2}], outputs=[0.1])
    with pytest.raises(InvalidInput, match="one per input instance"):
        append(log, inputs=[{"x": 1}], outputs=0.1)
    with pytest.raises(InvalidInput, match="status"):
        append(log, status="failed")
    with pytest.raises(InvalidInput, match="inputs"):
        append(log, inputs="x=1")
    assert log.pending == 0


def test_partitions_by_deployment_and_date(
    log_factory: Callable[..., PredictionLog], tmp_path: Path
) -> None:
    log = log_factory()
    append(log, time=LATE)
    append(log, time=EARLY)
    append(log, deployment="churn model/v2", time=EARLY)  # space and slash: percent-encoded
    log.close()

    root = tmp_path / "log"
    rel = [p.relative_to(root).as_posix() for p in data_files(root)]
    assert len(rel) == 3
    folders = sorted(r.rsplit("/", 1)[0] for r in rel)
    assert folders == [
        "deployment=churn%20model%2Fv2/date=2024-03-02",
        "deployment=fraud/date=2024-03-01",
        "deployment=fraud/date=2024-03-02",
    ]
    assert all(re.fullmatch(r"part-\d{13}-[0-9a-f]{8}\.parquet", r.rsplit("/", 1)[1]) for r in rel)

    df = read_predictions(root)
    assert sorted(df["deployment"].unique()) == ["churn model/v2", "fraud"]
    churn = read_predictions(root, deployment="churn model/v2")
    assert churn["deployment"].tolist() == ["churn model/v2"]


def test_filters_prune_and_push_down(
    log_factory: Callable[..., PredictionLog], tmp_path: Path
) -> None:
    log = log_factory()
    append(log, variant="a", time=LATE - 10)
    append(log, variant="b", time=LATE)
    append(log, variant="a", time=EARLY)
    append(log, deployment="other", variant="a", time=EARLY)
    log.close()
    root = tmp_path / "log"

    def times(**kw: Any) -> list[float]:
        df = read_predictions(root, **kw)
        return [t.timestamp() for t in df["time"]]

    assert times() == [LATE - 10, LATE, EARLY, EARLY]  # sorted by time across partitions
    assert times(deployment="fraud") == [LATE - 10, LATE, EARLY]
    assert times(deployment="fraud", variant="a") == [LATE - 10, EARLY]
    assert times(deployment="fraud", since=LATE) == [LATE, EARLY]  # since is inclusive
    assert times(deployment="fraud", until=LATE) == [LATE - 10]  # until is exclusive
    since = datetime(2024, 3, 2, tzinfo=UTC)
    assert times(deployment="fraud", since=since) == [EARLY]
    assert times(deployment="fraud", since=since.replace(tzinfo=None)) == [EARLY]  # naive: UTC
    assert times(deployment="nobody") == []

    df = read_predictions(root, deployment="fraud", columns=["variant", "latency_ms"])
    assert list(df.columns) == ["variant", "latency_ms"]
    assert df["variant"].tolist() == ["a", "b", "a"]
    with pytest.raises(InvalidInput, match="unknown prediction log columns"):
        read_predictions(root, columns=["date"])
    with pytest.raises(InvalidInput, match="since"):
        read_predictions(root, since="yesterday")  # type: ignore[arg-type]


def test_missing_or_empty_log_reads_as_empty_frame(tmp_path: Path) -> None:
    for root in (tmp_path / "nothing-here", tmp_path):
        df = read_predictions(root, deployment="fraud", since=LATE)
        assert df.empty and list(df.columns) == COLUMNS
        assert str(df["time"].dtype) == "datetime64[us, UTC]"
        assert summarize(root, deployment="fraud") == {}
        assert expand_inputs(df).empty


def test_default_location_comes_from_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with PredictionLog(flush_interval=NEVER) as log:
        append(log)
    assert data_files(tmp_path / "home" / "predictions")
    assert len(read_predictions()) == 1

    monkeypatch.setenv("LOOPML_PREDICTION_LOG_URI", str(tmp_path / "elsewhere"))
    reset_settings()
    with PredictionLog(flush_interval=NEVER) as log:
        append(log)
    assert data_files(tmp_path / "elsewhere")
    assert len(read_predictions()) == 1


def test_close_writes_every_record_and_is_idempotent(
    log_factory: Callable[..., PredictionLog], tmp_path: Path
) -> None:
    log = log_factory(batch_rows=10**6)
    ids = {append(log, inputs={"i": i}) for i in range(2_500)}
    assert (log.pending, log.written) == (2_500, 0)  # no interval elapsed, no batch filled
    log.close()
    log.close()
    assert log.pending == 0
    assert set(read_predictions(tmp_path / "log")["prediction_id"]) == ids
    with pytest.raises(InvalidState, match="closed"):
        append(log)


def test_background_thread_writes_on_its_interval(
    log_factory: Callable[..., PredictionLog], tmp_path: Path
) -> None:
    log = log_factory(flush_interval=0.05)
    request_id = append(log)
    wait_until(lambda: log.written == 1)
    assert read_predictions(tmp_path / "log")["prediction_id"].tolist() == [request_id]


def test_background_thread_writes_once_a_batch_waits(
    log_factory: Callable[..., PredictionLog], tmp_path: Path
) -> None:
    log = log_factory(batch_rows=5)  # the interval never elapses: only the batch size can
    for i in range(5):
        append(log, inputs={"i": i})
    wait_until(lambda: log.written == 5)
    assert len(read_predictions(tmp_path / "log")) == 5


def test_memory_is_bounded_and_oldest_records_are_dropped(
    log_factory: Callable[..., PredictionLog], tmp_path: Path
) -> None:
    log = log_factory(max_pending=10)
    for i in range(25):
        append(log, inputs={"i": i})
    assert (log.pending, log.dropped) == (10, 15)
    append(log, inputs=[{"i": 25}, {"i": 26}], outputs=[0, 1])  # two rows push out two
    assert (log.pending, log.dropped) == (10, 17)
    log.close()
    df = read_predictions(tmp_path / "log")
    assert expand_inputs(df)["i"].tolist() == list(range(17, 27))


def test_write_failure_keeps_records_until_the_store_works(
    log_factory: Callable[..., PredictionLog], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a regular file where the log's parent folder should be")
    root = blocker / "log"
    log = log_factory(str(root), flush_interval=0.02, max_pending=1_000)

    ids = [append(log, inputs={"i": i}) for i in range(20)]  # append never raises
    wait_until(lambda: log.write_failures >= 2)  # the thread failed, survived, and retried
    with pytest.raises(StoreError, match="stay pending"):
        log.flush()
    assert (log.pending, log.written, log.dropped) == (20, 0, 0)
    assert "could not write" in caplog.text

    blocker.unlink()
    ids += [append(log, inputs={"i": i}) for i in range(20, 30)]
    wait_until(lambda: log.written == 30)  # the background thread's retry succeeds
    assert log.pending == 0
    df = read_predictions(root)
    assert df["prediction_id"].tolist() == ids
    assert not [p for p in data_files(root) if p.name.startswith(".")]  # no temp files left


def test_concurrent_appends_lose_nothing(
    log_factory: Callable[..., PredictionLog], tmp_path: Path
) -> None:
    log = log_factory(flush_interval=0.01, batch_rows=100)  # the writer runs alongside
    threads, per_thread = 8, 400
    ids: list[list[str]] = [[] for _ in range(threads)]
    start = threading.Barrier(threads)

    def work(k: int) -> None:
        start.wait()
        for i in range(per_thread):
            rows = [{"k": k, "i": i}] * (1 + i % 2)
            ids[k].append(append(log, inputs=rows, outputs=[i] * len(rows)))

    workers = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    log.close()

    expected_rows = threads * sum(1 + i % 2 for i in range(per_thread))
    df = read_predictions(tmp_path / "log")
    assert (log.written, log.dropped, len(df)) == (expected_rows, 0, expected_rows)
    assert df["prediction_id"].is_unique
    assert set(df["request_id"]) == {rid for per in ids for rid in per}
    assert len(data_files(tmp_path / "log")) > 1  # written in several batches


def test_summarize_counts_requests_and_latency_percentiles(
    log_factory: Callable[..., PredictionLog], tmp_path: Path
) -> None:
    rng = np.random.default_rng(7)
    log = log_factory()
    latency = {"a": rng.gamma(2.0, 10.0, 200), "b": rng.gamma(3.0, 10.0, 150)}
    failed = {"a": set(range(0, 200, 20)), "b": set(range(0, 150, 5))}
    for variant, values in latency.items():
        for i, ms in enumerate(values):
            rows = 1 + i % 3  # multi-instance requests count once
            append(
                log,
                variant=variant,
                inputs=[{"i": i}] * rows,
                outputs=None,
                latency_ms=float(ms),
                status="error" if i in failed[variant] else "rejected" if i % 7 == 1 else "ok",
                time=LATE + i,
            )
    append(log, deployment="other", variant="a", latency_ms=1e6, status="error", time=LATE)
    log.close()

    out = summarize(tmp_path / "log", deployment="fraud")
    assert sorted(out) == ["a", "b"]
    for variant, values in latency.items():
        got = out[variant]
        assert got["requests"] == len(values)
        assert got["predictions"] == sum(1 + i % 3 for i in range(len(values)))
        assert got["errors"] == len(failed[variant])
        assert got["error_rate"] == pytest.approx(len(failed[variant]) / len(values))
        assert got["p50_ms"] == pytest.approx(np.percentile(values, 50))
        assert got["p99_ms"] == pytest.approx(np.percentile(values, 99))

    later = summarize(tmp_path / "log", deployment="fraud", since=LATE + 100, variant="a")
    assert list(later) == ["a"]
    assert later["a"]["requests"] == 100
    assert later["a"]["p99_ms"] == pytest.approx(np.percentile(latency["a"][100:], 99))


def test_a_record_that_cannot_be_written_is_dropped_alone(
    log_factory: Callable[..., PredictionLog], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class Lying:
        """Claims two outputs at append time, yields one when serialised."""

        def __len__(self) -> int:
            return 2

        def tolist(self) -> list[int]:
            return [1]

    log = log_factory()
    good = append(log, time=LATE)
    append(log, inputs=[{"x": 1}, {"x": 2}], outputs=Lying(), time=LATE)
    log.flush()  # no error: a retry would fail the same way, so the record is dropped
    assert (log.written, log.dropped, log.pending) == (1, 2, 0)
    assert "cannot be logged" in caplog.text
    assert read_predictions(tmp_path / "log")["prediction_id"].tolist() == [good]


@pytest.mark.s3
def test_log_on_s3(
    s3_bucket: tuple[Any, str],
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    log_factory: Callable[..., PredictionLog],
) -> None:
    client, bucket = s3_bucket
    monkeypatch.setenv("LOOPML_S3_ENDPOINT_URL", moto_endpoint)
    reset_settings()
    uri = f"s3://{bucket}/monitoring/predictions"
    log = log_factory(uri)
    first = append(log, time=LATE, inputs=[{"x": 1}, {"x": 2}], outputs=[0, 1])
    second = append(log, time=EARLY, variant="b")
    log.close()

    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"])
    assert [k.rsplit("/", 1)[0] for k in keys] == [
        "monitoring/predictions/deployment=fraud/date=2024-03-01",
        "monitoring/predictions/deployment=fraud/date=2024-03-02",
    ]
    df = read_predictions(uri, deployment="fraud")
    assert df["prediction_id"].tolist() == [f"{first}:0", f"{first}:1", second]
    assert read_predictions(uri, variant="b", since=EARLY)["request_id"].tolist() == [second]
    assert summarize(uri, deployment="fraud")["a"]["predictions"] == 2


def test_no_data_file_is_visible_while_written(tmp_path: Path) -> None:
    """Readers skip hidden files, so a local write in flight (a dot-file) is never read."""
    root = tmp_path / "log"
    folder = root / "deployment=fraud" / "date=2024-03-01"
    folder.mkdir(parents=True)
    (folder / ".part-1-00000000.parquet.tmp").write_bytes(b"half a file")
    (folder / ".part-2-00000000.parquet").write_bytes(b"half a file")
    assert read_predictions(root).empty
