"""SQL pieces every capability's store shares."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BindParameter, Boolean, ColumnElement, String, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import operators
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import Grouping
from sqlalchemy.sql.visitors import InternalTraversal

__all__ = ["CaseSensitiveLike", "compare_column"]


class _LikePattern(TypeDecorator[str]):
    """A LIKE pattern bound as is, or rewritten as the equivalent GLOB pattern on SQLite."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None or dialect.name != "sqlite":
            return value
        return _like_to_glob(value)


class CaseSensitiveLike(ColumnElement[bool]):
    """``column [NOT] LIKE pattern ESCAPE '\\'``, case-sensitive on every dialect."""

    type = Boolean()
    inherit_cache = True
    _is_implicitly_boolean = True  # a predicate: no ``= 1`` on dialects without booleans
    _traverse_internals = [
        ("column", InternalTraversal.dp_clauseelement),
        ("pattern", InternalTraversal.dp_clauseelement),
        ("negated", InternalTraversal.dp_boolean),
    ]

    def __init__(self, column: ColumnElement[Any], pattern: str, *, negated: bool) -> None:
        self.column = column
        self.pattern: BindParameter[str] = BindParameter(None, pattern, type_=_LikePattern())
        self.negated = negated

    def self_group(self, against: Any = None) -> ColumnElement[Any]:
        return self if against in (operators.and_, operators.or_) else Grouping(self)


@compiles(CaseSensitiveLike)
def _compile_like(element: CaseSensitiveLike, compiler: SQLCompiler, **kw: Any) -> str:
    column, pattern = (
        compiler.process(element.column, **kw),
        compiler.process(element.pattern, **kw),
    )
    return f"{column} {'NOT ' * element.negated}LIKE {pattern} ESCAPE '\\'"


@compiles(CaseSensitiveLike, "sqlite")
def _compile_like_sqlite(element: CaseSensitiveLike, compiler: SQLCompiler, **kw: Any) -> str:
    column, pattern = (
        compiler.process(element.column, **kw),
        compiler.process(element.pattern, **kw),
    )
    return f"{column} {'NOT ' * element.negated}GLOB {pattern}"


def _like_to_glob(pattern: str) -> str:
    """Rewrite a LIKE pattern (escape ``\\``) as a GLOB pattern matching the same strings."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(_GLOB_LITERALS.get(pattern[i], pattern[i]))
        elif ch in "%_":
            out.append("*" if ch == "%" else "?")
        else:
            out.append(_GLOB_LITERALS.get(ch, ch))
        i += 1
    return "".join(out)


# GLOB's own wildcards, written as one-character classes so they match themselves.
_GLOB_LITERALS = {"*": "[*]", "?": "[?]", "[": "[[]"}


def compare_column(column: Any, op: str, value: Any) -> ColumnElement[bool]:
    """``column <op> value`` for a search filter's operator: ``= == != > >= < <=``, and
    ``[NOT] LIKE`` (case-sensitive on every dialect) or ``[NOT] ILIKE`` with ``\\`` escapes."""
    op = " ".join(op.upper().split())
    if op in ("LIKE", "NOT LIKE"):
        return CaseSensitiveLike(column, value, negated=op == "NOT LIKE")
    if op in ("ILIKE", "NOT ILIKE"):
        cond = column.ilike(value, escape="\\")
        return ~cond if op == "NOT ILIKE" else cond
    return {  # type: ignore[no-any-return]
        "=": column == value,
        "==": column == value,
        "!=": column != value,
        ">": column > value,
        ">=": column >= value,
        "<": column < value,
        "<=": column <= value,
    }[op]
