"""Logged models: the models MLflow 3 clients log in an experiment before registering them.

A logged model has an id ``m-<hex>``, an artifact folder under its experiment
(``<experiment location>/models/<id>/artifacts``), a status (``LOGGED_MODEL_PENDING`` until its
files are uploaded, then ``LOGGED_MODEL_READY`` or ``LOGGED_MODEL_UPLOAD_FAILED``), tags and
params. loopml's own ``log_model`` keeps models as run artifacts; these records exist so that
the ``mlflow`` client's ``log_model`` works against ``loopml server``.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
from sqlalchemy import delete, insert, select, update

from loopml.errors import InvalidInput, NotFound
from loopml.store.tables import logged_models
from loopml.tracking._entities import PagedList
from loopml.tracking._sql import SqlTrackingStore, check_max_results, decode_page_token
from loopml.tracking._sql import encode_page_token as _token
from loopml.tracking._validation import validate_experiment_id

__all__ = ["LoggedModel", "LoggedModelStore"]

STATUSES = ("LOGGED_MODEL_PENDING", "LOGGED_MODEL_READY", "LOGGED_MODEL_UPLOAD_FAILED")


@dataclass(frozen=True, slots=True)
class LoggedModel:
    """One logged model."""

    model_id: str
    experiment_id: str
    name: str
    artifact_uri: str
    status: str
    creation_timestamp_ms: int
    last_updated_timestamp_ms: int
    creator_id: str = ""
    model_type: str | None = None
    source_run_id: str | None = None
    status_message: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return asdict(self)


def _record(row: Any) -> LoggedModel:
    return LoggedModel(
        model_id=row.model_id,
        experiment_id=str(row.experiment_id),
        name=row.name,
        artifact_uri=row.artifact_uri,
        status=row.status,
        creation_timestamp_ms=row.creation_time,
        last_updated_timestamp_ms=row.last_updated_time,
        creator_id=row.creator_id,
        model_type=row.model_type,
        source_run_id=row.source_run_id,
        status_message=row.status_message,
        tags=orjson.loads(row.tags),
        params=orjson.loads(row.params),
    )


def _strings(items: dict[str, Any] | None, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in (items or {}).items():
        if not isinstance(key, str) or not key or len(key) > 250:
            raise InvalidInput(f"{what} key must be a string of 1 to 250 characters")
        out[key] = "" if value is None else str(value)
    return out


_CLAUSE = re.compile(
    r"\s*(?:attributes?\.)?(name|model_id|source_run_id|status|model_type)\s*(!=|==|=)\s*"
    r"('(?:[^']|'')*'|\"(?:[^\"]|\"\")*\")\s*",
    re.IGNORECASE,
)
_AND = re.compile(r"\s*AND\s+", re.IGNORECASE)
_MAX_CLAUSES = 50


def _filter(text: str | None) -> list[Any]:
    """SQL conditions for a logged-model filter."""
    if not text or not text.strip():
        return []
    out: list[Any] = []
    pos = 0
    while len(out) < _MAX_CLAUSES:
        m = _CLAUSE.match(text, pos)
        if m is None:
            raise InvalidInput(
                f"invalid logged-model filter at position {pos}: expected name, model_id, "
                f"source_run_id, status or model_type, = or !=, and a quoted value; found "
                f"{text[pos : pos + 30]!r}"
            )
        raw = m.group(3)
        value = raw[1:-1].replace(raw[0] * 2, raw[0])
        column = logged_models.c[m.group(1).lower()]
        out.append(column != value if m.group(2) == "!=" else column == value)
        pos = m.end()
        if pos == len(text):
            return out
        sep = _AND.match(text, pos)
        if sep is None:
            raise InvalidInput(f"invalid logged-model filter at position {pos}: expected AND")
        pos = sep.end()
    raise InvalidInput(f"a logged-model filter takes at most {_MAX_CLAUSES} clauses")


class LoggedModelStore:
    """Logged models of one workspace, on the tracking store's database."""

    def __init__(self, tracking: SqlTrackingStore) -> None:
        self.tracking = tracking
        self.db = tracking.db
        self.workspace = tracking.workspace

    def _row(self, conn: Any, model_id: str) -> Any:
        if not isinstance(model_id, str) or not model_id:
            raise InvalidInput("model_id must be a non-empty string")
        row = conn.execute(
            select(logged_models).where(
                logged_models.c.model_id == model_id, logged_models.c.workspace == self.workspace
            )
        ).first()
        if row is None:
            raise NotFound(f"logged model {model_id!r} does not exist")
        return row

    def create(
        self,
        experiment_id: str,
        *,
        name: str | None = None,
        model_type: str | None = None,
        source_run_id: str | None = None,
        params: dict[str, Any] | None = None,
        tags: dict[str, Any] | None = None,
        creator_id: str = "",
    ) -> LoggedModel:
        """Create a pending logged model in an experiment."""
        experiment = self.tracking.get_experiment(experiment_id)
        if source_run_id:
            self.tracking.get_run(source_run_id)
        model_id = f"m-{uuid.uuid4().hex}"
        if name is not None and (not isinstance(name, str) or len(name) > 500):
            raise InvalidInput("name must be a string of at most 500 characters")
        now = time.time_ns() // 1_000_000
        location = experiment.artifact_location.rstrip("/")
        with self.db.write() as conn:
            conn.execute(
                insert(logged_models).values(
                    model_id=model_id,
                    workspace=self.workspace,
                    experiment_id=validate_experiment_id(experiment_id),
                    name=name or model_id,
                    artifact_uri=f"{location}/models/{model_id}/artifacts",
                    status="LOGGED_MODEL_PENDING",
                    creator_id=creator_id,
                    model_type=model_type,
                    source_run_id=source_run_id or None,
                    creation_time=now,
                    last_updated_time=now,
                    tags=orjson.dumps(_strings(tags, "tag")).decode(),
                    params=orjson.dumps(_strings(params, "param")).decode(),
                )
            )
            return _record(self._row(conn, model_id))

    def get(self, model_id: str) -> LoggedModel:
        """One logged model."""
        with self.db.read() as conn:
            return _record(self._row(conn, model_id))

    def _update(self, model_id: str, change: Any) -> LoggedModel:
        with self.db.write() as conn:
            row = self._row(conn, model_id)
            values = change(row)
            values["last_updated_time"] = time.time_ns() // 1_000_000
            conn.execute(
                update(logged_models).where(logged_models.c.model_id == model_id).values(**values)
            )
            return _record(self._row(conn, model_id))

    def finalize(self, model_id: str, status: str) -> LoggedModel:
        """Mark a logged model READY or UPLOAD_FAILED."""
        if status not in STATUSES[1:]:
            raise InvalidInput(f"status must be one of {', '.join(STATUSES[1:])}, got {status!r}")
        return self._update(model_id, lambda row: {"status": status})

    def set_tags(self, model_id: str, tags: dict[str, Any]) -> LoggedModel:
        """Set (or overwrite) tags."""
        clean = _strings(tags, "tag")
        return self._update(
            model_id,
            lambda row: {"tags": orjson.dumps({**orjson.loads(row.tags), **clean}).decode()},
        )

    def delete_tag(self, model_id: str, key: str) -> LoggedModel:
        """Remove a tag."""

        def change(row: Any) -> dict[str, Any]:
            tags = orjson.loads(row.tags)
            if key not in tags:
                raise NotFound(f"logged model {model_id!r} has no tag {key!r}")
            del tags[key]
            return {"tags": orjson.dumps(tags).decode()}

        return self._update(model_id, change)

    def log_params(self, model_id: str, params: dict[str, Any]) -> LoggedModel:
        """Add params."""
        clean = _strings(params, "param")
        return self._update(
            model_id,
            lambda row: {"params": orjson.dumps({**orjson.loads(row.params), **clean}).decode()},
        )

    def delete(self, model_id: str) -> None:
        """Forget a logged model (its files stay with the experiment)."""
        with self.db.write() as conn:
            self._row(conn, model_id)
            conn.execute(delete(logged_models).where(logged_models.c.model_id == model_id))

    def search(
        self,
        experiment_ids: Sequence[str],
        *,
        filter_string: str | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> PagedList[LoggedModel]:
        """Logged models of experiments, newest first; ``filter_string`` is ``=``/``!=``
        clauses on ``name``, ``model_id``, ``source_run_id``, ``status``, ``model_type``
        joined by AND."""
        limit = check_max_results(max_results)
        offset = decode_page_token(page_token)
        ids = [validate_experiment_id(e) for e in experiment_ids]
        lm = logged_models.c
        conditions = _filter(filter_string)
        with self.db.read() as conn:
            rows = conn.execute(
                select(logged_models)
                .where(lm.workspace == self.workspace, lm.experiment_id.in_(ids), *conditions)
                .order_by(lm.creation_time.desc(), lm.model_id)
                .offset(offset)
                .limit(limit + 1)
            ).fetchall()
        page = [_record(r) for r in rows[:limit]]
        return PagedList(page, _token(offset + limit) if len(rows) > limit else None)
