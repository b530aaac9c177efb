"""Compile parsed run-search filters and order keys into SQLAlchemy Core.

This module turns the AST into SQL pieces (scope conditions, per-clause probes, order-by joins)
and the one-statement search ``build_run_search``; ``_search_plan`` picks which statements to
run for a search and pages across them. MLflow semantics:

- a clause on a key matches only runs that have the key (``params.x != 'a'`` skips runs without
  ``x``); ``IS NULL`` matches runs without it, ``IS NOT NULL`` runs with it;
- a NaN latest metric value satisfies no comparison, but counts as present for ``IS NULL``;
- ``LIKE`` is case-sensitive and ``ILIKE`` case-insensitive on every dialect, with ``\\`` as
  the escape character (SQLite's ``LIKE`` folds ASCII case, so there it becomes ``GLOB``);
- ordering puts runs missing a key last in both directions, NaN metrics just before them, and
  breaks ties by ``start_time DESC, run_uuid ASC``.

Besides the parser's operators, a ``Comparison`` here may carry two planner-made operators on a
keyed kind: ``HAS_VALUE`` (the key is present, and for a metric its value is not NaN) and
``IS_NAN`` (the latest metric value is NaN).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Join,
    Select,
    and_,
    case,
    false,
    null,
    or_,
    select,
    true,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler

from loopml.store import CaseSensitiveLike
from loopml.store.tables import latest_metrics, params, runs, tags
from loopml.tracking._filter import And, Comparison, Expr, Or, OrderKey

__all__ = [
    "HAS_VALUE",
    "IS_NAN",
    "KEYED_TABLES",
    "Scope",
    "SemiJoin",
    "attribute_of",
    "build_run_search",
    "driving_join",
    "filter_condition",
    "keyed_alias",
    "order_terms",
    "row_conditions",
    "sorted_search",
    "value_condition",
]

HAS_VALUE = "HAS VALUE"
IS_NAN = "IS NAN"
# How a clause on a metric, param or tag looks its table up: an uncorrelated IN list, a
# correlated EXISTS, or a correlated EXISTS fenced with OFFSET 0 so that PostgreSQL runs it per
# row through the primary key instead of turning it into a (hash) semi-join.
SemiJoin = Literal["in", "exists", "probe"]

_ATTRIBUTE_COLUMNS = {
    "run_id": runs.c.run_uuid,
    "run_name": runs.c.name,
    "status": runs.c.status,
    "start_time": runs.c.start_time,
    "end_time": runs.c.end_time,
    "artifact_uri": runs.c.artifact_uri,
    "user_id": runs.c.user_id,
    "lifecycle_stage": runs.c.lifecycle_stage,
    "experiment_id": runs.c.experiment_id,
}
KEYED_TABLES = {"metric": latest_metrics, "param": params, "tag": tags}
_NULLABLE_ATTRIBUTES = frozenset({"end_time"})


@dataclass(frozen=True)
class Scope:
    """Which runs a search sees: one workspace, some experiments, some lifecycle stages."""

    workspace: str
    experiment_ids: tuple[int, ...]
    lifecycle_stages: tuple[str, ...]

    def conditions(self) -> list[ColumnElement[bool]]:
        """The ``WHERE`` terms on ``runs`` that keep a run in scope."""
        return [
            runs.c.workspace == self.workspace,
            runs.c.experiment_id.in_(self.experiment_ids),
            runs.c.lifecycle_stage.in_(self.lifecycle_stages),
        ]


def build_run_search(
    *,
    workspace: str,
    experiment_ids: list[int],
    expr: Expr | None,
    order_by: list[OrderKey],
    lifecycle_stages: list[str],
    offset: int,
    limit: int,
) -> Select[Any]:
    """Build one ``SELECT run_uuid`` of the runs matching ``expr``, ordered and paged.

    ``_search_plan.search_run_ids`` returns the same ids faster on large experiments by
    choosing among several statements; this single statement is the reference it must match.

    Args:
        workspace: only runs of this workspace match.
        experiment_ids: only runs of these experiments match.
        expr: the parsed filter (``parse_filter``), or None for every run.
        order_by: the parsed order keys (``parse_order_by``), before the default tie-break.
        lifecycle_stages: only runs in these stages (``active``, ``deleted``) match.
        offset: number of matching runs to skip.
        limit: maximum number of run ids to return.

    Returns:
        A Core statement whose single column is ``runs.run_uuid``.
    """
    scope = Scope(workspace, tuple(experiment_ids), tuple(lifecycle_stages))
    conjuncts = [] if expr is None else [expr]
    stmt = sorted_search(scope, conjuncts, order_by, semi_join="in")
    return stmt.offset(offset).limit(limit)


def sorted_search(
    scope: Scope,
    conjuncts: Sequence[Expr],
    order_by: Sequence[OrderKey],
    *,
    driver: Comparison | None = None,
    semi_join: SemiJoin | Mapping[Expr, SemiJoin] = "exists",
    fence: bool = False,
) -> Select[Any]:
    """The runs in ``scope`` matching every conjunct, in full order (the database sorts them).

    With a keyed ``driver`` (one of ``conjuncts``), the statement starts from the rows of that
    clause's ``(key, value)`` index and looks the rest up per run; without one it starts from
    the runs of the scope. ``semi_join`` says how the other clauses look their tables up, for
    all or per clause (``exists`` if not given). ``fence`` finds the matches in a sub-select of
    their own, so that PostgreSQL plans to find them all (not to stop early) before sorting.
    """
    source: FromClause = runs
    where = scope.conditions()
    probe_on: ColumnElement[str] = runs.c.run_uuid
    rest = list(conjuncts)
    if driver is not None:
        rest.remove(driver)
        table = keyed_alias(driver.kind, "driver")
        source = driving_join(table, runs, runs.c.run_uuid == table.c.run_uuid)
        where += row_conditions(table, driver)
        probe_on = table.c.run_uuid
    for item in rest:
        mode = semi_join if isinstance(semi_join, str) else semi_join.get(item, "exists")
        where.append(filter_condition(item, probe_on, semi_join=mode))
    if not fence:
        source, terms = order_terms(source, order_by)
        return select(runs.c.run_uuid).select_from(source).where(*where).order_by(*terms)
    wanted = {runs.c.run_uuid, runs.c.start_time}
    wanted |= {_ATTRIBUTE_COLUMNS[k.key] for k in order_by if k.kind == "attribute"}
    columns = [c for c in runs.c if c in wanted]
    found = select(*columns).select_from(source).where(*where).offset(0).subquery("found")
    ordered, terms = order_terms(
        found, order_by, run_uuid=found.c.run_uuid, attribute=lambda c: found.c[str(c.key)]
    )
    return select(found.c.run_uuid).select_from(ordered).order_by(*terms)


def filter_condition(
    expr: Expr, run_uuid: ColumnElement[str], *, semi_join: SemiJoin = "exists"
) -> ColumnElement[bool]:
    """A boolean over ``runs`` (keyed clauses probe their table for the run ``run_uuid``)."""
    if isinstance(expr, And):
        return and_(
            *(filter_condition(item, run_uuid, semi_join=semi_join) for item in expr.items)
        )
    if isinstance(expr, Or):
        return or_(*(filter_condition(item, run_uuid, semi_join=semi_join) for item in expr.items))
    if expr.kind == "attribute":
        return value_condition(_ATTRIBUTE_COLUMNS[expr.key], expr)
    table = keyed_alias(expr.kind, f"{expr.kind}_probe")
    if expr.op == "IS NULL":
        conditions = [table.c.key == expr.key]
    else:
        conditions = row_conditions(table, expr)
    found: ColumnElement[bool]
    if semi_join == "in":
        found = run_uuid.in_(select(table.c.run_uuid).where(*conditions))
    else:
        rows = select(table.c.run_uuid).where(table.c.run_uuid == run_uuid, *conditions)
        found = (rows.offset(0) if semi_join == "probe" else rows).exists()
    return ~found if expr.op == "IS NULL" else found


def attribute_of(run_uuid: ColumnElement[str]) -> Callable[[ColumnElement[Any]], Any]:
    """Map a ``runs`` column to its value for the run ``run_uuid``, read by primary key."""

    def read(column: ColumnElement[Any]) -> Any:
        return select(column).where(runs.c.run_uuid == run_uuid).scalar_subquery()

    return read


def row_conditions(table: FromClause, cmp: Comparison) -> list[ColumnElement[bool]]:
    """Conditions a row of a keyed table (or alias) meets when it satisfies ``cmp``."""
    conditions: list[ColumnElement[bool]] = [table.c.key == cmp.key]
    if cmp.op == IS_NAN:
        return [*conditions, table.c.is_nan == true()]
    if cmp.op not in ("IS NOT NULL", HAS_VALUE):
        conditions.append(value_condition(table.c.value, cmp))
    if cmp.kind == "metric" and cmp.op != "IS NOT NULL":
        # NaN rows hold a placeholder value that no comparison may see.
        conditions.append(table.c.is_nan == false())
    return conditions


def value_condition(column: ColumnElement[Any], cmp: Comparison) -> ColumnElement[bool]:
    """Apply the comparison's operator and value to ``column``."""
    op, value = cmp.op, cmp.value
    if op == "IS NULL":
        return column.is_(None)
    if op == "IS NOT NULL":
        return column.is_not(None)
    if op in ("IN", "NOT IN"):
        assert isinstance(value, tuple)
        return column.in_(value) if op == "IN" else column.not_in(value)
    if op in ("LIKE", "NOT LIKE"):
        return CaseSensitiveLike(column, str(value), negated=op == "NOT LIKE")
    if op in ("ILIKE", "NOT ILIKE"):
        return (column.ilike if op == "ILIKE" else column.not_ilike)(str(value), escape="\\")
    return {
        "=": column.__eq__,
        "!=": column.__ne__,
        ">": column.__gt__,
        ">=": column.__ge__,
        "<": column.__lt__,
        "<=": column.__le__,
    }[op](value)


def order_terms(
    source: FromClause,
    order_by: Sequence[OrderKey],
    *,
    run_uuid: ColumnElement[str] = runs.c.run_uuid,
    attribute: Callable[[ColumnElement[Any]], Any] | None = None,
    first: int = 0,
) -> tuple[FromClause, list[ColumnElement[Any]]]:
    """Join what ``order_by`` sorts by onto ``source``; return it and the full ORDER BY.

    ``run_uuid`` is the column of ``source`` naming the run, and ``attribute`` maps a ``runs``
    column to the expression to sort by when ``runs`` itself is not in ``source``. The terms end
    with the tie-break; ``first`` numbers the join aliases, so that a caller which sorts by an
    earlier key itself can pass the remaining keys.
    """
    column_of = attribute or (lambda column: column)
    terms: list[ColumnElement[Any]] = []
    for i, key in enumerate(order_by, start=first):
        source, key_terms = _key_terms(source, key, i, run_uuid, column_of)
        terms.extend(key_terms)
    if not any(k.kind == "attribute" and k.key == "start_time" for k in order_by):
        terms.append(column_of(runs.c.start_time).desc())
    return source, [*terms, run_uuid.asc()]


def _key_terms(
    source: FromClause,
    key: OrderKey,
    index: int,
    run_uuid: ColumnElement[str],
    column_of: Callable[[ColumnElement[Any]], Any],
) -> tuple[FromClause, list[ColumnElement[Any]]]:
    """Join what ``key`` sorts by onto ``source``; return the join and its ORDER BY terms."""
    if key.kind == "attribute":
        column = column_of(_ATTRIBUTE_COLUMNS[key.key])
        terms: list[ColumnElement[Any]] = [column.asc() if key.ascending else column.desc()]
        if key.key in _NULLABLE_ATTRIBUTES:
            terms.insert(0, case((column.is_(None), 1), else_=0).asc())
        return source, terms
    table = keyed_alias(key.kind, f"order_{key.kind}_{index}")
    source = source.outerjoin(table, and_(table.c.run_uuid == run_uuid, table.c.key == key.key))
    value: ColumnElement[Any] = table.c.value
    if key.kind == "metric":
        # Missing sorts after NaN, NaN after every number; NaN rows' stored value is ignored.
        rank = case((table.c.run_uuid.is_(None), 2), (table.c.is_nan == true(), 1), else_=0)
        value = case((table.c.is_nan == true(), null()), else_=table.c.value)
    else:
        rank = case((table.c.run_uuid.is_(None), 1), else_=0)
    return source, [rank.asc(), value.asc() if key.ascending else value.desc()]


@functools.cache
def keyed_alias(kind: str, name: str) -> FromClause:
    """The table of a metric, param or tag kind under ``name``, built once per process.

    A probe's alias is shared by sibling sub-selects, where SQL scopes keep them apart; only an
    enclosing ``FROM`` would correlate it, and no statement encloses a probe in another.
    """
    return KEYED_TABLES[kind].alias(name)


class _DrivingJoin(Join):
    """An inner join SQLite must run left side first (``CROSS JOIN``); a plain join elsewhere."""

    inherit_cache = True


def driving_join(left: FromClause, right: FromClause, onclause: ColumnElement[bool]) -> Join:
    """Join ``right`` to ``left`` (a table or alias) so that SQLite loops over ``left`` first.

    SQLite's planner never reorders the tables of a ``CROSS JOIN``; without statistics it
    otherwise tends to start from the scope's runs and sort them all.
    """
    return _DrivingJoin(left, right, onclause)


@compiles(_DrivingJoin, "sqlite")
def _compile_driving_join(element: _DrivingJoin, compiler: SQLCompiler, **kw: Any) -> str:
    # The left side is a single table or alias, so the first " JOIN " is this join's keyword.
    return compiler.visit_join(element, **kw).replace(" JOIN ", " CROSS JOIN ", 1)
