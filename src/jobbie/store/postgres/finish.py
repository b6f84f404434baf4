"""Ending an attempt: ack, fail, release, expired leases, and expiry of waiting jobs.

Every path that takes a job out of `active` or into a final state goes through here, so the
bookkeeping (errors, totals, unique locks, batch counters, events, waking waiters) is written
once. Each state change is a guarded UPDATE (`... AND state = %s AND attempt = %s`) checked
against the lifecycle's transition table. Under READ COMMITTED an UPDATE that waited for
another transaction's row lock re-checks its WHERE on the row that transaction committed, so
an update that changes no row means another server got there first: LEASE_LOST.
"""

from __future__ import annotations

from collections import Counter

from jobbie.errors import JobbieError
from jobbie.models import FailResponse
from jobbie.store.leases import check_lease, lost_race, not_active
from jobbie.store.params import AckParams, FailParams, Fence, ReleaseParams
from jobbie.store.postgres import batches
from jobbie.store.postgres.effects import (
    bump_totals,
    record_event,
    record_events,
    release_unique_lock,
    wake_if_limited,
)
from jobbie.store.postgres.tx import Row, Tx
from jobbie.store.rules import RetryPolicy, attempts_remaining, failure_outcome
from jobbie.store.signature import error_signature
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


async def leased_job(tx: Tx, job_id: str, fence: Fence) -> Row:
    """The job's row if the caller may end its attempt, else the matching error.

    A lease is judged by the clock of this call, so an expired lease is lost even before the
    sweep reclaims it. The row is locked as it is read: what this attempt becomes depends on
    columns (`cancel_requested`) that another server may be changing at this moment.
    """
    row = await tx.one(f"SELECT {_COLUMNS} FROM jobs WHERE id = %s FOR UPDATE", (job_id,))
    return check_lease(row, job_id, fence, tx.now)


def guarded(column: str) -> str:
    """`column` (a job's state) in the guard of a statement that finds its rows by key. The
    guard is written so the planner cannot match it to a partial index's `state = ...`
    predicate: with statistics taken while no job was in that state (an idle queue, analyzed),
    it takes such an index for tiny and scans all of it instead of looking the rows up."""
    return f"({column} || '')"


async def _guarded_update(tx: Tx, row: Row, assignments: str, params: tuple[object, ...]) -> None:
    """`UPDATE jobs SET <assignments>` on `row`'s job only while it is still in the state and
    attempt that `row` shows; no row changed means it changed meanwhile (LEASE_LOST)."""
    cur = await tx.execute(
        f"UPDATE jobs SET {assignments} WHERE seq = %s AND {guarded('state')} = %s"
        " AND attempt = %s",
        (*params, row["seq"], row["state"], row["attempt"]),
    )
    if cur.rowcount != 1:
        raise lost_race(row["id"])


async def ack(tx: Tx, params: AckParams) -> str:
    """Complete the attempt: `completed`, or `cancelled` when a cancel was requested."""
    row = await leased_job(tx, params.job_id, params.fence)
    state = transition(
        row["state"], State.CANCELLED if row["cancel_requested"] else State.COMPLETED
    )
    await _guarded_update(
        tx,
        row,
        "state = %s, result = %s, completed_at = %s, lease_expires_at = NULL",
        (state.value, params.result, tx.now),
    )
    if state is State.COMPLETED:
        bump_totals(tx, row["queue"], completed=1)
    await settle(tx, row, state)
    await wake_if_limited(tx, row["queue"])
    return state.value


async def ack_many(tx: Tx, acks: list[AckParams]) -> list[str | JobbieError]:
    """Complete several attempts, each succeeding or failing on its own.

    All rows are read in one query and checked in Python; plain jobs (no cancel request,
    unique lock or batch) are completed by one statement, the others one by one through
    `ack`.
    """
    rows = {
        row["id"]: row
        for row in await tx.all(
            # Locked as read (see `leased_job`), in one order so concurrent batches cannot
            # deadlock.
            f"SELECT {_COLUMNS} FROM jobs WHERE id = ANY(%s) ORDER BY seq FOR UPDATE",
            (sorted({a.job_id for a in acks}),),
        )
    }
    results: list[str | JobbieError] = []
    plain: dict[int, tuple[int, str, int, str]] = {}  # seq -> (answer index, result, attempt, id)
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
            try:
                results.append(await ack(tx, params))
            except JobbieError as exc:  # lost a race after the read: nothing was written
                results.append(exc)
        else:
            plain[row["seq"]] = (len(results), params.result, row["attempt"], row["id"])
            results.append(State.COMPLETED.value)
    if plain:
        transition(State.ACTIVE, State.COMPLETED)
        seqs = sorted(plain)  # one lock order for concurrent batches
        done = await tx.all(
            "UPDATE jobs SET state = 'completed', result = v.result, completed_at = %s,"
            " lease_expires_at = NULL"
            " FROM unnest(%s::bigint[], %s::text[], %s::int[]) AS v(seq, result, attempt)"
            f" WHERE jobs.seq = v.seq AND {guarded('jobs.state')} = 'active'"
            " AND jobs.attempt = v.attempt"
            " RETURNING jobs.seq, jobs.id, jobs.queue",
            (
                tx.now,
                seqs,
                [plain[seq][1] for seq in seqs],
                [plain[seq][2] for seq in seqs],
            ),
        )
        # Another server may have ended one of these after the read above (a lease reclaim):
        # that ack alone is refused.
        for seq in set(plain) - {row["seq"] for row in done}:
            index, _, _, job_id = plain[seq]
            results[index] = lost_race(job_id)
        record_events(tx, EventType.COMPLETED, ((row["id"], row["queue"]) for row in done))
        for queue, n in Counter(row["queue"] for row in done).items():
            bump_totals(tx, queue, completed=n)
            await wake_if_limited(tx, queue)
    return results


async def fail(tx: Tx, params: FailParams) -> FailResponse:
    """Fail the attempt: retry with backoff, or dead, or cancelled."""
    row = await leased_job(tx, params.job_id, params.fence)
    state, next_at = await fail_attempt(tx, row, params.error, params.backtrace)
    remaining = 0 if state is State.DEAD else attempts_remaining(_allowed(row), row["attempt"])
    status = State.RETRYING if state is State.PENDING else state
    return FailResponse(
        status=status.value,  # type: ignore[arg-type]
        next_attempt_at=rfc3339(next_at),
        attempts_remaining=remaining,
    )


async def fail_attempt(
    tx: Tx, row: Row, error: str, backtrace: str | None
) -> tuple[State, int | None]:
    """Record a failed attempt and move the job on; shared by fail and lease expiry."""
    now = tx.now
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
    # The guarded update first: a lost race must leave no error row behind.
    await _guarded_update(
        tx,
        row,
        "state = %s, last_error = %s, error_signature = %s, failed_at = %s,"
        " lease_expires_at = NULL, scheduled_at = COALESCE(%s, scheduled_at), completed_at = %s",
        (
            state.value,
            last_error,
            error_signature(last_error),
            now,
            outcome.next_attempt_at,
            now if final else None,
        ),
    )
    await tx.execute(
        "INSERT INTO job_errors (job_id, attempt, error, backtrace, at)"
        " VALUES (%s, %s, %s, %s, %s)",
        (row["id"], row["attempt"], error, backtrace, now),
    )
    record_event(
        tx, EventType.FAILED, row["id"], row["queue"], {"attempt": row["attempt"], "error": error}
    )
    bump_totals(tx, row["queue"], failed=1, dead=int(state is State.DEAD))
    if final:
        await settle(tx, row, state, expired=outcome.reason == EXPIRED)
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
    await wake_if_limited(tx, row["queue"])
    return state, outcome.next_attempt_at


def _allowed(row: Row) -> int:
    """Retries the job may still use: its own setting plus attempts granted by requeue."""
    return int(row["max_retries"] + row["extra_attempts"])


async def release(tx: Tx, params: ReleaseParams) -> str:
    """Hand an active job back without using a retry (a worker shutting down)."""
    row = await leased_job(tx, params.job_id, params.fence)
    if row["cancel_requested"]:
        state = transition(row["state"], State.CANCELLED)
        await _guarded_update(
            tx,
            row,
            "state = %s, completed_at = %s, lease_expires_at = NULL,"
            " checkpoint = COALESCE(%s, checkpoint)",
            (state.value, tx.now, params.checkpoint),
        )
        await settle(tx, row, State.CANCELLED)
        await wake_if_limited(tx, row["queue"])
        return State.CANCELLED.value
    state = transition(row["state"], State.PENDING)
    await _guarded_update(
        tx,
        row,
        "state = %s, attempt = attempt - 1, lease_expires_at = NULL,"
        " checkpoint = COALESCE(%s, checkpoint)",
        (state.value, params.checkpoint),
    )
    record_event(tx, EventType.RELEASED, row["id"], row["queue"], {"attempt": row["attempt"]})
    tx.wake.add(row["queue"])
    return State.PENDING.value


async def settle(tx: Tx, row: Row, state: State, *, expired: bool = False) -> None:
    """Bookkeeping for a job that reached a final state: lock, batch counters, event."""
    await release_unique_lock(tx, row["queue"], row["unique_key"], row["id"])
    await batches.count_finish(
        tx,
        seq=row["seq"],
        batch_id=row["batch_id"],
        counted=bool(row["batch_counted"]),
        succeeded=state is State.COMPLETED,
    )
    event = EventType.EXPIRED if expired else EventType(state.value)
    record_event(tx, event, row["id"], row["queue"])


async def reclaim_expired_leases(tx: Tx, limit: int) -> int:
    """Fail up to `limit` attempts whose lease ran out, as `lease_expired` (checkpoint kept).

    The rows are locked as they are read (skipping any another transaction holds, such as a
    late ack's), so the guarded updates below cannot lose a race."""
    rows = await tx.all(
        f"SELECT {_COLUMNS} FROM jobs WHERE state = 'active' AND lease_expires_at <= %s"
        " ORDER BY lease_expires_at LIMIT %s FOR UPDATE SKIP LOCKED",
        (tx.now, limit),
    )
    for row in rows:
        record_event(
            tx, EventType.RECLAIMED, row["id"], row["queue"], {"worker_id": row["worker_id"]}
        )
        await fail_attempt(tx, row, LEASE_EXPIRED, None)
    return len(rows)


async def expire_waiting_job(tx: Tx, row: Row) -> None:
    """Send a job that never started before its `expire_at` to `dead` as `expired`."""
    if State(row["state"]) not in WAITING:
        raise lost_race(row["id"])
    state = transition(row["state"], State.DEAD)
    await _guarded_update(
        tx,
        row,
        "state = %s, last_error = %s, error_signature = %s, failed_at = %s, completed_at = %s",
        (state.value, EXPIRED, error_signature(EXPIRED), tx.now, tx.now),
    )
    bump_totals(tx, row["queue"], dead=1)
    await settle(tx, row, State.DEAD, expired=True)


async def expire_waiting_jobs(tx: Tx, limit: int) -> int:
    """Dead-letter up to `limit` pending, scheduled or retrying jobs past their expiry (locked
    as they are read, skipping any a claim holds)."""
    rows = await tx.all(
        f"SELECT {_COLUMNS} FROM jobs WHERE expire_at IS NOT NULL AND expire_at <= %s"
        " AND state IN ('pending', 'scheduled', 'retrying') ORDER BY expire_at LIMIT %s"
        " FOR UPDATE SKIP LOCKED",
        (tx.now, limit),
    )
    for row in rows:
        await expire_waiting_job(tx, row)
    return len(rows)


def job_columns() -> str:
    """The columns `leased_job` and `expire_waiting_job` expect in a row."""
    return _COLUMNS
