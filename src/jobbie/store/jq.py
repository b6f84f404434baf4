"""The `payload_jq` filter language: a small jq subset parsed into a typed AST (never evaluated).

Grammar (positions in error messages are 0-based character offsets):

    query     := piped EOF
    piped     := or_expr ( "|" "not" )*        -- postfix not negates everything before it
    or_expr   := and_expr ( "or" and_expr )*
    and_expr  := unary ( "and" unary )*
    unary     := "not" unary | primary          -- prefix not binds tighter than and/or
    primary   := "(" piped ")" | condition
    condition := path                             -- truthy: neither null nor false
               | path CMP literal
               | literal CMP path
               | path "|" "length" CMP number
               | path "|" ("contains" | "startswith" | "endswith") "(" literal ")"
    path      := "." | segment+                 -- no spaces between segments
    segment   := "." NAME | "." string | "."? "[" (int | string) "]"   -- "[" alone: not first
    CMP       := "==" | "!=" | "<" | "<=" | ">" | ">="
    literal   := JSON string | JSON number | true | false | null

As in jq, `|` binds loosest, so `.a and .b | not` is `not (.a and .b)`; only `| not` may follow
a complete expression (write `(.a | not) and .b` to combine further). NAME is
[A-Za-z_][A-Za-z0-9_]*; other keys use a string (without quotes, backslashes or control
characters, which SQLite's JSON paths cannot express). Indexes may be negative (from the end).
The backend gives the meaning; see `store/sqlite/search_sql.py`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Literal, NoReturn

from jobbie.errors import ValidationError

__all__ = [
    "MAX_DEPTH",
    "MAX_LENGTH",
    "MAX_LITERAL",
    "MAX_TERMS",
    "And",
    "Compare",
    "CompareOp",
    "Contains",
    "EndsWith",
    "Expr",
    "LengthCompare",
    "Not",
    "Or",
    "Path",
    "Scalar",
    "StartsWith",
    "Truthy",
    "parse_jq",
]

MAX_LENGTH = 4000  # characters of query text (the request model caps it too)
MAX_DEPTH = 32  # parentheses and `not`s, nested
MAX_TERMS = 64  # conditions in one query
MAX_LITERAL = 1000  # characters of one string literal, after unescaping
MAX_PATH = 32  # segments of one path
MAX_INDEX = 1_000_000  # array index magnitude
_INT64 = 2**63

CompareOp = Literal["==", "!=", "<", "<=", ">", ">="]
Scalar = str | int | float | bool | None
_OPS: dict[str, CompareOp] = {"==": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_MIRROR: dict[str, CompareOp] = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


@dataclass(frozen=True, slots=True)
class Path:
    """A location in the payload: object keys (str) and array indexes (int, negative from end)."""

    segments: tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Truthy:
    """A bare path: true when the value is present and neither null nor false."""

    path: Path


@dataclass(frozen=True, slots=True)
class Compare:
    """`path OP literal`; `==`/`!=` are type-strict, orderings need two numbers or two strings."""

    path: Path
    op: CompareOp
    value: Scalar


@dataclass(frozen=True, slots=True)
class LengthCompare:
    """`path | length OP number`."""

    path: Path
    op: CompareOp
    value: int | float


@dataclass(frozen=True, slots=True)
class Contains:
    """`path | contains(x)`: substring of a string, or an element equal to x in an array."""

    path: Path
    value: str | int | float | bool


@dataclass(frozen=True, slots=True)
class StartsWith:
    """`path | startswith(s)`."""

    path: Path
    prefix: str


@dataclass(frozen=True, slots=True)
class EndsWith:
    """`path | endswith(s)`."""

    path: Path
    suffix: str


@dataclass(frozen=True, slots=True)
class Not:
    """Negation (prefix `not x` or postfix `x | not`)."""

    operand: Expr


@dataclass(frozen=True, slots=True)
class And:
    """All operands hold (two or more)."""

    operands: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Or:
    """Any operand holds (two or more)."""

    operands: tuple[Expr, ...]


Expr = Truthy | Compare | LengthCompare | Contains | StartsWith | EndsWith | Not | And | Or


def parse_jq(text: str) -> Expr:
    """Parse a `payload_jq` query, or raise a ValidationError naming the 0-based position."""
    if len(text) > MAX_LENGTH:
        raise ValidationError(f"payload_jq: longer than {MAX_LENGTH} characters")
    return _Parser(text).parse()


# --- lexer ----------------------------------------------------------------------------------------

_TokenKind = Literal["field", ".", "[", "]", "(", ")", "|", "op", "string", "number", "word", "end"]


@dataclass(frozen=True, slots=True)
class _Token:
    kind: _TokenKind
    start: int
    end: int
    text: str  # source text
    value: Scalar = None  # decoded string or number, field name


_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SPACE = re.compile(r"[ \t\r\n]+")
_PUNCT: dict[str, _TokenKind] = {"[": "[", "]": "]", "(": "(", ")": ")", "|": "|"}
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def _fail(message: str) -> NoReturn:
    raise ValidationError(f"payload_jq: {message}")


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        if space := _SPACE.match(text, pos):
            pos = space.end()
            continue
        tokens.append(token := _next_token(text, pos))
        pos = token.end
    tokens.append(_Token("end", len(text), len(text), ""))
    return tokens


def _next_token(text: str, pos: int) -> _Token:
    char = text[pos]
    if char == ".":
        if word := _WORD.match(text, pos + 1):
            return _Token("field", pos, word.end(), text[pos : word.end()], word.group())
        return _Token(".", pos, pos + 1, ".")
    if char in _PUNCT:
        return _Token(_PUNCT[char], pos, pos + 1, char)
    for op in ("==", "!=", "<=", ">=", "<", ">"):
        if text.startswith(op, pos):
            return _Token("op", pos, pos + len(op), op)
    if char == '"':
        return _string(text, pos)
    if number := _NUMBER.match(text, pos):
        return _number(number)
    if word := _WORD.match(text, pos):
        return _Token("word", pos, word.end(), word.group())
    _fail(f"unexpected character {_show(char)} at position {pos}")


def _string(text: str, start: int) -> _Token:
    """A JSON string literal starting at the opening quote."""
    out: list[str] = []
    pos = start + 1
    while True:
        if pos >= len(text):
            _fail(f"unterminated string starting at position {start}")
        char = text[pos]
        if char == '"':
            break
        if char == "\\":
            char, pos = _escape(text, pos)
        else:
            if ord(char) < 0x20:
                _fail(f"control character in string at position {pos} (escape it)")
            if 0xD800 <= ord(char) <= 0xDFFF:
                _fail(f"lone surrogate in string at position {pos}")
            pos += 1
        out.append(char)
        if len(out) > MAX_LITERAL:
            _fail(f"string starting at position {start} is longer than {MAX_LITERAL} characters")
    return _Token("string", start, pos + 1, text[start : pos + 1], "".join(out))


def _escape(text: str, pos: int) -> tuple[str, int]:
    """Decode the escape at `pos` (a backslash); return the character and the next position."""
    code = text[pos + 1 : pos + 2]
    if code in _ESCAPES:
        return _ESCAPES[code], pos + 2
    if code != "u":
        _fail(f"invalid escape {_show(text[pos : pos + 2])} at position {pos}")
    high = _hex4(text, pos)
    if not 0xD800 <= high <= 0xDFFF:
        return chr(high), pos + 6
    # A surrogate must be a high one followed by an escaped low one (JSON's UTF-16 pairs).
    if high <= 0xDBFF and text.startswith("\\u", pos + 6):
        low = _hex4(text, pos + 6)
        if 0xDC00 <= low <= 0xDFFF:
            return chr(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)), pos + 12
    _fail(f"lone surrogate escape at position {pos}")


def _hex4(text: str, pos: int) -> int:
    digits = text[pos + 2 : pos + 6]
    if len(digits) != 4 or not all(c in "0123456789abcdefABCDEF" for c in digits):
        _fail(f"invalid \\u escape at position {pos}: expected 4 hex digits")
    return int(digits, 16)


def _number(match: re.Match[str]) -> _Token:
    text = match.group()
    if len(text) > 100:
        _fail(f"number at position {match.start()} is longer than 100 characters")
    value: int | float
    if match.group(1) is None and match.group(2) is None:
        value = int(text)
        if not -_INT64 <= value < _INT64:
            _fail(f"number at position {match.start()} is out of the 64-bit integer range")
    else:
        value = float(text)
        if value in (float("inf"), float("-inf")):
            _fail(f"number at position {match.start()} is too large")
    return _Token("number", match.start(), match.end(), text, value)


def _show(text: str) -> str:
    """A token for an error message: JSON-quoted, cut short, lone surrogates escaped."""
    if len(text) > 20:
        text = text[:20] + "..."
    quoted = json.dumps(text, ensure_ascii=False)
    return quoted.encode("utf-8", "backslashreplace").decode("utf-8")


# --- parser ---------------------------------------------------------------------------------------

_FUNCTIONS = ("length", "contains", "startswith", "endswith")


class _Parser:
    """Recursive descent over the token list; recursion depth is bounded by MAX_DEPTH."""

    def __init__(self, text: str) -> None:
        self._tokens = _tokenize(text)
        self._pos = 0
        self._depth = 0
        self._terms = 0

    def parse(self) -> Expr:
        expr = self._piped()
        if self._peek().kind != "end":
            self._expected("`and`, `or`, `| not` or end of input")
        return expr

    # Tokens.

    def _peek(self, ahead: int = 0) -> _Token:
        return self._tokens[min(self._pos + ahead, len(self._tokens) - 1)]

    def _take(self) -> _Token:
        token = self._peek()
        self._pos += 1
        return token

    def _is_word(self, word: str, ahead: int = 0) -> bool:
        token = self._peek(ahead)
        return token.kind == "word" and token.text == word

    def _expect(self, kind: _TokenKind, what: str) -> _Token:
        if self._peek().kind != kind:
            self._expected(what)
        return self._take()

    def _expected(self, what: str) -> NoReturn:
        token = self._peek()
        found = "end of input" if token.kind == "end" else _show(token.text)
        _fail(f"expected {what} at position {token.start}, found {found}")

    def _nest(self, token: _Token, extra: int = 1) -> None:
        if self._depth + extra > MAX_DEPTH:
            _fail(f"nesting deeper than {MAX_DEPTH} levels at position {token.start}")

    # Boolean structure.

    def _piped(self) -> Expr:
        expr = self._or()
        negations = 0
        while self._peek().kind == "|":
            if not self._is_word("not", 1):
                self._take()
                self._expected("`not` (only `| not` can follow a complete condition)")
            negations += 1
            self._nest(self._peek(), negations)
            self._pos += 2
            expr = Not(expr)
        if negations and (self._is_word("and") or self._is_word("or")):
            # In jq the pipe binds loosest: `x | not and y` would evaluate y against x's value.
            self._expected("`)` or end of input after `| not` (write `(x | not) and y`)")
        return expr

    def _or(self) -> Expr:
        operands = [self._and()]
        while self._is_word("or"):
            self._take()
            operands.append(self._and())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def _and(self) -> Expr:
        operands = [self._unary()]
        while self._is_word("and"):
            self._take()
            operands.append(self._unary())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def _unary(self) -> Expr:
        token = self._peek()
        if token.kind == "word" and token.text == "not":
            self._nest(token)
            self._take()
            self._depth += 1
            operand = self._unary()
            self._depth -= 1
            return Not(operand)
        if token.kind == "(":
            self._nest(token)
            self._take()
            self._depth += 1
            expr = self._piped()
            self._depth -= 1
            self._expect(")", "`)`, `and`, `or` or `| not`")
            return expr
        return self._condition()

    # Conditions.

    def _condition(self) -> Expr:
        token = self._peek()
        self._terms += 1
        if self._terms > MAX_TERMS:
            _fail(f"more than {MAX_TERMS} conditions (at position {token.start})")
        if self._starts_literal(token):
            value = self._literal()
            op_token = self._peek()
            op = self._compare_op("a comparison operator after a literal")
            return _compare(self._path(), _MIRROR[op], value, op_token)
        if token.kind not in ("field", "."):
            self._expected("a path (such as `.a`), a literal, `not` or `(`")
        path = self._path()
        if self._peek().kind == "|" and not self._is_word("not", 1):
            return self._function(path)
        if self._peek().kind == "op":
            op_token = self._peek()
            op = self._compare_op("a comparison operator")
            if not self._starts_literal(self._peek()):
                self._expected("a string, number, true, false or null")
            return _compare(path, op, self._literal(), op_token)
        return Truthy(path)

    def _function(self, path: Path) -> Expr:
        self._take()  # the pipe
        name = self._peek()
        if name.kind != "word" or name.text not in _FUNCTIONS:
            self._expected("length, contains, startswith, endswith or not after `|`")
        self._take()
        if name.text == "length":
            op = self._compare_op("a comparison operator after length")
            if self._peek().kind != "number":
                self._expected("a number to compare length with")
            value = self._literal()
            assert isinstance(value, int | float)
            return LengthCompare(path, op, value)
        self._expect("(", f"`(` after {name.text}")
        arg_token = self._peek()
        if not self._starts_literal(arg_token):
            self._expected(f"a literal argument to {name.text}")
        arg = self._literal()
        self._expect(")", f"`)` to close {name.text}(")
        if name.text == "contains":
            if arg is None:
                _fail(f"contains() takes a string, number or boolean at position {arg_token.start}")
            return Contains(path, arg)
        if not isinstance(arg, str):
            _fail(f"{name.text}() takes a string at position {arg_token.start}")
        return StartsWith(path, arg) if name.text == "startswith" else EndsWith(path, arg)

    def _compare_op(self, what: str) -> CompareOp:
        return _OPS[self._expect("op", what).text]

    @staticmethod
    def _starts_literal(token: _Token) -> bool:
        return token.kind in ("string", "number") or (
            token.kind == "word" and token.text in ("true", "false", "null")
        )

    def _literal(self) -> Scalar:
        token = self._take()
        if token.kind != "word":
            return token.value
        return {"true": True, "false": False, "null": None}[token.text]

    def _path(self) -> Path:
        """Segments must touch each other: `.a.b[0]`, not `.a .b`."""
        first = self._peek()
        if first.kind not in ("field", "."):
            self._expected("a path such as `.a`")
        segments: list[str | int] = []
        end = first.start
        while (token := self._peek()).start == end:
            if token.kind == "field":
                self._take()
                segments.append(_key(str(token.value), token))
            elif token.kind == "[":
                segments.append(self._bracket())
            elif token.kind == ".":
                nxt = self._peek(1)
                adjacent = nxt.start == token.end
                self._take()
                if adjacent and nxt.kind == "[":
                    segments.append(self._bracket())
                elif adjacent and nxt.kind == "string":
                    segments.append(_key(str(self._take().value), nxt))
                elif token is first:
                    break  # the bare root path `.`
                else:
                    self._expected("a field name, a string or `[` after `.`")
            else:
                break
            if len(segments) > MAX_PATH:
                _fail(f"path longer than {MAX_PATH} segments at position {token.start}")
            end = self._tokens[self._pos - 1].end
        return Path(tuple(segments))

    def _bracket(self) -> str | int:
        self._take()  # [
        token = self._peek()
        if token.kind == "string":
            segment: str | int = _key(str(self._take().value), token)
        elif token.kind == "number" and isinstance(token.value, int):
            self._take()
            segment = token.value
            if abs(segment) > MAX_INDEX:
                _fail(f"array index beyond {MAX_INDEX} at position {token.start}")
        else:
            self._expected("an integer index or a string key inside `[]`")
        self._expect("]", "`]`")
        return segment


def _key(key: str, token: _Token) -> str:
    # SQLite's JSON paths cannot express these characters inside a key.
    if any(c in '"\\' or ord(c) < 0x20 for c in key):
        _fail(
            f"path key at position {token.start} contains a quote, backslash or control character"
        )
    return key


def _compare(path: Path, op: CompareOp, value: Scalar, op_token: _Token) -> Compare:
    if op not in ("==", "!=") and (value is None or isinstance(value, bool)):
        _fail(
            f"{op_token.text} at position {op_token.start} compares only numbers or strings"
            " (it never holds for true, false or null)"
        )
    return Compare(path, op, value)
