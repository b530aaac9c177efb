"""The prediction log: every prediction the inference server makes, as partitioned Parquet.

Layout: ``<uri>/deployment=<name>/date=YYYY-MM-DD/part-<unix_ms>-<uuid8>.parquet`` (Hive style;
the deployment name is percent-encoded, the date is the UTC date of the prediction). One row per
predicted instance; the rows of one request share its ``request_id``, time, variant, latency and
status. A request of one instance has ``prediction_id == request_id``; a request of ``n > 1``
instances has ``prediction_id = f"{request_id}:{row_index}"``.

Writing stays off the request path: ``PredictionLog.append`` puts one tuple per request on a
deque under a lock (no serialisation, no I/O) and returns. A daemon thread writes everything
pending every ``flush_interval`` seconds, or as soon as ``batch_rows`` rows wait. Local files are
written under a hidden temporary name and renamed; object stores get one PUT. A failed write is
logged and counted, and its rows go back to the front of the queue for the next attempt. At most
``max_pending`` rows wait (plus the batch being written); beyond that the OLDEST are dropped and
counted in ``dropped``, so that an outage of the store costs old records, never new ones, and
never the server's memory or latency.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import uuid
import weakref
from collections import defaultdict, deque
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from time import sleep as _sleep
from time import time as _now
from typing import Any, NamedTuple
from urllib.parse import quote

import fsspec
import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from loopml.config import get_settings
from loopml.errors import InvalidInput, InvalidState, MissingDependency, StoreError

__all__ = ["PredictionLog", "expand_inputs", "read_predictions", "summarize"]

_log = logging.getLogger("loopml.monitoring")

_TS = pa.timestamp("us", tz="UTC")
# Columns as returned by read_predictions, in this order. ``deployment`` is not stored in the
# files: it comes from the partition folder (as ``date`` does, which is not returned).
_FILE_SCHEMA = pa.schema(
    [
        ("prediction_id", pa.string()),
        ("request_id", pa.string()),
        ("row_index", pa.int32()),
        ("time", _TS),
        ("variant", pa.string()),
        ("model_name", pa.string()),
        ("model_version", pa.string()),
        ("unit_id", pa.string()),
        ("inputs", pa.string()),
        ("outputs", pa.string()),
        ("latency_ms", pa.float64()),
        ("status", pa.string()),
        ("error", pa.string()),
    ]
)
_PARTITION_SCHEMA = pa.schema([("deployment", pa.string()), ("date", pa.string())])
_DATASET_SCHEMA = pa.schema([*_FILE_SCHEMA, *_PARTITION_SCHEMA])
_COLUMNS: tuple[str, ...] = (
    *_FILE_SCHEMA.names[:4],
    "deployment",
    *_FILE_SCHEMA.names[4:],
)
_STATUSES = frozenset({"ok", "rejected", "error"})
_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_BACKOFF_SECONDS = 30.0


class _Entry(NamedTuple):
    """One appended request, as given: serialised by the writer thread, not the caller."""

    request_id: str
    time: float
    deployment: str
    variant: Any
    model_name: Any
    model_version: Any
    unit_id: Any
    inputs: Any
    outputs: Any
    latency_ms: float
    status: str
    error: Any
    rows: int
    single: bool  # inputs is one instance (a dict), not a list of them


class PredictionLog:
    """Appends predictions to partitioned Parquet files from a background thread.

    Thread-safe. ``append`` never blocks on I/O and never raises for a storage problem; write
    errors are logged, counted in ``write_failures`` and retried with backoff. ``flush()`` writes
    everything pending and raises ``StoreError`` if some of it could not be written (it stays
    pending). ``close()`` stops the thread and flushes; a log is also closed at interpreter exit.

    Args:
        uri: a local folder or any fsspec URL (``s3://bucket/prefix``); default
            ``settings.prediction_log_uri``, else ``<LOOPML_HOME>/predictions``.
        flush_interval: seconds between background writes.
        max_pending: most rows kept waiting; beyond it the oldest are dropped (``dropped``).
        batch_rows: a write starts early once this many rows wait.

    Raises:
        InvalidInput: a bad parameter or URI.
        MissingDependency: the URI's filesystem driver (s3fs for ``s3://``) is not installed.
    """

    def __init__(
        self,
        uri: str | os.PathLike[str] | None = None,
        *,
        flush_interval: float = 1.0,
        max_pending: int = 100_000,
        batch_rows: int = 10_000,
    ) -> None:
        if not flush_interval > 0:
            raise InvalidInput(f"flush_interval must be positive, got {flush_interval}")
        if max_pending < 1 or batch_rows < 1:
            raise InvalidInput(
                f"max_pending and batch_rows must be at least 1, got {max_pending}, {batch_rows}"
            )
        self._fs, self._base, self.uri = _filesystem(uri)
        self._local = isinstance(self._fs, LocalFileSystem)
        self._interval = float(flush_interval)
        self._max_pending = int(max_pending)
        self._batch_rows = int(batch_rows)
        self._lock = threading.Lock()  # guards the deque and the counters below
        self._write_lock = threading.Lock()  # one writer at a time: the thread or flush()
        self._pending: deque[_Entry] = deque()
        self._rows = 0  # rows in self._pending
        self._inflight = 0  # rows taken by the writer and not yet written or put back
        self._dropped = 0
        self._dropped_reported = 0
        self._written = 0
        self._failures = 0
        self._failing = False
        self._closed = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="loopml-predlog", daemon=True)
        self._thread.start()
        _open_logs.add(self)

    def __repr__(self) -> str:
        return f"PredictionLog({self.uri!r})"

    def __enter__(self) -> PredictionLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- counters ------------------------------------------------------------------------------
    @property
    def pending(self) -> int:
        """Rows appended and not written yet (including a batch being written)."""
        with self._lock:
            return self._rows + self._inflight

    @property
    def dropped(self) -> int:
        """Rows dropped, oldest first, because more than ``max_pending`` were waiting."""
        return self._dropped

    @property
    def written(self) -> int:
        """Rows written to storage by this log."""
        return self._written

    @property
    def write_failures(self) -> int:
        """Write attempts that failed (each failed batch counts once)."""
        return self._failures

    # -- request path --------------------------------------------------------------------------
    def append(
        self,
        *,
        deployment: str,
        variant: str,
        model_name: str,
        model_version: str | int,
        inputs: list[dict[str, Any]] | dict[str, Any],
        outputs: Sequence[Any] | Any,
        latency_ms: float,
        unit_id: str | None = None,
        prediction_id: str | None = None,
        status: str = "ok",
        error: str | None = None,
        time: float | None = None,
    ) -> str:
        """Queue one request's predictions and return its id at once (O(1), no I/O).

        ``inputs`` is one instance (a dict) or a list of instances (a list, or a pandas
        DataFrame, one row each); with a list, ``outputs`` is ``None`` or a sequence of the same
        length (a list, or a NumPy array whose first axis is the instance). Each instance is one
        row of the log. ``prediction_id`` is the request's id (default: a new UUID); ``time`` is
        epoch seconds (default: now). Do not mutate ``inputs`` or ``outputs`` afterwards: they
        are serialised later, on the writer thread.

        Raises:
            InvalidInput: a bad status, or outputs that do not line up with the inputs.
            InvalidState: the log is closed.
        """
        if status not in _STATUSES:
            raise InvalidInput(f"status must be 'ok', 'rejected' or 'error', got {status!r}")
        if not isinstance(deployment, str) or not deployment:
            raise InvalidInput(f"deployment must be a non-empty string, got {deployment!r}")
        single = isinstance(inputs, dict)
        if single:
            rows = 1
        elif isinstance(inputs, list | tuple | pd.DataFrame):
            n = len(inputs)
            rows = n or 1  # a request without instances (say, one that failed) is still a row
            if (
                n
                and outputs is not None
                and (
                    isinstance(outputs, str | bytes | dict)
                    or not hasattr(outputs, "__len__")
                    or len(outputs) != n
                )
            ):
                raise InvalidInput(
                    f"outputs must be a sequence of {n} values, one per input instance, "
                    f"got {type(outputs).__name__}"
                )
        else:
            raise InvalidInput(
                f"inputs must be a dict (one instance) or a list of them, "
                f"got {type(inputs).__name__}"
            )
        request_id = prediction_id or uuid.uuid4().hex
        entry = _Entry(
            request_id,
            _now() if time is None else float(time),
            deployment,
            variant,
            model_name,
            model_version,
            unit_id,
            inputs,
            outputs,
            float(latency_ms),
            status,
            error,
            rows,
            single,
        )
        with self._lock:
            if self._closed:
                raise InvalidState(f"prediction log at {self.uri} is closed; open a new one")
            self._pending.append(entry)
            self._rows += rows
            if self._rows > self._max_pending:
                self._shed_locked()
            waiting = self._rows
        if waiting >= self._batch_rows and not self._wake.is_set():
            self._wake.set()
        return request_id

    def _shed_locked(self) -> None:
        """Drop the oldest requests until at most ``max_pending`` rows wait (lock held)."""
        while self._rows > self._max_pending and self._pending:
            old = self._pending.popleft()
            self._rows -= old.rows
            self._dropped += old.rows

    # -- writing -------------------------------------------------------------------------------
    def flush(self) -> None:
        """Write everything appended so far, now, on the calling thread.

        Raises:
            StoreError: some rows could not be written; they stay pending and are retried.
        """
        error = self._write_pending()
        if error is not None:
            raise StoreError(
                f"could not write {self.pending} predictions to the prediction log at "
                f"{self.uri}: {error}; they stay pending and are retried"
            ) from error

    def close(self) -> None:
        """Stop the writer thread and write everything pending; safe to call again.

        Raises:
            StoreError: the final write failed; the rows are still in ``pending``, and
                ``flush()`` or another ``close()`` retries them.
        """
        with self._lock:
            self._closed = True
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()
        _open_logs.discard(self)
        self.flush()

    def _run(self) -> None:
        backoff = self._interval
        while not self._stop.is_set():
            self._wake.wait(self._interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                error = self._write_pending()
            except BaseException as exc:  # the writer must survive anything
                error = exc
                _log.exception("prediction log writer failed unexpectedly")
            if error is None:
                backoff = self._interval
                continue
            # Wait before retrying even if rows keep arriving: a broken store must not spin.
            self._stop.wait(backoff)
            backoff = min(backoff * 2, max(self._interval, _MAX_BACKOFF_SECONDS))

    def _write_pending(self) -> BaseException | None:
        """Write every pending row; put failed ones back first in line; return the error."""
        with self._write_lock:
            with self._lock:
                entries, self._pending = self._pending, deque()
                self._inflight, self._rows = self._rows, 0
            error: BaseException | None = None
            try:
                if entries:
                    error = self._write_entries(entries)
            except BaseException:  # a bug, not a storage error: count what it cost
                with self._lock:
                    self._dropped += self._inflight
                    self._inflight = 0
                raise
            finally:
                self._report_drops()
        return error

    def _write_entries(self, entries: deque[_Entry]) -> BaseException | None:
        groups: dict[tuple[str, int], list[_Entry]] = defaultdict(list)
        for entry in entries:
            groups[(entry.deployment, int(entry.time // 86400))].append(entry)
        failed: list[_Entry] = []
        error: BaseException | None = None
        for (deployment, day), group in groups.items():
            table, group = self._table(group)
            if table is None:
                continue
            try:
                self._write_group(deployment, day, table)
            except Exception as exc:  # disk full, permissions, network: keep the rows
                failed.extend(group)
                error = error or exc
            else:
                n = sum(e.rows for e in group)
                with self._lock:
                    self._written += n
                    self._inflight -= n
        if failed:
            failed.sort(key=lambda e: e.time)
            with self._lock:
                self._failures += 1
                self._pending.extendleft(reversed(failed))
                self._rows += self._inflight
                self._inflight = 0
                self._shed_locked()
            if not self._failing:
                _log.error(
                    "could not write %d predictions to %s; keeping them for the next attempt",
                    len(failed),
                    self.uri,
                    exc_info=error,
                )
            else:
                _log.warning("prediction log at %s still failing: %s", self.uri, error)
            self._failing = True
        elif self._failing:
            _log.warning("prediction log at %s is writable again", self.uri)
            self._failing = False
        return error

    def _table(self, group: list[_Entry]) -> tuple[pa.Table | None, list[_Entry]]:
        """The group's rows as a table; entries that cannot be converted are dropped, so that
        one malformed record cannot block the log (a write retry would fail the same way)."""
        try:
            return _chunked_table(group), group
        except Exception:
            good: list[_Entry] = []
            for entry in group:
                try:
                    _to_table([entry])
                except Exception:
                    _log.exception("dropping prediction %s: it cannot be logged", entry.request_id)
                    with self._lock:
                        self._dropped += entry.rows
                        self._inflight -= entry.rows
                else:
                    good.append(entry)
            return (_to_table(good) if good else None), good

    def _report_drops(self) -> None:
        dropped = self._dropped
        if dropped > self._dropped_reported:
            _log.warning(
                "prediction log at %s dropped %d records (more than max_pending=%d waiting)",
                self.uri,
                dropped - self._dropped_reported,
                self._max_pending,
            )
            self._dropped_reported = dropped

    def _write_group(self, deployment: str, day: int, table: pa.Table) -> None:
        day_str = (_EPOCH + timedelta(days=day)).date().isoformat()
        folder = f"{self._base}/deployment={quote(deployment, safe='')}/date={day_str}"
        name = f"part-{int(_now() * 1000)}-{uuid.uuid4().hex[:8]}.parquet"
        if self._local:
            os.makedirs(folder, exist_ok=True)
            # A leading dot hides the file from readers (pyarrow and read_predictions skip it).
            tmp = f"{folder}/.{name}.tmp"
            try:
                pq.write_table(table, tmp, compression="zstd")
                os.replace(tmp, f"{folder}/{name}")
            except BaseException:
                if os.path.exists(tmp):
                    os.unlink(tmp)
                raise
            return
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="zstd")
        self._fs.pipe_file(f"{folder}/{name}", sink.getvalue().to_pybytes())


_open_logs: weakref.WeakSet[PredictionLog] = weakref.WeakSet()


@atexit.register
def _close_open_logs() -> None:
    """The writer is a daemon thread: write what is pending before the interpreter exits."""
    for log in list(_open_logs):
        try:
            log.close()
        except Exception:
            _log.exception("could not write the prediction log at %s at exit", log.uri)


# -- serialisation (writer thread) ---------------------------------------------------------------
def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):  # NumPy arrays orjson does not take, pandas objects
        return value.tolist()
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    return str(value)


def _dumps(value: Any) -> bytes | None:
    if value is None:
        return None
    try:
        return orjson.dumps(value, default=_json_default, option=_JSON_OPTIONS)
    except (orjson.JSONEncodeError, TypeError):  # e.g. an integer beyond 64 bits
        return orjson.dumps(repr(value))


def _as_list(values: Any) -> list[Any]:
    if isinstance(values, pd.DataFrame):
        return values.to_dict("records")
    if hasattr(values, "tolist"):  # NumPy arrays and pandas Series: native scalars, fast
        return list(values.tolist())
    return list(values)


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


_CHUNK_ENTRIES = 256


def _chunked_table(group: list[_Entry]) -> pa.Table:
    """``_to_table`` a chunk at a time, pausing between chunks so that the server's event loop,
    waiting for the GIL, takes it at once rather than after Python's 5 ms switch interval."""
    if len(group) <= _CHUNK_ENTRIES:
        return _to_table(group)
    tables = []
    for start in range(0, len(group), _CHUNK_ENTRIES):
        if start:
            _sleep(0.0005)
        tables.append(_to_table(group[start : start + _CHUNK_ENTRIES]))
    return pa.concat_tables(tables)


def _instances(e: _Entry) -> tuple[list[Any], list[Any]]:
    """An entry's instances and outputs, one per row."""
    if e.single:
        return [e.inputs], [e.outputs]
    inputs = _as_list(e.inputs)
    if not inputs:
        return [None], [e.outputs]
    outputs = [None] * len(inputs) if e.outputs is None else _as_list(e.outputs)
    if len(outputs) != len(inputs):
        raise ValueError(f"{len(outputs)} outputs for {len(inputs)} input instances")
    return inputs, outputs


def _to_table(entries: Iterable[_Entry]) -> pa.Table:
    """One Arrow table of the entries' rows (one per instance).

    Built column by column (comprehensions, then Arrow's ``take`` to repeat a request's values
    over its rows): the writer thread holds the GIL as briefly as it can, since every
    millisecond it holds it is a millisecond the server's event loop waits.
    """
    entries = list(entries)
    if all(e.rows == 1 and (e.single or isinstance(e.inputs, list)) for e in entries):
        pairs = [
            (e.inputs, e.outputs) if e.single else _instances(e) for e in entries
        ]  # one row each: no repetition
        ins = [_dumps(i if e.single else i[0]) for e, (i, _) in zip(entries, pairs, strict=True)]
        outs = [_dumps(o if e.single else o[0]) for e, (_, o) in zip(entries, pairs, strict=True)]
        take = None
        pid = [e.request_id for e in entries]
        idx: list[int] = [0] * len(entries)
    else:
        ins, outs, pid, idx, counts = [], [], [], [], []
        for e in entries:
            inputs, outputs = _instances(e)
            n = len(inputs)
            ins.extend(map(_dumps, inputs))
            outs.extend(map(_dumps, outputs))
            pid.extend([e.request_id] if n == 1 else (f"{e.request_id}:{i}" for i in range(n)))
            idx.extend(range(n))
            counts.append(n)
        take = pa.array(np.repeat(np.arange(len(entries)), counts))

    def column(values: Any, kind: pa.DataType) -> pa.Array:
        arr = pa.array(values, kind)
        return arr if take is None else arr.take(take)

    micros = np.round(np.fromiter((e.time for e in entries), np.float64, len(entries)) * 1e6)
    columns = {
        "prediction_id": pa.array(pid, pa.string()),
        "request_id": column([e.request_id for e in entries], pa.string()),
        "row_index": pa.array(idx, pa.int32()),
        "time": column(micros.astype(np.int64), pa.int64()).cast(_TS),
        "inputs": pa.array(ins, pa.string()),
        "outputs": pa.array(outs, pa.string()),
        "latency_ms": column([e.latency_ms for e in entries], pa.float64()),
        "variant": column([_opt_str(e.variant) for e in entries], pa.string()),
        "model_name": column([_opt_str(e.model_name) for e in entries], pa.string()),
        "model_version": column([_opt_str(e.model_version) for e in entries], pa.string()),
        "unit_id": column([_opt_str(e.unit_id) for e in entries], pa.string()),
        "status": column([e.status for e in entries], pa.string()),
        "error": column([_opt_str(e.error) for e in entries], pa.string()),
    }
    return pa.table([columns[name] for name in _FILE_SCHEMA.names], schema=_FILE_SCHEMA)


# -- reading -----------------------------------------------------------------------------------
def _filesystem(uri: str | os.PathLike[str] | None) -> tuple[Any, str, str]:
    """(fsspec filesystem, root path on it, the URI) for ``uri`` or the settings' default."""
    if uri is None:
        settings = get_settings()
        uri = settings.prediction_log_uri or str(
            settings.home.expanduser().resolve() / "predictions"
        )
    uri = os.fspath(uri)
    if not isinstance(uri, str) or not uri:
        raise InvalidInput("the prediction log URI must be a non-empty path or URL")
    protocol = fsspec.utils.get_protocol(uri)
    options: dict[str, Any] = {}
    if protocol in ("s3", "s3a"):
        options["use_listings_cache"] = False  # other processes write too
        endpoint = get_settings().s3_endpoint_url
        if endpoint:
            options["endpoint_url"] = endpoint
    try:
        fs, path = fsspec.core.url_to_fs(uri, **options)
    except ImportError as exc:
        extra = " (pip install 'loopml[s3]')" if protocol in ("s3", "s3a") else ""
        raise MissingDependency(
            f"the prediction log at {uri!r} needs the {protocol}:// filesystem driver{extra}: "
            f"{exc}"
        ) from exc
    except ValueError as exc:
        raise InvalidInput(f"unsupported prediction log URI {uri!r}: {exc}") from exc
    return fs, path.rstrip("/") or path, uri


def _to_micros(value: datetime | float | None, name: str) -> int | None:
    """Epoch microseconds of a datetime (naive means UTC) or of epoch seconds."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return (value - _EPOCH) // timedelta(microseconds=1)
    if isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool):
        return round(float(value) * 1e6)
    raise InvalidInput(f"{name} must be a datetime or epoch seconds, got {type(value).__name__}")


def _day(micros: int | None) -> str | None:
    if micros is None:
        return None
    return (date(1970, 1, 1) + timedelta(days=micros // 86_400_000_000)).isoformat()


def _ls(fs: Any, path: str) -> list[str]:
    try:
        return [p.rstrip("/") for p in fs.ls(path, detail=False)]
    except (FileNotFoundError, NotADirectoryError):
        return []


def _find_files(
    fs: Any, base: str, deployment: str | None, first_day: str | None, last_day: str | None
) -> list[str]:
    """Data files under ``base``, pruned by deployment and date folder names."""
    if deployment is not None:
        deployments = [f"{base}/deployment={quote(deployment, safe='')}"]
    else:
        deployments = [p for p in _ls(fs, base) if p.rsplit("/", 1)[-1].startswith("deployment=")]
    files: list[str] = []
    for folder in deployments:
        for day_folder in _ls(fs, folder):
            name = day_folder.rsplit("/", 1)[-1]
            if not name.startswith("date="):
                continue
            day = name[len("date=") :]
            if (first_day and day < first_day) or (last_day and day > last_day):
                continue
            for path in _ls(fs, day_folder):
                leaf = path.rsplit("/", 1)[-1]
                if leaf.endswith(".parquet") and not leaf.startswith((".", "_")):
                    files.append(path)
    return sorted(files)


def read_predictions(
    uri: str | os.PathLike[str] | None = None,
    *,
    deployment: str | None = None,
    variant: str | None = None,
    since: datetime | float | None = None,
    until: datetime | float | None = None,
    columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The logged predictions, sorted by time, as a DataFrame (``inputs``/``outputs`` as JSON).

    Only the folders of the deployment and of the dates in ``[since, until)`` are listed and
    read; ``variant`` and the exact time bounds are pushed down to the Parquet scan. ``since``
    is inclusive, ``until`` exclusive; each is a datetime (naive means UTC) or epoch seconds.
    A missing or empty log gives an empty frame with the same columns.

    Raises:
        InvalidInput: an unknown column or a bad bound.
        StoreError: the files could not be listed or read.
    """
    wanted = list(_COLUMNS) if columns is None else list(columns)
    unknown = [c for c in wanted if c not in _COLUMNS]
    if unknown:
        raise InvalidInput(f"unknown prediction log columns {unknown}; known: {list(_COLUMNS)}")
    start, end = _to_micros(since, "since"), _to_micros(until, "until")
    fs, base, uri_str = _filesystem(uri)
    try:
        files = _find_files(fs, base, deployment, _day(start), _day(end))
        if not files:
            return _DATASET_SCHEMA.empty_table().select(wanted).to_pandas()
        dataset = ds.dataset(
            files,
            schema=_DATASET_SCHEMA,
            format="parquet",
            filesystem=fs,
            partitioning=ds.partitioning(_PARTITION_SCHEMA, flavor="hive"),
            partition_base_dir=base,
        )
        conditions = []
        if deployment is not None:
            conditions.append(ds.field("deployment") == deployment)
        if variant is not None:
            conditions.append(ds.field("variant") == variant)
        if start is not None:
            conditions.append(ds.field("time") >= pa.scalar(start, _TS))
        if end is not None:
            conditions.append(ds.field("time") < pa.scalar(end, _TS))
        expr = None
        for condition in conditions:
            expr = condition if expr is None else expr & condition
        order = ["time", "request_id", "row_index"]
        table = dataset.to_table(columns=list(dict.fromkeys([*wanted, *order])), filter=expr)
    except (OSError, pa.ArrowException) as exc:
        raise StoreError(f"could not read the prediction log at {uri_str}: {exc}") from exc
    table = table.sort_by([(c, "ascending") for c in order]).select(wanted)
    return table.to_pandas()


def expand_inputs(df: pd.DataFrame) -> pd.DataFrame:
    """The ``inputs`` JSON as columns, one per key, indexed like ``df`` (``df.join`` it).

    Instances that are not JSON objects give a single ``input`` column of the decoded values.
    """
    values = [orjson.loads(s) if isinstance(s, str) else None for s in df["inputs"]]
    if not values:
        return pd.DataFrame(index=df.index)
    if all(v is None or isinstance(v, dict) for v in values):
        return pd.DataFrame([v or {} for v in values], index=df.index)
    return pd.DataFrame({"input": values}, index=df.index)


def summarize(
    uri: str | os.PathLike[str] | None = None,
    *,
    deployment: str,
    since: datetime | float | None = None,
    until: datetime | float | None = None,
    variant: str | None = None,
) -> dict[str, dict[str, float | int]]:
    """Per variant: requests, errors, error rate and latency percentiles, for guardrails.

    Counted per request (the rows of one request share its status and latency), over ok,
    rejected and error requests alike; only ``error`` (the server's fault) counts as an error.
    ``predictions`` counts rows. Percentiles interpolate linearly (NumPy's default). Variants
    with no requests are absent.
    """
    df = read_predictions(
        uri,
        deployment=deployment,
        variant=variant,
        since=since,
        until=until,
        columns=["variant", "row_index", "status", "latency_ms"],
    )
    if df.empty:
        return {}
    rows = df.groupby("variant", sort=True).size()
    requests = df[df["row_index"] == 0]
    grouped = requests.assign(failed=requests["status"].eq("error")).groupby("variant", sort=True)
    counts = grouped.size()
    errors = grouped["failed"].sum()
    quantiles = grouped["latency_ms"].quantile([0.5, 0.99]).unstack()
    return {
        str(name): {
            "requests": int(counts[name]),
            "predictions": int(rows[name]),
            "errors": int(errors[name]),
            "error_rate": float(errors[name] / counts[name]),
            "p50_ms": float(quantiles.loc[name, 0.5]),
            "p99_ms": float(quantiles.loc[name, 0.99]),
        }
        for name in counts.index
    }
