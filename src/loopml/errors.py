"""Every error loopml raises on purpose.

```
LoopmlError
├── InvalidInput(LoopmlError, ValueError)                  400  INVALID_PARAMETER_VALUE
├── Unauthenticated(LoopmlError)                           401  UNAUTHENTICATED
├── PermissionDenied(LoopmlError)                          403  PERMISSION_DENIED
├── RateLimited(LoopmlError)                               429  REQUEST_LIMIT_EXCEEDED
├── NotFound(LoopmlError, LookupError)                     404  RESOURCE_DOES_NOT_EXIST
│   ├── ExperimentNotFound
│   ├── RunNotFound
│   └── ArtifactNotFound
├── AlreadyExists(LoopmlError)                             409  RESOURCE_ALREADY_EXISTS
├── InvalidState(LoopmlError, RuntimeError)                409  INVALID_STATE
├── IntegrityError(LoopmlError)                            409  INTEGRITY_ERROR
│   └── BlobsNotStored                                     409  BLOBS_NOT_STORED
├── DataValidationFailed(LoopmlError)                      422  DATA_VALIDATION_FAILED
├── GateFailed(LoopmlError)                                422  GATE_FAILED
├── PipelineFailed(LoopmlError)                            409  PIPELINE_FAILED
├── Overloaded(LoopmlError)                                503  TEMPORARILY_UNAVAILABLE
├── StoreError(LoopmlError)                                500  INTERNAL_ERROR
│   ├── SchemaVersionError                                 500  SCHEMA_VERSION
│   └── ServerUnreachable                                  503  SERVER_UNREACHABLE
└── MissingDependency(LoopmlError, ImportError)            500  MISSING_DEPENDENCY
```

Each class carries a stable ``code`` and an ``http_status``. The server turns any ``LoopmlError``
into ``{"error_code": code, "message": str(error)}``; the REST client rebuilds the same class from
``ERRORS_BY_CODE`` (a closed table, never a name taken from a payload).
"""

from __future__ import annotations

__all__ = [
    "AlreadyExists",
    "ArtifactNotFound",
    "BlobsNotStored",
    "DataValidationFailed",
    "ERRORS_BY_CODE",
    "ExperimentNotFound",
    "GateFailed",
    "InsufficientData",
    "IntegrityError",
    "InvalidInput",
    "InvalidState",
    "LoopmlError",
    "MissingDependency",
    "NotFound",
    "Overloaded",
    "PermissionDenied",
    "PipelineFailed",
    "PredictionFailed",
    "RateLimited",
    "RunNotFound",
    "SchemaVersionError",
    "ServerUnreachable",
    "StoreError",
    "Unauthenticated",
    "error_from_code",
]


class LoopmlError(Exception):
    """Base of every error loopml raises on purpose."""

    code: str = "INTERNAL_ERROR"
    http_status: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidInput(LoopmlError, ValueError):
    """A caller passed a value that is malformed or out of range."""

    code = "INVALID_PARAMETER_VALUE"
    http_status = 400


class InsufficientData(InvalidInput):
    """Valid, but too little data for an answer yet (no exposed units, an empty group)."""

    code = "INSUFFICIENT_DATA"
    http_status = 422


class Unauthenticated(LoopmlError):
    """The request carries no valid credentials (a missing, wrong, expired or revoked token)."""

    code = "UNAUTHENTICATED"
    http_status = 401


class PermissionDenied(LoopmlError):
    """The caller is known but lacks the role this needs in this workspace."""

    code = "PERMISSION_DENIED"
    http_status = 403


class RateLimited(LoopmlError):
    """Too many attempts in a short time (sign-in, for now): wait and try again."""

    code = "REQUEST_LIMIT_EXCEEDED"
    http_status = 429


class NotFound(LoopmlError, LookupError):
    """The named object does not exist (or is not visible in this workspace)."""

    code = "RESOURCE_DOES_NOT_EXIST"
    http_status = 404


class ExperimentNotFound(NotFound):
    """No experiment with that id or name."""

    code = "EXPERIMENT_DOES_NOT_EXIST"


class RunNotFound(NotFound):
    """No run with that id."""

    code = "RUN_DOES_NOT_EXIST"


class ArtifactNotFound(NotFound):
    """No artifact at that path."""

    code = "ARTIFACT_DOES_NOT_EXIST"


class AlreadyExists(LoopmlError):
    """An object with that name or key exists already."""

    code = "RESOURCE_ALREADY_EXISTS"
    http_status = 409


class InvalidState(LoopmlError, RuntimeError):
    """The object exists but is in a state that forbids the operation."""

    code = "INVALID_STATE"
    http_status = 409


class IntegrityError(LoopmlError):
    """Stored content does not match the hash recorded for it (a tampered or corrupted file)."""

    code = "INTEGRITY_ERROR"
    http_status = 409


class BlobsNotStored(IntegrityError):
    """A dataset version names blobs the store does not hold (or is garbage-collecting):
    upload them and try again."""

    code = "BLOBS_NOT_STORED"


class DataValidationFailed(LoopmlError):
    """Data broke validation rules; ``result`` holds the failures when raised in-process."""

    code = "DATA_VALIDATION_FAILED"
    http_status = 422

    def __init__(self, message: str, result: object | None = None) -> None:
        super().__init__(message)
        self.result = result


class GateFailed(LoopmlError):
    """A quality gate stopped a release; ``report`` holds every gate's result in-process."""

    code = "GATE_FAILED"
    http_status = 422

    def __init__(self, message: str, report: object | None = None) -> None:
        super().__init__(message)
        self.report = report


class PipelineFailed(LoopmlError):
    """A pipeline run ended with a failed step; ``run`` is the run when raised in-process."""

    code = "PIPELINE_FAILED"
    http_status = 409

    def __init__(self, message: str, run: object | None = None) -> None:
        super().__init__(message)
        self.run = run


class Overloaded(LoopmlError):
    """The service is temporarily unable to take more work; retry later."""

    code = "TEMPORARILY_UNAVAILABLE"
    http_status = 503


class PredictionFailed(LoopmlError):
    """The model raised while predicting input that fits its signature (a server-side fault)."""

    code = "PREDICTION_FAILED"
    http_status = 500


class StoreError(LoopmlError):
    """A backing store failed in a way the caller cannot fix by changing the input."""

    code = "INTERNAL_ERROR"
    http_status = 500


class SchemaVersionError(StoreError):
    """The metadata database is on another schema revision than this loopml."""

    code = "SCHEMA_VERSION"


class ServerUnreachable(StoreError):
    """The loopml server at the tracking URI did not answer."""

    code = "SERVER_UNREACHABLE"
    http_status = 503


class MissingDependency(LoopmlError, ImportError):
    """An optional driver is not installed; the message names the extra to install."""

    code = "MISSING_DEPENDENCY"


def _all_subclasses(cls: type[LoopmlError]) -> list[type[LoopmlError]]:
    out: list[type[LoopmlError]] = [cls]
    for sub in cls.__subclasses__():
        out.extend(_all_subclasses(sub))
    return out


ERRORS_BY_CODE: dict[str, type[LoopmlError]] = {c.code: c for c in _all_subclasses(LoopmlError)}
# StoreError and LoopmlError share INTERNAL_ERROR; the more specific one wins.
ERRORS_BY_CODE["INTERNAL_ERROR"] = StoreError


def error_from_code(code: str, message: str, http_status: int | None = None) -> LoopmlError:
    """Rebuild a typed error from a wire ``error_code``; unknown codes map by HTTP status."""
    cls = ERRORS_BY_CODE.get(code)
    if cls is None:
        cls = {400: InvalidInput, 404: NotFound, 409: AlreadyExists, 503: Overloaded}.get(
            http_status or 500, StoreError
        )
    return cls(message)
