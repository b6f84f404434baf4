"""Search SQL against a real, migrated SQLite database: filters, payload_jq, keyset pages."""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobbie.models import SearchRequest
from jobbie.store.cursor import split_page
from jobbie.store.search import search_filter
from jobbie.store.sqlite.database import migrate, open_connection
from jobbie.store.sqlite.search_sql import count_sql, page_sql, where_clause

_ids = itertools.count(1)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sqlite3.Connection]:
    conn = open_connection(tmp_path_factory.mktemp("search") / "jobs.db", durable=False)
    migrate(conn)
    conn.row_factory = sqlite3.Row
    yield conn
    conn.close()


@pytest.fixture
def conn(db: sqlite3.Connection) -> sqlite3.Connection:
    db.execute("DELETE FROM jobs")
    return db


def insert(conn: sqlite3.Connection, name: str | None = None, **cols: Any) -> str:
    """Insert a job row; `payload` and `tags` are Python values stored as compact JSON."""
    n = next(_ids)
    row: dict[str, Any] = {
        "id": f"job_{name}" if name else f"job_{n:06d}",
        "queue": "q",
        "state": "pending",
        "priority": 2,
        "max_retries": 3,
        "retry_backoff": "exponential",
        "retry_base_delay_ms": 1000,
        "retry_max_delay_ms": 60_000,
        "created_at": 1_000_000 + n,
    }
    row.update(cols)
    row["payload"] = _json(cols.get("payload"))
    row["tags"] = _json(cols.get("tags", {}))
    names = ", ".join(row)
    marks = ", ".join("?" * len(row))
    conn.execute(f"INSERT INTO jobs ({names}) VALUES ({marks})", list(row.values()))
    return str(row["id"])


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def ids(conn: sqlite3.Connection, **fields: Any) -> set[str]:
    """The ids a search with these request fields returns (one page of up to 1000)."""
    f = search_filter(SearchRequest(limit=1000, **fields))
    sql, params = page_sql(f)
    rows = conn.execute(sql, params).fetchall()
    assert len(rows) <= 1000
    count, count_params = count_sql(f)
    assert len(conn.execute(count, count_params).fetchall()) == len(rows)
    return {row["id"] for row in rows}


def at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


# --- plain filters --------------------------------------------------------------------------------


def test_no_filter_matches_everything(conn: sqlite3.Connection) -> None:
    a, b = insert(conn), insert(conn, queue="other")
    assert ids(conn) == {a, b}
    assert where_clause(search_filter(SearchRequest())) == ("1", [])


def test_queue_state_and_priority_lists(conn: sqlite3.Connection) -> None:
    a = insert(conn, queue="a", state="pending", priority=0)
    b = insert(conn, queue="b", state="dead", priority=1)
    c = insert(conn, queue="c", state="dead", priority=2)
    assert ids(conn, queue="a") == {a}
    assert ids(conn, queue=["a", "b"]) == {a, b}
    assert ids(conn, state="dead") == {b, c}
    assert ids(conn, state=["pending", "dead"], queue=["a", "c"]) == {a, c}
    assert ids(conn, priority="critical") == {a}
    assert ids(conn, priority=["high", "normal"]) == {b, c}


def test_tags_every_pair_must_match_and_keys_may_hold_any_character(
    conn: sqlite3.Connection,
) -> None:
    odd = "k\"e\\y.$[0] 'x"
    a = insert(conn, tags={"env": "prod", "team": "x"})
    b = insert(conn, tags={"env": "prod"})
    c = insert(conn, tags={odd: "v", "env": "dev"})
    assert ids(conn, tags={"env": "prod"}) == {a, b}
    assert ids(conn, tags={"env": "prod", "team": "x"}) == {a}
    assert ids(conn, tags={odd: "v"}) == {c}
    assert ids(conn, tags={"env": "PROD"}) == set()


def test_payload_contains_is_case_sensitive_and_literal(conn: sqlite3.Connection) -> None:
    a = insert(conn, payload={"name": "Alice", "pct": "50%_off"})
    insert(conn, payload={"name": "alice"})
    assert ids(conn, payload_contains="Alice") == {a}
    assert ids(conn, payload_contains='"name":"Alice"') == {a}
    assert ids(conn, payload_contains="50%_") == {a}
    assert ids(conn, payload_contains="%") == {a}
    assert ids(conn, payload_contains="_") == {a}


def test_time_bounds_are_exclusive(conn: sqlite3.Connection) -> None:
    a = insert(conn, created_at=1000, scheduled_at=5000)
    b = insert(conn, created_at=2000, started_at=6000, completed_at=7000)
    c = insert(conn, created_at=3000, expire_at=9000)
    assert ids(conn, created_after=at(1000)) == {b, c}
    assert ids(conn, created_before=at(3000)) == {a, b}
    assert ids(conn, created_after=at(1000), created_before=at(3000)) == {b}
    assert ids(conn, scheduled_after=at(4999)) == {a}
    assert ids(conn, scheduled_before=at(5000)) == set()
    assert ids(conn, started_after=at(5999), started_before=at(6001)) == {b}
    assert ids(conn, completed_before=at(7001)) == {b}
    assert ids(conn, expire_after=at(8999)) == {c}
    assert ids(conn, expire_before=at(9000)) == set()


def test_attempt_range_and_exact_columns(conn: sqlite3.Connection) -> None:
    a = insert(conn, attempt=0, unique_key="u1", batch_id="batch_1")
    b = insert(conn, attempt=2, worker_id="w1", state="active")
    c = insert(conn, attempt=5)
    assert ids(conn, attempt_min=2) == {b, c}
    assert ids(conn, attempt_max=2) == {a, b}
    assert ids(conn, attempt_min=2, attempt_max=2) == {b}
    assert ids(conn, unique_key="u1") == {a}
    assert ids(conn, batch_id="batch_1") == {a}
    assert ids(conn, worker_id="w1") == {b}
    assert ids(conn, worker_id="w") == set()


def _error(conn: sqlite3.Connection, job_id: str, attempt: int, text: str) -> None:
    conn.execute(
        "INSERT INTO job_errors (job_id, attempt, error, at) VALUES (?, ?, ?, 0)",
        (job_id, attempt, text),
    )


def test_has_errors_and_error_contains(conn: sqlite3.Connection) -> None:
    a = insert(conn, last_error="Timeout after 30s")
    b = insert(conn)
    c = insert(conn)
    _error(conn, b, 1, "ValueError: 100% broken")
    _error(conn, b, 2, "KeyError: 'user_id'")
    assert ids(conn, has_errors=True) == {b}
    assert ids(conn, has_errors=False) == {a, c}
    assert ids(conn, error_contains="timeout") == {a}  # LIKE: ASCII case-insensitive
    assert ids(conn, error_contains="user_id") == {b}
    assert ids(conn, error_contains="100%") == {b}
    assert ids(conn, error_contains="%") == {b}
    assert ids(conn, error_contains="_") == {b}
    assert ids(conn, error_contains="r_id'") == {b}
    assert ids(conn, error_contains="0%_") == set()


def test_job_id_prefix_is_a_literal_case_sensitive_prefix(conn: sqlite3.Connection) -> None:
    a = insert(conn, "ab%_1")
    b = insert(conn, "ab%_2")
    c = insert(conn, "abX_3")
    d = insert(conn, "AB%_4")
    assert ids(conn, job_id_prefix="job_ab") == {a, b, c}
    assert ids(conn, job_id_prefix="job_ab%") == {a, b}
    assert ids(conn, job_id_prefix="job_AB") == {d}
    assert ids(conn, job_id_prefix=a) == {a}
    e = insert(conn, "\U0010ffff\U0010ffffz")
    assert ids(conn, job_id_prefix="job_\U0010ffff") == {e}


def test_user_strings_are_bound_never_spliced(conn: sqlite3.Connection) -> None:
    evil = "x' OR 1=1 --"
    a = insert(conn, queue="q", payload={"a": evil}, last_error=evil, unique_key=evil)
    insert(conn, payload={"a": "y"})
    f = search_filter(
        SearchRequest(
            payload_jq=f'.a == "{evil}"',
            payload_contains=evil,
            error_contains=evil,
            unique_key=evil,
            tags={evil: evil},
        )
    )
    sql, params = page_sql(f)
    assert evil not in sql and "OR 1=1" not in sql
    assert evil in params
    assert ids(conn, payload_jq=f'.a == "{evil}"', unique_key=evil) == {a}


# --- payload_jq -----------------------------------------------------------------------------------

DOCS: dict[str, Any] = {
    "obj": {
        "a": 1,
        "s": "Hello, World",
        "t": True,
        "f": False,
        "n": None,
        "zero": 0,
        "r": 2.5,
        "items": [1, "two", True, 4.0],
        "nested": {"b": {"c": "deep"}, "list": [{"x": 1}, {"x": 2}]},
        "k k": "spaced",
        "uni": "ünïcødé ✓",
        "empty": "",
        "o": {"p": 1, "q": 2},
    },
    "other": {"a": "1", "s": "hello", "items": [], "t": 1, "f": 0, "zero": False, "r": "2.5"},
    "array": [10, "x", None],
    "scalar": 7,
    "string": "Hello",
    "null": None,
}


@pytest.fixture
def docs(conn: sqlite3.Connection) -> sqlite3.Connection:
    for name, doc in DOCS.items():
        insert(conn, name, payload=doc)
    return conn


def jq(conn: sqlite3.Connection, query: str) -> set[str]:
    return {i.removeprefix("job_") for i in ids(conn, payload_jq=query)}


JQ_CASES = [
    # Bare paths: true unless missing, null or false.
    (".a", {"obj", "other"}),
    (".t", {"obj", "other"}),
    (".f", {"other"}),
    (".n", set()),
    (".zero", {"obj"}),
    (".missing", set()),
    (".", {"obj", "other", "array", "scalar", "string"}),
    (".[0]", {"array"}),
    (".[-1]", set()),
    (".[-2]", {"array"}),
    (".nested.b.c", {"obj"}),
    (".nested.list[1].x", {"obj"}),
    ('.["k k"]', {"obj"}),
    ('."k k"', {"obj"}),
    ('.nested["b"].c', {"obj"}),
    # Type-strict equality; a missing path is null.
    (".a == 1", {"obj"}),
    (".a == 1.0", {"obj"}),
    ('.a == "1"', {"other"}),
    (".zero == false", {"other"}),
    (".zero == 0", {"obj"}),
    (".t == true", {"obj"}),
    (".t == 1", {"other"}),
    (".f == false", {"obj"}),
    (".n == null", set(DOCS)),
    (".n != null", set()),
    (".missing == null", set(DOCS)),
    (".missing != null", set()),
    (".a != 1", set(DOCS) - {"obj"}),
    ('.s == "Hello, World"', {"obj"}),
    ('.s == "hello, world"', set()),
    ('.uni == "ünïcødé ✓"', {"obj"}),
    ('.uni == "\\u00fcn\\u00efc\\u00f8d\\u00e9 \\u2713"', {"obj"}),
    (". == 7", {"scalar"}),
    ('. == "Hello"', {"string"}),
    (". == null", {"null"}),
    (".nested.list[0].x == 1", {"obj"}),
    ("1 == .a", {"obj"}),
    # Orderings hold only for two numbers or two strings.
    (".a > 0", {"obj"}),
    (".a >= 1", {"obj"}),
    (".a < 1", set()),
    (".a <= 1", {"obj"}),
    (".r > 2", {"obj"}),
    ('.r > "2"', {"other"}),
    ('.s < "a"', {"obj"}),
    ('.s >= "hello"', {"other"}),
    (".missing < 5", set()),
    (".missing > -5", set()),
    (".t > 0", {"other"}),
    ("0 < .a", {"obj"}),
    ("2 >= .r", set()),
    (". > 5", {"scalar"}),
    # length: arrays, strings, objects; null is 0; numbers and booleans never match.
    (".items | length == 4", {"obj"}),
    (".items | length > 0", {"obj"}),
    (".items | length == 0", set(DOCS) - {"obj"}),  # missing counts as null: 0
    (".s | length == 12", {"obj"}),
    (".s | length == 5", {"other"}),
    (".uni | length == 9", {"obj"}),
    (".o | length == 2", {"obj"}),
    (".missing | length == 0", set(DOCS)),
    (".n | length == 0", set(DOCS)),
    (".a | length >= 0", set(DOCS) - {"obj"}),  # obj's .a is a number
    (". | length == 3", {"array"}),
    (".empty | length == 0", set(DOCS)),
    # contains, startswith, endswith.
    ('.s | contains("World")', {"obj"}),
    ('.s | contains("world")', set()),
    ('.s | contains("")', {"obj", "other"}),
    ('.items | contains("two")', {"obj"}),
    ('.items | contains("tw")', set()),
    (".items | contains(4)", {"obj"}),
    (".items | contains(1)", {"obj"}),
    (".items | contains(true)", {"obj"}),
    (".items | contains(false)", set()),
    (".a | contains(1)", set()),
    ('. | contains("x")', {"array"}),
    ('. | contains("ell")', {"string"}),
    (". | contains(10)", {"array"}),
    ('.s | startswith("Hello")', {"obj"}),
    ('.s | startswith("hello")', {"other"}),
    ('.s | startswith("")', {"obj", "other"}),
    ('.s | startswith("Hello, World!!")', set()),
    ('.s | endswith("World")', {"obj"}),
    ('.s | endswith("")', {"obj", "other"}),
    ('.uni | endswith("é ✓")', {"obj"}),
    ('.a | startswith("1")', {"other"}),
    ('.items | startswith("1")', set()),
    # Boolean structure and precedence.
    (".a == 1 and .t", {"obj"}),
    ('.a == 1 or .s == "hello"', {"obj", "other"}),
    ("not .a", set(DOCS) - {"obj", "other"}),
    (".a | not", set(DOCS) - {"obj", "other"}),
    ("not .a and .t", set()),
    ("not (.a and .t)", set(DOCS) - {"obj", "other"}),
    (".a and .t | not", set(DOCS) - {"obj", "other"}),
    ('(.a == 1 or .a == "1") and .s | not', set(DOCS) - {"obj", "other"}),
    (".f or .a == 1 and .t == true", {"obj", "other"}),
    ("(.f or .a == 1) and .t == true", {"obj"}),
    (".missing > 5 | not", set(DOCS)),
    ('.s | startswith("H") | not', set(DOCS) - {"obj"}),
    ("not not .a", {"obj", "other"}),
    (".a | not | not", {"obj", "other"}),
]


@pytest.mark.parametrize(("query", "expected"), JQ_CASES)
def test_payload_jq(docs: sqlite3.Connection, query: str, expected: set[str]) -> None:
    assert jq(docs, query) == expected


def test_payload_jq_combines_with_other_filters(docs: sqlite3.Connection) -> None:
    assert ids(docs, payload_jq=".a", payload_contains="hello") == {"job_other"}
    assert ids(docs, payload_jq=".a", queue="elsewhere") == set()


# --- hypothesis: random strings never break the SQL and match like Python -------------------------

# SQLite 3.40 cuts JSON strings and its string functions at U+0000; surrogates cannot be stored.
_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)
_slow = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_slow
@given(value=_text, needle=_text)
def test_string_functions_match_python(db: sqlite3.Connection, value: str, needle: str) -> None:
    db.execute("DELETE FROM jobs")
    insert(db, "v", payload={"s": value, "l": [value]})
    lit = json.dumps(needle)
    expected = {
        f".s == {lit}": value == needle,
        f".s != {lit}": value != needle,
        f".s < {lit}": value < needle,
        f".s >= {lit}": value >= needle,
        f".s | contains({lit})": needle in value,
        f".l | contains({lit})": needle == value,
        f".s | startswith({lit})": value.startswith(needle),
        f".s | endswith({lit})": value.endswith(needle),
        f".s | length == {len(value)}": True,
    }
    for query, want in expected.items():
        assert (ids(db, payload_jq=query) == {"job_v"}) is want, query


def _ascii_lower(text: str) -> str:
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in text)


@_slow
@given(value=_text, needle=_text.filter(bool))
def test_substring_filters_match_python(db: sqlite3.Connection, value: str, needle: str) -> None:
    db.execute("DELETE FROM jobs")
    insert(db, "v", payload={"s": value}, last_error=value)
    stored = _json({"s": value})
    assert bool(ids(db, payload_contains=needle)) is (needle in stored)
    assert bool(ids(db, error_contains=needle)) is (_ascii_lower(needle) in _ascii_lower(value))
    assert bool(ids(db, job_id_prefix=needle)) is "job_v".startswith(needle)


@_slow
@given(key=_text.filter(bool), value=_text)
def test_any_tag_key_matches_exactly(db: sqlite3.Connection, key: str, value: str) -> None:
    db.execute("DELETE FROM jobs")
    insert(db, "v", tags={key: value, "other": "x"})
    assert ids(db, tags={key: value}) == {"job_v"}
    assert ids(db, tags={key: value + "!"}) == set()


# --- keyset pagination ----------------------------------------------------------------------------

SORTS = ["created_at", "priority", "started_at", "completed_at", "scheduled_at", "attempt"]


def _fill(conn: sqlite3.Connection, n: int, base: int) -> list[str]:
    """Rows with many ties and NULLs in every sortable column."""
    made = []
    for i in range(n):
        made.append(
            insert(
                conn,
                created_at=base + i // 3,
                priority=i % 3,
                attempt=i % 4,
                started_at=None if i % 4 == 0 else base + (i * 7) % 5,
                completed_at=None if i % 2 else base + i % 3,
                scheduled_at=None if i % 5 else base + i,
            )
        )
    return made


def _walk(conn: sqlite3.Connection, limit: int, between: Any = None, **fields: Any) -> list[str]:
    seen: list[str] = []
    cursor = None
    for page in range(1000):
        req = SearchRequest(limit=limit, cursor=cursor, **fields)
        f = search_filter(req)
        sql, params = page_sql(f)
        rows, cursor = split_page(f, conn.execute(sql, params).fetchall())
        seen += [row["id"] for row in rows]
        if cursor is None:
            return seen
        if between is not None:
            between(page)
    raise AssertionError("pagination did not end")


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("sort", SORTS)
def test_pages_follow_the_sort_and_visit_each_row_once(
    conn: sqlite3.Connection, sort: str, order: str
) -> None:
    _fill(conn, 40, 5000)
    rows = conn.execute("SELECT * FROM jobs").fetchall()

    def key(row: sqlite3.Row) -> tuple[bool, int, int]:
        value = row[sort]
        # NULL sorts below every value.
        return (value is not None, value or 0, row["seq"])

    expected = [r["id"] for r in sorted(rows, key=key, reverse=order == "desc")]
    for limit in (1, 3, 7, 40, 41):
        assert _walk(conn, limit, sort=sort, order=order) == expected


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("sort", SORTS)
def test_pages_stay_exact_while_jobs_are_inserted(
    conn: sqlite3.Connection, sort: str, order: str
) -> None:
    original = _fill(conn, 30, 5000)
    added: list[str] = []

    def insert_more(page: int) -> None:
        # New rows land before, inside and after the walked range.
        added.extend(_fill(conn, 3, 4990 + page * 5))

    seen = _walk(conn, 4, insert_more, sort=sort, order=order)
    assert len(seen) == len(set(seen))
    assert set(original) <= set(seen)
    assert set(seen) <= set(original) | set(added)


def test_last_page_has_no_cursor_and_total_counts_every_page(conn: sqlite3.Connection) -> None:
    _fill(conn, 10, 5000)
    f = search_filter(SearchRequest(limit=10))
    rows, cursor = split_page(f, conn.execute(*page_sql(f)).fetchall())
    assert len(rows) == 10 and cursor is None
    f = search_filter(SearchRequest(limit=3))
    rows, cursor = split_page(f, conn.execute(*page_sql(f)).fetchall())
    assert len(rows) == 3 and cursor is not None
    assert len(conn.execute(*count_sql(f)).fetchall()) == 10


# --- query plans ----------------------------------------------------------------------------------


def _plan(conn: sqlite3.Connection, **fields: Any) -> str:
    sql, params = page_sql(search_filter(SearchRequest(**fields)))
    return "\n".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params))


def test_queue_and_state_search_uses_the_queue_state_index(conn: sqlite3.Connection) -> None:
    _fill(conn, 20, 5000)
    plan = _plan(conn, queue="q", state=["pending", "dead"])
    assert "USING INDEX jobs_queue_state (queue=? AND state=?)" in plan
    # One state: the index also yields created_at order, so no sort step at all.
    plan = _plan(conn, queue="q", state="pending")
    assert "jobs_queue_state" in plan and "TEMP B-TREE" not in plan


def test_a_cursor_page_is_an_index_range(conn: sqlite3.Connection) -> None:
    _fill(conn, 20, 5000)
    f = search_filter(SearchRequest(queue="q", state="pending", limit=5))
    _, cursor = split_page(f, conn.execute(*page_sql(f)).fetchall())
    assert cursor is not None
    plan = _plan(conn, queue="q", state="pending", cursor=cursor)
    assert "jobs_queue_state (queue=? AND state=? AND created_at<?)" in plan
    assert "TEMP B-TREE" not in plan


def test_recently_completed_is_served_by_the_state_completed_index(
    conn: sqlite3.Connection,
) -> None:
    plan = _plan(conn, state="completed", sort="completed_at")
    assert "jobs_state_completed" in plan and "TEMP B-TREE" not in plan


def test_the_largest_allowed_query_runs(docs: sqlite3.Connection) -> None:
    """Every limit at once stays within SQLite's expression depth and parameter count."""
    term = '(.s | contains("W") or .items | length > 2 or .nested.list[1].x == 2)'
    group = " and ".join([term] * 21)
    query = "not " * 29 + f"({group})"
    assert jq(docs, "not " + query) == {"obj"}
    deep = "(" * 32 + ".a" + ")" * 32
    assert jq(docs, deep) == {"obj", "other"}


def test_split_page_accepts_sqlite_rows(conn: sqlite3.Connection) -> None:
    _fill(conn, 3, 5000)
    f = search_filter(SearchRequest(limit=2))
    rows: list[sqlite3.Row] = conn.execute(*page_sql(f)).fetchall()
    shown, cursor = split_page(f, rows)
    assert [r["id"] for r in shown] == [r["id"] for r in rows[:2]] and cursor is not None


@pytest.mark.parametrize(("query", "expected"), JQ_CASES)
def test_placeholders_and_parameters_stay_in_step(query: str, expected: set[str]) -> None:
    # No user text ever reaches the SQL, so every "?" in it is a placeholder.
    f = search_filter(SearchRequest(payload_jq=query, tags={"a": "b"}, queue=["x", "y"]))
    for sql, params in (where_clause(f), page_sql(f), count_sql(f)):
        assert sql.count("?") == len(params)
