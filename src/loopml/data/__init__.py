"""Datasets: content-addressed, deduplicated versions with lineage, diffs and validation.

```python
import loopml.data as ld

v = ld.log_dataset("data/train/", "churn", aliases=["train-latest"])  # a folder, file, s3://,
ld.restore("churn@train-latest", "restored/")                          # DataFrame or Arrow table
ld.diff("churn@1", "churn@2")
ld.validate_dataset("churn@2", "rules.yaml").raise_for_failures()
```
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loopml.data._base import DatasetStore
from loopml.data._entities import (
    Dataset,
    DatasetVersion,
    FileEntry,
    GcReport,
    parse_ref,
    validate_dataset_name,
)
from loopml.data._fluent import (
    add,
    collect_garbage,
    delete_alias,
    delete_dataset,
    delete_version,
    diff,
    get_dataset,
    get_version,
    list_datasets,
    list_files,
    list_versions,
    load,
    log_dataset,
    restore,
    run_datasets,
    set_alias,
    update_version,
    validate_dataset,
)
from loopml.data._frames import decode_blobs, encode_blobs
from loopml.data._ops import AddResult, restore_version
from loopml.data._resolve import get_dataset_store
from loopml.data._sql import SqlDatasetStore

if TYPE_CHECKING:
    from loopml.data._rest import RestDatasetStore
    from loopml.data._rules import Check, Column, Rules
    from loopml.data._validate import RuleFailure, ValidationResult, validate

# Validation pulls in pandera (~0.3 s): loaded on first use, not by every `loopml data` command.
_VALIDATION = frozenset(
    {"Check", "Column", "RuleFailure", "Rules", "ValidationResult", "validate"}
)


def __getattr__(name: str) -> Any:
    if name == "RestDatasetStore":  # the HTTP client: loaded when a server is used
        from loopml.data._rest import RestDatasetStore

        return RestDatasetStore
    if name in _VALIDATION:
        from loopml.data import _rules

        if name in _rules.__all__:
            return getattr(_rules, name)
        from loopml.data import _validate

        return getattr(_validate, name)
    raise AttributeError(f"module 'loopml.data' has no attribute {name!r}")


__all__ = [
    "AddResult",
    "Check",
    "Column",
    "Dataset",
    "DatasetStore",
    "DatasetVersion",
    "FileEntry",
    "GcReport",
    "RestDatasetStore",
    "RuleFailure",
    "Rules",
    "SqlDatasetStore",
    "ValidationResult",
    "add",
    "collect_garbage",
    "decode_blobs",
    "delete_alias",
    "delete_dataset",
    "delete_version",
    "diff",
    "encode_blobs",
    "get_dataset",
    "get_dataset_store",
    "get_version",
    "list_datasets",
    "list_files",
    "list_versions",
    "load",
    "log_dataset",
    "parse_ref",
    "restore",
    "restore_version",
    "run_datasets",
    "set_alias",
    "update_version",
    "validate",
    "validate_dataset",
    "validate_dataset_name",
]
