"""The SDK: ``loopml.data.log_dataset`` and friends, on the configured store."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.data._base import DatasetStore
from loopml.data._entities import Dataset, DatasetVersion, FileEntry, GcReport, parse_ref
from loopml.data._ops import AddResult, add_dataset, restore_version
from loopml.errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "collect_garbage",
    "delete_alias",
    "delete_dataset",
    "delete_version",
    "diff",
    "get_dataset",
    "get_version",
    "list_datasets",
    "list_files",
    "list_versions",
    "load",
    "log_dataset",
    "restore",
    "run_datasets",
    "set_alias",
    "update_version",
    "validate_dataset",
]


def _store(store: DatasetStore | None) -> DatasetStore:
    if store is not None:
        return store
    from loopml.data._resolve import get_dataset_store

    return get_dataset_store()


def _active_run_id() -> str | None:
    fluent = sys.modules.get("loopml.tracking._fluent")
    if fluent is None:  # tracking never loaded: no run can be active (and no need to load it)
        return None
    run = fluent.active_run()
    return None if run is None else run.info.run_id


def log_dataset(
    data: Any,
    name: str,
    *,
    reference: bool = False,
    description: str = "",
    tags: Mapping[str, str] | None = None,
    aliases: Sequence[str] = (),
    run_id: str | None = None,
    context: str = "",
    profile: bool = True,
    store: DatasetStore | None = None,
) -> DatasetVersion:
    """Version a file, folder, ``s3://`` prefix, DataFrame or Arrow table as dataset ``name``.

    Unchanged content returns the existing version. The active run (or ``run_id``) is linked.
    """
    return add(
        data,
        name,
        reference=reference,
        description=description,
        tags=tags,
        aliases=aliases,
        run_id=run_id,
        context=context,
        profile=profile,
        store=store,
    ).version


def add(
    data: Any,
    name: str,
    *,
    reference: bool = False,
    description: str = "",
    tags: Mapping[str, str] | None = None,
    aliases: Sequence[str] = (),
    run_id: str | None = None,
    context: str = "",
    profile: bool = True,
    store: DatasetStore | None = None,
) -> AddResult:
    """``log_dataset`` that also says whether the version is new and what was uploaded."""
    return add_dataset(
        _store(store),
        data,
        name,
        reference=reference,
        description=description,
        tags=tags,
        aliases=aliases,
        run_id=run_id or _active_run_id(),
        context=context,
        profile=profile,
    )


def get_version(ref: str, *, store: DatasetStore | None = None) -> DatasetVersion:
    """The version named by ``name``, ``name@3``, ``name@alias`` or ``name@latest``."""
    name, version = parse_ref(ref)
    return _store(store).get_version(name, version)


def get_dataset(name: str, *, store: DatasetStore | None = None) -> Dataset:
    """A dataset's description, tags, latest version and aliases."""
    return _store(store).get_dataset(name)


def list_datasets(*, store: DatasetStore | None = None) -> list[Dataset]:
    """Every dataset of the workspace."""
    return _store(store).list_datasets()


def list_versions(name: str, *, store: DatasetStore | None = None) -> list[DatasetVersion]:
    """The versions of a dataset, newest first."""
    return _store(store).list_versions(name)


def list_files(ref: str, *, store: DatasetStore | None = None) -> list[FileEntry]:
    """The files of a version with their sizes and digests."""
    s = _store(store)
    v = get_version(ref, store=s)
    return s.list_files(v.name, v.version)


def restore(
    ref: str,
    out: str | os.PathLike[str],
    *,
    force: bool = False,
    store: DatasetStore | None = None,
) -> Path:
    """Write a version's files under ``out``, each checked against its hash; returns ``out``."""
    return restore_version(_store(store), ref, out, force=force)[1]


def load(ref: str, *, store: DatasetStore | None = None) -> pd.DataFrame:
    """A tabular version (Parquet or CSV files) as one pandas DataFrame."""
    import duckdb

    from loopml.data._profile import _source_sql
    from loopml.data._source import tabular_format

    s = _store(store)
    files = list_files(ref, store=s)
    formats = {tabular_format(f.path) for f in files}
    if len(formats) != 1 or None in formats:
        raise InvalidInput(f"{ref} is not tabular: load reads Parquet or CSV files of one kind")
    fmt = formats.pop()
    assert fmt is not None
    with tempfile.TemporaryDirectory(prefix="loopml-load-") as tmp:
        restore(ref, tmp, store=s)
        paths = [os.path.join(tmp, *f.path.split("/")) for f in files]
        source = _source_sql(paths, fmt)
        if source is None:  # only empty CSV files
            import pandas as pd

            return pd.DataFrame()
        conn = duckdb.connect()
        try:
            return conn.sql(f"SELECT * FROM {source}").df()
        finally:
            conn.close()


def diff(ref_a: str, ref_b: str, *, store: DatasetStore | None = None) -> dict[str, Any]:
    """What changed from version ``ref_a`` to ``ref_b``: files, rows, schema, drift."""
    from loopml.data._diff import diff_versions

    s = _store(store)
    a, b = get_version(ref_a, store=s), get_version(ref_b, store=s)
    return diff_versions(a, s.list_files(a.name, a.version), b, s.list_files(b.name, b.version))


def validate_dataset(
    data: Any, rules: Any, *, max_examples: int = 5, store: DatasetStore | None = None
) -> Any:
    """Check a DataFrame, Arrow table or dataset reference (``name@3``) against rules."""
    from loopml.data._validate import validate

    if isinstance(data, str):
        data = load(data, store=store)
    return validate(data, rules, max_examples=max_examples)


def set_alias(name: str, alias: str, version: int, *, store: DatasetStore | None = None) -> None:
    """Point ``alias`` (e.g. ``train-latest``) at a version."""
    _store(store).set_alias(name, alias, version)


def delete_alias(name: str, alias: str, *, store: DatasetStore | None = None) -> None:
    """Remove an alias."""
    _store(store).delete_alias(name, alias)


def update_version(
    ref: str,
    *,
    description: str | None = None,
    tags: Mapping[str, str | None] | None = None,
    store: DatasetStore | None = None,
) -> DatasetVersion:
    """Change a version's description or tags (a ``None`` tag value deletes the tag)."""
    s = _store(store)
    v = get_version(ref, store=s)
    return s.update_version(v.name, v.version, description=description, tags=tags)


def delete_version(ref: str, *, store: DatasetStore | None = None) -> None:
    """Delete a version; blobs other versions share stay, the rest wait for ``collect_garbage``."""
    s = _store(store)
    v = get_version(ref, store=s)
    s.delete_version(v.name, v.version)


def delete_dataset(name: str, *, store: DatasetStore | None = None) -> None:
    """Delete a dataset and all its versions."""
    _store(store).delete_dataset(name)


def run_datasets(run_id: str, *, store: DatasetStore | None = None) -> list[DatasetVersion]:
    """The dataset versions a run used or produced (lineage)."""
    return _store(store).versions_for_run(run_id)


def collect_garbage(
    *, grace_seconds: float = 3600.0, dry_run: bool = False, store: DatasetStore | None = None
) -> GcReport:
    """Delete blobs no version references (sparing any touched in the last ``grace_seconds``)."""
    return _store(store).collect_garbage(grace_seconds=grace_seconds, dry_run=dry_run)
