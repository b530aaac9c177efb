"""A feature repository folder: Python files whose module-level definitions are the registry.

Every ``*.py`` file below the folder (skipping names starting with ``_`` or ``.`` and virtual
environments) runs as its own module; the ``Entity``, ``FeatureView``, ``OnDemandFeatureView``
and ``FeatureService`` objects it leaves at module level are collected. Relative ``FileSource``
paths are taken relative to the folder, as Feast does.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import traceback
from pathlib import Path
from typing import Any

from loopml.errors import InvalidInput
from loopml.features._definitions import (
    Entity,
    FeatureService,
    FeatureView,
    FileSource,
    OnDemandFeatureView,
)

__all__ = ["load_repo"]

_SKIP_DIRS = {".venv", "venv", "__pycache__", "node_modules", ".git", ".loopml"}
_KINDS = (Entity, FeatureView, OnDemandFeatureView, FeatureService)


def _files(root: Path) -> list[Path]:
    out = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if any(p in _SKIP_DIRS or p.startswith(".") for p in rel.parts[:-1]):
            continue
        if rel.name.startswith(("_", ".")):
            continue
        out.append(path)
    return out


def _absolute(source: FileSource, root: Path) -> None:
    if "://" in source.path:
        return
    path = Path(source.path)
    if not path.is_absolute():
        source.path = str((root / path).resolve())


def load_repo(path: str | Path) -> list[Any]:
    """The definitions of the feature repository at ``path``, in file order."""
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise InvalidInput(f"feature repository {str(path)!r} is not a folder")
    found: list[Any] = []
    seen: set[int] = set()
    files = _files(root)
    if not files:
        raise InvalidInput(f"feature repository {str(path)!r} has no Python files")
    sys.path.insert(0, str(root))
    try:
        for file in files:
            digest = hashlib.sha256(str(file).encode()).hexdigest()[:12]
            name = f"_loopml_repo_{digest}"
            spec = importlib.util.spec_from_file_location(name, file)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            try:
                spec.loader.exec_module(module)
            except Exception as exc:  # the user's code: report where it failed, in one line
                frames = [
                    f for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(file)
                ]
                line = f":{frames[-1].lineno}" if frames else ""
                raise InvalidInput(
                    f"{file.relative_to(root)}{line}: {type(exc).__name__}: {exc}"
                ) from exc
            for value in vars(module).values():
                if isinstance(value, _KINDS) and id(value) not in seen:
                    seen.add(id(value))
                    found.append(value)
    finally:
        sys.path.remove(str(root))
        # Helper modules the repo imported are forgotten: a later load reads them afresh, and
        # cloudpickle packs functions from them by value (another process cannot import them).
        for mod_name, mod in sys.modules.copy().items():  # (a server thread imports too)
            file = getattr(mod, "__file__", None)
            if file and Path(file).resolve().is_relative_to(root):
                del sys.modules[mod_name]
    for obj in found:
        if isinstance(obj, FeatureView) and obj.source is not None:
            _absolute(obj.source, root)
    if not found:
        raise InvalidInput(f"feature repository {str(path)!r} defines no feature objects")
    return found
