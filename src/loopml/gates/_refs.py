"""Model references for the gates: the registry version a ``models:/`` URI names now, the run
that made it, and whether a baseline exists yet."""

from __future__ import annotations

from typing import Any

from loopml.errors import InvalidInput, NotFound

__all__ = ["find_baseline", "get_version", "model_name", "run_id_of"]

_MODELS = "models:/"
_RUNS = "runs:/"


def model_name(uri: str) -> str:
    """The registered model's name in ``models:/<name>/<version|stage|latest>`` or
    ``models:/<name>@<alias>`` (model names hold no ``/`` or ``@``)."""
    if not isinstance(uri, str) or not uri.startswith(_MODELS):
        raise InvalidInput(
            f"{uri!r} is not a registry URI; use models:/<name>@<alias> or models:/<name>/<n>"
        )
    rest = uri[len(_MODELS) :].strip("/")
    name = rest.rpartition("/")[0] if "/" in rest else rest.rpartition("@")[0]
    if not name:
        raise InvalidInput(f"model URI {uri!r} names no model")
    return name


def get_version(uri: str) -> Any:
    """The ``ModelVersion`` a ``models:/`` URI names now (an alias resolved to its version).

    Raises:
        NotFound: the model, version, alias or stage does not exist.
    """
    from loopml.models import pin_model_uri
    from loopml.registry import get_registry

    name = model_name(uri)
    pinned = pin_model_uri(uri)
    return get_registry().get_model_version(name, pinned.rpartition("/")[2])


def find_baseline(uri: str) -> Any:
    """The version a baseline URI names, or None when its alias (or stage) names no version
    yet, as before a first release.

    Raises:
        NotFound: the registered model itself does not exist (a typo, not a first release).
    """
    from loopml.registry import get_registry

    get_registry().get_registered_model(model_name(uri))
    try:
        return get_version(uri)
    except NotFound:
        rest = uri[len(_MODELS) :].strip("/")
        if rest.rpartition("/")[2].isdigit():
            raise  # an explicit version number that does not exist is a mistake
        return None


def run_id_of(ref: str) -> str:
    """The run id behind a ``models:/`` URI (the run that logged the version), a
    ``runs:/<run_id>/<path>`` URI, or a bare run id."""
    if not isinstance(ref, str) or not ref.strip():
        raise InvalidInput("a model URI or run id is required")
    if ref.startswith(_MODELS):
        version = get_version(ref)
        if not version.run_id:
            raise InvalidInput(
                f"model {version.name!r} version {version.version} was registered without a "
                "run, so it has no logged metrics"
            )
        return str(version.run_id)
    if ref.startswith(_RUNS):
        run_id = ref[len(_RUNS) :].strip("/").partition("/")[0]
        if not run_id:
            raise InvalidInput(f"{ref!r} is malformed: expected runs:/<run_id>/<path>")
        return run_id
    if "/" in ref or ":" in ref:
        raise InvalidInput(f"{ref!r} is neither a model URI (models:/..., runs:/...) nor a run id")
    return ref
