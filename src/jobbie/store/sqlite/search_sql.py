"""A `SearchFilter` compiled to SQLite SQL; every user value is a bound parameter.

The fragments expect the `jobs` table under its own name (no alias): subqueries correlate on
`jobs.id`. Every compiled `payload_jq` condition is 0 or 1, never NULL, so `NOT` is exact.

`payload_jq` semantics: a missing path reads as JSON null; `==`/`!=` compare JSON type and
value (`0 == false` is false, `1 == 1.0` is true); `< <= > >=` hold only for two numbers or two
strings (strings by code point); `length` counts array elements, object keys and string
characters, is 0 for null, and is undefined (never matches) for numbers and booleans;
`contains(s)` is a case-sensitive substring on a string or an equal string element in an
array; `contains(n or b)` looks for an equal array element. SQLite stops string functions at a
U+0000 character (and 3.40 cuts JSON strings there), so `length`, `startswith`, `endswith` and
tag filters can misjudge strings that hold one.
"""

from __future__ import annotations

from jobbie.store import jq
from jobbie.store.cursor import NULLABLE_SORTS, Cursor
from jobbie.store.search import TOTAL_CAP, SearchFilter

__all__ = [
    "count_sql",
    "json_path",
    "like_pattern",
    "page_sql",
    "where_clause",
]


_SQL_OPS = {"==": "=", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_TIME_COLUMNS = {
    "created": "created_at",
    "scheduled": "scheduled_at",
    "started": "started_at",
    "completed": "completed_at",
    "expire": "expire_at",
}


def where_clause(f: SearchFilter) -> tuple[str, list[object]]:
    """The filter's conditions (without the cursor) as one SQL expression and its parameters."""
    conds: list[str] = []
    params: list[object] = []

    def add(sql: str, *values: object) -> None:
        conds.append(sql)
        params.extend(values)

    for column, values in (("queue", f.queues), ("state", f.states), ("priority", f.priorities)):
        if len(values) == 1:
            add(f"{column} = ?", values[0])
        elif values:
            add(f"{column} IN ({', '.join('?' * len(values))})", *values)
    for key, value in f.tags:
        add(
            "EXISTS (SELECT 1 FROM json_each(jobs.tags) AS t"
            " WHERE t.key = ? AND t.type = 'text' AND t.value = ?)",
            key,
            value,
        )
    if f.payload_contains is not None:
        add("instr(payload, ?) > 0", f.payload_contains)  # instr is case-sensitive, LIKE is not
    for prefix, column in _TIME_COLUMNS.items():
        after, before = getattr(f, f"{prefix}_after"), getattr(f, f"{prefix}_before")
        if after is not None:
            add(f"{column} > ?", after)
        if before is not None:
            add(f"{column} < ?", before)
    if f.attempt_min is not None:
        add("attempt >= ?", f.attempt_min)
    if f.attempt_max is not None:
        add("attempt <= ?", f.attempt_max)
    for column in ("unique_key", "key", "batch_id", "worker_id", "error_signature"):
        if (value := getattr(f, column)) is not None:
            add(f"{column} = ?", value)
    if f.has_errors is not None:
        exists = "EXISTS (SELECT 1 FROM job_errors AS e WHERE e.job_id = jobs.id)"
        add(exists if f.has_errors else f"NOT {exists}")
    if f.error_contains is not None:
        pattern = like_pattern(f.error_contains)
        add(
            "(last_error LIKE ? ESCAPE '\\' OR EXISTS (SELECT 1 FROM job_errors AS e"
            " WHERE e.job_id = jobs.id AND e.error LIKE ? ESCAPE '\\'))",
            pattern,
            pattern,
        )
    if f.job_id_prefix is not None:
        # A range on the unique index rather than LIKE, which would ignore ASCII case.
        upper = _successor(f.job_id_prefix)
        if upper is None:
            add("id >= ?", f.job_id_prefix)
        else:
            add("id >= ? AND id < ?", f.job_id_prefix, upper)
    if f.payload_jq is not None:
        conds.append(_jq(f.payload_jq, params))
    return " AND ".join(conds) or "1", params


def page_sql(f: SearchFilter) -> tuple[str, list[object]]:
    """SELECT one page: `limit + 1` rows, so that an extra row tells the caller `has_more`."""
    where, params = where_clause(f)
    if f.cursor is not None:
        where += f" AND {_after(f.sort, f.cursor)}"
        params += [v for v in (f.cursor.key, f.cursor.seq) if v is not None]
    direction = "DESC" if f.descending else "ASC"
    order = f"{f.sort} {direction}, seq {direction}"
    return f"SELECT * FROM jobs WHERE {where} ORDER BY {order} LIMIT ?", [*params, f.limit + 1]


def count_sql(f: SearchFilter) -> tuple[str, list[object]]:
    """SELECT the jobs the filter matches, up to `TOTAL_CAP + 1` rows, for the caller to count:
    more rows than the cap means "more than the cap", and no more are read. (Not a count(*)
    over a LIMIT subquery: the extra nesting overflows SQLite's parser on the largest
    `payload_jq` expressions allowed.)"""
    where, params = where_clause(f)
    return f"SELECT seq FROM jobs WHERE {where} LIMIT ?", [*params, TOTAL_CAP + 1]


def like_pattern(text: str) -> str:
    """`%text%` for `LIKE ? ESCAPE '\\'`, with the user's `%`, `_` and `\\` matching literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def json_path(path: jq.Path) -> str:
    """The SQLite JSON path of a jq path: keys always quoted, negative indexes from the end."""
    parts = ["$"]
    for segment in path.segments:
        if isinstance(segment, int):
            parts.append(f"[{segment}]" if segment >= 0 else f"[#{segment}]")
        else:
            parts.append(f'."{segment}"')  # the parser refuses quotes and backslashes in keys
    return "".join(parts)


def _after(column: str, cursor: Cursor) -> str:
    """Rows strictly after the cursor in (column, seq) order; NULL sorts below every value.

    Row values make the common case one index range (`(created_at, seq) < (?, ?)`); the
    parameters are the cursor's key (when not None) and then its seq.
    """
    less = cursor.descending
    if column not in NULLABLE_SORTS:
        return f"({column}, seq) {'<' if less else '>'} (?, ?)"
    if cursor.key is None:
        if less:  # the NULL rows come last: only those further on remain
            return f"({column} IS NULL AND seq < ?)"
        return f"(({column} IS NULL AND seq > ?) OR {column} IS NOT NULL)"
    if less:
        return f"(({column}, seq) < (?, ?) OR {column} IS NULL)"
    return f"({column}, seq) > (?, ?)"


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
# evaluate their fields left to right, which keeps the two in step.


def _jq(expr: jq.Expr, params: list[object]) -> str:
    match expr:
        case jq.And(operands):
            return "(" + " AND ".join(_jq(e, params) for e in operands) + ")"
        case jq.Or(operands):
            return "(" + " OR ".join(_jq(e, params) for e in operands) + ")"
        case jq.Not(operand):
            return f"(NOT {_jq(operand, params)})"
        case jq.Truthy(path):
            return f"{_type(path, params)} NOT IN ('null', 'false')"
        case jq.Compare(path, op, value):
            return _compare(path, op, value, params)
        case jq.LengthCompare(path, op, value):
            return _length(path, op, value, params)
        case jq.Contains(path, value):
            return _contains(path, value, params)
        case jq.StartsWith(path, prefix):
            return (
                f"({_type(path, params)} = 'text'"
                f" AND substr({_value(path, params)}, 1, {_bind(len(prefix), params)})"
                f" = {_bind(prefix, params)})"
            )
        case jq.EndsWith(path, suffix):
            if not suffix:
                return f"{_type(path, params)} = 'text'"
            return (
                f"({_type(path, params)} = 'text'"
                f" AND substr({_value(path, params)}, {_bind(-len(suffix), params)})"
                f" = {_bind(suffix, params)})"
            )
    raise AssertionError(f"unknown payload_jq node {expr!r}")


def _bind(value: object, params: list[object]) -> str:
    params.append(value)
    return "?"


def _type(path: jq.Path, params: list[object]) -> str:
    """The JSON type name of the value at `path`; a missing path reads as 'null'."""
    return f"IFNULL(json_type(jobs.payload, {_bind(json_path(path), params)}), 'null')"


def _value(path: jq.Path, params: list[object]) -> str:
    return f"json_extract(jobs.payload, {_bind(json_path(path), params)})"


def _compare(path: jq.Path, op: jq.CompareOp, value: jq.Scalar, params: list[object]) -> str:
    if op == "!=":
        return f"(NOT {_compare(path, '==', value, params)})"
    if value is None or isinstance(value, bool):  # only == reaches here: the parser checks
        name = "null" if value is None else "true" if value else "false"
        return f"{_type(path, params)} = '{name}'"
    types = "('text')" if isinstance(value, str) else "('integer', 'real')"
    return (
        f"({_type(path, params)} IN {types}"
        f" AND {_value(path, params)} {_SQL_OPS[op]} {_bind(value, params)})"
    )


def _length(path: jq.Path, op: jq.CompareOp, value: float, params: list[object]) -> str:
    return (
        f"IFNULL((CASE {_type(path, params)}"
        f" WHEN 'array' THEN json_array_length(jobs.payload, {_bind(json_path(path), params)})"
        " WHEN 'object' THEN (SELECT count(*) FROM"
        f" json_each(jobs.payload, {_bind(json_path(path), params)}))"
        f" WHEN 'text' THEN length({_value(path, params)})"
        f" WHEN 'null' THEN 0 END) {_SQL_OPS[op]} {_bind(value, params)}, 0)"
    )


def _contains(path: jq.Path, value: str | float | bool, params: list[object]) -> str:
    kind = _type(path, params)
    in_array = _any_element(path, value, params)
    if not isinstance(value, str):
        return f"({kind} = 'array' AND {in_array})"
    in_text = f"instr({_value(path, params)}, {_bind(value, params)}) > 0"
    return f"(CASE {kind} WHEN 'array' THEN {in_array} WHEN 'text' THEN {in_text} ELSE 0 END)"


def _any_element(path: jq.Path, value: str | float | bool, params: list[object]) -> str:
    """EXISTS an element of the array at `path` equal to `value`, type included."""
    source = f"json_each(jobs.payload, {_bind(json_path(path), params)})"
    if isinstance(value, bool):
        test = f"c.type = '{'true' if value else 'false'}'"
    elif isinstance(value, str):
        test = f"c.type = 'text' AND c.value = {_bind(value, params)}"
    else:
        test = f"c.type IN ('integer', 'real') AND c.value = {_bind(value, params)}"
    return f"EXISTS (SELECT 1 FROM {source} AS c WHERE {test})"
