"""Model URIs: ``runs:/<run_id>/<path>``, ``models:/<name>/<version|stage|latest>``,
``models:/<name>@<alias>`` and local folders."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from loopml.errors import InvalidInput

__all__ = ["FORMS", "ModelRef", "parse_model_uri"]

FORMS = (
    "runs:/<run_id>/<path>, models:/<name>/<version>, models:/<name>/<stage>, "
    "models:/<name>/latest, models:/<name>@<alias>, or a local folder"
)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


@dataclass(frozen=True, slots=True)
class ModelRef:
    """A parsed model URI: ``kind`` is runs, models or local; ``ref`` for models is version,
    alias, stage or latest, with the value in ``value``."""

    kind: str
    uri: str
    run_id: str | None = None
    path: str | None = None
    name: str | None = None
    ref: str | None = None
    value: str | None = None
    local: Path | None = None


def _malformed(uri: str, expected: str) -> InvalidInput:
    return InvalidInput(f"model URI {uri!r} is malformed: expected {expected}")


def parse_model_uri(uri: str | os.PathLike[str]) -> ModelRef:
    """Parse a model URI.

    Raises:
        InvalidInput: naming the form expected.
    """
    from loopml.registry import Stage
    from loopml.store import validate_artifact_path

    if isinstance(uri, os.PathLike):
        return _local(os.fspath(uri))
    if not isinstance(uri, str) or not uri:
        raise InvalidInput(f"model URI must be a non-empty string; use {FORMS}")
    if uri.startswith("runs:"):
        rest = uri[len("runs:/") :] if uri.startswith("runs:/") else ""
        run_id, _, path = rest.strip("/").partition("/")
        if not run_id or not path.strip("/"):
            raise _malformed(uri, "runs:/<run_id>/<path>")
        return ModelRef("runs", uri, run_id=run_id, path=validate_artifact_path(path.strip("/")))
    if uri.startswith("models:"):
        expected = "models:/<name>/<version>, /<stage>, /latest, or models:/<name>@<alias>"
        rest = uri[len("models:/") :] if uri.startswith("models:/") else ""
        rest = rest.strip("/")
        if "/" in rest:
            name, _, tail = rest.rpartition("/")
            if not name or not tail:
                raise _malformed(uri, expected)
            if tail.isdigit():
                return ModelRef("models", uri, name=name, ref="version", value=str(int(tail)))
            if tail.lower() == "latest":
                return ModelRef("models", uri, name=name, ref="latest")
            try:
                stage = Stage.canonical(tail)
            except InvalidInput:
                raise _malformed(
                    uri,
                    f"a version number, a stage ({', '.join(Stage.ALL)}) or latest after "
                    f"the name, not {tail!r}",
                ) from None
            return ModelRef("models", uri, name=name, ref="stage", value=stage)
        name, at, alias = rest.rpartition("@")
        if not at or not name or not alias:
            raise _malformed(uri, expected)
        return ModelRef("models", uri, name=name, ref="alias", value=alias)
    if uri.startswith("file://"):
        return _local(uri[len("file://") :])
    if _SCHEME.match(uri) and not Path(uri).exists():
        raise InvalidInput(f"model URI {uri!r} has an unsupported scheme; use {FORMS}")
    return _local(uri)


def _local(path: str) -> ModelRef:
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise InvalidInput(f"model URI {path!r} is not {FORMS} (no folder exists at that path)")
    return ModelRef("local", path, local=folder)
