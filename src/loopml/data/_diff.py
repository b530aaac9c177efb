"""What changed between two dataset versions, from their file lists and stored profiles."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from loopml.data._entities import DatasetVersion, FileEntry

__all__ = ["diff_versions"]


def diff_versions(
    a: DatasetVersion,
    files_a: Sequence[FileEntry],
    b: DatasetVersion,
    files_b: Sequence[FileEntry],
) -> dict[str, Any]:
    """Files added, removed and changed; sizes and rows; schema and drift when both are tabular."""
    by_a = {f.path: f for f in files_a}
    by_b = {f.path: f for f in files_b}
    out: dict[str, Any] = {
        "a": a.ref,
        "b": b.ref,
        "same_content": a.content_hash == b.content_hash,
        "files": {
            "added": sorted(set(by_b) - set(by_a)),
            "removed": sorted(set(by_a) - set(by_b)),
            "changed": sorted(
                p for p in set(by_a) & set(by_b) if by_a[p].digest != by_b[p].digest
            ),
            "unchanged": sum(1 for p in set(by_a) & set(by_b) if by_a[p].digest == by_b[p].digest),
        },
        "size_bytes": {"a": a.size_bytes, "b": b.size_bytes, "delta": b.size_bytes - a.size_bytes},
        "rows": None,
        "schema": None,
        "drift": None,
    }
    if a.profile and b.profile:
        from loopml.data._profile import compare_profiles

        compared = compare_profiles(a.profile, b.profile)
        out["rows"] = compared.get("rows")
        out["schema"] = compared.get("schema")
        out["drift"] = {k: v for k, v in compared.items() if k not in ("rows", "schema")}
    elif a.num_rows is not None and b.num_rows is not None:
        out["rows"] = {"a": a.num_rows, "b": b.num_rows, "delta": b.num_rows - a.num_rows}
    return out
