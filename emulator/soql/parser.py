"""Text -> Query, with Salesforce-shaped MALFORMED_QUERY errors. No schema knowledge here."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from .errors import SoqlError, error_at, malformed
from .nodes import (And, Comparison, CountCall, FieldPath, FieldsCall, Literal, Not, Or, OrderItem, Query,
                    SemiJoin, SubQuery)

MAX_OFFSET = 2000
MAX_FIELDS_LIMIT = 200   # FIELDS(ALL) and FIELDS(CUSTOM) select an unbounded set of fields: LIMIT 200 at most
MAX_SEMI_JOINS = 2
MAX_LENGTH = 100_000

# Salesforce's reserved words can never be field or object names. The contextual lexer would
# otherwise read "From" as a field name where only names are expected ("SELECT Id, From X").
_RESERVED = {"SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "LIKE", "IN", "INCLUDES", "EXCLUDES",
             "ASC", "DESC", "NULLS", "FIRST", "LAST", "LIMIT", "NULL", "GROUP", "HAVING", "WITH"}


def _reserve(tok: Token) -> Token:
    upper = tok.value.upper()
    if upper in _RESERVED:
        return Token.new_borrow_pos(upper, tok.value, tok)
    return tok


_PARSER = Lark(Path(__file__).with_name("grammar.lark").read_text(), parser="lalr",
               lexer="contextual", propagate_positions=True, maybe_placeholders=False,
               lexer_callbacks={"NAME": _reserve})

_ESCAPES = {"'": "'", '"': '"', "\\": "\\", "n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f"}


def _pos(tok) -> tuple:
    return (tok.line, tok.column)


def _sql_char(c: str) -> str:
    """A literal character in a SQLite LIKE pattern whose ESCAPE is a backslash."""
    return "\\" + c if c in "%_\\" else c


class _Fail(Exception):
    """Raised inside the transformer; carries a finished SoqlError out of lark's VisitError."""

    def __init__(self, error: SoqlError):
        self.error = error


class _Build(Transformer):
    def __init__(self, text: str):
        super().__init__()
        self.text = text

    # ---- literals -------------------------------------------------------------------------
    def _fail(self, tok, detail):
        raise _Fail(malformed(self.text, _pos(tok), detail))

    def _decode(self, tok: Token, like: bool):
        """Decode a quoted string. For LIKE, returns (text, regex, sql) keeping \\% and \\_ literal:
        ``sql`` is the same pattern for SQLite's ``LIKE ... ESCAPE '\\'``."""
        body = tok.value[1:-1]
        out, rx, sql = [], [], []
        i = 0
        while i < len(body):
            ch = body[i]
            if ch == "\\":
                nxt = body[i + 1] if i + 1 < len(body) else ""
                low = nxt.lower()
                if low in _ESCAPES and (nxt in "'\"\\" or nxt.isalpha()):
                    c = _ESCAPES[low]
                    out.append(c); rx.append(re.escape(c)); sql.append(_sql_char(c)); i += 2
                    continue
                if low == "u" and re.fullmatch(r"[0-9A-Fa-f]{4}", body[i + 2:i + 6] or ""):
                    c = chr(int(body[i + 2:i + 6], 16))
                    out.append(c); rx.append(re.escape(c)); sql.append(_sql_char(c)); i += 6
                    continue
                if like and nxt in "%_":
                    out.append(nxt); rx.append(re.escape(nxt)); sql.append(_sql_char(nxt)); i += 2
                    continue
                self._fail(tok, f"Invalid string literal '{tok.value[1:-1]}'. "
                                f"Illegal character sequence '\\{nxt}' in string literal.")
            if like and ch == "%":
                rx.append(".*"); sql.append("%")
            elif like and ch == "_":
                rx.append("."); sql.append("_")
            else:
                rx.append(re.escape(ch)); sql.append(_sql_char(ch))
            out.append(ch)
            i += 1
        text = "".join(out)
        if len(text) > 4000:
            self._fail(tok, "String literal exceeds the maximum length of 4000 characters")
        if like:
            return text, re.compile("".join(rx), re.IGNORECASE | re.DOTALL), "".join(sql)
        return text

    def _literal(self, tok: Token, like: bool = False) -> Literal:
        t = tok.type
        pos = _pos(tok)
        if t == "STRING":
            if like:
                text, rx, sql = self._decode(tok, True)
                return Literal("like", rx, tok.value, pos, sql)
            return Literal("string", self._decode(tok, False), tok.value, pos)
        if t == "NUMBER":
            try:
                num = Decimal(tok.value)
            except InvalidOperation:
                self._fail(tok, f"unexpected token: '{tok.value}'")
            return Literal("number", num, tok.value, pos)
        if t in ("TRUE", "FALSE"):
            return Literal("boolean", t == "TRUE", tok.value, pos)
        if t == "NULL":
            return Literal("null", None, tok.value, pos)
        if t == "DATE":
            try:
                d = datetime.strptime(tok.value, "%Y-%m-%d").date()
            except ValueError:
                self._fail(tok, f"line {tok.line}:{tok.column - 1} no viable alternative at character '{tok.value}'")
            return Literal("date", d, tok.value, pos)
        if t == "DATETIME":
            return Literal("datetime", self._datetime(tok), tok.value, pos)
        if t == "RELATIVE":
            return Literal("relative", (tok.value.upper(), None), tok.value, pos)
        if t == "RELATIVE_N":
            name, n = tok.value.split(":")
            return Literal("relative", (name.upper(), int(n)), tok.value, pos)
        self._fail(tok, f"unexpected token: '{tok.value}'")

    def _datetime(self, tok: Token) -> datetime:
        m = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|z|([+-])(\d{2}):?(\d{2}))",
                         tok.value)
        try:
            y, mo, d, h, mi, s = (int(m.group(i)) for i in range(1, 7))
            frac = m.group(7) or "0"
            micro = int((frac + "000000")[:6])
            dt = datetime(y, mo, d, h, mi, s, micro, tzinfo=timezone.utc)
            if m.group(9):
                from datetime import timedelta
                off = timedelta(hours=int(m.group(10)), minutes=int(m.group(11)))
                dt = dt - off if m.group(9) == "+" else dt + off
            return dt
        except (ValueError, AttributeError):
            self._fail(tok, f"line {tok.line}:{tok.column - 1} no viable alternative at character '{tok.value}'")

    # ---- structure ------------------------------------------------------------------------
    def start(self, items):
        return items[0]

    def field_path(self, items):
        return FieldPath([t.value for t in items], _pos(items[0]))

    def count_call(self, items):
        return CountCall(items[1] if len(items) > 1 else None, _pos(items[0]))

    def fields_call(self, items):
        fn, lpar, arg = items
        if fn.value.upper() != "FIELDS":
            self._fail(lpar, f"unexpected token: '{lpar.value}'")
        kind = arg.value.upper()
        if kind not in ("ALL", "STANDARD", "CUSTOM"):
            self._fail(arg, f"unexpected token: '{arg.value}'")
        return FieldsCall(kind, _pos(fn))

    def subquery(self, items):
        return SubQuery(items[1], _pos(items[0]))

    def select_clause(self, items):
        return ("select", items[1:])

    def from_clause(self, items):
        return ("from", items[1])

    def where_clause(self, items):
        return ("where", items[1])

    def order_clause(self, items):
        return ("order", items[2:])

    def direction(self, items):
        return items[0].type == "DESC"

    def nulls(self, items):
        return ("nulls", items[1].type == "LAST")

    def order_item(self, items):
        item = OrderItem(items[0])
        for extra in items[1:]:
            if isinstance(extra, tuple):
                item.nulls_last = extra[1]
            else:
                item.descending = extra
        return item

    def limit_clause(self, items):
        return ("limit", int(items[1].value))

    def offset_clause(self, items):
        tok = items[1]
        n = int(tok.value)
        if n > MAX_OFFSET:
            raise _Fail(error_at("NUMBER_OUTSIDE_VALID_RANGE", self.text, _pos(tok),
                                 f"Maximum SOQL offset allowed is {MAX_OFFSET}"))
        return ("offset", n)

    def query(self, items):
        parts = dict(items)
        sobject = parts["from"]
        limit = parts.get("limit")
        for item in parts["select"]:
            if isinstance(item, FieldsCall) and item.kind != "STANDARD" and (limit is None or limit > MAX_FIELDS_LIMIT):
                raise _Fail(malformed(self.text, item.pos,
                                      f"The SOQL FIELDS function must have a LIMIT of at most {MAX_FIELDS_LIMIT}"))
        return Query(text=self.text, select=parts["select"], sobject=sobject.value,
                     sobject_pos=_pos(sobject), where=parts.get("where"),
                     order_by=parts.get("order", []), limit=parts.get("limit"),
                     offset=parts.get("offset"))

    def or_cond(self, items):
        return Or([i for i in items if not isinstance(i, Token)])

    def and_cond(self, items):
        return And([i for i in items if not isinstance(i, Token)])

    def not_cond(self, items):
        return Not(items[1])

    def value_list(self, items):
        return [self._literal(t) for t in items]

    def compare(self, items):
        f, op, v = items
        opv = "!=" if op.value == "<>" else op.value
        return Comparison(f, opv, self._literal(v), _pos(op))

    def like(self, items):
        f, op, v = items
        if v.type != "STRING":
            return Comparison(f, "LIKE", self._literal(v), _pos(op))
        return Comparison(f, "LIKE", self._literal(v, like=True), _pos(op))

    def in_list(self, items):
        return Comparison(items[0], "IN", items[2], _pos(items[1]))

    def not_in_list(self, items):
        return Comparison(items[0], "NOT IN", items[3], _pos(items[1]))

    def includes(self, items):
        return Comparison(items[0], "INCLUDES", items[2], _pos(items[1]))

    def excludes(self, items):
        return Comparison(items[0], "EXCLUDES", items[2], _pos(items[1]))

    def semi_join(self, items):
        return SemiJoin(items[0], False, items[3], _pos(items[1]))

    def anti_join(self, items):
        return SemiJoin(items[0], True, items[4], _pos(items[1]))


def _token_text(tok) -> str:
    if tok is None or tok.type == "$END":
        return "<EOF>"
    return str(tok.value)


def parse(text: str) -> "Query":
    if text is None or not text.strip():
        raise SoqlError("MALFORMED_QUERY", "SOQL statements cannot be empty or null")
    if len(text) > MAX_LENGTH:
        raise SoqlError("MALFORMED_QUERY", f"SOQL statements cannot be longer than {MAX_LENGTH} characters")
    try:
        tree = _PARSER.parse(text)
    except UnexpectedToken as e:
        tok = e.token
        if tok.type == "$END":
            line, col = _end_pos(text)
            raise malformed(text, (line, col), "unexpected token: <EOF>") from None
        # Salesforce places syntax errors on the whitespace before the unexpected token
        # (recorded: "..., From Account" reports the column of the space before From).
        column = tok.column
        if column > 1 and text.split("\n")[tok.line - 1][column - 2].isspace():
            column -= 1
        raise malformed(text, (tok.line, column), f"unexpected token: '{_token_text(tok)}'") from None
    except UnexpectedCharacters as e:
        word = re.match(r"'[^']*'?|\S+", text.split("\n")[e.line - 1][e.column - 1:])
        shown = word.group(0) if word else text[e.pos_in_stream]
        if shown.startswith("'") and (len(shown) == 1 or not shown.endswith("'")):
            detail = f"line {e.line}:{e.column - 1} mismatched character '<EOF>' expecting '''"
        else:
            detail = f"unexpected token: '{shown}'"
        raise malformed(text, (e.line, e.column), detail) from None
    except UnexpectedEOF:
        raise malformed(text, _end_pos(text), "unexpected token: <EOF>") from None
    except UnexpectedInput as e:  # pragma: no cover - any other lark input error
        raise malformed(text, (getattr(e, "line", 1), getattr(e, "column", 1)), "unexpected token") from None
    try:
        query = _Build(text).transform(tree)
    except VisitError as e:
        if isinstance(e.orig_exc, _Fail):
            raise e.orig_exc.error from None
        raise
    _check_structure(query)
    return query


def _end_pos(text: str) -> tuple:
    lines = text.rstrip().split("\n")
    return (len(lines), len(lines[-1]) + 1)


def _check_structure(query: Query) -> None:
    """Rules Salesforce enforces beyond the grammar."""
    text = query.text
    items = query.select
    counts = [i for i in items if isinstance(i, CountCall)]
    if any(c.field is None for c in counts) and len(items) > 1:
        bad = next(i for i in items if not (isinstance(i, CountCall) and i.field is None)) \
            if not all(isinstance(i, CountCall) for i in items) else counts[1]
        raise malformed(text, bad.pos, "COUNT() must be the only element in the SELECT list")
    for sub in (i for i in items if isinstance(i, SubQuery)):
        for inner in sub.query.select:
            if isinstance(inner, SubQuery):
                raise malformed(text, inner.pos, "Nesting of child relationship queries is not supported")
    joins: list = []
    _collect_joins(text, query.where, joins, under_or=False)
    if len(joins) > MAX_SEMI_JOINS:
        raise malformed(text, joins[MAX_SEMI_JOINS].pos,
                        f"Maximum of {MAX_SEMI_JOINS} semi join sub-selects are allowed")
    for j in joins:
        inner = j.query
        if len(inner.select) != 1 or not isinstance(inner.select[0], FieldPath):
            raise malformed(text, j.pos, "Semi join sub-selects can only select one field")
        if inner.order_by or inner.limit is not None or inner.offset is not None:
            raise malformed(text, j.pos, "Semi join sub-selects cannot use ORDER BY, LIMIT or OFFSET")
        nested: list = []
        _collect_joins(text, inner.where, nested, under_or=False)
        if nested:
            raise malformed(text, nested[0].pos, "Nesting of semi join sub-selects is not supported")


def _collect_joins(text, cond, out, under_or):
    if cond is None:
        return
    if isinstance(cond, SemiJoin):
        if under_or:
            raise malformed(text, cond.pos, "Semi join sub-selects are not allowed with the 'OR' operator")
        out.append(cond)
    elif isinstance(cond, (And, Or)):
        for c in cond.items:
            _collect_joins(text, c, out, under_or or isinstance(cond, Or))
    elif isinstance(cond, Not):
        _collect_joins(text, cond.item, out, under_or)
