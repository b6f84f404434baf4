"""The payload_jq parser: every construct, precedence, error positions and hostile input."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobbie.errors import ValidationError
from jobbie.store.jq import (
    MAX_DEPTH,
    MAX_LENGTH,
    MAX_LITERAL,
    MAX_TERMS,
    And,
    Compare,
    Contains,
    EndsWith,
    Expr,
    LengthCompare,
    Not,
    Or,
    Path,
    StartsWith,
    Truthy,
    parse_jq,
)
from jobbie.store.sqlite.search_sql import json_path


def p(*segments: str | int) -> Path:
    return Path(segments)


def t(*segments: str | int) -> Truthy:
    return Truthy(p(*segments))


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (".", t()),
        (".a", t("a")),
        (".a.b_2.C", t("a", "b_2", "C")),
        (".a[0]", t("a", 0)),
        (".a[0][12].b", t("a", 0, 12, "b")),
        (".a[-1]", t("a", -1)),
        (".[0]", t(0)),
        ('.["key with spaces"]', t("key with spaces")),
        ('."quoted key"', t("quoted key")),
        ('.a.["b"]', t("a", "b")),
        ('.a["b.c"]', t("a", "b.c")),
        ('.["ünï"]', t("ünï")),
        (".and.or.not.length", t("and", "or", "not", "length")),
        ("  .a  ", t("a")),
    ],
)
def test_paths(query: str, expected: Expr) -> None:
    assert parse_jq(query) == expected


@pytest.mark.parametrize(
    ("query", "value"),
    [
        ('.a == "x"', "x"),
        ('.a == "esc \\" \\\\ \\/ \\b \\f \\n \\r \\t"', 'esc " \\ / \b \f \n \r \t'),
        ('.a == "\\u00e9\\u2713"', "é✓"),
        ('.a == "\\ud83d\\ude00"', "\U0001f600"),
        ('.a == "ünïcødé 😀"', "ünïcødé 😀"),
        ('.a == ""', ""),
        (".a == 0", 0),
        (".a == -12", -12),
        (".a == 1.5", 1.5),
        (".a == -2e3", -2000.0),
        (".a == 1E-2", 0.01),
        (".a == true", True),
        (".a == false", False),
        (".a == null", None),
        (".a == 9223372036854775807", 2**63 - 1),
    ],
)
def test_literals(query: str, value: object) -> None:
    expr = parse_jq(query)
    assert expr == Compare(p("a"), "==", value)  # type: ignore[arg-type]
    assert isinstance(expr, Compare) and type(expr.value) is type(value)


@pytest.mark.parametrize("op", ["==", "!=", "<", "<=", ">", ">="])
def test_comparison_operators(op: str) -> None:
    assert parse_jq(f".a {op} 1") == Compare(p("a"), op, 1)  # type: ignore[arg-type]
    assert parse_jq(f".a{op}1") == Compare(p("a"), op, 1)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("1 < .a", Compare(p("a"), ">", 1)),
        ("1 <= .a", Compare(p("a"), ">=", 1)),
        ('"x" > .a', Compare(p("a"), "<", "x")),
        ("2 >= .a", Compare(p("a"), "<=", 2)),
        ("null == .a", Compare(p("a"), "==", None)),
        ("true != .a", Compare(p("a"), "!=", True)),
    ],
)
def test_literal_on_the_left_mirrors_the_operator(query: str, expected: Expr) -> None:
    assert parse_jq(query) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (".items | length > 5", LengthCompare(p("items"), ">", 5)),
        (". | length == 0", LengthCompare(p(), "==", 0)),
        (".s|length<=2.5", LengthCompare(p("s"), "<=", 2.5)),
        ('.s | contains("x")', Contains(p("s"), "x")),
        (".l | contains(3)", Contains(p("l"), 3)),
        (".l | contains(true)", Contains(p("l"), True)),
        ('.s | startswith("ab")', StartsWith(p("s"), "ab")),
        ('.s | endswith("")', EndsWith(p("s"), "")),
        (".a | not", Not(t("a"))),
        ('.s | contains("x") | not', Not(Contains(p("s"), "x"))),
        (".a | not | not", Not(Not(t("a")))),
    ],
)
def test_pipes(query: str, expected: Expr) -> None:
    assert parse_jq(query) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (".a and .b", And((t("a"), t("b")))),
        (".a and .b and .c", And((t("a"), t("b"), t("c")))),
        (".a or .b or .c", Or((t("a"), t("b"), t("c")))),
        (".a or .b and .c", Or((t("a"), And((t("b"), t("c")))))),
        (".a and .b or .c", Or((And((t("a"), t("b"))), t("c")))),
        ("(.a or .b) and .c", And((Or((t("a"), t("b"))), t("c")))),
        ("not .a and .b", And((Not(t("a")), t("b")))),
        ("not .a or .b", Or((Not(t("a")), t("b")))),
        ("not .a == 1", Not(Compare(p("a"), "==", 1))),
        ("not (.a and .b)", Not(And((t("a"), t("b"))))),
        ("not not .a", Not(Not(t("a")))),
        # As in jq, the pipe binds loosest: postfix not negates everything before it.
        (".a and .b | not", Not(And((t("a"), t("b"))))),
        (".a or .b | not", Not(Or((t("a"), t("b"))))),
        ("(.a | not) and .b", And((Not(t("a")), t("b")))),
        (".a and (.b | not)", And((t("a"), Not(t("b"))))),
        ("((.a))", t("a")),
        (
            '.x == 1 and (.y | length > 2 or .z | startswith("q"))',
            And(
                (
                    Compare(p("x"), "==", 1),
                    Or((LengthCompare(p("y"), ">", 2), StartsWith(p("z"), "q"))),
                )
            ),
        ),
    ],
)
def test_precedence(query: str, expected: Expr) -> None:
    assert parse_jq(query) == expected


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "expected a path (such as `.a`), a literal, `not` or `(` at position 0, found end"),
        (".a foo", 'expected `and`, `or`, `| not` or end of input at position 3, found "foo"'),
        (".a .b", 'at position 3, found ".b"'),
        (".a ==", "expected a string, number, true, false or null at position 5, found end"),
        (".a == foo", 'at position 6, found "foo"'),
        (".a == .b", 'at position 6, found ".b"'),
        (".a == 1 == 2", 'at position 8, found "=="'),
        (
            ".a | foo",
            "expected length, contains, startswith, endswith or not after `|` at position 5",
        ),
        (".a | length", "expected a comparison operator after length at position 11"),
        ('.a | length == "3"', "expected a number to compare length with at position 15"),
        (".a | contains", "expected `(` after contains at position 13"),
        (".a | contains(.b)", "expected a literal argument to contains at position 14"),
        ('.a | contains("x"', "expected `)` to close contains( at position 17"),
        (".a | contains(null)", "contains() takes a string, number or boolean at position 14"),
        (".a | startswith(1)", "startswith() takes a string at position 16"),
        (".a | endswith(true)", "endswith() takes a string at position 14"),
        (".a == 1 | length > 2", "expected `not` (only `| not` can follow a complete condition)"),
        (".a | not and .b", "expected `)` or end of input after `| not`"),
        (".a > true", "> at position 3 compares only numbers or strings"),
        ("null <= .a", "<= at position 5 compares only numbers or strings"),
        ("(.a", "expected `)`, `and`, `or` or `| not` at position 3, found end of input"),
        (".a)", 'at position 2, found ")"'),
        ("not", "at position 3, found end of input"),
        (".a and", "at position 6, found end of input"),
        ("and .a", 'at position 0, found "and"'),
        ("5", "expected a comparison operator after a literal at position 1"),
        ("1 < 2", "expected a path such as `.a` at position 4"),
        (".a.", "expected a field name, a string or `[` after `.` at position 3"),
        ("..a", 'at position 1, found ".a"'),
        (".a[", "expected an integer index or a string key inside `[]` at position 3"),
        (".a[1.5]", 'inside `[]` at position 3, found "1.5"'),
        (".a[0", "expected `]` at position 4"),
        (".a[2000000]", "array index beyond 1000000 at position 3"),
        ('.["a\\"b"]', "path key at position 2 contains a quote, backslash or control character"),
        ("'x'", 'unexpected character "\'" at position 0'),
        (".a = 1", 'unexpected character "=" at position 3'),
        ('.a == "abc', "unterminated string starting at position 6"),
        ('.a == "\\x"', 'invalid escape "\\\\x" at position 7'),
        ('.a == "\\u12"', "invalid \\u escape at position 7: expected 4 hex digits"),
        ('.a == "\\ud800"', "lone surrogate escape at position 7"),
        ('.a == "\\udc00\\ud800"', "lone surrogate escape at position 7"),
        ('.a == "tab\there"', "control character in string at position 10"),
        (".a == 01", 'at position 7, found "1"'),
        (".a == 1e999", "number at position 6 is too large"),
        (".a == 99999999999999999999", "out of the 64-bit integer range"),
        (".a == -", 'unexpected character "-" at position 6'),
    ],
)
def test_errors_name_the_position(query: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_jq(query)
    assert caught.value.message.startswith("payload_jq: ")
    assert message in caught.value.message


def test_error_shows_long_tokens_shortened() -> None:
    with pytest.raises(ValidationError, match=r'found "x{20}\.\.\."$'):
        parse_jq(".a " + "x" * 500)


# --- limits against hostile input -----------------------------------------------------------------


def test_too_long_is_refused_before_parsing() -> None:
    with pytest.raises(ValidationError, match=f"longer than {MAX_LENGTH} characters"):
        parse_jq(".a or " * 1000)


def test_nesting_is_limited() -> None:
    assert parse_jq("(" * MAX_DEPTH + ".a" + ")" * MAX_DEPTH) == t("a")
    with pytest.raises(ValidationError, match="nesting deeper than 32 levels at position 32"):
        parse_jq("(" * (MAX_DEPTH + 1) + ".a" + ")" * (MAX_DEPTH + 1))
    with pytest.raises(ValidationError, match="nesting deeper"):
        parse_jq("not " * (MAX_DEPTH + 1) + ".a")
    with pytest.raises(ValidationError, match="nesting deeper"):
        parse_jq(".a" + " | not" * (MAX_DEPTH + 1))
    with pytest.raises(ValidationError, match="nesting deeper"):
        parse_jq("(not " * 17 + ".a" + ")" * 17)
    # Deep input is refused by the limit, never by Python's recursion limit.
    with pytest.raises(ValidationError, match="nesting deeper"):
        parse_jq("(" * 1999 + ".a")


def test_number_of_conditions_is_limited() -> None:
    parse_jq(" and ".join([".a"] * MAX_TERMS))
    with pytest.raises(ValidationError, match=f"more than {MAX_TERMS} conditions"):
        parse_jq(" or ".join([".a"] * (MAX_TERMS + 1)))


def test_literal_length_is_limited() -> None:
    parse_jq(f'.a == "{"x" * MAX_LITERAL}"')
    with pytest.raises(ValidationError, match="longer than 1000 characters"):
        parse_jq(f'.a == "{"x" * (MAX_LITERAL + 1)}"')
    with pytest.raises(ValidationError, match="number at position 6 is longer than 100"):
        parse_jq(".a == " + "1" * 101)


def test_path_length_is_limited() -> None:
    parse_jq(".a" * 32)
    with pytest.raises(ValidationError, match="path longer than 32 segments"):
        parse_jq(".a" * 33)


def test_injection_text_is_only_ever_a_literal() -> None:
    evil = "x' OR 1=1 --"
    assert parse_jq(f'.a == "{evil}"') == Compare(p("a"), "==", evil)
    assert parse_jq('.["a\'); DROP TABLE jobs; --"]') == t("a'); DROP TABLE jobs; --")
    with pytest.raises(ValidationError):
        parse_jq(".a == 1; DROP TABLE jobs")
    with pytest.raises(ValidationError):
        parse_jq(".a == 1 -- comment")


def test_json_paths_quote_every_key() -> None:
    assert json_path(p()) == "$"
    assert json_path(p("a", 0, "b c", -1)) == '$."a"[0]."b c"[#-1]'


@given(st.text(max_size=60))
def test_any_text_parses_or_raises_a_validation_error(text: str) -> None:
    try:
        parse_jq(text)
    except ValidationError as error:
        assert error.message.startswith("payload_jq: ")
        error.message.encode("utf-8")  # lone surrogates in the input are escaped in messages


@given(st.text(max_size=50))
def test_any_string_round_trips_through_a_json_literal(value: str) -> None:
    # JSON escaping (ASCII with \u pairs, or raw) gives the same value back.
    for literal in (json.dumps(value), json.dumps(value, ensure_ascii=False)):
        try:
            expr = parse_jq(f".a == {literal}")
        except ValidationError:
            assert any(0xD800 <= ord(c) <= 0xDFFF for c in value)
            continue
        assert expr == Compare(p("a"), "==", value)


_words = st.sampled_from([".a", ".b[0]", '.c == "x"', ".d | length > 1", "not .e", "(.f or .g)"])


@given(st.lists(_words, min_size=1, max_size=10), st.lists(st.sampled_from(["and", "or"])))
def test_generated_boolean_queries_parse(terms: list[str], joins: list[str]) -> None:
    query = terms[0]
    for term, join in zip(terms[1:], joins, strict=False):
        query += f" {join} {term}"
    assert isinstance(parse_jq(query), Expr)
