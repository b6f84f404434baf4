"""Ending an attempt: ack, fail, release, expired leases, and expiry of waiting jobs.

Every path that takes a job out of `active` or into a final state goes through here, so the
bookkeeping (errors, totals, unique locks, batch counters, events, waking waiters) is written
once. Each state change is a guarded UPDATE (`... AND state = ? AND attempt = ?`) checked
against the lifecycle's transition table; an update that changes no row means another writer
got there first and becomes LEASE_LOST, so the rules hold with concurrent writers too.
"""

from __future__ import annotations

import sqlite3
from collections import Counter

import msgspec

from jobbie.errors import JobbieError
from jobbie.models import FailResponse
from jobbie.store.leases import check_lease, lost_race, not_active
from jobbie.store.params import AckParams, FailParams, Fence, ReleaseParams
from jobbie.store.rules import RetryPolicy, attempts_remaining, failure_outcome
from jobbie.store.signature import error_signature
from jobbie.store.sqlite import batches
from jobbie.store.sqlite.effects import (
    bump_totals,
    record_event,
    record_events,
    release_unique_lock,
    wake_if_limited,
)
from jobbie.store.sqlite.writer import Tx
from jobbie.store.states import WAITING, Backoff, EventType, State, transition
from jobbie.timeutil import rfc3339

_COLUMNS = (
    "seq, id, queue, state, attempt, max_retries, extra_attempts, retry_backoff,"
    " retry_base_delay_ms,"
    " retry_max_delay_ms, unique_key, batch_id, batch_counted, worker_id, lease_expires_at,"
    " cancel_requested, expire_at"
)
EXPIRED = "expired"
LEASE_EXPIRED = "lease_expired"


def leased_job(tx: Tx, job_id: str, fence: Fence) -> sqlite3.Row:
    """The job's row if the caller may end its attempt, else the matching error.

    A lease is judged by the clock of this call, so an expired lease is lost even before the
    sweep reclaims it.
    """
    row: sqlite3.Row | None = tx.execute(
        f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,)
    ).fetchone()
    return check_lease(row, job_id, fence, tx.now)


def _guarded_update(tx: Tx, row: sqlite3.Row, assignments: str, params: tuple[object, ...]) -> None:
    """`UPDATE jobs SET <assignments>` on `row`'s job only while it is still in the state and
    attempt that `row` shows; no row changed means it changed meanwhile (LEASE_LOST)."""
    changed = tx.execute(
        f"UPDATE jobs SET {assignments} WHERE seq = ? AND state = ? AND attempt = ?",
        (*params, row["seq"], row["state"], row["attempt"]),
    ).rowcount
    if changed != 1:
        raise lost_race(row["id"])


def ack(tx: Tx, params: AckParams) -> str:
    """Complete the attempt: `completed`, or `cancelled` when a cancel was requested."""
    row = leased_job(tx, params.job_id, params.fence)
    state = transition(
        row["state"], State.CANCELLED if row["cancel_requested"] else State.COMPLETED
    )
    _guarded_update(
        tx,
        row,
        "state = ?, result = ?, completed_at = ?, lease_expires_at = NULL",
        (state.value, params.result, tx.now),
    )
    if state is State.COMPLETED:
        bump_totals(tx, row["queue"], completed=1)
    settle(tx, row, state)
    wake_if_limited(tx, row["queue"])
    return state.value


def ack_many(tx: Tx, acks: list[AckParams]) -> list[str | JobbieError]:
    """Complete several attempts, each succeeding or failing on its own.

    All rows are read in one query and checked in Python; plain jobs (no cancel request,
    unique lock or batch) are completed by one prepared statement, the others one by one
    through `ack`.
    """
    ids = msgspec.json.encode(sorted({a.job_id for a in acks})).decode()
    rows = {
        row["id"]: row
        for row in tx.execute(
            f"SELECT {_COLUMNS} FROM jobs WHERE id IN (SELECT value FROM json_each(?))", (ids,)
        )
    }
    results: list[str | JobbieError] = []
    plain: list[tuple[str, int, int, int]] = []
    done: list[tuple[str, str]] = []
    acked: set[str] = set()
    for params in acks:
        if params.job_id in acked:  # the same job twice in one batch: the second finds it done
            results.append(not_active(params.job_id, "completed", params.fence))
            continue
        acked.add(params.job_id)
        try:
            row = check_lease(rows.get(params.job_id), params.job_id, params.fence, tx.now)
        except JobbieError as exc:
            results.append(exc)
            continue
        if row["cancel_requested"] or row["unique_key"] is not None or row["batch_id"]:
            results.append(ack(tx, params))
        else:
            plain.append((params.result, tx.now, row["seq"], row["attempt"]))
            done.append((row["id"], row["queue"]))
            results.append(State.COMPLETED.value)
    if plain:
        transition(State.ACTIVE, State.COMPLETED)
        changed = tx.conn.executemany(
            "UPDATE jobs SET state = 'completed', result = ?, completed_at = ?,"
            " lease_expires_at = NULL WHERE seq = ? AND state = 'active' AND attempt = ?",
            plain,
        ).rowcount
        if changed != len(plain):
            # Another writer changed one of these jobs after the read above: answer nothing
            # rather than guess which; the whole operation rolls back and the acks (fenced,
            # so safe to repeat) can be sent again.
            raise lost_race(done[0][0])
        record_events(tx, EventType.COMPLETED, done)
        for queue, n in Counter(queue for _, queue in done).items():
            bump_totals(tx, queue, completed=n)
            wake_if_limited(tx, queue)
    return results


def fail(tx: Tx, params: FailParams) -> FailResponse:
    """Fail the attempt: retry with backoff, or dead, or cancelled."""
    row = leased_job(tx, params.job_id, params.fence)
    state, next_at = fail_attempt(tx, row, params.error, params.backtrace)
    remaining = 0 if state is State.DEAD else attempts_remaining(_allowed(row), row["attempt"])
    status = State.RETRYING if state is State.PENDING else state
    return FailResponse(
        status=status.value,  # type: ignore[arg-type]
        next_attempt_at=rfc3339(next_at),
        attempts_remaining=remaining,
    )


def fail_attempt(
    tx: Tx, row: sqlite3.Row, error: str, backtrace: str | None
) -> tuple[State, int | None]:
    """Record a failed attempt and move the job on; shared by fail and lease expiry."""
    now = tx.now
    tx.execute(
        "INSERT INTO job_errors (job_id, attempt, error, backtrace, at) VALUES (?, ?, ?, ?, ?)",
        (row["id"], row["attempt"], error, backtrace, now),
    )
    policy = RetryPolicy(
        max_retries=_allowed(row),
        backoff=Backoff(row["retry_backoff"]),
        base_delay_ms=row["retry_base_delay_ms"],
        max_delay_ms=row["retry_max_delay_ms"],
    )
    outcome = failure_outcome(
        attempt=row["attempt"],
        policy=policy,
        cancel_requested=bool(row["cancel_requested"]),
        expire_at=row["expire_at"],
        now=now,
    )
    state = transition(row["state"], outcome.state)
    final = state in (State.DEAD, State.CANCELLED)
    last_error = EXPIRED if outcome.reason == EXPIRED else error
    _guarded_update(
        tx,
        row,
        "state = ?, last_error = ?, error_signature = ?, failed_at = ?, lease_expires_at = NULL,"
        " scheduled_at = COALESCE(?, scheduled_at), completed_at = ?",
        (
            state.value,
            last_error,
            error_signature(last_error),
            now,
            outcome.next_attempt_at,
            now if final else None,
        ),
    )
    record_event(
        tx, EventType.FAILED, row["id"], row["queue"], {"attempt": row["attempt"], "error": error}
    )
    bump_totals(tx, row["queue"], failed=1, dead=int(state is State.DEAD))
    if final:
        settle(tx, row, state, expired=outcome.reason == EXPIRED)
    else:
        record_event(
            tx,
            EventType.RETRYING,
            row["id"],
            row["queue"],
            {"next_attempt_at": rfc3339(outcome.next_attempt_at)},
        )
        if state is State.PENDING:
            tx.wake.add(row["queue"])
    wake_if_limited(tx, row["queue"])
    return state, outcome.next_attempt_at


def _allowed(row: sqlite3.Row) -> int:
    """Retries the job may still use: its own setting plus attempts granted by requeue."""
    return int(row["max_retries"] + row["extra_attempts"])


def release(tx: Tx, params: ReleaseParams) -> str:
    """Hand an active job back without using a retry (a worker shutting down)."""
    row = leased_job(tx, params.job_id, params.fence)
    if row["cancel_requested"]:
        state = transition(row["state"], State.CANCELLED)
        _guarded_update(
            tx,
            row,
            "state = ?, completed_at = ?, lease_expires_at = NULL,"
            " checkpoint = COALESCE(?, checkpoint)",
            (state.value, tx.now, params.checkpoint),
        )
        settle(tx, row, State.CANCELLED)
        wake_if_limited(tx, row["queue"])
        return State.CANCELLED.value
    state = transition(row["state"], State.PENDING)
    _guarded_update(
        tx,
        row,
        "state = ?, attempt = attempt - 1, lease_expires_at = NULL,"
        " checkpoint = COALESCE(?, checkpoint)",
        (state.value, params.checkpoint),
    )
    record_event(tx, EventType.RELEASED, row["id"], row["queue"], {"attempt": row["attempt"]})
    tx.wake.add(row["queue"])
    return State.PENDING.value


def settle(tx: Tx, row: sqlite3.Row, state: State, *, expired: bool = False) -> None:
    """Bookkeeping for a job that reached a final state: lock, batch counters, event."""
    release_unique_lock(tx, row["queue"], row["unique_key"], row["id"])
    batches.count_finish(
        tx,
        seq=row["seq"],
        batch_id=row["batch_id"],
        counted=bool(row["batch_counted"]),
        succeeded=state is State.COMPLETED,
    )
    event = EventType.EXPIRED if expired else EventType(state.value)
    record_event(tx, event, row["id"], row["queue"])


def reclaim_expired_leases(tx: Tx, limit: int) -> int:
    """Fail up to `limit` attempts whose lease ran out, as `lease_expired` (checkpoint kept)."""
    rows = tx.execute(
        f"SELECT {_COLUMNS} FROM jobs WHERE state = 'active' AND lease_expires_at <= ?"
        " ORDER BY lease_expires_at LIMIT ?",
        (tx.now, limit),
    ).fetchall()
    for row in rows:
        record_event(
            tx, EventType.RECLAIMED, row["id"], row["queue"], {"worker_id": row["worker_id"]}
        )
        fail_attempt(tx, row, LEASE_EXPIRED, None)
    return len(rows)


def expire_waiting_job(tx: Tx, row: sqlite3.Row) -> None:
    """Send a job that never started before its `expire_at` to `dead` as `expired`."""
    if State(row["state"]) not in WAITING:
        raise lost_race(row["id"])
    state = transition(row["state"], State.DEAD)
    _guarded_update(
        tx,
        row,
        "state = ?, last_error = ?, error_signature = ?, failed_at = ?, completed_at = ?",
        (state.value, EXPIRED, error_signature(EXPIRED), tx.now, tx.now),
    )
    bump_totals(tx, row["queue"], dead=1)
    settle(tx, row, State.DEAD, expired=True)


def expire_waiting_jobs(tx: Tx, limit: int) -> int:
    """Dead-letter up to `limit` pending, scheduled or retrying jobs past their expiry."""
    rows = tx.execute(
        f"SELECT {_COLUMNS} FROM jobs WHERE expire_at IS NOT NULL AND expire_at <= ?"
        " AND state IN ('pending', 'scheduled', 'retrying') ORDER BY expire_at LIMIT ?",
        (tx.now, limit),
    ).fetchall()
    for row in rows:
        expire_waiting_job(tx, row)
    return len(rows)


def job_columns() -> str:
    """The columns `leased_job` and `expire_waiting_job` expect in a row."""
    return _COLUMNS
