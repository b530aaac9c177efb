"""Reading feature sources with DuckDB: a source (plus rows pushed to it) as a SQL relation."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb

from loopml.errors import InvalidInput
from loopml.features._definitions import FileSource

__all__ = ["connect", "describe_source", "quote", "source_sql", "sql_literal"]

_fs_lock = threading.Lock()


def quote(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def sql_literal(text: str) -> str:
    """``text`` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def connect(*, memory_limit: str | None = None, threads: int | None = None) -> Any:
    """A fresh in-memory DuckDB connection, with S3 reachable through fsspec when configured."""
    config: dict[str, Any] = {}
    if memory_limit:
        config["memory_limit"] = memory_limit
    if threads:
        config["threads"] = threads
    return duckdb.connect(config=config)


def _register_s3(con: Any) -> None:
    from loopml.config import get_settings
    from loopml.errors import MissingDependency

    try:
        import s3fs
    except ImportError as exc:  # pragma: no cover - the [s3] extra is in dev
        raise MissingDependency("s3:// feature sources need the [s3] extra (s3fs)") from exc
    endpoint = get_settings().s3_endpoint_url
    kwargs: dict[str, Any] = {"client_kwargs": {"endpoint_url": endpoint}} if endpoint else {}
    with _fs_lock:
        con.register_filesystem(s3fs.S3FileSystem(**kwargs))


def _paths(path: str, file_format: str) -> list[str]:
    """The file pattern(s) DuckDB should read for a source path (a file, folder or glob); a
    folder means every ``.parquet`` (or ``.csv``) file below it."""
    suffix = f"**/*.{file_format}"
    if "://" in path and not path.startswith("file://"):
        if path.endswith("/"):
            return [path + suffix]
        return [path]
    local = path.removeprefix("file://")
    if os.path.isdir(local):
        return [str(Path(local) / suffix)]
    return [local]


def source_sql(
    con: Any,
    source: FileSource,
    *,
    columns: Sequence[str] | None = None,
    pushed: Sequence[str] = (),
) -> str:
    """A SQL relation over the source's files (and pushed Parquet files), columns renamed by
    the source's ``field_mapping``."""
    patterns = _paths(source.path, source.file_format or "parquet")
    if any(p.startswith("s3://") for p in patterns):
        _register_s3(con)
    files = "[" + ", ".join(sql_literal(p) for p in patterns) + "]"
    if source.file_format == "csv":
        rel = f"read_csv({files}, header = true, auto_detect = true)"
    else:
        rel = f"read_parquet({files}, union_by_name = true)"
    mapping = source.field_mapping or {}
    if mapping:
        renames = ", ".join(f"{quote(k)} AS {quote(v)}" for k, v in mapping.items())
        rel = f"(SELECT * EXCLUDE ({', '.join(quote(k) for k in mapping)}), {renames} FROM {rel})"
    if pushed:
        more = "[" + ", ".join(sql_literal(p) for p in pushed) + "]"
        rel = (
            f"(SELECT * FROM {rel} UNION ALL BY NAME "
            f"SELECT * FROM read_parquet({more}, union_by_name = true))"
        )
    if columns is not None:
        rel = f"(SELECT {', '.join(quote(c) for c in columns)} FROM {rel})"
    return rel


def describe_source(source: FileSource, pushed: Sequence[str] = ()) -> dict[str, str]:
    """The source's columns and their DuckDB types; ``InvalidInput`` if it cannot be read."""
    con = connect()
    try:
        rows = con.execute(f"DESCRIBE SELECT * FROM {source_sql(con, source, pushed=pushed)}")
        return {r[0]: r[1] for r in rows.fetchall()}
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidInput(f"cannot read source {source.path!r}: {first}") from exc
    finally:
        con.close()
