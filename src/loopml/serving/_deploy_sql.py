"""Deployments on the metadata database (SQLite embedded, PostgreSQL shared).

A change reads the deployment's row under a lock (PostgreSQL's ``FOR UPDATE``; SQLite serialises
writers), computes the next state with a pure function from ``_deployments``, and writes the row
and its event in one transaction.
"""

from __future__ import annotations

import numbers
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError as SqlIntegrityError

from loopml.errors import AlreadyExists, InvalidInput, InvalidState, NotFound
from loopml.registry import validate_user
from loopml.serving import _deployments as d
from loopml.serving._batcher import BatchingConfig
from loopml.serving._deployments import (
    Change,
    Deployment,
    DeploymentEvent,
    DeploymentStore,
    Guardrails,
    Rollout,
    validate_deployment_name,
    validate_variants,
)
from loopml.serving._service import VariantSpec
from loopml.store import Database, open_database
from loopml.store.tables import deployment_events, deployments, workspaces

__all__ = ["SqlDeploymentStore"]


def _now() -> int:
    return time.time_ns() // 1_000_000


def _variants_json(variants: Sequence[VariantSpec]) -> str:
    return orjson.dumps([v.to_dict() for v in variants]).decode()


def _from_row(row: Any) -> Deployment:
    return Deployment(
        name=row.name,
        variants=d.variants_from_json(orjson.loads(row.variants)),
        unit_key=row.unit_key,
        batching=d.batching_from_dict(orjson.loads(row.batching)),
        description=row.description,
        revision=row.revision,
        rollout=None if row.rollout is None else Rollout.from_dict(orjson.loads(row.rollout)),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class SqlDeploymentStore(DeploymentStore):
    """Deployments in one workspace of the metadata database."""

    def __init__(self, database: Database | str, *, workspace: str = "default") -> None:
        self.db = open_database(database) if isinstance(database, str) else database
        self.workspace = workspace

    def for_workspace(self, workspace: str) -> SqlDeploymentStore:
        return SqlDeploymentStore(self.db, workspace=workspace)

    def _row(self, conn: Connection, name: str, *, lock: bool = False) -> Any:
        validate_deployment_name(name)
        query = select(deployments).where(
            deployments.c.workspace == self.workspace, deployments.c.name == name
        )
        row = conn.execute(query.with_for_update() if lock else query).first()
        if row is None:
            raise NotFound(f"deployment {name!r} does not exist")
        return row

    def _event(
        self, conn: Connection, dep_id: int, revision: int, kind: str, user: str, detail: Any
    ) -> None:
        conn.execute(
            insert(deployment_events).values(
                deployment_id=dep_id,
                revision=revision,
                kind=kind,
                time=_now(),
                user_id=user,
                detail=orjson.dumps(detail, option=orjson.OPT_SERIALIZE_NUMPY).decode(),
            )
        )

    def create_deployment(
        self,
        name: str,
        variants: Sequence[VariantSpec],
        *,
        unit_key: str | None = None,
        batching: BatchingConfig | None = None,
        description: str = "",
        user_id: str | None = None,
    ) -> Deployment:
        validate_deployment_name(name)
        variants = validate_variants(variants)
        _check_unit_key(unit_key)
        user = validate_user(user_id)
        batching = batching or BatchingConfig()
        now = _now()
        try:
            with self.db.write() as conn:
                found = conn.execute(
                    select(workspaces.c.name).where(workspaces.c.name == self.workspace)
                ).first()
                if found is None:
                    raise NotFound(f"workspace {self.workspace!r} does not exist")
                result = conn.execute(
                    insert(deployments).values(
                        workspace=self.workspace,
                        name=name,
                        description=description or "",
                        unit_key=unit_key,
                        variants=_variants_json(variants),
                        batching=orjson.dumps(d.batching_to_dict(batching)).decode(),
                        rollout=None,
                        revision=1,
                        created_at=now,
                        updated_at=now,
                    )
                )
                dep_id = result.inserted_primary_key[0]  # type: ignore[index]
                detail = {"variants": [v.to_dict() for v in variants], "unit_key": unit_key}
                self._event(conn, dep_id, 1, "created", user, detail)
                return _from_row(self._row(conn, name))
        except (SqlIntegrityError, AlreadyExists) as exc:  # Database.write translates it
            raise AlreadyExists(f"deployment {name!r} already exists") from exc

    def get_deployment(self, name: str) -> Deployment:
        with self.db.read() as conn:
            return _from_row(self._row(conn, name))

    def workspaces_of(self, name: str) -> list[str]:
        """The workspaces that hold a deployment called ``name`` (any workspace: for the
        server's check that a prediction log is the caller's to read)."""
        with self.db.read() as conn:
            found = conn.execute(
                select(deployments.c.workspace).where(deployments.c.name == name)
            ).scalars()
            return sorted(found)

    def list_deployments(self) -> list[Deployment]:
        with self.db.read() as conn:
            rows = conn.execute(
                select(deployments)
                .where(deployments.c.workspace == self.workspace)
                .order_by(deployments.c.name)
            ).all()
        return [_from_row(r) for r in rows]

    def delete_deployment(self, name: str) -> None:
        with self.db.write() as conn:
            row = self._row(conn, name, lock=True)
            conn.execute(
                delete(deployment_events).where(
                    deployment_events.c.deployment_id == row.deployment_id
                )
            )
            conn.execute(
                delete(deployments).where(deployments.c.deployment_id == row.deployment_id)
            )

    def _apply(
        self,
        name: str,
        change: Callable[[Deployment, Connection, Any], Change],
        *,
        user_id: str | None = None,
        expected_revision: int | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Deployment:
        user = validate_user(user_id)
        with self.db.write() as conn:
            row = self._row(conn, name, lock=True)
            current = _from_row(row)
            if expected_revision is not None and current.revision != expected_revision:
                raise InvalidState(
                    f"deployment {name!r} is at revision {current.revision}, not "
                    f"{expected_revision}: it changed meanwhile"
                )
            step = change(current, conn, row)
            revision = current.revision + 1
            values: dict[str, Any] = {
                "variants": _variants_json(step.variants),
                "rollout": None
                if step.rollout is None
                else orjson.dumps(step.rollout.to_dict()).decode(),
                "revision": revision,
                "updated_at": _now(),
                **(extra or {}),
            }
            conn.execute(
                update(deployments)
                .where(deployments.c.deployment_id == row.deployment_id)
                .values(**values)
            )
            detail = {**step.detail, "variants": [v.to_dict() for v in step.variants]}
            self._event(conn, row.deployment_id, revision, step.kind, user, detail)
            # read back in the transaction: what this change made, not a later one's result
            return _from_row(self._row(conn, name))

    def update_deployment(
        self,
        name: str,
        *,
        variants: Sequence[VariantSpec] | None = None,
        unit_key: str | None = None,
        batching: BatchingConfig | None = None,
        description: str | None = None,
        user_id: str | None = None,
    ) -> Deployment:
        extra: dict[str, Any] = {}
        if unit_key is not None:  # "" clears it
            extra["unit_key"] = None if unit_key == "" else _check_unit_key(unit_key)
        if batching is not None:
            extra["batching"] = orjson.dumps(d.batching_to_dict(batching)).decode()
        if description is not None:
            extra["description"] = description

        def change(dep: Deployment, conn: Connection, row: Any) -> Change:
            if variants is None:
                return Change(dep.variants, dep.rollout, "updated", {"fields": sorted(extra)})
            d._no_rollout(dep, "replacing the variants")
            detail = {"fields": sorted([*extra, "variants"])}
            return Change(validate_variants(variants), dep.rollout, "updated", detail)

        return self._apply(name, change, user_id=user_id, extra=extra)

    def set_traffic(
        self, name: str, weights: Mapping[str, float], *, user_id: str | None = None
    ) -> Deployment:
        for key, value in weights.items():
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise InvalidInput(f"weight of variant {key!r} must be a number")
        return self._apply(name, lambda dep, c, r: d.set_traffic(dep, weights), user_id=user_id)

    def promote(self, name: str, variant: str, *, user_id: str | None = None) -> Deployment:
        return self._apply(
            name, lambda dep, c, r: d.promote(dep, variant, _now()), user_id=user_id
        )

    def rollback(self, name: str, *, user_id: str | None = None) -> Deployment:
        def change(dep: Deployment, conn: Connection, row: Any) -> Change:
            return d.rollback(dep, self._previous_variants(conn, row, dep), _now())

        return self._apply(name, change, user_id=user_id)

    def _previous_variants(
        self, conn: Connection, row: Any, dep: Deployment
    ) -> tuple[VariantSpec, ...] | None:
        """The variants before the latest change of variants (None if they never changed)."""
        details = conn.execute(
            select(deployment_events.c.detail)
            .where(deployment_events.c.deployment_id == row.deployment_id)
            .order_by(deployment_events.c.seq.desc())
        ).scalars()
        current = [v.to_dict() for v in dep.variants]
        for raw in details:
            variants = orjson.loads(raw).get("variants")
            if variants is not None and variants != current:
                return d.variants_from_json(variants)
        return None

    def start_rollout(
        self,
        name: str,
        target_uri: str,
        *,
        steps: Sequence[float] = (5, 25, 50, 100),
        interval_seconds: float = 600.0,
        guardrails: Guardrails | None = None,
        user_id: str | None = None,
    ) -> Deployment:
        if not isinstance(target_uri, str) or not target_uri:
            raise InvalidInput("the rollout target must be a model URI")
        rails = guardrails or Guardrails()

        def change(dep: Deployment, conn: Connection, row: Any) -> Change:
            return d.start_rollout(
                dep,
                target_uri,
                steps=steps,
                interval_seconds=interval_seconds,
                guardrails=rails,
                now=_now(),
            )

        return self._apply(name, change, user_id=user_id)

    def decide_rollout(
        self,
        name: str,
        decision: str,
        *,
        expected_revision: int,
        reason: str = "",
        stats: Mapping[str, Any] | None = None,
    ) -> Deployment:
        if decision not in ("advance", "rollback"):
            raise InvalidInput("decision must be 'advance' or 'rollback'")
        stats = dict(stats or {})

        def change(dep: Deployment, conn: Connection, row: Any) -> Change:
            if decision == "advance":
                return d.advance_rollout(dep, stats, _now())
            return d.stop_rollout(dep, reason or "a guardrail broke", stats, _now())

        return self._apply(name, change, user_id="loopml", expected_revision=expected_revision)

    def list_events(self, name: str) -> list[DeploymentEvent]:
        with self.db.read() as conn:
            row = self._row(conn, name)
            rows = conn.execute(
                select(deployment_events)
                .where(deployment_events.c.deployment_id == row.deployment_id)
                .order_by(deployment_events.c.seq)
            ).all()
        return [
            DeploymentEvent(r.revision, r.kind, r.time, r.user_id, orjson.loads(r.detail))
            for r in rows
        ]


def _check_unit_key(unit_key: str | None) -> str | None:
    if unit_key is not None and (
        not isinstance(unit_key, str) or not 0 < len(unit_key) <= 255 or "\x00" in unit_key
    ):
        raise InvalidInput("unit_key must be a field or header name of 1 to 255 characters")
    return unit_key
