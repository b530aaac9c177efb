"""Parse MLflow's ``search_runs`` filter and order-by strings into a small typed AST.

The grammar is a superset of MLflow's (``OR`` and parentheses are loopml extensions; ``AND``
binds tighter than ``OR``; keywords are case-insensitive)::

    filter     := conjunct (OR conjunct)*
    conjunct   := primary (AND primary)*
    primary    := "(" filter ")" | comparison
    comparison := ident ("=" | "==" | "!=" | "<>" | ">" | ">=" | "<" | "<=") value
                | ident [NOT] (LIKE | ILIKE) string
                | ident [NOT] IN "(" value ("," value)* ")"
                | ident IS [NOT] NULL
    ident      := (metrics | params | tags | attributes) "." key
    order_item := ident [ASC | DESC]

A key is either quoted with backticks or double quotes, or a run of letters, digits and
``_ - . /`` (everything after the first dot). Strings take single or double quotes; the quote
is escaped by doubling it or with a backslash, and ``\\\\`` is one backslash. Other backslashes
are kept, so LIKE patterns escape ``%`` and ``_`` as ``\\%`` and ``\\_``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, NoReturn, TypeAlias

from loopml.errors import InvalidInput

__all__ = ["And", "Comparison", "Expr", "Or", "OrderKey", "parse_filter", "parse_order_by"]

Kind: TypeAlias = Literal["metric", "param", "tag", "attribute"]
Scalar: TypeAlias = float | str
Value: TypeAlias = Scalar | tuple[Scalar, ...] | None


@dataclass(frozen=True, slots=True)
class Comparison:
    """One ``<kind>.<key> <op> <value>`` clause; ``value`` is a tuple for IN, None for IS."""

    kind: Kind
    key: str
    op: str
    value: Value


@dataclass(frozen=True, slots=True)
class And:
    """All of ``items`` hold (two or more)."""

    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Or:
    """At least one of ``items`` holds (two or more)."""

    items: tuple[Expr, ...]


Expr: TypeAlias = Comparison | And | Or


@dataclass(frozen=True, slots=True)
class OrderKey:
    """One order-by key; runs missing the key sort last in either direction."""

    kind: Kind
    key: str
    ascending: bool = True


_PREFIXES: dict[str, Kind] = {
    "metric": "metric",
    "metrics": "metric",
    "param": "param",
    "params": "param",
    "parameter": "param",
    "parameters": "param",
    "tag": "tag",
    "tags": "tag",
    "attribute": "attribute",
    "attributes": "attribute",
    "attr": "attribute",
    "run": "attribute",
}
_STRING_ATTRIBUTES = ("run_id", "run_name", "status", "artifact_uri", "user_id", "lifecycle_stage")
_NUMBER_ATTRIBUTES = ("start_time", "end_time")
_ATTRIBUTES = (*_STRING_ATTRIBUTES, *_NUMBER_ATTRIBUTES, "experiment_id")
_ATTRIBUTE_ALIASES = {"run_uuid": "run_id", "created": "start_time"}
_STATUSES = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")
_STAGES = ("active", "deleted")

_NUMBER_OPS = ("=", "!=", ">", ">=", "<", "<=", "IN", "NOT IN", "IS NULL", "IS NOT NULL")
_STRING_OPS = (
    *("=", "!=", "LIKE", "ILIKE", "NOT LIKE", "NOT ILIKE"),
    *("IN", "NOT IN", "IS NULL", "IS NOT NULL"),
)
_ID_OPS = ("=", "!=", "IN", "NOT IN")
_SYMBOL_OPS = {
    **{"==": "=", "!=": "!=", "<>": "!=", ">=": ">=", "<=": "<="},
    **{"=": "=", ">": ">", "<": "<"},
}
_KEY_PUNCTUATION = frozenset("_-./")


@dataclass(frozen=True, slots=True)
class _Token:
    kind: Literal["ident", "word", "string", "number", "op", "(", ")", ",", "end"]
    text: str  # the source text, for messages
    pos: int
    value: Any = None  # ident: (prefix, key); string: str; number: float; op: normalised


_Fail = Callable[[int, str], NoReturn]


def _describe(tok: _Token) -> str:
    if tok.kind in ("string", "number"):
        return f"{tok.kind} {tok.text}"
    return "end of input" if tok.kind == "end" else repr(tok.text)


def _scan_quoted(text: str, start: int, fail: _Fail, what: str) -> tuple[str, int]:
    """Read a quoted run at ``start``; return its unescaped content and the index after it."""
    quote, out, i = text[start], [], start + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and quote != "`" and i + 1 < len(text) and text[i + 1] in (quote, "\\"):
            out.append(text[i + 1])
            i += 2
        elif ch == quote and text[i + 1 : i + 2] == quote:
            out.append(quote)
            i += 2
        elif ch == quote:
            return "".join(out), i + 1
        else:
            out.append(ch)
            i += 1
    fail(start, f"unterminated {what}; add the closing {quote}")


def _starts_number(text: str, i: int) -> bool:
    """Whether a number (optionally signed, maybe starting with '.') begins at ``i``."""
    j = i + 1 if text[i] in "-+" else i
    return text[j : j + 1].isdigit() or (text[j : j + 1] == "." and text[j + 1 : j + 2].isdigit())


def _scan_number(text: str, i: int, fail: _Fail) -> tuple[float, int]:
    """Read ``[-+]digits[.digits][e[-+]digits]`` at ``i``."""
    j = i + 1 if text[i] in "-+" else i
    digits_start = j
    while j < len(text) and (text[j].isdigit() or text[j] == "."):
        j += 1
    if j < len(text) and text[j] in "eE":
        k = j + 1 + (text[j + 1 : j + 2] in ("-", "+"))
        if k < len(text) and text[k].isdigit():
            j = k
            while j < len(text) and text[j].isdigit():
                j += 1
    if j > digits_start and not (j < len(text) and (text[j].isalnum() or text[j] in "_.")):
        try:
            return float(text[i:j]), j
        except ValueError:  # several dots, or a lone "."
            pass
    end = j
    while end < len(text) and not text[end].isspace() and text[end] not in "(),":
        end += 1
    fail(i, f"malformed number {text[i:end]!r}")


def _tokenize(text: str, fail: _Fail) -> list[_Token]:
    """Split ``text`` into tokens that remember their 0-based start position."""
    tokens: list[_Token] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch.isalpha() or ch == "_":
            j = i
            while j < len(text) and (text[j].isalnum() or text[j] == "_"):
                j += 1
            if text[j : j + 1] != ".":
                tokens.append(_Token("word", text[i:j], i))
                i = j
                continue
            prefix, k = text[i:j], j + 1
            if text[k : k + 1] in ("`", '"'):
                key, end = _scan_quoted(text, k, fail, "quoted key")
                if not key:
                    fail(k, f"empty key after {prefix + '.'!r}")
            else:
                end = k
                while end < len(text) and (text[end].isalnum() or text[end] in _KEY_PUNCTUATION):
                    end += 1
                key = text[k:end]
                if not key:
                    found = repr(text[k]) if k < len(text) else "end of input"
                    fail(k, f"expected a key after {prefix + '.'!r}, found {found}")
            tokens.append(_Token("ident", text[i:end], i, (prefix, key)))
            i = end
        elif ch in "'\"":
            value, end = _scan_quoted(text, i, fail, "string")
            tokens.append(_Token("string", text[i:end], i, value))
            i = end
        elif _starts_number(text, i):
            number, end = _scan_number(text, i, fail)
            tokens.append(_Token("number", text[i:end], i, number))
            i = end
        elif ch in "(),":
            tokens.append(_Token(ch, ch, i))  # type: ignore[arg-type]
            i += 1
        elif text[i : i + 2] in _SYMBOL_OPS or ch in _SYMBOL_OPS:
            sym = text[i : i + 2] if text[i : i + 2] in _SYMBOL_OPS else ch
            tokens.append(_Token("op", sym, i, _SYMBOL_OPS[sym]))
            i += len(sym)
        else:
            fail(i, f"unexpected character {ch!r}")
    tokens.append(_Token("end", "", len(text)))
    return tokens


class _Parser:
    """Recursive-descent parser over the token list of one filter or order-by item."""

    def __init__(self, text: str, fail: _Fail) -> None:
        self.fail = fail
        self.tokens = _tokenize(text, fail)
        self.i = 0

    def peek(self) -> _Token:
        return self.tokens[self.i]

    def take(self) -> _Token:
        tok = self.tokens[self.i]
        self.i += min(1, len(self.tokens) - 1 - self.i)
        return tok

    def is_word(self, *words: str) -> bool:
        tok = self.peek()
        return tok.kind == "word" and tok.text.upper() in words

    def parse_or(self, depth: int) -> Expr:
        items = [self.parse_and(depth)]
        while self.is_word("OR"):
            self.take()
            items.append(self.parse_and(depth))
        return items[0] if len(items) == 1 else Or(_flatten(items, Or))

    def parse_and(self, depth: int) -> Expr:
        items = [self.parse_primary(depth)]
        while self.is_word("AND"):
            self.take()
            items.append(self.parse_primary(depth))
        tok = self.peek()
        if not (self.is_word("OR") or tok.kind == "end" or (tok.kind == ")" and depth)):
            what = "AND, OR or ')'" if depth else "AND, OR or end of filter"
            self.fail(tok.pos, f"expected {what}, found {_describe(tok)}")
        return items[0] if len(items) == 1 else And(_flatten(items, And))

    def parse_primary(self, depth: int) -> Expr:
        if self.peek().kind != "(":
            return self.parse_comparison()
        opening = self.take()
        if depth >= MAX_FILTER_DEPTH:
            self.fail(opening.pos, f"parentheses nest deeper than {MAX_FILTER_DEPTH} levels")
        expr = self.parse_or(depth + 1)
        tok = self.take()
        if tok.kind != ")":
            self.fail(tok.pos, f"expected ')' to close '(' at position {opening.pos}")
        return expr

    def parse_ident(self) -> tuple[Kind, str, _Token]:
        tok = self.take()
        if tok.kind != "ident":
            bare = tok.text.lower()
            if tok.kind == "word" and (bare in _ATTRIBUTES or bare in _ATTRIBUTE_ALIASES):
                self.fail(
                    tok.pos, f"bare name {tok.text!r} is not accepted; use attributes.{bare}"
                )
            self.fail(
                tok.pos,
                "expected an identifier such as metrics.<key>, params.<key>, tags.<key> or "
                f"attributes.<name>, found {_describe(tok)}",
            )
        prefix, key = tok.value
        kind = _PREFIXES.get(prefix.lower())
        if kind is None:
            self.fail(
                tok.pos,
                f"unknown identifier type {prefix!r}; use metrics., params., tags. or attributes.",
            )
        if kind == "tag" and key == "mlflow.runName":
            return "attribute", "run_name", tok
        if kind == "attribute":
            name = _ATTRIBUTE_ALIASES.get(key.lower(), key.lower())
            if name not in _ATTRIBUTES:
                self.fail(
                    tok.pos, f"unknown attribute {key!r}; expected one of {', '.join(_ATTRIBUTES)}"
                )
            return kind, name, tok
        return kind, key, tok

    def parse_operator(self, ident: _Token) -> tuple[str, _Token]:
        tok = self.take()
        if tok.kind == "op":
            return str(tok.value), tok
        word = tok.text.upper() if tok.kind == "word" else ""
        if word == "NOT" and self.is_word("LIKE", "ILIKE", "IN"):
            return f"NOT {self.take().text.upper()}", tok
        if word in ("LIKE", "ILIKE", "IN"):
            return word, tok
        if word == "IS":
            negated = self.is_word("NOT")
            if negated:
                self.take()
            null = self.take()
            if not (null.kind == "word" and null.text.upper() == "NULL"):
                self.fail(null.pos, f"expected NULL after {'IS NOT' if negated else 'IS'}")
            return ("IS NOT NULL" if negated else "IS NULL"), tok
        if word == "NOT":
            after = self.peek()
            self.fail(after.pos, f"expected LIKE, ILIKE or IN after NOT, found {_describe(after)}")
        self.fail(
            tok.pos,
            f"expected a comparison operator after {ident.text!r}, found {_describe(tok)}",
        )

    def parse_comparison(self) -> Comparison:
        kind, key, ident = self.parse_ident()
        op, op_tok = self.parse_operator(ident)
        value_type = _value_type(kind, key)
        allowed = {"number": _NUMBER_OPS, "string": _STRING_OPS, "id": _ID_OPS}[value_type]
        subject = f"{kind} {key!r}"
        if op not in allowed:
            self.fail(
                op_tok.pos, f"operator {op} is not valid for {subject}; use {', '.join(allowed)}"
            )
        if op in ("IS NULL", "IS NOT NULL"):
            return Comparison(kind, key, op, None)
        if op not in ("IN", "NOT IN"):
            return Comparison(kind, key, op, self.parse_value(kind, key, op, value_type))
        opening = self.take()
        if opening.kind != "(":
            self.fail(opening.pos, f"expected '(' after {op}, found {_describe(opening)}")
        if self.peek().kind == ")":
            self.fail(self.peek().pos, f"empty {op} list; give at least one value")
        values = [self.parse_value(kind, key, op, value_type)]
        while (tok := self.take()).kind == ",":
            values.append(self.parse_value(kind, key, op, value_type))
        if tok.kind != ")":
            self.fail(tok.pos, f"expected ',' or ')' in {op} list, found {_describe(tok)}")
        return Comparison(kind, key, op, tuple(values))

    def parse_value(self, kind: Kind, key: str, op: str, value_type: str) -> Scalar:
        tok = self.take()
        subject = f"{kind} {key!r}"
        if tok.kind == "end":
            self.fail(tok.pos, f"expected a value after {subject} {op}, found end of input")
        if value_type == "number":
            if tok.kind != "number":
                self.fail(tok.pos, f"{subject} compares with numbers, found {_describe(tok)}")
            number = float(tok.value)
            return int(number) if kind == "attribute" and number.is_integer() else number
        if value_type == "id":
            raw = tok.value if tok.kind in ("number", "string") else None
            if isinstance(raw, float) and raw.is_integer():
                return int(raw)
            if isinstance(raw, str) and raw.strip().isdigit():
                return int(raw)
            self.fail(tok.pos, f"{subject} compares with integer ids, found {_describe(tok)}")
        if tok.kind != "string":
            self.fail(tok.pos, f"{subject} compares with quoted strings, found {_describe(tok)}")
        text = str(tok.value)
        if op in ("LIKE", "ILIKE", "NOT LIKE", "NOT ILIKE"):
            if (len(text) - len(text.rstrip("\\"))) % 2:
                self.fail(tok.pos, f"LIKE pattern {text!r} ends with an unpaired escape '\\'")
            return text
        if key == "status" and kind == "attribute":
            if text.upper() not in _STATUSES:
                self.fail(
                    tok.pos, f"invalid status {text!r}; expected one of {', '.join(_STATUSES)}"
                )
            return text.upper()
        if key == "lifecycle_stage" and kind == "attribute":
            if text.lower() not in _STAGES:
                self.fail(tok.pos, f"invalid lifecycle_stage {text!r}; expected active or deleted")
            return text.lower()
        return text


def _value_type(kind: Kind, key: str) -> str:
    if kind == "metric" or (kind == "attribute" and key in _NUMBER_ATTRIBUTES):
        return "number"
    return "id" if kind == "attribute" and key == "experiment_id" else "string"


def _flatten(items: list[Expr], cls: type[And] | type[Or]) -> tuple[Expr, ...]:
    """Merge nested groups of the same connective: ``(a AND b) AND c`` is ``And(a, b, c)``."""
    out: list[Expr] = []
    for item in items:
        out.extend(item.items if isinstance(item, cls) else (item,))
    return tuple(out)


MAX_FILTER_LENGTH = 20_000
MAX_FILTER_DEPTH = 50
MAX_FILTER_CLAUSES = 200  # beyond this, databases refuse the expression tree anyway


def _count(expr: Expr | None) -> int:
    if expr is None:
        return 0
    if isinstance(expr, Comparison):
        return 1
    return sum(_count(e) for e in expr.items)


def parse_filter(text: str | None) -> Expr | None:
    """Parse a run-search filter string; None or blank means no filter.

    Raises:
        InvalidInput: the string is malformed; the message names the 0-based position.
    """
    if text is None or not text.strip():
        return None

    def fail(pos: int, detail: str) -> NoReturn:
        raise InvalidInput(f"invalid filter at position {pos}: {detail}")

    if len(text) > MAX_FILTER_LENGTH:
        raise InvalidInput(f"a filter may hold at most {MAX_FILTER_LENGTH} characters")
    parser = _Parser(text, fail)
    expr = parser.parse_or(0)
    if _count(expr) > MAX_FILTER_CLAUSES:
        raise InvalidInput(f"a filter may hold at most {MAX_FILTER_CLAUSES} comparisons")
    tok = parser.peek()
    if tok.kind != "end":  # only a stray ')' gets here; parse_and rejects everything else
        fail(tok.pos, f"unbalanced {tok.text!r}; expected AND, OR or end of filter")
    return expr


def parse_order_by(items: list[str] | None) -> list[OrderKey]:
    """Parse order-by items such as ``metrics.acc DESC`` (ascending by default).

    Raises:
        InvalidInput: an item is malformed; the message names the item and 0-based position.
    """
    keys: list[OrderKey] = []
    for item in items or []:

        def fail(pos: int, detail: str, item: str = item) -> NoReturn:
            raise InvalidInput(f"invalid order_by item {item!r} at position {pos}: {detail}")

        parser = _Parser(item, fail)
        kind, key, _ = parser.parse_ident()
        ascending = True
        if parser.is_word("ASC", "DESC"):
            ascending = parser.take().text.upper() == "ASC"
        tok = parser.peek()
        if tok.kind != "end":
            fail(tok.pos, f"expected ASC, DESC or end of item, found {_describe(tok)}")
        keys.append(OrderKey(kind, key, ascending))
    return keys
