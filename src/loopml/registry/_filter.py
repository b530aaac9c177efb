"""MLflow's registry search grammar, compiled to SQL over registered models and versions.

A filter is ``AND``-joined clauses ``<field> <op> <value>``: strings in single or double quotes
(a doubled quote escapes it), integers bare, ``IN`` / ``NOT IN`` take a parenthesised list.
``LIKE`` is case-sensitive and ``ILIKE`` not, with ``%`` and ``_`` wildcards, as for runs.

- models: ``name``, ``tags.<key>``;
- versions: ``name``, ``version_number``, ``run_id``, ``source`` (``source_path``),
  ``current_stage``, ``status``, ``user_id``, ``tags.<key>``.

``order_by`` items: ``name``, ``creation_timestamp``, ``last_updated_timestamp`` (and for versions
``version_number``), each optionally ``ASC`` / ``DESC``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Table, exists, func, select

from loopml.errors import InvalidInput
from loopml.store import compare_column

__all__ = ["compile_filter", "compile_order"]

_STRING = r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\""
_CLAUSE = re.compile(
    rf"""\s*(?P<field>tags?\.(?:`[^`]+`|"[^"]+"|[\w./\-]+)|[A-Za-z_]+)
        \s*(?P<op>!=|>=|<=|==|=|>|<|\bNOT\s+IN\b|\bIN\b|\bNOT\s+ILIKE\b|\bNOT\s+LIKE\b|\bILIKE\b|\bLIKE\b)
        \s*(?P<value>{_STRING}|-?\d{{1,18}}|\((?:\s*(?:{_STRING}|-?\d{{1,18}})\s*,?)*\))\s*""",
    re.IGNORECASE | re.VERBOSE,
)
_LIST_ITEM = re.compile(rf"\s*({_STRING}|-?\d{{1,18}})\s*(,|$)")
_AND = re.compile(r"\s*AND\s+", re.IGNORECASE)
_ORDER = re.compile(r"\s*([A-Za-z_]+)(?:\s+(ASC|DESC))?\s*", re.IGNORECASE)


def _scalar(raw: str) -> str | int:
    if raw[0] in "'\"":
        return raw[1:-1].replace(raw[0] * 2, raw[0])
    return int(raw)


def _value(raw: str, field: str) -> Any:
    if not raw.startswith("("):
        return _scalar(raw)
    inner = raw[1:-1].strip()
    items: list[Any] = []
    pos = 0
    while pos < len(inner):
        m = _LIST_ITEM.match(inner, pos)
        if m is None:
            raise InvalidInput(f"invalid filter: the list after {field} IN is malformed: {raw}")
        items.append(_scalar(m.group(1)))
        pos = m.end()
    if not items:
        raise InvalidInput(f"invalid filter: {field} IN needs at least one value")
    return tuple(items)


def _compare(column: Any, op: str, value: Any, field: str, numeric: bool) -> ColumnElement[bool]:
    op = " ".join(op.upper().split())
    values = value if isinstance(value, tuple) else (value,)
    if any(isinstance(v, int) != numeric for v in values):
        kind = "numbers" if numeric else "quoted strings"
        raise InvalidInput(f"invalid filter: {field} takes {kind}, got {value!r}")
    if op in ("IN", "NOT IN"):
        if not isinstance(value, tuple):
            raise InvalidInput(f"invalid filter: {op} takes a parenthesised list")
        return column.in_(value) if op == "IN" else column.not_in(value)
    if isinstance(value, tuple):
        raise InvalidInput(f"invalid filter: {field} {op} takes one value, not a list")
    if numeric and op in ("LIKE", "NOT LIKE", "ILIKE", "NOT ILIKE"):
        raise InvalidInput(f"invalid filter: {field} does not take {op}")
    if not numeric and op in (">", ">=", "<", "<="):
        raise InvalidInput(f"invalid filter: {field} does not take {op}")
    return compare_column(column, op, value)


def compile_filter(
    text: str | None,
    columns: Mapping[str, tuple[Any, bool]],
    tag_table: Table,
    tag_join: Sequence[tuple[Any, Any]],
) -> list[ColumnElement[bool]]:
    """Conditions for a registry filter; ``columns`` maps field → (column, is_numeric) and
    ``tag_join`` pairs the tag table's key columns with the searched table's."""
    if text is not None and not isinstance(text, str):
        raise InvalidInput(f"filter_string must be a string, got {type(text).__name__}")
    if not text or not text.strip():
        return []
    if len(text) > 20_000:
        raise InvalidInput("a filter may hold at most 20000 characters")
    conditions: list[ColumnElement[bool]] = []
    pos = 0
    fields = ", ".join(f"`{f}`" for f in columns)
    while True:
        m = _CLAUSE.match(text, pos)
        if m is None:
            raise InvalidInput(
                f"invalid filter at position {pos}: expected one of {fields} or `tags.<key>`, "
                f"an operator and a value, found {text[pos : pos + 30]!r}"
            )
        field, op, raw = m.group("field"), m.group("op"), m.group("value")
        value = _value(raw, field)
        if field.lower().startswith(("tag.", "tags.")):
            key = field.split(".", 1)[1].strip('`"')
            tc = tag_table.c
            conditions.append(
                exists(
                    select(tc.key).where(
                        *[t == s for t, s in tag_join],
                        tc.key == key,
                        _compare(tc.value, op, value, field, False),
                    )
                )
            )
        else:
            spec = columns.get(field.lower())
            if spec is None:
                raise InvalidInput(
                    f"invalid filter at position {m.start('field')}: unknown field {field!r}; "
                    f"use one of {fields} or `tags.<key>`"
                )
            column, numeric = spec
            conditions.append(_compare(column, op, value, field, numeric))
        pos = m.end()
        if pos == len(text):
            return conditions
        if len(conditions) >= 200:
            raise InvalidInput("a filter may hold at most 200 clauses")
        sep = _AND.match(text, pos)
        if sep is None:
            raise InvalidInput(
                f"invalid filter at position {pos}: expected AND, found {text[pos : pos + 30]!r}"
            )
        pos = sep.end()


def compile_order(
    order_by: Sequence[str] | None, columns: Mapping[str, Any], tie_breakers: Sequence[Any]
) -> list[Any]:
    """ORDER BY terms for ``order_by`` items over ``columns``, then the tie breakers."""
    if order_by is not None and (isinstance(order_by, str) or not isinstance(order_by, Sequence)):
        raise InvalidInput("order_by must be a list of strings")
    terms: list[Any] = []
    for item in order_by or []:
        m = _ORDER.fullmatch(item) if isinstance(item, str) else None
        column = columns.get(m.group(1).lower()) if m else None
        if m is None or column is None:
            raise InvalidInput(
                f"invalid order_by {item!r}: use one of {', '.join(columns)}, "
                "optionally followed by ASC or DESC"
            )
        if m.group(1).lower() == "name":
            column = func.lower(column)
        terms.append(column.desc() if (m.group(2) or "").upper() == "DESC" else column.asc())
    terms.extend(tie_breakers)
    return terms
