"""The metadata database: engines, transaction scopes, schema revision checks.

SQLite (the embedded default) runs in WAL mode with a busy timeout, and every write transaction
starts with ``BEGIN IMMEDIATE`` so that concurrent writers in several processes queue on the lock
instead of failing half-way. Its query planner statistics are kept fresh with ``PRAGMA
optimize``, which re-analyses (with a row limit) only tables that lack statistics or have grown
or shrunk tenfold: once the schema is current at open (SQLite 3.46+, which can check every
table), then at most hourly after a write. PostgreSQL is reached through psycopg 3.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    DataError,
    DBAPIError,
    IntegrityError,
    NoSuchModuleError,
    OperationalError,
)

from loopml.errors import (
    AlreadyExists,
    InvalidInput,
    MissingDependency,
    SchemaVersionError,
    StoreError,
)

__all__ = ["HEAD_REVISION", "Database", "open_database", "upgrade_database"]

# Pinned by tests/store/test_migrations.py against Alembic's script directory.
HEAD_REVISION = "0011"
_KNOWN_REVISIONS = (
    "0001",
    "0002",
    "0003",
    "0004",
    "0005",
    "0006",
    "0007",
    "0008",
    "0009",
    "0010",
    "0011",
)
_SQLITE_BUSY_SECONDS = 30.0
# From 3.46, PRAGMA optimize can check every table (0x10000) and limits its ANALYZE (0x10);
# before, it only considers tables the connection's own queries used, and sets no limit.
_SQLITE_OPTIMIZE_ON_OPEN = sqlite3.sqlite_version_info >= (3, 46, 0)
_SQLITE_OPTIMIZE_SECONDS = 3600.0
_SQLITE_ANALYSIS_LIMIT = 2000  # index rows an ANALYZE run by optimize reads, as 3.46 does


def normalise_uri(uri: str) -> str:
    """Map the PostgreSQL spellings users write onto the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if uri.startswith(prefix):
            return "postgresql+psycopg://" + uri[len(prefix) :]
    return uri


class Database:
    """A metadata database at one URI, with read and write transaction scopes.

    Thread-safe: each scope checks a connection out of the engine's pool.
    """

    def __init__(self, uri: str) -> None:
        self.uri = normalise_uri(uri)
        try:
            url = make_url(self.uri)
        except ArgumentError as exc:
            raise InvalidInput(f"database URI {uri!r} is not a valid URI: {exc}") from exc
        self.dialect = url.get_backend_name()
        if self.dialect not in ("sqlite", "postgresql"):
            raise InvalidInput(
                f"database URI {uri!r}: only sqlite:/// and postgresql:// are supported"
            )
        self.engine = _create_engine(self.uri, self.dialect)
        # When to refresh SQLite's statistics next; never in the first moments, when several
        # processes may still be creating the schema.
        self._next_optimize = time.monotonic() + _SQLITE_OPTIMIZE_SECONDS

    @property
    def is_sqlite(self) -> bool:
        """Whether this is the embedded SQLite backend."""
        return self.dialect == "sqlite"

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction scope."""
        with _translate_errors(), self.engine.connect() as conn:
            yield conn

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction: committed on success, rolled back on any error."""
        with _translate_errors(), self.engine.connect() as conn:
            conn.info["loopml_write"] = True
            try:
                with conn.begin():
                    yield conn
            finally:
                conn.info["loopml_write"] = False
            if self.is_sqlite and time.monotonic() >= self._next_optimize:
                self._next_optimize = time.monotonic() + _SQLITE_OPTIMIZE_SECONDS
                # On the connection that just wrote: older SQLite looks at the tables it used.
                _sqlite_optimize(conn.connection.driver_connection, on_open=False)

    def _optimize_on_open(self) -> None:
        """Let SQLite 3.46+ analyse every table that lacks statistics or changed tenfold."""
        if self.is_sqlite and _SQLITE_OPTIMIZE_ON_OPEN:
            with self.engine.connect() as conn:
                _sqlite_optimize(conn.connection.driver_connection, on_open=True)

    def current_revision(self) -> str | None:
        """The Alembic revision the database is at, or None for an empty database."""
        with self.read() as conn:
            return _revision(conn)

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def _create_engine(uri: str, dialect: str) -> Engine:
    kwargs: dict[str, Any] = {}
    if dialect == "sqlite":
        path = make_url(uri).database
        if path and path != ":memory:":
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": _SQLITE_BUSY_SECONDS, "check_same_thread": False}
    else:
        kwargs["pool_pre_ping"] = True
        kwargs["pool_size"] = 10
        kwargs["max_overflow"] = 20
    try:
        engine = create_engine(uri, **kwargs)
    except (NoSuchModuleError, ModuleNotFoundError) as exc:
        raise MissingDependency(
            f"the driver for {dialect} is not installed: pip install 'loopml[postgres]'"
        ) from exc
    if dialect == "sqlite":
        _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event decide how transactions start.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(_SQLITE_BUSY_SECONDS * 1000)}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.get("loopml_write") else "BEGIN")


def _sqlite_optimize(dbapi_conn: Any, *, on_open: bool) -> None:
    """Refresh stale planner statistics, or skip it (until next time) if another writer is busy."""
    limited = not on_open and not _SQLITE_OPTIMIZE_ON_OPEN
    try:
        cur = dbapi_conn.cursor()
        try:
            cur.execute("PRAGMA busy_timeout=0")  # never make the caller wait for the lock
            if limited:
                cur.execute(f"PRAGMA analysis_limit={_SQLITE_ANALYSIS_LIMIT}")
            cur.execute("PRAGMA optimize=0x10012" if on_open else "PRAGMA optimize")
        finally:
            if limited:
                cur.execute("PRAGMA analysis_limit=0")
            cur.execute(f"PRAGMA busy_timeout={int(_SQLITE_BUSY_SECONDS * 1000)}")
            cur.close()
    except sqlite3.Error:
        pass  # statistics only speed queries up; the data is already committed


@contextlib.contextmanager
def _translate_errors() -> Iterator[None]:
    try:
        yield
    except IntegrityError as exc:
        raise AlreadyExists(f"conflicts with an existing record: {exc.orig}") from exc
    except OverflowError as exc:
        raise InvalidInput(f"a number is out of range for the database: {exc}") from exc
    except UnicodeEncodeError as exc:  # a lone surrogate ("\ud800"): no driver can encode it
        bad = exc.object[exc.start : exc.end]
        raise InvalidInput(
            f"a text value cannot be stored ({exc.reason}: {bad!r}); send valid Unicode text"
        ) from exc
    except DataError as exc:
        raise InvalidInput(f"a value does not fit the database column: {exc.orig}") from exc
    except OperationalError as exc:
        raise StoreError(f"metadata database error: {exc.orig}") from exc
    except DBAPIError as exc:
        raise StoreError(f"metadata database error: {exc.orig}") from exc


_open_lock = threading.Lock()
_open: dict[str, Database] = {}


def open_database(uri: str, *, upgrade: bool | None = None) -> Database:
    """Open (once per process) the database at ``uri`` and make sure its schema is current.

    An empty database is created at the head revision. An embedded SQLite database on an older
    revision is upgraded in place after its file is copied aside; any other database on an older
    revision raises ``SchemaVersionError`` telling the user to run ``loopml db upgrade``.
    ``upgrade=True`` forces the upgrade (what ``loopml db upgrade`` does).
    """
    key = normalise_uri(uri)
    with _open_lock:
        db = _open.get(key)
        if db is None:
            db = Database(key)
            try:
                _ensure_schema(db, upgrade=upgrade)
            except BaseException:
                db.dispose()
                raise
            db._optimize_on_open()
            _open[key] = db
        elif upgrade:
            _ensure_schema(db, upgrade=True)
        return db


_inherited: list[Database] = []


def _forget_connections_in_child() -> None:
    # A forked child must neither use nor close its parent's connections (SQLite forbids both,
    # and a parent thread may have held a pool lock at the fork): it keeps them untouched and
    # opens its own, under a fresh lock.
    global _open_lock
    _inherited.extend(_open.values())
    _open.clear()
    _open_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_connections_in_child)


def close_databases() -> None:
    """Dispose every database opened by ``open_database`` (tests, forks)."""
    with _open_lock:
        for db in _open.values():
            db.dispose()
        _open.clear()


def upgrade_database(uri: str) -> tuple[str | None, str]:
    """Upgrade the database at ``uri`` to the head revision; returns (before, after)."""
    db = Database(uri)
    try:
        before = db.current_revision()
        _ensure_schema(db, upgrade=True)
        return before, HEAD_REVISION
    finally:
        db.dispose()


def _ensure_schema(db: Database, *, upgrade: bool | None) -> None:
    revision = db.current_revision()
    if revision == HEAD_REVISION:
        return
    if revision is not None and revision not in _KNOWN_REVISIONS:
        raise SchemaVersionError(
            f"the database at {_redact(db.uri)} is at schema revision {revision}, which this "
            f"loopml (head {HEAD_REVISION}) does not know; upgrade loopml"
        )
    if revision is None:
        # Another process may be creating the schema right now: the foreign-tables check runs
        # under the migration lock, after that process has committed.
        _run_alembic_upgrade(db, fresh=True)
        return
    if db.is_sqlite or upgrade:
        if db.is_sqlite:
            _backup_sqlite(db, revision)
        _run_alembic_upgrade(db)
        return
    raise SchemaVersionError(
        f"the database at {_redact(db.uri)} is at schema revision {revision}, older than this "
        f"loopml's {HEAD_REVISION}; run `loopml db upgrade` (back it up first)"
    )


def _backup_sqlite(db: Database, revision: str) -> None:
    path = make_url(db.uri).database
    if not path or path == ":memory:":
        return
    src = Path(path)
    dst = src.with_name(f"{src.name}.rev{revision}.{int(time.time())}.bak")
    # SQLite's online backup copies a consistent snapshot, WAL content included.
    raw = db.engine.raw_connection()
    try:
        target = sqlite3.connect(dst)
        try:
            raw.driver_connection.backup(target)  # type: ignore[union-attr]
        finally:
            target.close()
    finally:
        raw.close()


def _run_alembic_upgrade(db: Database, *, fresh: bool = False) -> None:
    """Migrate under a database-wide lock, so concurrent first opens migrate exactly once.

    ``fresh``: the database looked empty; refuse it if, under the lock, it holds tables but no
    revision (someone else's database).
    """
    from loopml.store._migrate import alembic_upgrade

    with db.engine.connect() as conn:
        conn.info["loopml_write"] = True  # SQLite: BEGIN IMMEDIATE, others wait their turn
        try:
            with conn.begin():
                if db.dialect == "postgresql":
                    conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7746353)")
                revision = _revision(conn)
                if revision is None and fresh:
                    _refuse_foreign_tables(db, conn)
                if revision != HEAD_REVISION:
                    alembic_upgrade(conn)
        finally:
            conn.info["loopml_write"] = False


def _refuse_foreign_tables(db: Database, conn: Connection) -> None:
    existing = [t for t in inspect(conn).get_table_names() if t != "alembic_version"]
    if existing:
        raise SchemaVersionError(
            f"the database at {_redact(db.uri)} holds tables {existing[:5]} but no loopml "
            "schema revision; point loopml at an empty database"
        )


def _revision(conn: Connection) -> str | None:
    if not inspect(conn).has_table("alembic_version"):
        return None
    row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
    return row[0] if row else None


def _redact(uri: str) -> str:
    try:
        return make_url(uri).render_as_string(hide_password=True)
    except ArgumentError:
        return uri
