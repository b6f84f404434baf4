"""Set-based bulk actions at the store level: state changes, exact queue counts, one event per
job, unique locks and batch counters."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import pytest

from jobbie.store.bulk import APPLIES_TO
from jobbie.store.params import BatchSpec, BulkSpec, NewJob
from jobbie.store.rules import DEFAULT_RETRY
from jobbie.store.sqlite import batches, bulk
from jobbie.store.sqlite.database import migrate, open_connection
from jobbie.store.sqlite.inserts import insert_jobs
from jobbie.store.sqlite.writer import Tx
from tests.store.helpers import run_tx

T = TypeVar("T")
NOW = 1_767_600_000_000
STATES = ("pending", "scheduled", "retrying", "active", "completed", "dead", "cancelled")


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    connection = open_connection(tmp_path / "jobbie.db", durable=False)
    connection.row_factory = sqlite3.Row
    migrate(connection)
    yield connection
    connection.close()


def run(conn: sqlite3.Connection, op: Callable[[Tx], T], now: int = NOW) -> T:
    """One writer transaction at `now`."""
    return run_tx(conn, op, now)


def add_jobs(
    conn: sqlite3.Connection,
    queue: str,
    n: int,
    *,
    unique: bool = False,
    batch: bool = False,
) -> list[str]:
    """Insert `n` pending jobs (optionally unique, optionally one batch with a callback)."""

    def op(tx: Tx) -> list[str]:
        batch_id = "batch_test" if batch else None
        new = [
            NewJob(
                queue=queue,
                payload=msgspec.json.encode({"i": i}).decode(),
                priority=2,
                retry=DEFAULT_RETRY,
                unique_key=f"key-{i}" if unique else None,
                unique_period_ms=3_600_000 if unique else None,
            )
            for i in range(n)
        ]
        created = insert_jobs(tx, new, batch_id=batch_id)
        if batch_id is not None:
            batches.create(tx, batch_id, n, BatchSpec(callback_queue="cb", callback_payload="1"))
        return [job_id for job_id, _ in created]

    return run(conn, op)


def set_state(conn: sqlite3.Connection, job_id: str, state: str, **columns: Any) -> None:
    """Put a job in a state directly (the count triggers follow)."""
    sets = ", ".join(f"{name} = ?" for name in ["state", *columns])
    conn.execute(f"UPDATE jobs SET {sets} WHERE id = ?", (state, *columns.values(), job_id))


def jobs_in_every_state(conn: sqlite3.Connection, queue: str, **kw: Any) -> dict[str, str]:
    ids = add_jobs(conn, queue, len(STATES), **kw)
    jobs = dict(zip(STATES, ids, strict=True))
    for state, job_id in jobs.items():
        extra: dict[str, Any] = {}
        if state in ("active", "completed", "dead", "retrying"):
            extra = {"attempt": 1, "checkpoint": '{"c":1}', "result": '"r"'}
        set_state(conn, job_id, state, **extra)
        if state in ("dead", "retrying"):
            conn.execute(
                "INSERT INTO job_errors (job_id, attempt, error, at) VALUES (?, 1, 'boom', ?)",
                (job_id, NOW),
            )
    return jobs


def seqs(conn: sqlite3.Connection, ids: list[str]) -> list[int]:
    return [
        conn.execute("SELECT seq FROM jobs WHERE id = ?", (job_id,)).fetchone()[0] for job_id in ids
    ]


def job(conn: sqlite3.Connection, job_id: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return row


def state_of(conn: sqlite3.Connection, job_id: str) -> str | None:
    row = job(conn, job_id)
    return None if row is None else str(row["state"])


def assert_counts_exact(conn: sqlite3.Connection) -> None:
    """queue_counts (kept by triggers) equals a GROUP BY over the jobs table."""
    kept = {
        (r["queue"], r["state"]): r["n"]
        for r in conn.execute("SELECT queue, state, n FROM queue_counts WHERE n != 0")
    }
    actual = {
        (r[0], r[1]): r[2]
        for r in conn.execute("SELECT queue, state, count(*) FROM jobs GROUP BY queue, state")
    }
    assert kept == actual
    negative = conn.execute("SELECT count(*) FROM queue_counts WHERE n < 0").fetchone()[0]
    assert negative == 0


def events_of(conn: sqlite3.Connection, type_: str, at: int = NOW) -> list[tuple[Any, ...]]:
    return [
        tuple(r)
        for r in conn.execute(
            "SELECT job_id, queue, data FROM events WHERE type = ? AND at = ? ORDER BY id",
            (type_, at),
        )
    ]


def locked_jobs(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT job_id FROM unique_locks")}


LATER = NOW + 1000


def test_retry_resets_finished_jobs(conn: sqlite3.Connection) -> None:
    jobs = jobs_in_every_state(conn, "q")
    changed = run(conn, lambda tx: bulk.retry(tx, seqs(conn, list(jobs.values()))), LATER)
    assert changed == 3
    for state in ("completed", "dead", "cancelled"):
        row = job(conn, jobs[state])
        assert row is not None
        assert (row["state"], row["attempt"]) == ("pending", 0)
        assert (row["result"], row["checkpoint"], row["progress"]) == (None, None, None)
    for state in ("pending", "scheduled", "retrying", "active"):
        assert state_of(conn, jobs[state]) == state
    # errors are history and stay
    assert (
        conn.execute(
            "SELECT count(*) FROM job_errors WHERE job_id = ?", (jobs["dead"],)
        ).fetchone()[0]
        == 1
    )
    retried = {r[0] for r in events_of(conn, "enqueued", LATER)}
    assert retried == {jobs["completed"], jobs["dead"], jobs["cancelled"]}
    assert_counts_exact(conn)


def test_retry_does_not_take_unique_locks(conn: sqlite3.Connection) -> None:
    jobs = jobs_in_every_state(conn, "q", unique=True)
    conn.execute("DELETE FROM unique_locks WHERE job_id = ?", (jobs["dead"],))
    run(conn, lambda tx: bulk.retry(tx, seqs(conn, [jobs["dead"]])))
    assert jobs["dead"] not in locked_jobs(conn)


def test_requeue_keeps_history_and_allows_one_more_attempt(conn: sqlite3.Connection) -> None:
    jobs = jobs_in_every_state(conn, "q")
    set_state(conn, jobs["dead"], "dead", attempt=4, max_retries=3)
    changed = run(conn, lambda tx: bulk.requeue(tx, seqs(conn, list(jobs.values()))), LATER)
    assert changed == 1
    row = job(conn, jobs["dead"])
    assert row is not None
    assert (row["state"], row["attempt"], row["checkpoint"]) == ("pending", 4, '{"c":1}')
    # one more attempt: the next fetch makes attempt 5, and 5 > max_retries + extra_attempts
    # means no retry after it; the configured max_retries is left alone
    assert row["max_retries"] == 3
    assert row["attempt"] + 1 == row["max_retries"] + row["extra_attempts"] + 1
    assert (
        conn.execute(
            "SELECT count(*) FROM job_errors WHERE job_id = ?", (jobs["dead"],)
        ).fetchone()[0]
        == 1
    )
    assert [r[0] for r in events_of(conn, "enqueued", LATER)] == [jobs["dead"]]
    for state in ("completed", "cancelled", "pending"):
        assert state_of(conn, jobs[state]) == state
    assert_counts_exact(conn)


def test_cancel_waiting_and_ask_active(conn: sqlite3.Connection) -> None:
    jobs = jobs_in_every_state(conn, "q", unique=True)
    changed = run(conn, lambda tx: bulk.cancel(tx, seqs(conn, list(jobs.values()))), LATER)
    assert changed == 4  # pending, scheduled, retrying cancelled; active asked
    for state in ("pending", "scheduled", "retrying"):
        row = job(conn, jobs[state])
        assert row is not None
        assert row["state"] == "cancelled"
        assert row["completed_at"] == LATER
    active = job(conn, jobs["active"])
    assert active is not None
    assert (active["state"], active["cancel_requested"]) == ("active", 1)
    for state in ("completed", "dead", "cancelled"):
        assert state_of(conn, jobs[state]) == state
    cancelled = [r[0] for r in events_of(conn, "cancelled", LATER)]
    assert sorted(cancelled) == sorted(jobs[s] for s in ("pending", "scheduled", "retrying"))
    # the cancelled ones gave up their locks; the active one still holds its own
    locks = locked_jobs(conn)
    assert not locks & {jobs["pending"], jobs["scheduled"], jobs["retrying"]}
    assert jobs["active"] in locks
    assert_counts_exact(conn)


def test_delete_any_state(conn: sqlite3.Connection) -> None:
    jobs = jobs_in_every_state(conn, "q", unique=True)
    keep = add_jobs(conn, "q", 1)[0]
    changed = run(conn, lambda tx: bulk.delete(tx, seqs(conn, list(jobs.values()))), LATER)
    assert changed == 7
    for job_id in jobs.values():
        assert job(conn, job_id) is None
    assert state_of(conn, keep) == "pending"
    assert conn.execute("SELECT count(*) FROM job_errors").fetchone()[0] == 0
    assert not locked_jobs(conn) & set(jobs.values())
    deleted = [(r[0], r[1]) for r in events_of(conn, "deleted", LATER)]
    assert sorted(deleted) == sorted((job_id, "q") for job_id in jobs.values())
    assert_counts_exact(conn)


def test_move_keeps_locks_and_counts(conn: sqlite3.Connection) -> None:
    jobs = jobs_in_every_state(conn, "src", unique=True)
    moveable = frozenset(APPLIES_TO["move"])
    changed = run(
        conn, lambda tx: bulk.move(tx, seqs(conn, list(jobs.values())), "dst", moveable), LATER
    )
    assert changed == 4
    for state, job_id in jobs.items():
        row = job(conn, job_id)
        assert row is not None
        expected = "dst" if state in ("pending", "dead", "scheduled", "completed") else "src"
        assert (row["queue"], row["state"]) == (expected, state)
    moved = events_of(conn, "moved", LATER)
    assert len(moved) == 4
    assert all(msgspec.json.decode(r[2]) == {"from": "src", "to": "dst"} for r in moved)
    assert conn.execute("SELECT 1 FROM queues WHERE name = 'dst'").fetchone() is not None
    # locks stay keyed to the original queue
    assert {r[0] for r in conn.execute("SELECT DISTINCT queue FROM unique_locks")} == {"src"}
    assert_counts_exact(conn)


def test_change_priority_only_waiting_jobs(conn: sqlite3.Connection) -> None:
    jobs = jobs_in_every_state(conn, "q")
    changed = run(conn, lambda tx: bulk.change_priority(tx, seqs(conn, list(jobs.values())), 0))
    assert changed == 2
    for state, job_id in jobs.items():
        row = job(conn, job_id)
        assert row is not None
        assert row["priority"] == (0 if state in ("pending", "scheduled") else 2), state
    assert_counts_exact(conn)


def test_cancel_and_delete_count_batch_jobs_failed_once(conn: sqlite3.Connection) -> None:
    ids = add_jobs(conn, "q", 4, batch=True)
    run(conn, lambda tx: bulk.cancel(tx, seqs(conn, ids[:2])))
    # deleting a job already counted (cancelled) does not count it again
    run(conn, lambda tx: bulk.delete(tx, seqs(conn, ids[:3])))
    row = conn.execute("SELECT * FROM batches WHERE id = 'batch_test'").fetchone()
    assert (row["pending"], row["failed"], row["succeeded"]) == (1, 3, 0)
    assert row["completed_at"] is None
    assert row["callback_job_id"] is None

    run(conn, lambda tx: bulk.delete(tx, seqs(conn, ids[3:])), LATER)
    row = conn.execute("SELECT * FROM batches WHERE id = 'batch_test'").fetchone()
    assert (row["pending"], row["failed"], row["completed_at"]) == (0, 4, LATER)
    callbacks = conn.execute("SELECT * FROM jobs WHERE queue = 'cb'").fetchall()
    assert [c["id"] for c in callbacks] == [row["callback_job_id"]]
    assert msgspec.json.decode(callbacks[0]["payload"]) == {
        "batch_id": "batch_test",
        "total": 4,
        "succeeded": 0,
        "failed": 4,
        "callback_payload": 1,
    }
    assert_counts_exact(conn)


def test_apply_in_chunks_covers_every_job_once(conn: sqlite3.Connection) -> None:
    ids = add_jobs(conn, "q", 25)
    set_state(conn, ids[3], "active")
    spec = BulkSpec(action="cancel", job_ids=tuple(ids))
    affected, seen = 0, 0
    matches = bulk.matching_seqs(conn, spec)
    assert len(matches) == 25
    # a job that stops matching between the read and its chunk is skipped, not acted on
    conn.execute("DELETE FROM jobs WHERE id = ?", (ids[-1],))
    for start in range(0, len(matches), 7):

        def apply(tx: Tx, chunk: list[int] = matches[start : start + 7]) -> tuple[int, int]:
            seqs = bulk.still_matching(tx, spec, chunk)
            return len(seqs), bulk.apply(tx, spec, seqs)

        count, changed = run(conn, apply)
        seen += count
        affected += changed
    assert (seen, affected) == (24, 24)  # 23 waiting jobs cancelled, the active one asked to stop
    assert len(events_of(conn, "cancelled")) == 23
    assert conn.execute("SELECT count(*) FROM jobs WHERE state = 'cancelled'").fetchone()[0] == 23
    assert_counts_exact(conn)


def test_apply_dispatches_every_action(conn: sqlite3.Connection) -> None:
    ids = add_jobs(conn, "q", 3)
    set_state(conn, ids[0], "dead", attempt=1)
    set_state(conn, ids[1], "completed", attempt=1)
    cases: list[tuple[BulkSpec, int]] = [
        (BulkSpec(action="requeue"), 1),
        (BulkSpec(action="change_priority", priority=1), 2),
        (BulkSpec(action="move", move_to_queue="other"), 3),
        (BulkSpec(action="retry"), 1),
        (BulkSpec(action="cancel"), 3),
        (BulkSpec(action="delete"), 3),
    ]
    for spec, expected in cases:

        def apply(tx: Tx, spec: BulkSpec = spec) -> int:
            return bulk.apply(tx, spec, seqs(conn, ids))

        assert run(conn, apply) == expected, spec.action
        assert_counts_exact(conn)
    assert run(conn, lambda tx: bulk.apply(tx, BulkSpec(action="delete"), [])) == 0
