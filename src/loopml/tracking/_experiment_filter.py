"""MLflow's experiment search grammar, compiled to SQL over ``experiments``.

Filters are ``AND``-joined clauses on ``name`` (``= != LIKE ILIKE``), ``creation_time`` and
``last_update_time`` (``= != > >= < <=``), and ``tags.<key>`` (``= != LIKE ILIKE``); an
``attribute.``/``attributes.`` prefix is accepted. ``order_by`` items are one of
``name``, ``experiment_id``, ``creation_time``, ``last_update_time`` with ``ASC``/``DESC``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, exists, func, select

from loopml.errors import InvalidInput
from loopml.store import compare_column
from loopml.store.tables import experiment_tags, experiments

__all__ = ["experiment_filter", "experiment_order"]

_CLAUSE = re.compile(
    r"""\s*(?:(?:attributes?)\.)?
        (?P<field>name|creation_time|last_update_time|tags\.(?:`[^`]+`|"[^"]+"|[\w./\-]+))
        \s*(?P<op>!=|>=|<=|=|>|<|\bNOT\s+ILIKE\b|\bNOT\s+LIKE\b|\bILIKE\b|\bLIKE\b)
        \s*(?P<value>'(?:[^']|'')*'|"(?:[^"]|"")*"|-?\d{1,18})\s*""",
    re.IGNORECASE | re.VERBOSE,
)
_AND = re.compile(r"\s*AND\s+", re.IGNORECASE)
_ORDER = re.compile(
    r"\s*(?:(?:attributes?)\.)?(name|experiment_id|creation_time|last_update_time)"
    r"(?:\s+(ASC|DESC))?\s*",
    re.IGNORECASE,
)


def _string(value: str) -> str:
    quote = value[0]
    return value[1:-1].replace(quote * 2, quote)


def experiment_filter(text: str | None) -> list[ColumnElement[bool]]:
    """Conditions on ``experiments`` for an MLflow experiment filter string."""
    if text is not None and not isinstance(text, str):
        raise InvalidInput(f"filter_string must be a string, got {type(text).__name__}")
    if not text or not text.strip():
        return []
    conditions: list[ColumnElement[bool]] = []
    pos = 0
    while True:
        m = _CLAUSE.match(text, pos)
        if m is None:
            raise InvalidInput(
                f"invalid experiment filter at position {pos}: expected `name`, `creation_time`, "
                f"`last_update_time` or `tags.<key>`, an operator and a value, "
                f"found {text[pos : pos + 30]!r}"
            )
        field, op, raw = m.group("field"), m.group("op"), m.group("value")
        numeric = field.lower() in ("creation_time", "last_update_time")
        if numeric != raw.lstrip("-").isdigit():
            kind = "a number" if numeric else "a quoted string"
            raise InvalidInput(
                f"invalid experiment filter at position {m.start('value')}: "
                f"{field} takes {kind}, got {raw}"
            )
        if numeric and op.upper().replace(" ", "").endswith("LIKE"):
            raise InvalidInput(f"invalid experiment filter: {field} does not take {op}")
        if not numeric and op in (">", ">=", "<", "<="):
            raise InvalidInput(f"invalid experiment filter: {field} does not take {op}")
        value: Any = int(raw) if numeric else _string(raw)
        if field.lower().startswith("tags."):
            key = field[5:].strip('`"')
            tag = experiment_tags.c
            conditions.append(
                exists(
                    select(tag.experiment_id).where(
                        tag.experiment_id == experiments.c.experiment_id,
                        tag.key == key,
                        compare_column(tag.value, op, value),
                    )
                )
            )
        else:
            conditions.append(compare_column(experiments.c[field.lower()], op, value))
        pos = m.end()
        if pos == len(text):
            return conditions
        if len(conditions) >= 200:
            raise InvalidInput("an experiment filter may hold at most 200 clauses")
        sep = _AND.match(text, pos)
        if sep is None:
            raise InvalidInput(
                f"invalid experiment filter at position {pos}: expected AND, "
                f"found {text[pos : pos + 30]!r}"
            )
        pos = sep.end()


def experiment_order(order_by: Sequence[str] | None) -> list[Any]:
    """ORDER BY terms for MLflow experiment ``order_by`` items, ending with the id."""
    terms: list[Any] = []
    for item in order_by or []:
        m = _ORDER.fullmatch(item) if isinstance(item, str) else None
        if m is None:
            raise InvalidInput(
                f"invalid experiment order_by {item!r}: use name, experiment_id, creation_time "
                "or last_update_time, optionally followed by ASC or DESC"
            )
        column = experiments.c[m.group(1).lower()]
        if m.group(1).lower() == "name":
            column = func.lower(column)
        terms.append(column.desc() if (m.group(2) or "").upper() == "DESC" else column.asc())
    terms.append(experiments.c.experiment_id.asc())
    return terms
