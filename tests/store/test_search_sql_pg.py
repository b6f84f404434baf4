"""Search SQL against a real, migrated PostgreSQL database: the same cases as SQLite's
(`test_search_sql.py`), so both backends give every filter, payload_jq and page one meaning."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from psycopg.rows import dict_row

from jobbie.models import SearchRequest
from jobbie.store.cursor import split_page
from jobbie.store.postgres.database import migrate
from jobbie.store.postgres.search_sql import count_sql, page_sql, where_clause
from jobbie.store.search import search_filter
from tests.backends import PostgresUnavailable, postgres_database
from tests.store.test_search_sql import DOCS, JQ_CASES, SORTS, _ascii_lower, _slow, _text, at

pytestmark = pytest.mark.postgres

Conn = psycopg.Connection[dict[str, Any]]
_ids = itertools.count(1)


async def _migrate(url: str) -> None:
    async with await psycopg.AsyncConnection.connect(
        url, autocommit=True, row_factory=dict_row
    ) as conn:
        await migrate(conn)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Conn]:
    try:
        url = postgres_database(Path(tmp_path_factory.mktemp("search_pg")))
    except PostgresUnavailable as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(exc))
    asyncio.run(_migrate(url))
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        yield conn


@pytest.fixture
def conn(db: Conn) -> Conn:
    db.execute("DELETE FROM jobs")
    return db


def insert(conn: Conn, name: str | None = None, **cols: Any) -> str:
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
    marks = ", ".join(["%s"] * len(row))
    conn.execute(f"INSERT INTO jobs ({names}) VALUES ({marks})", list(row.values()))
    return str(row["id"])


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def ids(conn: Conn, **fields: Any) -> set[str]:
    """The ids a search with these request fields returns (one page of up to 1000)."""
    f = search_filter(SearchRequest(limit=1000, **fields))
    sql, params = page_sql(f)
    rows = conn.execute(sql, params).fetchall()
    assert len(rows) <= 1000
    count, count_params = count_sql(f)
    found = conn.execute(count, count_params).fetchone()
    assert found is not None and found["n"] == len(rows)
    return {row["id"] for row in rows}


# --- plain filters --------------------------------------------------------------------------------


def test_no_filter_matches_everything(conn: Conn) -> None:
    a, b = insert(conn), insert(conn, queue="other")
    assert ids(conn) == {a, b}
    assert where_clause(search_filter(SearchRequest())) == ("true", [])


def test_queue_state_and_priority_lists(conn: Conn) -> None:
    a = insert(conn, queue="a", state="pending", priority=0)
    b = insert(conn, queue="b", state="dead", priority=1)
    c = insert(conn, queue="c", state="dead", priority=2)
    assert ids(conn, queue="a") == {a}
    assert ids(conn, queue=["a", "b"]) == {a, b}
    assert ids(conn, state="dead") == {b, c}
    assert ids(conn, state=["pending", "dead"], queue=["a", "c"]) == {a, c}
    assert ids(conn, priority="critical") == {a}
    assert ids(conn, priority=["high", "normal"]) == {b, c}


def test_tags_every_pair_must_match_and_keys_may_hold_any_character(conn: Conn) -> None:
    odd = "k\"e\\y.$[0] 'x"
    a = insert(conn, tags={"env": "prod", "team": "x"})
    b = insert(conn, tags={"env": "prod"})
    c = insert(conn, tags={odd: "v", "env": "dev"})
    assert ids(conn, tags={"env": "prod"}) == {a, b}
    assert ids(conn, tags={"env": "prod", "team": "x"}) == {a}
    assert ids(conn, tags={odd: "v"}) == {c}
    assert ids(conn, tags={"env": "PROD"}) == set()


def test_payload_contains_is_case_sensitive_and_literal(conn: Conn) -> None:
    a = insert(conn, payload={"name": "Alice", "pct": "50%_off"})
    insert(conn, payload={"name": "alice"})
    assert ids(conn, payload_contains="Alice") == {a}
    assert ids(conn, payload_contains='"name":"Alice"') == {a}
    assert ids(conn, payload_contains="50%_") == {a}
    assert ids(conn, payload_contains="%") == {a}
    assert ids(conn, payload_contains="_") == {a}


def test_time_bounds_are_exclusive(conn: Conn) -> None:
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


def test_attempt_range_and_exact_columns(conn: Conn) -> None:
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


def _error(conn: Conn, job_id: str, attempt: int, text: str) -> None:
    conn.execute(
        "INSERT INTO job_errors (job_id, attempt, error, at) VALUES (%s, %s, %s, 0)",
        (job_id, attempt, text),
    )


def test_has_errors_and_error_contains(conn: Conn) -> None:
    a = insert(conn, last_error="Timeout after 30s")
    b = insert(conn)
    c = insert(conn)
    _error(conn, b, 1, "ValueError: 100% broken")
    _error(conn, b, 2, "KeyError: 'user_id'")
    assert ids(conn, has_errors=True) == {b}
    assert ids(conn, has_errors=False) == {a, c}
    assert ids(conn, error_contains="timeout") == {a}  # as SQLite's LIKE: ASCII case folded
    assert ids(conn, error_contains="user_id") == {b}
    assert ids(conn, error_contains="100%") == {b}
    assert ids(conn, error_contains="%") == {b}
    assert ids(conn, error_contains="_") == {b}
    assert ids(conn, error_contains="r_id'") == {b}
    assert ids(conn, error_contains="0%_") == set()
    d = insert(conn, last_error="Ünïcode ÉRROR")
    assert ids(conn, error_contains="ÉRROR") == {d}
    assert ids(conn, error_contains="érror") == set()  # only ASCII letters fold


def test_job_id_prefix_is_a_literal_case_sensitive_prefix(conn: Conn) -> None:
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


def test_user_strings_are_bound_never_spliced(conn: Conn) -> None:
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


def test_a_nul_character_never_fails_a_search(conn: Conn) -> None:
    """jsonb and parameters cannot hold U+0000: it reads as U+FFFD on both sides."""
    conn.execute(
        "INSERT INTO jobs (id, queue, state, priority, max_retries, retry_backoff,"
        " retry_base_delay_ms, retry_max_delay_ms, created_at, payload, tags)"
        " VALUES ('job_nul', 'q', 'pending', 2, 3, 'fixed', 1, 1, 1, %s, %s)",
        ('{"s":"a\\u0000b"}', '{"k":"v\\u0000"}'),
    )
    assert ids(conn, payload_jq='.s == "a\\u0000b"') == {"job_nul"}
    assert ids(conn, payload_jq=".s | length == 3") == {"job_nul"}
    assert ids(conn, tags={"k": "v\x00"}) == {"job_nul"}
    assert ids(conn, payload_contains="\x00", queue="q\x00") == set()


# --- payload_jq -----------------------------------------------------------------------------------


@pytest.fixture
def docs(conn: Conn) -> Conn:
    for name, doc in DOCS.items():
        insert(conn, name, payload=doc)
    return conn


def jq(conn: Conn, query: str) -> set[str]:
    return {i.removeprefix("job_") for i in ids(conn, payload_jq=query)}


@pytest.mark.parametrize(("query", "expected"), JQ_CASES)
def test_payload_jq(docs: Conn, query: str, expected: set[str]) -> None:
    assert jq(docs, query) == expected


def test_payload_jq_combines_with_other_filters(docs: Conn) -> None:
    assert ids(docs, payload_jq=".a", payload_contains="hello") == {"job_other"}
    assert ids(docs, payload_jq=".a", queue="elsewhere") == set()


def test_keys_and_indexes_never_read_each_other(conn: Conn) -> None:
    insert(conn, "obj", payload={"0": "key"})
    insert(conn, "arr", payload=["index"])
    assert jq(conn, '.["0"] == "key"') == {"obj"}
    assert jq(conn, '.[0] == "index"') == {"arr"}
    assert jq(conn, ".[0]") == {"arr"}
    assert jq(conn, '.["0"]') == {"obj"}


# --- hypothesis: random strings never break the SQL and match like Python -------------------------


@_slow
@given(value=_text, needle=_text)
def test_string_functions_match_python(db: Conn, value: str, needle: str) -> None:
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


@_slow
@given(value=_text, needle=_text.filter(bool))
def test_substring_filters_match_python(db: Conn, value: str, needle: str) -> None:
    db.execute("DELETE FROM jobs")
    insert(db, "v", payload={"s": value}, last_error=value)
    stored = _json({"s": value})
    assert bool(ids(db, payload_contains=needle)) is (needle in stored)
    assert bool(ids(db, error_contains=needle)) is (_ascii_lower(needle) in _ascii_lower(value))
    assert bool(ids(db, job_id_prefix=needle)) is "job_v".startswith(needle)


@_slow
@given(key=_text.filter(bool), value=_text)
def test_any_tag_key_matches_exactly(db: Conn, key: str, value: str) -> None:
    db.execute("DELETE FROM jobs")
    insert(db, "v", tags={key: value, "other": "x"})
    assert ids(db, tags={key: value}) == {"job_v"}
    assert ids(db, tags={key: value + "!"}) == set()


@_slow
@given(a=st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False))
def test_numbers_compare_by_value(db: Conn, a: float) -> None:
    db.execute("DELETE FROM jobs")
    insert(db, "v", payload={"n": a})
    lit = json.dumps(a)
    assert ids(db, payload_jq=f".n == {lit}") == {"job_v"}
    assert ids(db, payload_jq=f".n < {lit}") == set()
    assert ids(db, payload_jq=f".n >= {lit}") == {"job_v"}


# --- keyset pagination ----------------------------------------------------------------------------


def _fill(conn: Conn, n: int, base: int) -> list[str]:
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


def _walk(conn: Conn, limit: int, between: Any = None, **fields: Any) -> list[str]:
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
def test_pages_follow_the_sort_and_visit_each_row_once(conn: Conn, sort: str, order: str) -> None:
    _fill(conn, 40, 5000)
    rows = conn.execute("SELECT * FROM jobs").fetchall()

    def key(row: dict[str, Any]) -> tuple[bool, int, int]:
        value = row[sort]
        # NULL sorts below every value.
        return (value is not None, value or 0, row["seq"])

    expected = [r["id"] for r in sorted(rows, key=key, reverse=order == "desc")]
    for limit in (1, 3, 7, 40, 41):
        assert _walk(conn, limit, sort=sort, order=order) == expected


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("sort", SORTS)
def test_pages_stay_exact_while_jobs_are_inserted(conn: Conn, sort: str, order: str) -> None:
    original = _fill(conn, 30, 5000)
    added: list[str] = []

    def insert_more(page: int) -> None:
        # New rows land before, inside and after the walked range.
        added.extend(_fill(conn, 3, 4990 + page * 5))

    seen = _walk(conn, 4, insert_more, sort=sort, order=order)
    assert len(seen) == len(set(seen))
    assert set(original) <= set(seen)
    assert set(seen) <= set(original) | set(added)
