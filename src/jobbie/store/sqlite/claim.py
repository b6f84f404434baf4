"""Handing jobs to workers: the fetch claim, heartbeats and worker tracking."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

import msgspec

from jobbie.models import FetchedJob
from jobbie.store.base import Claim
from jobbie.store.fairness import KeyRules, serve_slots
from jobbie.store.leases import lease_holds
from jobbie.store.params import Fence, FetchParams, HeartbeatParams
from jobbie.store.records import fetched_job_from_record
from jobbie.store.sqlite import fairpick
from jobbie.store.sqlite.effects import record_events
from jobbie.store.sqlite.finish import expire_waiting_job, job_columns
from jobbie.store.sqlite.writer import Tx
from jobbie.store.states import EventType, State, transition

# Enough rounds to step over a few expired jobs at the head of a queue; the sweep takes the rest.
_MAX_ROUNDS = 4
# A fetch leases pending jobs (checked against the lifecycle once, at import).
_LEASED_FROM = State.PENDING
transition(_LEASED_FROM, State.ACTIVE)
_WORKER_SEEN_MS = 1000


def claim(tx: Tx, params: FetchParams) -> Claim:
    """Lease up to `params.count` jobs: most urgent first, then FIFO, across the queues."""
    jobs: list[FetchedJob] = []
    retry_at: int | None = None
    for _ in range(_MAX_ROUNDS):
        budget = None
        if params.max_bytes is not None:
            budget = params.max_bytes - sum(len(j.payload) + len(j.checkpoint) for j in jobs)
        picks, retry_at, expired = _pick(tx, params, params.count - len(jobs), budget, not jobs)
        leased = _lease(tx, params, [p.seq for p in picks])
        jobs.extend(leased)
        throttled = [(p.queue, tx.now) for p in picks if p.throttled]
        if throttled:
            tx.conn.executemany(
                "INSERT INTO rate_limit_window (queue, at) VALUES (?, ?)", throttled
            )
        for queue, rules in {p.queue: p.rules for p in picks if p.rules is not None}.items():
            fairpick.served(tx, queue, rules, (j.key for j in leased if j.queue == queue))
        if not expired or len(jobs) >= params.count:
            break
    if jobs:
        record_events(tx, EventType.STARTED, ((job.job_id, job.queue) for job in jobs))
    touch_worker(tx, params.worker_id, params.hostname, list(params.queues))
    return Claim(jobs=jobs, retry_at=None if jobs else retry_at)


@dataclass(frozen=True, slots=True, order=True)
class _Pick:
    """A job to lease. Picks sort most urgent first, then by `slot`: the job's place in FIFO
    order, or for a fair queue the place FIFO would give it among that queue's picks."""

    priority: int
    slot: int
    seq: int = field(compare=False)
    queue: str = field(compare=False)
    throttled: bool = field(compare=False)
    rules: KeyRules | None = field(compare=False)


def _pick(
    tx: Tx, params: FetchParams, wanted: int, budget: int | None = None, first: bool = True
) -> tuple[list[_Pick], int | None, bool]:
    """The next jobs to lease, honouring each queue's pause, drain, concurrency, throttle,
    fairness and per-key limits; expired jobs found at the head are dead-lettered. With a
    `budget` (bytes of payload and checkpoint), picks stop before passing it, except that the
    `first` pick of a fetch is always taken."""
    now = tx.now
    candidates: list[_Pick] = []
    sizes: dict[int, int] = {}
    retry_at: int | None = None
    expired = False
    for queue in params.queues:
        config = tx.execute(
            "SELECT paused, draining, max_concurrency, rate_limit, rate_window_ms, fairness,"
            " key_concurrency, key_rate_limit, key_rate_window_ms FROM queues WHERE name = ?",
            (queue,),
        ).fetchone()
        if config is None or config["paused"] or config["draining"]:
            continue
        room = wanted
        if config["max_concurrency"] is not None:
            active = tx.execute(
                "SELECT n FROM queue_counts WHERE queue = ? AND state = 'active'", (queue,)
            ).fetchone()
            room = min(room, config["max_concurrency"] - (active[0] if active else 0))
        throttled = config["rate_limit"] is not None
        if throttled:
            window = config["rate_window_ms"]
            used, oldest = tx.execute(
                "SELECT count(*), min(at) FROM rate_limit_window WHERE queue = ? AND at > ?",
                (queue, now - window),
            ).fetchone()
            left = config["rate_limit"] - used
            if left <= 0:
                reopen = oldest + window
                retry_at = reopen if retry_at is None else min(retry_at, reopen)
                continue
            room = min(room, left)
        if room <= 0:
            continue
        rules = KeyRules.of(config)
        if rules is None:
            rows = tx.execute(
                f"SELECT {job_columns()}, priority, length(CAST(payload AS BLOB))"
                " + COALESCE(length(CAST(checkpoint AS BLOB)), 4) AS size"
                " FROM jobs WHERE queue = ? AND state = 'pending' ORDER BY priority, seq LIMIT ?",
                (queue, room),
            ).fetchall()
        else:
            rows = fairpick.pick(tx, queue, rules, room)
            if not rows:
                reopen = fairpick.key_reopens_at(tx, queue, rules)
                if reopen is not None:
                    retry_at = reopen if retry_at is None else min(retry_at, reopen)
        live = []
        for row in rows:
            if row["expire_at"] is not None and row["expire_at"] <= now:
                expire_waiting_job(tx, row)
                expired = True
            else:
                live.append(row)
                sizes[row["seq"]] = row["size"]
        candidates.extend(_in_slots(live, queue, throttled, rules))
    candidates.sort()
    picks = candidates[:wanted]
    if budget is not None:
        for index, pick in enumerate(picks):
            budget -= sizes[pick.seq]
            if budget < 0 and not (first and index == 0):
                return picks[:index], retry_at, False  # full: no further round
    return picks, retry_at, expired


def _in_slots(
    rows: list[sqlite3.Row], queue: str, throttled: bool, rules: KeyRules | None
) -> list[_Pick]:
    """Picks for one queue's rows, given in serve order (`fairness.serve_slots`)."""
    slots = serve_slots([(row["priority"], row["seq"]) for row in rows])
    return [
        _Pick(row["priority"], slot, row["seq"], queue, throttled, rules)
        for row, slot in zip(rows, slots, strict=True)
    ]


def _lease(tx: Tx, params: FetchParams, seqs: list[int]) -> list[FetchedJob]:
    """Lease the picked jobs in one statement; answers keep the pick order."""
    if not seqs:
        return []
    rows = tx.execute(
        "UPDATE jobs SET state = 'active', attempt = attempt + 1, worker_id = ?,"
        " worker_hostname = ?, started_at = ?, lease_expires_at = ?, lease_duration_ms = ?"
        " WHERE seq IN (SELECT value FROM json_each(?)) AND +state = ?"
        " RETURNING seq, id, queue, payload,"
        " attempt, max_retries, checkpoint, tags, priority, created_at, key",
        (
            params.worker_id,
            params.hostname,
            tx.now,
            tx.now + params.lease_ms,
            params.lease_ms,
            msgspec.json.encode(seqs).decode(),
            _LEASED_FROM.value,
        ),
    ).fetchall()
    # Picked in this transaction, so all are still pending; a guard that missed one would
    # only hand out fewer jobs.
    by_seq = {row["seq"]: row for row in rows}
    return [fetched_job_from_record(by_seq[seq], params.lease_ms) for seq in seqs if seq in by_seq]


def heartbeat(tx: Tx, params: HeartbeatParams) -> dict[str, str]:
    """Extend the caller's leases, save progress and checkpoints; answer ok, cancel or lost."""
    answers: dict[str, str] = {}
    for entry in params.jobs:
        row = tx.execute(
            "SELECT seq, id, state, worker_id, attempt, lease_expires_at, lease_duration_ms,"
            " cancel_requested FROM jobs WHERE id = ?",
            (entry.job_id,),
        ).fetchone()
        fence = Fence(worker_id=params.worker_id, attempt=entry.attempt)
        # A heartbeat never revives an expired lease.
        if row is None or not lease_holds(row, fence, tx.now):
            answers[entry.job_id] = "lost"
            continue
        changed = tx.execute(
            "UPDATE jobs SET lease_expires_at = ?, progress = COALESCE(?, progress),"
            " checkpoint = COALESCE(?, checkpoint) WHERE seq = ? AND state = 'active'"
            " AND attempt = ?",
            (
                tx.now + row["lease_duration_ms"],
                entry.progress,
                entry.checkpoint,
                row["seq"],
                row["attempt"],
            ),
        ).rowcount
        if not changed:
            answers[entry.job_id] = "lost"
        else:
            answers[entry.job_id] = "cancel" if row["cancel_requested"] else "ok"
    if params.worker_id is not None:
        touch_worker(tx, params.worker_id, None, None)
    return answers


def touch_worker(tx: Tx, worker_id: str, hostname: str | None, queues: list[str] | None) -> None:
    """Record that a worker was seen (its hostname and queues when it says them).

    A worker that fetches in a tight loop is recorded at most once a second: `last_seen` is
    for humans and the worker list, not worth a write per fetch.
    """
    queues_json = None if queues is None else msgspec.json.encode(queues).decode()
    key = ("worker", worker_id, hostname, queues_json)
    seen: dict[Any, int] = tx.memo.setdefault("workers", {})
    last = seen.get(key)
    if last is not None and tx.now - last < _WORKER_SEEN_MS:
        return
    if len(seen) > 10_000:
        seen.clear()
    seen[key] = tx.now
    tx.execute(
        "INSERT INTO workers (id, hostname, queues, last_seen, started_at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
        " hostname = COALESCE(excluded.hostname, hostname),"
        " queues = CASE WHEN ? THEN excluded.queues ELSE queues END,"
        " last_seen = excluded.last_seen",
        (
            worker_id,
            hostname,
            queues_json or "[]",
            tx.now,
            tx.now,
            queues is not None,
        ),
    )
