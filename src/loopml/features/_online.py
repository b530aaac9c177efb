"""Online stores: the latest feature values per entity, read by key in microseconds.

A store keeps one record per (feature view, entity key): the row's event and created
timestamps (µs since the epoch) and the view's feature values. Writes are "newer wins": a row
replaces the stored one only if its (event, created) timestamps are not older, so
re-materializing an old window never overwrites fresher values.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from loopml.errors import InvalidInput, StoreError

__all__ = ["OnlineStore", "SqliteOnlineStore", "open_online_store"]

Record = tuple[Any, ...]  # (key, event_ts µs, *values in the requested feature order)


class OnlineStore(ABC):
    """Latest feature values per (view, entity key)."""

    uri: str

    @abstractmethod
    def prepare(self, table: str, features: Sequence[str]) -> None:
        """Make room for a view's features (idempotent; new features start null)."""

    @abstractmethod
    def write(
        self,
        table: str,
        features: Sequence[str],
        rows: Sequence[tuple[Any, ...]],
    ) -> int:
        """Upsert rows ``(key, event_ts_us, created_us, *values)``, newer wins; rows written."""

    @abstractmethod
    def read(
        self, table: str, keys: Sequence[Any], features: Sequence[str]
    ) -> list[Record | None]:
        """For each key, its stored ``(key, event_ts, *values)`` or None."""

    @abstractmethod
    def drop(self, table: str) -> None:
        """Forget every record of a view."""

    @abstractmethod
    def count(self, table: str) -> int:
        """How many entities a view has online."""

    def reader(
        self, table: str, features: Sequence[str]
    ) -> Callable[[Sequence[Any]], list[Record | None]]:
        """A function reading ``features`` of ``table`` for a list of keys (prepared once)."""
        names = list(features)
        return lambda keys: self.read(table, keys, names)

    def invalidate(self) -> None:  # noqa: B027 - stores without caches need nothing
        """Forget cached table layouts (after definitions changed elsewhere)."""

    def close(self) -> None:  # noqa: B027 - stores without connections need nothing
        """Release connections."""


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class SqliteOnlineStore(OnlineStore):
    """One SQLite file (WAL), one table per view keyed by the entity key (embedded default)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.uri = f"sqlite:///{self.path}"
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._columns: dict[str, set[str]] = {}
        self._sql: dict[tuple[str, tuple[str, ...], int], str] = {}
        self._lock = threading.RLock()
        conn = self._conn()
        for attempt in range(100):  # another process may hold a lock while we switch to WAL
            try:
                mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
                if str(mode).lower() != "wal":
                    conn.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as exc:
                if attempt == 99:
                    raise StoreError(f"online store {self.path}: {exc}") from exc
                time.sleep(0.05)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path,
                timeout=30.0,
                isolation_level=None,
                cached_statements=256,
                check_same_thread=False,  # used by one thread; close() may run in another
            )
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def _existing(self, table: str) -> set[str]:
        cols = self._columns.get(table)
        if cols is None:
            rows = self._conn().execute(f"PRAGMA table_info({_ident(table)})").fetchall()
            cols = {r[1] for r in rows}
            if cols:  # "no table yet" is not remembered: another process may create it
                self._columns[table] = cols
        return cols

    def prepare(self, table: str, features: Sequence[str]) -> None:
        with self._lock:
            conn = self._conn()
            self._columns.pop(table, None)
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {_ident(table)} "
                "(k PRIMARY KEY, ts INTEGER NOT NULL, created INTEGER NOT NULL) WITHOUT ROWID"
            )
            have = self._existing(table)
            for f in features:
                column = "v_" + f
                if column not in have:
                    try:
                        conn.execute(f"ALTER TABLE {_ident(table)} ADD COLUMN {_ident(column)}")
                    except sqlite3.OperationalError as exc:
                        if "duplicate column" not in str(exc):  # another process added it
                            raise StoreError(f"online store {self.path}: {exc}") from exc
            self._columns.pop(table, None)
            self._sql.clear()

    def write(self, table: str, features: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> int:
        if not rows:
            return 0
        cols = ["k", "ts", "created", *("v_" + f for f in features)]
        missing = [c for c in cols if c not in self._existing(table)]
        if missing:
            raise InvalidInput(
                f"online table {table!r} lacks {missing[0]!r}: apply the view first"
            )
        names = ", ".join(_ident(c) for c in cols)
        marks = ", ".join("?" * len(cols))
        sets = ", ".join(f"{_ident(c)} = excluded.{_ident(c)}" for c in cols[1:])
        sql = (
            f"INSERT INTO {_ident(table)} ({names}) VALUES ({marks}) ON CONFLICT(k) DO UPDATE SET "
            f"{sets} WHERE excluded.ts > ts OR (excluded.ts = ts AND excluded.created >= created)"
        )
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:  # still locked after the 30 s busy timeout
            raise StoreError(f"online store {self.path}: {exc}") from exc
        try:
            conn.executemany(sql, rows)
            conn.execute("COMMIT")
        except BaseException as exc:
            conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.OperationalError):
                raise StoreError(f"online store {self.path}: {exc}") from exc
            raise
        return len(rows)

    def _select(self, table: str, features: Sequence[str], n: int) -> str:
        key = (table, tuple(features), n)
        sql = self._sql.get(key)
        if sql is None:
            have = self._existing(table)
            if not have:
                return ""
            cols = ", ".join(_ident("v_" + f) if "v_" + f in have else "NULL" for f in features)
            where = "k = ?" if n == 1 else f"k IN ({', '.join('?' * n)})"
            sql = f"SELECT k, ts, {cols} FROM {_ident(table)} WHERE {where}"
            self._sql[key] = sql
        return sql

    def reader(
        self, table: str, features: Sequence[str]
    ) -> Callable[[Sequence[Any]], list[Record | None]]:
        names = list(features)
        one = self._select(table, names, 1)
        if not one:  # no table yet: look again on each call until there is one
            return super().reader(table, names)
        local = self._local
        connect = self._conn

        def read(keys: Sequence[Any]) -> list[Record | None]:
            if len(keys) != 1:
                return self.read(table, keys, names)
            conn = getattr(local, "conn", None) or connect()
            try:
                row = conn.execute(one, keys).fetchone()
            except OverflowError:
                raise InvalidInput("an entity key is out of the Int64 range") from None
            return [row]

        return read

    def read(
        self, table: str, keys: Sequence[Any], features: Sequence[str]
    ) -> list[Record | None]:
        n = len(keys)
        if n == 0:
            return []
        sql = self._select(table, features, n if n <= 500 else 0)
        if not sql:
            return [None] * n
        conn = self._conn()
        try:
            return self._read(conn, sql, table, keys, features)
        except OverflowError:
            raise InvalidInput("an entity key is out of the Int64 range") from None

    def _read(
        self,
        conn: sqlite3.Connection,
        sql: str,
        table: str,
        keys: Sequence[Any],
        features: Sequence[str],
    ) -> list[Record | None]:
        n = len(keys)
        if n == 1:
            return [conn.execute(sql, keys).fetchone()]
        if n <= 500:
            found = {row[0]: row for row in conn.execute(sql, keys)}
        else:
            found = {}
            for i in range(0, n, 500):
                part = keys[i : i + 500]
                sql_part = self._select(table, features, len(part))
                found.update((row[0], row) for row in conn.execute(sql_part, part))
        get = found.get
        return [get(k) for k in keys]

    def invalidate(self) -> None:
        with self._lock:
            self._columns.clear()
            self._sql.clear()

    def drop(self, table: str) -> None:
        with self._lock:
            self._conn().execute(f"DROP TABLE IF EXISTS {_ident(table)}")
            self._columns.pop(table, None)
            self._sql.clear()

    def count(self, table: str) -> int:
        if not self._existing(table):
            return 0
        return int(self._conn().execute(f"SELECT count(*) FROM {_ident(table)}").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            try:
                conn.close()
            except sqlite3.ProgrammingError:  # made in a thread that is gone: let it be
                pass
        self._local = threading.local()


def open_online_store(uri: str) -> OnlineStore:
    """The online store at ``uri``: ``sqlite:///path`` (or a path) or ``redis://host:port/db``
    (``?prefix=`` sets a key prefix)."""
    if uri.startswith(("redis://", "rediss://", "unix://")):
        from loopml.features._redis import RedisOnlineStore

        parts = urlsplit(uri)
        prefix = parse_qs(parts.query).get("prefix", ["loopml:"])[0]
        base = parts._replace(query="").geturl()
        return RedisOnlineStore(base, prefix=prefix)
    if uri.startswith("sqlite:///"):
        return SqliteOnlineStore(uri.removeprefix("sqlite:///"))
    if "://" in uri:
        raise InvalidInput(
            f"online store URI {uri!r} must be sqlite:///path or redis://host:port/db"
        )
    return SqliteOnlineStore(uri)
