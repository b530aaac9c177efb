"""Run a run search as a few statements that let LIMIT stop early, instead of one big sort.

``build_run_search`` compiles a search into one statement that scores every run of the scope
and sorts them: hundreds of milliseconds on a 100k-run experiment. ``search_run_ids`` returns
the same page by choosing, from capped counts on the indexes:

- a *sort*: when a clause (or the scope itself) matches few rows, or the page is so deep that
  any walk would read more, start from those rows, look the other clauses up and sort;
- a *walk*: otherwise read the runs in order from an index (the first order key's
  ``(key, value)`` index, or ``ix_runs_experiment_start`` for ``start_time``), look each run's
  scope and clauses up through the primary keys, and stop once the page is full. A first chunk
  of the index measures how often runs match; if the rest of the walk would cost more than a
  sort, the sort runs instead.

A walk has a single table in its ``FROM``; every lookup is a correlated sub-select fenced with
``OFFSET 0``, which SQLite runs per row anyway and PostgreSQL then cannot turn into a hash join
over a whole table. Ordering by a metric, param or tag puts the runs with a value first, then
(metrics) the NaN ones, then the runs without the key, so the walk is followed by two
sub-searches ordered by the remaining keys; a page that starts past a part counts that part. A
first value shared by very many runs (a param with few values) is searched by the next keys.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeGuard

from sqlalchemy import ColumnElement, Connection, Select, false, func, select

from loopml.store.tables import runs
from loopml.tracking._filter import And, Comparison, Expr, OrderKey
from loopml.tracking._search_sql import (
    HAS_VALUE,
    IS_NAN,
    Scope,
    SemiJoin,
    attribute_of,
    filter_condition,
    keyed_alias,
    order_terms,
    sorted_search,
    value_condition,
)

__all__ = ["Tuning", "search_run_ids"]

_WHOLE_KEY = ("IS NOT NULL", HAS_VALUE, IS_NAN)  # operators that test only that a row exists
_PER_EXPERIMENT_BOUNDS = 8  # a start_time walk over more experiments bounds its chunk at once


@dataclass(frozen=True)
class Tuning:
    """The planner's thresholds; tests shrink them to drive every path on small data."""

    small_driver: int = 1000  # a driver with fewer rows than this is sorted whole
    first_chunk: int = 1000  # index entries a walk reads before it estimates the rest
    tie_group: int = 4000  # a first value with this many entries is searched by the next keys
    # The cost of a walked index entry relative to a row of a sort, fitted on 100k runs:
    # ``entry_cost`` to read it, plus ``walk_cost`` for each lookup by primary key (the scope of
    # a metric, param or tag entry, each clause). PostgreSQL hashes a sort's rows but runs a
    # walk's lookups one by one. ``walk_cost`` 0 always walks, infinity sorts when it can.
    entry_cost: float = 0.2
    walk_cost: float = 1.0
    walk_cost_postgresql: float = 3.0
    # A sort started from a clause's index reads its rows in random order, and each run by
    # primary key; one started from the scope reads the runs in index order.
    clause_cost: float = 1.5
    count_cap: int = 1_000_000  # counts stop here


TUNING = Tuning()


def search_run_ids(
    conn: Connection,
    *,
    workspace: str,
    experiment_ids: list[int],
    expr: Expr | None,
    order_by: list[OrderKey],
    lifecycle_stages: list[str],
    offset: int,
    limit: int,
) -> list[str]:
    """The ids of the runs matching ``expr``, ordered and paged as ``build_run_search`` does.

    Args:
        conn: the connection to run the statements on (they only read).
        workspace: only runs of this workspace match.
        experiment_ids: only runs of these experiments match.
        expr: the parsed filter (``parse_filter``), or None for every run.
        order_by: the parsed order keys (``parse_order_by``), before the default tie-break.
        lifecycle_stages: only runs in these stages (``active``, ``deleted``) match.
        offset: number of matching runs to skip.
        limit: maximum number of run ids to return.

    Returns:
        Run ids, in order.
    """
    if limit <= 0 or not experiment_ids or not lifecycle_stages:
        return []
    scope = Scope(workspace, tuple(experiment_ids), tuple(lifecycle_stages))
    conjuncts: list[Expr] = []
    if expr is not None:
        conjuncts = list(expr.items) if isinstance(expr, And) else [expr]
    keys: list[OrderKey] = []
    for key in order_by:  # a repeated key cannot change the order
        if all((k.kind, k.key) != (key.kind, key.key) for k in keys):
            keys.append(key)
    return _Planner(conn, scope, TUNING).search(conjuncts, keys, offset, limit)


@dataclass(frozen=True)
class _Sort:
    """The verdict that sorting from ``driver`` (None: the scope), of ``rows`` rows, is best.

    ``sparse``: a walk found few matches where PostgreSQL's estimates would expect many.
    """

    driver: Comparison | None
    rows: int
    sparse: bool = False


class _Segment(Protocol):
    """Consecutive rows of the result, fetched by offset and limit or counted."""

    count_first: bool  # count it first when the page starts past its start

    def fetch(self, offset: int, limit: int) -> list[str] | _Sort: ...

    def count(self) -> int: ...


class _Planner:
    """Chooses and runs the statements of one search on one connection."""

    def __init__(self, conn: Connection, scope: Scope, tuning: Tuning) -> None:
        self.conn, self.scope, self.tuning = conn, scope, tuning
        self.postgresql = conn.dialect.name == "postgresql"
        self.walk_cost = tuning.walk_cost_postgresql if self.postgresql else tuning.walk_cost
        self._sizes: dict[object, tuple[int, bool]] = {}  # rows, and whether exact

    def search(
        self, conjuncts: list[Expr], keys: list[OrderKey], offset: int, limit: int
    ) -> list[str]:
        """The page of runs matching every conjunct, ordered by ``keys``."""
        if limit <= 0:
            return []
        driver, rows, _ = self.cheapest(conjuncts, self.tuning.small_driver)
        how = _Sort(driver, rows) if rows < self.tuning.small_driver else None
        keyed = bool(keys) and keys[0].kind != "attribute"
        if how is None and (keyed or not keys or keys[0].key == "start_time"):
            how = self._deep_page(conjuncts, keys, offset + limit)
            if how is None:
                parts = self._keyed_parts(conjuncts, keys, offset + limit) if keyed else None
                found = self._concat(
                    parts or iter([_RunsWalk(self, conjuncts, keys)]), offset, limit
                )
                if isinstance(found, list):
                    return found
                how = found
        if how is None:  # ordered by a run attribute without an index: sort them all
            how = _Sort(*self.cheapest(conjuncts, self.tuning.count_cap)[:2])
        return self.sort(conjuncts, keys, how, offset, limit)

    def _deep_page(self, conjuncts: list[Expr], keys: list[OrderKey], need: int) -> _Sort | None:
        """A sort if even a walk whose every entry matched would cost more; else None (walk)."""
        if need <= self.tuning.first_chunk or self.walk_cost <= 0:
            return None
        if keys and keys[0].kind != "attribute":
            lookups = 1 + sum(not _on_key(c, keys[0]) for c in conjuncts)
        else:
            lookups = len(conjuncts)
        cap = self.tuning.count_cap
        if not math.isinf(self.walk_cost):
            cap = min(cap, math.ceil(need * self.entry_cost(lookups)) + 1)
        driver, rows, cost = self.cheapest(conjuncts, cap)
        return _Sort(driver, rows) if cost < cap else None

    def _keyed_parts(
        self, conjuncts: list[Expr], keys: list[OrderKey], need: int
    ) -> Iterator[_Segment | _Sort]:
        """Runs with a value for ``keys[0]``, then (metrics) with NaN, then without the key."""
        key, rest = keys[0], keys[1:]
        ops = {c.op for c in conjuncts if _on_key(c, key)}
        if not ops & {"IS NULL", IS_NAN}:
            yield from self._valued(conjuncts, keys, need)
        if key.kind == "metric" and ops <= {"IS NOT NULL", IS_NAN}:
            yield _Part(self, [*conjuncts, Comparison(key.kind, key.key, IS_NAN, None)], rest)
        if ops <= {"IS NULL"}:
            yield _Part(self, [*conjuncts, Comparison(key.kind, key.key, "IS NULL", None)], rest)

    def _valued(
        self, conjuncts: list[Expr], keys: list[OrderKey], need: int
    ) -> Iterator[_Segment | _Sort]:
        """Runs with a value for ``keys[0]`` in its order; big tie groups by the later keys.

        A walk sorts a tie group whole; a first value with ``tie_group`` entries instead becomes
        a search of its own, once a sample of the scope shows that enough runs would match.
        """
        key, sampled = keys[0], False
        while True:
            walk = _KeyedWalk(self, conjuncts, keys)
            first, _, group_end = walk.bounds()
            if group_end is None or group_end != first:
                yield walk
                return
            if not sampled:
                sampled = True
                verdict = walk.verdict(walk.sample(), need, self.tuning.first_chunk)
                if verdict is not None:
                    yield verdict  # the first segment: sort the whole search
                    return
            yield _Part(self, [*conjuncts, Comparison(key.kind, key.key, "=", first)], keys[1:])
            past = Comparison(key.kind, key.key, ">" if key.ascending else "<", first)
            conjuncts = [*conjuncts, past]

    def _concat(
        self, segments: Iterator[_Segment | _Sort], offset: int, limit: int
    ) -> list[str] | _Sort:
        """Page through segments laid end to end; count a segment only when the page is past it.

        A first segment that would rather sort hands that verdict back, to sort the whole search;
        a later one sorts its own rows.
        """
        out: list[str] = []
        index = -1
        while len(out) < limit and (segment := next(segments, None)) is not None:
            index += 1
            if isinstance(segment, _Sort):  # only ever first: sort the whole search
                return segment
            if offset and segment.count_first:
                size = segment.count()
                if size <= offset:
                    offset -= size
                    continue
            rows = segment.fetch(offset, limit - len(out))
            if isinstance(rows, _Sort):
                if index == 0:
                    return rows
                assert isinstance(segment, _Walk)
                rows = self.sort(segment.walked, segment.keys, rows, offset, limit - len(out))
            if rows:
                out += rows
                offset = 0
            elif offset:
                offset -= segment.count()
        return out

    def sort(
        self, conjuncts: list[Expr], keys: list[OrderKey], how: _Sort, offset: int, limit: int
    ) -> list[str]:
        """The page from one statement that finds every match and sorts them."""
        semi_join = self._semi_joins(conjuncts, how.rows)
        stmt = sorted_search(
            self.scope,
            conjuncts,
            keys,
            driver=how.driver,
            semi_join=semi_join,
            fence=self.postgresql and how.sparse,
        )
        return self.fetch(stmt, offset, limit)

    def count(self, conjuncts: list[Expr]) -> int:
        """How many runs match every conjunct."""
        driver, rows, _ = self.cheapest(conjuncts, self.tuning.count_cap)
        semi_join = self._semi_joins(conjuncts, rows)
        found = sorted_search(self.scope, conjuncts, [], driver=driver, semi_join=semi_join)
        counted = select(func.count()).select_from(found.order_by(None).subquery())
        return int(self.conn.execute(counted).scalar_one())

    def entry_cost(self, lookups: int) -> float:
        """What walking one index entry costs, in rows of a sort, with ``lookups`` lookups."""
        return self.tuning.entry_cost + self.walk_cost * lookups

    def count_rows(self, rows: Select[Any]) -> int:
        """How many rows ``rows`` has, up to ``count_cap``."""
        capped = rows.limit(self.tuning.count_cap).subquery()
        return int(self.conn.execute(select(func.count()).select_from(capped)).scalar_one())

    def fetch(self, stmt: Select[Any], offset: int, limit: int) -> list[str]:
        """Run ``stmt`` for one page of run ids."""
        return list(self.conn.execute(stmt.offset(offset).limit(limit)).scalars())

    def _semi_joins(self, conjuncts: list[Expr], rows: int) -> dict[Expr, SemiJoin]:
        """IN for a clause listing fewer rows than probing it per driven row would read.

        A clause without a size (an OR, an attribute) is an IN list once a sort is large.
        """
        if rows < self.tuning.small_driver:
            return {}
        cap = math.ceil(rows * 1.5) + 1  # a probe reads about 1.5 B-tree pages per run
        listed = [_whole_key(c) if _is_null(c) else c for c in conjuncts]
        sizes = self._sizes_of(listed, cap)
        return {
            c: "in" if size is None or size < cap else "exists"
            for c, size in zip(conjuncts, sizes, strict=True)
        }

    def cheapest(
        self, conjuncts: Sequence[Expr], cap: int
    ) -> tuple[Comparison | None, int, float]:
        """The keyed clause (None: the scope's runs) cheapest to start a sort from.

        Returns the driver, its rows and its cost in scope rows; row counts stop at ``cap``.
        """
        candidates: list[Expr | None] = [None, *conjuncts]
        driver: Comparison | None = None
        size, best = cap, math.inf
        for item, rows in zip(candidates, self._sizes_of(candidates, cap), strict=True):
            keyed = isinstance(item, Comparison) and item.kind != "attribute"
            cost = None if rows is None else rows * (self.tuning.clause_cost if keyed else 1.0)
            if cost is not None and cost < best:
                best, size = cost, rows or 0
                driver = item if keyed and isinstance(item, Comparison) else None
        return driver, size, best

    def _sizes_of(self, items: Sequence[Expr | None], cap: int) -> list[int | None]:
        """Rows each driver starts from (upper bounds, up to ``cap``); None if it cannot drive.

        The counts not known yet run as one statement, each reading an index up to ``cap``.
        """
        keys = [_size_key(item) for item in items]
        missing: dict[object, Select[Any]] = {}
        for item, key in zip(items, keys, strict=True):
            known = self._sizes.get(key)
            if key is None or isinstance(key, int) or (known and (known[1] or known[0] >= cap)):
                continue
            missing[key] = self._entries(item)
        if missing:
            counts = [
                select(func.count()).select_from(rows.limit(cap).subquery()).scalar_subquery()
                for rows in missing.values()
            ]
            for key, size in zip(missing, self.conn.execute(select(*counts)).one(), strict=True):
                self._sizes[key] = (int(size), int(size) < cap)
        return [
            key if key is None or isinstance(key, int) else min(self._sizes[key][0], cap)
            for key in keys
        ]

    def _entries(self, item: Expr | None) -> Select[Any]:
        """The index entries a driver starts from (the scope's runs for None)."""
        if not isinstance(item, Comparison):
            return select(runs.c.experiment_id).where(
                runs.c.experiment_id.in_(self.scope.experiment_ids)
            )
        table = keyed_alias(item.kind, "counted")
        rows = select(table.c.key).where(table.c.key == item.key)
        if item.op in _WHOLE_KEY:
            return rows
        # Leaves out is_nan, so that the count reads the index alone.
        return rows.where(value_condition(table.c.value, item))


def _size_key(item: Expr | None) -> object:
    """What a driver's row count is cached under: None if it cannot drive, an int if known."""
    if item is None:
        return "scope"
    if not isinstance(item, Comparison) or item.op == "IS NULL":
        return None
    if item.kind == "attribute":
        # Run ids are looked up by primary key; other attributes have no index to drive.
        if item.key == "run_id" and item.op in ("=", "IN"):
            return len(item.value) if isinstance(item.value, tuple) else 1
        return None
    return (item.kind, item.key) if item.op in _WHOLE_KEY else item


class _Part:
    """A sub-search laid after the rows before it (a tie group, NaN or missing runs of a key)."""

    count_first = True

    def __init__(self, planner: _Planner, conjuncts: list[Expr], keys: list[OrderKey]) -> None:
        self.planner, self.conjuncts, self.keys = planner, conjuncts, keys

    def fetch(self, offset: int, limit: int) -> list[str]:
        return self.planner.search(self.conjuncts, self.keys, offset, limit)

    def count(self) -> int:
        return self.planner.count(self.conjuncts)


class _Walk:
    """Runs read in index order with per-run probes; a first chunk measures the match rate."""

    ascending: bool
    lookups: int  # per walked entry, by primary key: the scope (if not walking runs), clauses
    count_first = False

    def __init__(self, planner: _Planner, conjuncts: list[Expr], keys: list[OrderKey]) -> None:
        self.planner, self.conjuncts, self.keys = planner, conjuncts, keys
        self.walked = conjuncts  # what exactly the walked runs match, to count or sort them

    def statement(self, bound: Any, *, within: bool) -> Select[Any]:
        """The walk, over the index entries up to ``bound`` (``within``) or past it."""
        raise NotImplementedError

    def boundary(self) -> Any:
        """The sort value ``first_chunk`` entries into the index, or None if it has fewer."""
        raise NotImplementedError

    def chunk_entries(self, bound: Any) -> int:
        """How many index entries the walk reads up to ``bound``."""
        raise NotImplementedError

    def bound_condition(
        self, column: ColumnElement[Any], bound: Any, within: bool
    ) -> list[ColumnElement[bool]]:
        """``column`` up to and including ``bound`` in walk order, or strictly past it."""
        if bound is None:
            return []
        if within:
            return [column <= bound if self.ascending else column >= bound]
        return [column > bound if self.ascending else column < bound]

    def fetch(self, offset: int, limit: int) -> list[str] | _Sort:
        """The page, or the verdict that sorting every match costs less than walking on."""
        planner, need = self.planner, offset + limit
        bound = self.boundary()
        if bound is None:
            return planner.fetch(self.statement(None, within=True), offset, limit)
        head = planner.fetch(self.statement(bound, within=True), 0, need)
        if len(head) == need:
            return head[offset:]
        verdict = self.verdict(len(head), need, self.chunk_entries(bound))
        if verdict is not None:
            return verdict
        tail = planner.fetch(
            self.statement(bound, within=False),
            max(0, offset - len(head)),
            need - max(offset, len(head)),
        )
        return head[offset:] + tail

    def verdict(self, found: int, need: int, entries: int) -> _Sort | None:
        """A sort, if walking on at the rate of ``found`` runs in ``entries`` costs more."""
        planner = self.planner
        if planner.walk_cost <= 0 or found >= need:
            return None
        rate = found / max(entries, 1)
        expected = (need - found) / rate * planner.entry_cost(self.lookups) if found else math.inf
        cap = planner.tuning.count_cap if math.isinf(expected) else math.ceil(expected) + 1
        if len(planner.scope.experiment_ids) > 1 and isinstance(self, _RunsWalk):
            # Past the chunk, the experiments' runs must be merged: a sort of them all anyway.
            cap, expected = planner.tuning.count_cap, math.inf
        driver, rows, cost = planner.cheapest(self.conjuncts, cap)
        return _Sort(driver, rows, sparse=True) if cost < cap or math.isinf(expected) else None

    def count(self) -> int:
        return self.planner.count(self.walked)


class _KeyedWalk(_Walk):
    """The runs with a (non-NaN) value for a metric, param or tag, from its ``(key, value)``."""

    def __init__(self, planner: _Planner, conjuncts: list[Expr], keys: list[OrderKey]) -> None:
        key = keys[0]
        super().__init__(planner, conjuncts, keys)
        self.walked = [*conjuncts, Comparison(key.kind, key.key, HAS_VALUE, None)]
        self.key, self.ascending = key, key.ascending
        self._bounds: tuple[Any, Any, Any] | None = None
        # Clauses on the walked key test the walked row itself.
        self.on_key = [c for c in conjuncts if _on_key(c, key) and c.op not in _WHOLE_KEY]
        self.rest = [c for c in conjuncts if not _on_key(c, key)]
        self.lookups = 1 + len(self.rest)

    def _index(self, alias: str, *, valued: bool = False) -> tuple[Any, list[Any]]:
        """The walked key's entries (``valued``: without NaN metrics) and their conditions."""
        table = keyed_alias(self.key.kind, alias)
        where = [table.c.key == self.key.key]
        where += [value_condition(table.c.value, c) for c in self.on_key]
        if valued and self.key.kind == "metric":
            where.append(table.c.is_nan == false())
        return table, where

    def _order(self, table: Any) -> ColumnElement[Any]:
        return table.c.value.asc() if self.ascending else table.c.value.desc()

    def _probes(self, run_uuid: ColumnElement[str]) -> list[ColumnElement[bool]]:
        """The other clauses and the scope, looked up for the run ``run_uuid``."""
        # Clauses on metrics, params and tags first: they need no read of the run itself.
        on_run = [c for c in self.rest if _mentions_attribute(c)]
        probes = [
            filter_condition(c, run_uuid, semi_join="probe")
            for c in self.rest
            if not _mentions_attribute(c)
        ]
        in_scope = select(runs.c.run_uuid).where(
            runs.c.run_uuid == run_uuid,
            *self.planner.scope.conditions(),
            *(filter_condition(c, runs.c.run_uuid, semi_join="probe") for c in on_run),
        )
        return [*probes, in_scope.offset(0).exists()]

    def statement(self, bound: Any, *, within: bool) -> Select[Any]:
        walked, where = self._index("walk", valued=True)
        run_uuid = walked.c.run_uuid
        where += self.bound_condition(walked.c.value, bound, within)
        source, terms = order_terms(
            walked, self.keys[1:], run_uuid=run_uuid, attribute=attribute_of(run_uuid), first=1
        )
        stmt = select(run_uuid).select_from(source).where(*where, *self._probes(run_uuid))
        return stmt.order_by(self._order(walked), *terms)

    def sample(self) -> int:
        """How many of the scope's ``first_chunk`` newest runs are runs the walk would find.

        Not the walk's own first entries: in a tie group those follow the order rows were
        stored in, which may well be another experiment's.
        """
        start = runs.c.start_time
        newest = select(runs.c.run_uuid).where(
            runs.c.experiment_id.in_(self.planner.scope.experiment_ids)
        )
        head = newest.order_by(start.desc()).limit(self.planner.tuning.first_chunk).subquery()
        run_uuid = head.c.run_uuid
        on_key = [*self.on_key, self.walked[-1]]  # and the key's (non-NaN) value itself
        probes = [filter_condition(c, run_uuid, semi_join="probe") for c in on_key]
        matched = select(func.count()).select_from(head).where(*probes, *self._probes(run_uuid))
        return int(self.planner.conn.execute(matched).scalar_one())

    def bounds(self) -> tuple[Any, Any, Any]:
        """The first sort value, and those ``first_chunk`` and ``tie_group`` entries in.

        A value is None where the index has fewer entries.
        """
        if self._bounds is None:
            table, where = self._index("entries")
            ordered = select(table.c.value).where(*where).order_by(self._order(table))
            at = [1, self.planner.tuning.first_chunk, self.planner.tuning.tie_group]
            stmt = select(*(ordered.offset(n - 1).limit(1).scalar_subquery() for n in at))
            first, bound, group_end = self.planner.conn.execute(stmt).one()
            self._bounds = (first, bound, group_end)
        return self._bounds

    def boundary(self) -> Any:
        return self.bounds()[1]

    def chunk_entries(self, bound: Any) -> int:
        table, where = self._index("entries")
        where += self.bound_condition(table.c.value, bound, True)
        return self.planner.count_rows(select(table.c.key).where(*where))


class _RunsWalk(_Walk):
    """The runs of the scope by ``start_time``, from ``ix_runs_experiment_start``."""

    def __init__(self, planner: _Planner, conjuncts: list[Expr], keys: list[OrderKey]) -> None:
        super().__init__(planner, conjuncts, keys)
        self.ascending = bool(keys) and keys[0].ascending
        self.lookups = len(conjuncts)

    def statement(self, bound: Any, *, within: bool) -> Select[Any]:
        where = self.planner.scope.conditions()
        where += self.bound_condition(runs.c.start_time, bound, within)
        where += [filter_condition(c, runs.c.run_uuid, semi_join="probe") for c in self.conjuncts]
        source, terms = order_terms(runs, self.keys)
        return select(runs.c.run_uuid).select_from(source).where(*where).order_by(*terms)

    def chunk_entries(self, bound: Any) -> int:
        start, experiments = runs.c.start_time, runs.c.experiment_id
        within = select(experiments).where(experiments.in_(self.planner.scope.experiment_ids))
        return self.planner.count_rows(within.where(*self.bound_condition(start, bound, True)))

    def boundary(self) -> Any:
        start, experiment_ids = runs.c.start_time, self.planner.scope.experiment_ids
        ordered = select(start).order_by(start.asc() if self.ascending else start.desc())
        nth = ordered.offset(self.planner.tuning.first_chunk - 1).limit(1)
        if len(experiment_ids) > _PER_EXPERIMENT_BOUNDS:  # one sort of the scope's entries
            return self.planner.conn.execute(
                nth.where(runs.c.experiment_id.in_(experiment_ids))
            ).scalar()
        # One index range per experiment; the chunk ends where the first of them runs out.
        found = []
        for experiment_id in experiment_ids:
            bound = self.planner.conn.execute(nth.where(runs.c.experiment_id == experiment_id))
            found += [b for b in bound.scalars() if b is not None]
        return (min(found) if self.ascending else max(found)) if found else None


def _whole_key(item: Comparison) -> Comparison:
    """The clause listing every run with ``item``'s key."""
    return Comparison(item.kind, item.key, "IS NOT NULL", None)


def _is_null(item: Expr) -> TypeGuard[Comparison]:
    """Whether ``item`` is ``<metric, param or tag> IS NULL``."""
    return isinstance(item, Comparison) and item.op == "IS NULL" and item.kind != "attribute"


def _mentions_attribute(item: Expr) -> bool:
    """Whether ``item`` tests a column of the run itself (status, name, times, ...)."""
    if isinstance(item, Comparison):
        return item.kind == "attribute"
    return any(_mentions_attribute(i) for i in item.items)


def _on_key(item: Expr, key: OrderKey) -> TypeGuard[Comparison]:
    """Whether ``item`` is a comparison on the same metric, param or tag as ``key``."""
    return isinstance(item, Comparison) and (item.kind, item.key) == (key.kind, key.key)
