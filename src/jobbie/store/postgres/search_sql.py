"""A `SearchFilter` compiled to PostgreSQL SQL; every user value is a bound parameter.

The semantics are SQLite's (`jobbie.store.sqlite.search_sql` documents them); this module
only spells them for PostgreSQL. The fragments expect the `jobs` table under its own name (no
alias): subqueries correlate on `jobs.id` and `jobs.payload`. Every compiled `payload_jq`
condition is true or false, never NULL, so `NOT` is exact.

Spelling notes:
- JSON text columns are read with `jobbie_jsonb()` (migration 003), which reads U+0000 as
  U+FFFD because jsonb cannot hold it; search strings get the same replacement, since a
  parameter cannot hold U+0000 either.
- A jq path is a strict SQL/JSON path (`json_path`), read with errors silenced: a missing
  key, or a key or index that does not fit the value's type, reads as SQL NULL (as SQLite's
  `$."0"` and `$[0]`).
- Casts that could fail (jsonb to numeric) sit inside CASE, which PostgreSQL evaluates in
  order; AND and OR may be evaluated in any order.
- Numbers compare as exact decimals (SQLite compares doubles, and integers exactly): they
  differ only for numbers written with more than 17 significant digits.
- String orderings use COLLATE "C": code point order, as SQLite compares, whatever the
  database's collation.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from jobbie.store import jq
from jobbie.store.cursor import NULLABLE_SORTS
from jobbie.store.search import TOTAL_CAP, SearchFilter

__all__ = [
    "clean_text",
    "count_sql",
    "json_path",
    "page_sql",
    "where_clause",
]

_SQL_OPS = {"==": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_TIME_COLUMNS = {
    "created": "created_at",
    "scheduled": "scheduled_at",
    "started": "started_at",
    "completed": "completed_at",
    "expire": "expire_at",
}
# Nullable sort columns that an index on (state, column) or by state serves.
_STATE_INDEXED = frozenset({"completed_at", "scheduled_at"})
_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# SQLite's LIKE folds ASCII letters only; translate() does exactly that, ILIKE would fold more.
_ASCII_FOLD = f"'{_UPPER}', '{_UPPER.lower()}'"


def where_clause(f: SearchFilter) -> tuple[str, list[object]]:
    """The filter's conditions (without the cursor) as one SQL expression and its parameters."""
    conds: list[str] = []
    params: list[object] = []

    def add(sql: str, *values: object) -> None:
        conds.append(sql)
        params.extend(values)

    for column, values in (("queue", f.queues), ("state", f.states), ("priority", f.priorities)):
        if len(values) == 1:
            add(f"{column} = %s", _param(values[0]))
        elif values:
            add(f"{column} IN ({', '.join(['%s'] * len(values))})", *map(_param, values))
    if f.tags:
        # Containment of {key: value, ...}: each key holds exactly that string.
        tags = {clean_text(key): clean_text(value) for key, value in f.tags}
        add("jobbie_jsonb(jobs.tags) @> %s::jsonb", _json_text(tags))
    if f.payload_contains is not None:
        add("strpos(payload, %s) > 0", clean_text(f.payload_contains))  # case-sensitive, literal
    for prefix, column in _TIME_COLUMNS.items():
        after, before = getattr(f, f"{prefix}_after"), getattr(f, f"{prefix}_before")
        if after is not None:
            add(f"{column} > %s", after)
        if before is not None:
            add(f"{column} < %s", before)
    if f.attempt_min is not None:
        add("attempt >= %s", f.attempt_min)
    if f.attempt_max is not None:
        add("attempt <= %s", f.attempt_max)
    for column in ("unique_key", "key", "batch_id", "worker_id", "error_signature"):
        if (value := getattr(f, column)) is not None:
            add(f"{column} = %s", clean_text(value))
    if f.has_errors is not None:
        exists = "EXISTS (SELECT 1 FROM job_errors AS e WHERE e.job_id = jobs.id)"
        add(exists if f.has_errors else f"NOT {exists}")
    if f.error_contains is not None:
        needle = _ascii_lower(clean_text(f.error_contains))
        add(
            f"(strpos(translate(last_error, {_ASCII_FOLD}), %s) > 0"
            " OR EXISTS (SELECT 1 FROM job_errors AS e WHERE e.job_id = jobs.id"
            f" AND strpos(translate(e.error, {_ASCII_FOLD}), %s) > 0))",
            needle,
            needle,
        )
    if f.job_id_prefix is not None:
        # A range on the index jobs_id_prefix (code point order), not LIKE.
        prefix = clean_text(f.job_id_prefix)
        upper = _successor(prefix)
        if upper is None:
            add('id COLLATE "C" >= %s', prefix)
        else:
            add('id COLLATE "C" >= %s AND id COLLATE "C" < %s', prefix, upper)
    if f.payload_jq is not None:
        # The payload is parsed once per row (OFFSET 0 keeps the planner from inlining the
        # subquery and parsing it again for each condition).
        cond = _jq(f.payload_jq, params)
        conds.append(
            f"(SELECT {cond} FROM (SELECT jobbie_jsonb(jobs.payload) AS doc OFFSET 0) AS p)"
        )
    return " AND ".join(conds) or "true", params


def page_sql(f: SearchFilter) -> list[tuple[str, list[object]]]:
    """The SELECTs of one page, each of up to `limit + 1` rows in page order: run them in
    turn until `limit + 1` rows are read (an extra row tells the caller `has_more`).

    A nullable sort column needs two: NULL sorts below every value (first ascending, last
    descending, as SQLite orders), the opposite of PostgreSQL's default, and `NULLS LAST` would
    keep an index from giving the order. So the rows with a value and the NULL rows are read
    apart, each in plain index order, and the second only when the first ran short.
    """
    where, params = where_clause(f)
    column, limit, cursor = f.sort, f.limit + 1, f.cursor
    direction, beyond = ("DESC", "<") if f.descending else ("ASC", ">")
    if column not in NULLABLE_SORTS:
        if cursor is not None:
            where += f" AND ({column}, seq) {beyond} (%s, %s)"
            params = [*params, cursor.key, cursor.seq]
        order = f"{column} {direction}, seq {direction}"
        return [(f"SELECT * FROM jobs WHERE {where} ORDER BY {order} LIMIT %s", [*params, limit])]
    parts: dict[bool, tuple[str, list[object]]] = {}  # NULL part? -> (SELECT, params)
    # A cursor in the NULL rows leaves no valued row after it descending, and vice versa.
    if cursor is None or cursor.key is not None or not f.descending:
        cond, args = f"{column} IS NOT NULL", list(params)
        if cursor is not None and cursor.key is not None:
            cond += f" AND ({column}, seq) {beyond} (%s, %s)"
            args += [cursor.key, cursor.seq]
        parts[False] = (f"{cond} ORDER BY {column} {direction}, seq {direction}", args)
    if cursor is None or cursor.key is None or f.descending:
        cond, args = f"{column} IS NULL", list(params)
        if cursor is not None and cursor.key is None:
            cond += f" AND seq {beyond} %s"
            args.append(cursor.seq)
        # Equal NULLs: ordered by seq alone. Naming the column too changes only the plan: a
        # state filter makes (state, completed_at) and jobs_due (scheduled_at) find the few
        # NULL rows of those states at once, where seq order would walk every job.
        ordered = f"{column} {direction}, " if f.states and column in _STATE_INDEXED else ""
        parts[True] = (f"{cond} ORDER BY {ordered}seq {direction}", args)
    return [
        (f"SELECT * FROM jobs WHERE {where} AND {tail} LIMIT %s", [*args, limit])
        for is_null in ((False, True) if f.descending else (True, False))
        if is_null in parts
        for tail, args in (parts[is_null],)
    ]


def count_sql(f: SearchFilter) -> tuple[str, list[object]]:
    """Count the jobs the filter matches, reading at most `TOTAL_CAP + 1` of them: a count
    above the cap means "more than the cap", and no more rows are read."""
    where, params = where_clause(f)
    return (
        f"SELECT count(*) AS n FROM (SELECT 1 FROM jobs WHERE {where} LIMIT %s) AS matched",
        [*params, TOTAL_CAP + 1],
    )


def clean_text(text: str) -> str:
    """A string PostgreSQL can hold: U+0000 becomes U+FFFD (see above)."""
    return text.replace("\x00", "\ufffd")


def _param(value: object) -> object:
    return clean_text(value) if isinstance(value, str) else value


def _json_text(value: object) -> str:
    return msgspec.json.encode(value).decode()


def _ascii_lower(text: str) -> str:
    return text.translate(str.maketrans(_UPPER, _UPPER.lower()))


def _successor(prefix: str) -> str | None:
    """The smallest string above every string that starts with `prefix` (None: unbounded)."""
    chars = list(prefix)
    while chars:
        code = ord(chars.pop()) + 1
        if code == 0xD800:
            code = 0xE000  # surrogates cannot be stored; skip over them
        if code <= 0x10FFFF:
            return "".join(chars) + chr(code)
    return None


# --- payload_jq ----------------------------------------------------------------------------------
# Each helper appends its parameters to `params` in the order its placeholders appear; f-strings
# evaluate their fields left to right, which keeps the two in step. `p.doc` is the payload.


def _jq(expr: jq.Expr, params: list[object]) -> str:
    match expr:
        case jq.And(operands):
            return "(" + " AND ".join(_jq(e, params) for e in operands) + ")"
        case jq.Or(operands):
            return "(" + " OR ".join(_jq(e, params) for e in operands) + ")"
        case jq.Not(operand):
            return f"(NOT {_jq(operand, params)})"
        case jq.Truthy(path):
            return f"COALESCE({_value(path, params)} NOT IN ('null', 'false'), false)"
        case jq.Compare(path, op, value):
            return _compare(path, op, value, params)
        case jq.LengthCompare(path, op, value):
            return _length(path, op, value, params)
        case jq.Contains(path, value):
            return _contains(path, value, params)
        case jq.StartsWith(path, prefix):
            return _string_test(path, "left", prefix, params)
        case jq.EndsWith(path, suffix):
            return _string_test(path, "right", suffix, params)
    raise AssertionError(f"unknown payload_jq node {expr!r}")


def _bind(value: object, params: list[object]) -> str:
    if isinstance(value, float):
        # As the decimal the literal was written as: a float8 parameter would round to 15
        # digits on its way to numeric.
        value = Decimal(repr(value))
    params.append(_param(value))
    return "%s"


def _value(path: jq.Path, params: list[object]) -> str:
    """The jsonb value at `path` (SQL NULL when missing)."""
    if not path.segments:
        return "p.doc"
    # silent => true: a path that does not fit the document reads as NULL, never an error.
    jsonpath = _bind(json_path(path), params)
    return f"jsonb_path_query_first(p.doc, {jsonpath}::jsonpath, '{{}}', true)"


def json_path(path: jq.Path) -> str:
    """The strict SQL/JSON path of a jq path: a key never reads an array element nor an index
    an object key or a scalar (`->` would read `7 -> 0` as 7); negative indexes from the end."""
    parts = ["strict $"]
    for segment in path.segments:
        if isinstance(segment, str):
            parts.append(f'."{segment}"')  # the parser refuses quotes and backslashes in keys
        elif segment >= 0:
            parts.append(f"[{segment}]")
        else:
            parts.append("[last]" if segment == -1 else f"[last - {-segment - 1}]")
    return "".join(parts)


def _type(path: jq.Path, params: list[object]) -> str:
    """The JSON type name of the value at `path`; a missing path reads as 'null'."""
    return f"COALESCE(jsonb_typeof({_value(path, params)}), 'null')"


def _text(path: jq.Path, params: list[object]) -> str:
    """The value at `path` as text (a string's characters, unquoted)."""
    return f"({_value(path, params)} #>> '{{}}')"


def _compare(path: jq.Path, op: jq.CompareOp, value: jq.Scalar, params: list[object]) -> str:
    if op == "!=":
        return f"(NOT {_compare(path, '==', value, params)})"
    if value is None:  # only == reaches here for null and booleans: the parser checks
        return f"({_type(path, params)} = 'null')"
    if isinstance(value, bool):
        return f"COALESCE({_value(path, params)} = '{'true' if value else 'false'}', false)"
    if isinstance(value, str):
        return (
            f"(CASE WHEN {_type(path, params)} = 'string'"
            f' THEN {_text(path, params)} COLLATE "C" {_SQL_OPS[op]} {_bind(value, params)}'
            " ELSE false END)"
        )
    return (
        f"(CASE WHEN {_type(path, params)} = 'number'"
        f" THEN {_value(path, params)}::numeric {_SQL_OPS[op]} {_bind(value, params)}::numeric"
        " ELSE false END)"
    )


def _length(path: jq.Path, op: jq.CompareOp, value: float, params: list[object]) -> str:
    return (
        f"COALESCE((CASE {_type(path, params)}"
        f" WHEN 'array' THEN jsonb_array_length({_value(path, params)})"
        f" WHEN 'object' THEN (SELECT count(*) FROM jsonb_object_keys({_value(path, params)}))"
        f" WHEN 'string' THEN length({_text(path, params)})"
        f" WHEN 'null' THEN 0 END) {_SQL_OPS[op]} {_bind(value, params)}::numeric, false)"
    )


def _contains(path: jq.Path, value: str | float | bool, params: list[object]) -> str:
    kind = _type(path, params)
    target = _value(path, params)
    # Containment of a one-element array: a top-level element equal to `value`, type included
    # (numbers by value: 4 and 4.0 are equal).
    if isinstance(value, bool):
        element = f"'[{'true' if value else 'false'}]'::jsonb"
    elif isinstance(value, str):
        element = f"jsonb_build_array({_bind(value, params)}::text)"
    else:
        element = f"jsonb_build_array({_bind(value, params)}::numeric)"
    in_array = f"{target} @> {element}"
    if not isinstance(value, str):
        return f"(CASE WHEN {kind} = 'array' THEN {in_array} ELSE false END)"
    in_text = f"strpos({_text(path, params)}, {_bind(value, params)}) > 0"
    return f"(CASE {kind} WHEN 'array' THEN {in_array} WHEN 'string' THEN {in_text} ELSE false END)"


def _string_test(path: jq.Path, end: str, part: str, params: list[object]) -> str:
    """startswith (`left`) or endswith (`right`): the string's first or last characters."""
    return (
        f"(CASE WHEN {_type(path, params)} = 'string'"
        f" THEN {end}({_text(path, params)}, {_bind(len(part), params)}::int)"
        f" = {_bind(part, params)} ELSE false END)"
    )
