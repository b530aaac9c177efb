"""Schema revisions: fresh databases, self-upgrading SQLite, refusing PostgreSQL, model parity."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from loopml.errors import InvalidInput, MissingDependency, SchemaVersionError
from loopml.store import HEAD_REVISION, Database, close_databases, open_database, upgrade_database
from loopml.store._migrate import alembic_upgrade, script_head
from loopml.store.tables import Base


def test_head_constant_matches_scripts() -> None:
    assert script_head() == HEAD_REVISION


def _diff(uri: str) -> list[object]:
    engine = create_engine(uri)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(ctx, Base.metadata))
    finally:
        engine.dispose()


def test_migrations_match_models_on_sqlite(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    open_database(uri)
    assert _diff(uri) == []


@pytest.mark.postgres
def test_migrations_match_models_on_postgres(pg_uri: str) -> None:
    open_database(pg_uri)
    assert _diff(pg_uri) == []


def test_fresh_sqlite_is_created_at_head(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'deep' / 'x.db'}")
    assert db.current_revision() == HEAD_REVISION
    with db.read() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("SELECT name FROM workspaces")).scalars().all() == ["default"]


def _at_base(uri: str) -> None:
    """A database as an older release left it: revision table present, schema at base."""
    engine = create_engine(uri)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
        conn.execute(text("INSERT INTO alembic_version VALUES ('0000')"))
    engine.dispose()


def test_unknown_revision_is_refused(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'future.db'}"
    _at_base(uri)
    with pytest.raises(SchemaVersionError, match="upgrade loopml"):
        open_database(uri)


def test_old_sqlite_upgrades_itself_and_keeps_a_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = f"sqlite:///{tmp_path / 'old.db'}"
    db = Database(uri)
    with db.engine.connect() as conn:
        alembic_upgrade(conn)
        conn.commit()
    with db.write() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'pretend-old'"))
    db.dispose()
    # Pretend this loopml knows one more revision after the file's one.
    monkeypatch.setattr("loopml.store._db._KNOWN_REVISIONS", ("pretend-old", HEAD_REVISION))
    monkeypatch.setattr("loopml.store._migrate.alembic_upgrade", _stamp_head)
    opened = open_database(uri)
    assert opened.current_revision() == HEAD_REVISION
    backups = list(tmp_path.glob("old.db.revpretend-old.*.bak"))
    assert len(backups) == 1
    close_databases()


@pytest.mark.parametrize(
    "revision", ["0001", "0003", "0005", "0006", "0007", "0008", "0009", "0010"]
)
def test_every_released_revision_upgrades_on_open(tmp_path: Path, revision: str) -> None:
    uri = f"sqlite:///{tmp_path / f'at{revision}.db'}"
    db = Database(uri)
    with db.engine.connect() as conn:
        alembic_upgrade(conn, revision)
        conn.commit()
    db.dispose()
    assert open_database(uri).current_revision() == HEAD_REVISION
    assert _diff(uri) == []
    close_databases()


def _stamp_head(conn: object) -> None:
    conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": HEAD_REVISION})  # type: ignore[attr-defined]


@pytest.mark.postgres
def test_old_postgres_refuses_until_db_upgrade(
    pg_database_factory: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = pg_database_factory()
    engine = create_engine(uri)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'pretend-old'"))
    engine.dispose()
    monkeypatch.setattr("loopml.store._db._KNOWN_REVISIONS", ("pretend-old", HEAD_REVISION))
    with pytest.raises(SchemaVersionError, match="loopml db upgrade"):
        open_database(uri)
    monkeypatch.setattr("loopml.store._migrate.alembic_upgrade", _stamp_head)
    assert upgrade_database(uri) == ("pretend-old", HEAD_REVISION)
    assert open_database(uri).current_revision() == HEAD_REVISION


@pytest.mark.postgres
def test_empty_postgres_is_initialised(pg_database_factory: Callable[..., str]) -> None:
    uri = pg_database_factory(empty=True)
    assert open_database(uri).current_revision() == HEAD_REVISION
    assert _diff(uri) == []


def test_foreign_tables_are_refused(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'other.db'}"
    engine = create_engine(uri)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE somebody_elses (x INT)"))
    engine.dispose()
    with pytest.raises(SchemaVersionError, match="empty database"):
        open_database(uri)


def test_schema_created_by_another_process_meanwhile_is_accepted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The race CI hit: this process saw an empty database, then another process committed the
    # whole schema before this one listed the tables. The listing must happen under the lock.
    uri = f"sqlite:///{tmp_path / 'raced.db'}"
    upgrade_database(uri)
    monkeypatch.setattr(Database, "current_revision", lambda self: None)
    assert open_database(uri) is not None
    monkeypatch.undo()
    assert open_database(uri).current_revision() == HEAD_REVISION


@pytest.mark.parametrize("uri", ["mysql://x/y", "not a uri", "oracle+cx://a"])
def test_unsupported_database_uri(uri: str) -> None:
    with pytest.raises(InvalidInput):
        Database(uri)


def test_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_psycopg(name: str, *args: object, **kwargs: object) -> object:
        if name.startswith("psycopg"):
            raise ModuleNotFoundError(name)
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_psycopg)
    with pytest.raises(MissingDependency, match=r"loopml\[postgres\]"):
        Database("postgresql://postgres@127.0.0.1:1/none")


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_release_one_database_upgrades_to_the_registry(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A database left at revision 0001 (tracking only) keeps its runs and gains the registry."""
    from loopml.registry import SqlRegistryStore
    from loopml.tracking import SqlTrackingStore

    if backend == "sqlite":
        uri = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        uri = request.getfixturevalue("pg_database_factory")(empty=True)
    engine = create_engine(uri)
    with engine.begin() as conn:
        alembic_upgrade(conn, "0001")
        conn.execute(
            text(
                "INSERT INTO experiments (workspace, name, artifact_location, lifecycle_stage, "
                "creation_time, last_update_time) VALUES ('default', 'old', '', 'active', 1, 1)"
            )
        )
        eid = conn.execute(text("SELECT experiment_id FROM experiments")).scalar_one()
        conn.execute(
            text(
                "INSERT INTO runs (run_uuid, experiment_id, workspace, name, user_id, status, "
                "start_time, lifecycle_stage, artifact_uri) VALUES ('0123456789abcdef0123456789"
                "abcdef', :eid, 'default', 'r', 'u', 'FINISHED', 1, 'active', '/tmp/x')"
            ),
            {"eid": eid},
        )
    engine.dispose()
    if backend == "sqlite":
        db = open_database(uri)
    else:
        upgrade_database(uri)
        db = open_database(uri)
    assert db.current_revision() == HEAD_REVISION
    tracking = SqlTrackingStore(db, str(tmp_path / "art"))
    run = tracking.get_run("0123456789abcdef0123456789abcdef")
    registry = SqlRegistryStore(db, str(tmp_path / "art"))
    registry.create_registered_model("m")
    version = registry.create_model_version("m", f"runs:/{run.info.run_id}/model")
    assert version.version == "1"
