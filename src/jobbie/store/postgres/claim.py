"""Handing jobs to workers: the fetch claim, heartbeats and worker tracking.

Many servers claim from one table at once. A claim locks the jobs it takes with
`FOR UPDATE SKIP LOCKED` (a claimer never waits for, nor takes, a job another one is taking)
inside a MATERIALIZED CTE, so the locking scan runs exactly once whatever plan the UPDATE gets;
the same statement leases the locked jobs within the byte budget and reports expired ones.

A queue with a concurrency limit or a throttle is claimed under a transaction-scoped advisory
lock named after it: claims of that queue take turns across all servers, so the count of
active jobs (or of hand-outs in the window) read after taking the lock stays true until the
claim commits. Unlimited queues take no such lock.

A fair queue (round robin, or limited per key) is claimed under the same lock, so its keys'
turns, active counts and throttle windows hold across servers too; its jobs are chosen by
`fairpick` and then locked and leased by seq in the same statement as the plain queues' jobs.
Plain queues keep their single-statement claim.

A fetch from one queue (what most workers send) reads the queue's settings and claims in the
same round trip: the claim statement checks for itself that the queue needs none of the above,
and only when it did not run do the settings decide the rest.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from jobbie.models import FetchedJob
from jobbie.store.base import Claim
from jobbie.store.fairness import ROUND_ROBIN, KeyRules, serve_slots
from jobbie.store.leases import lease_holds
from jobbie.store.params import Fence, FetchParams, HeartbeatParams
from jobbie.store.postgres import fairpick
from jobbie.store.postgres.effects import record_events
from jobbie.store.postgres.finish import expire_waiting_job, guarded, job_columns
from jobbie.store.postgres.tx import EVENTS, Row, Tx
from jobbie.store.records import fetched_job_from_record
from jobbie.store.states import EventType, State, transition

# Enough rounds to step over a few expired jobs at the head of a queue; the sweep takes the rest.
_MAX_ROUNDS = 4
# A fetch leases pending jobs (checked against the lifecycle once, at import).
_LEASED_FROM = State.PENDING
transition(_LEASED_FROM, State.ACTIVE)
_WORKER_SEEN_MS = 1000

# The best jobs of each queue not being claimed elsewhere: `take` of queue `name`, most urgent
# then oldest (the jobs_pending index), locked. Expired ones are returned for dead-lettering;
# the others are leased in (priority, slot) order while their payloads and checkpoints fit the
# budget (the first job of a fetch always does). Locked jobs not leased stay pending. A job's
# slot is its seq, except for the jobs a fair pick chose (see `_in_slots`).
_PICKS = f"""
    SELECT c.*, c.seq AS slot FROM {{source}}
    CROSS JOIN LATERAL (
        SELECT ctid, seq, priority, expire_at,
            octet_length(payload) + COALESCE(octet_length(checkpoint), 4) AS size
        FROM jobs WHERE queue = q.name AND state = '{_LEASED_FROM.value}'
        ORDER BY priority, seq LIMIT q.take FOR UPDATE SKIP LOCKED
    ) AS c"""
_TAKES = "unnest(%s::text[], %s::int[]) AS q(name, take)"
_PLAIN_PICKS = _PICKS.format(source=_TAKES)
# The same, only from queues whose settings `_open_queues` would take as they are: not paused
# or draining, no limit, no throttle, no fairness (the `plain` rows of the claim's CTE).
_PLAIN_QUEUES = f"""plain AS (
    SELECT name FROM queues WHERE name = ANY(%s) AND NOT paused AND NOT draining
        AND max_concurrency IS NULL AND rate_limit IS NULL AND fairness <> '{ROUND_ROBIN}'
        AND key_concurrency IS NULL AND key_rate_limit IS NULL
), """
_OPEN_PLAIN_PICKS = _PICKS.format(source=f"{_TAKES} JOIN plain ON plain.name = q.name")
# The jobs fair picks chose, each with its slot, locked by their key. The state is checked
# after the lookup, not in it: a `state = 'pending'` there lets the planner prefer a partial
# index on pending jobs (all of them) to the primary key when its statistics think that index
# tiny, as they do when they were taken while the queue was empty.
_FAIR_PICKS = f"""
    SELECT c.ctid, c.seq, c.priority, c.expire_at, c.size, f.slot
    FROM unnest(%s::bigint[], %s::bigint[]) AS f(seq, slot)
    CROSS JOIN LATERAL (
        SELECT ctid, seq, state, priority, expire_at,
            octet_length(payload) + COALESCE(octet_length(checkpoint), 4) AS size
        FROM jobs WHERE jobs.seq = f.seq FOR UPDATE SKIP LOCKED
    ) AS c
    WHERE c.state = '{_LEASED_FROM.value}'"""
_CLAIM = f"""
WITH {{plain}}picked AS MATERIALIZED ({{picks}}
), ranked AS (
    SELECT ctid, seq, slot, expired,
        sum(size) FILTER (WHERE NOT expired) OVER w AS running,
        count(*) FILTER (WHERE NOT expired) OVER w AS n
    FROM (SELECT *, COALESCE(expire_at <= %s, false) AS expired FROM picked) AS p
    WINDOW w AS (ORDER BY priority, slot)
), leased AS (
    UPDATE jobs SET state = 'active', attempt = attempt + 1, worker_id = %s,
        worker_hostname = %s, started_at = %s, lease_expires_at = %s, lease_duration_ms = %s
    FROM ranked
    WHERE jobs.ctid = ranked.ctid AND jobs.state = '{_LEASED_FROM.value}' AND NOT ranked.expired
        AND (%s::bigint IS NULL OR ranked.running <= %s::bigint OR (%s AND ranked.n = 1))
    RETURNING jobs.seq, jobs.id, jobs.queue, jobs.payload, jobs.attempt, jobs.max_retries,
        jobs.checkpoint, jobs.tags, jobs.priority, jobs.created_at, jobs.key, ranked.slot
){{logged}}
SELECT 'leased' AS outcome, * FROM leased
UNION ALL
SELECT CASE WHEN expired THEN 'expired' ELSE 'over budget' END, seq,
    NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, slot
FROM ranked WHERE NOT EXISTS (SELECT FROM leased WHERE leased.seq = ranked.seq){{closed}}
"""


def _claim_sql(picks: str, *, plain: str = "", logged: str = "", closed: str = "") -> str:
    return _CLAIM.format(picks=picks, plain=plain, logged=logged, closed=closed)


_CLAIM_PLAIN = _claim_sql(_PLAIN_PICKS)
_CLAIM_OPEN_PLAIN = _claim_sql(_OPEN_PLAIN_PICKS, plain=_PLAIN_QUEUES)
_CLAIM_FAIR = _claim_sql(_FAIR_PICKS)
_CLAIM_MIXED = _claim_sql(f"{_PLAIN_PICKS}\n    UNION ALL{_FAIR_PICKS}")
# A whole fetch from one plain queue as one statement (its own transaction): the claim of
# `_CLAIM_OPEN_PLAIN`, the `started` events of the jobs it leased, and one 'closed' row when
# the queue is not plain (then nothing was claimed, and a transaction does it all).
_FETCH_PLAIN = _claim_sql(
    _OPEN_PLAIN_PICKS,
    plain=_PLAIN_QUEUES,
    logged=f""", logged AS (
    {EVENTS} SELECT '{EventType.STARTED.value}', id, queue, NULL, %s FROM leased
)""",
    closed="""
UNION ALL
SELECT 'closed', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
WHERE NOT EXISTS (SELECT FROM plain)""",
)


_SETTINGS = (
    "SELECT name, paused, draining, max_concurrency, rate_limit, rate_window_ms, fairness,"
    " key_concurrency, key_rate_limit, key_rate_window_ms"
    " FROM queues WHERE name = ANY(%s) AND NOT paused AND NOT draining"
)

# Pending jobs of several queues, best first, without locking: which queues a claim takes from.
_CANDIDATES = """
SELECT q.name AS queue, c.priority, c.seq FROM unnest(%s::text[], %s::int[]) AS q(name, room)
CROSS JOIN LATERAL (
    SELECT priority, seq FROM jobs WHERE queue = q.name AND state = 'pending'
    ORDER BY priority, seq LIMIT q.room
) AS c
ORDER BY c.priority, c.seq LIMIT %s
"""


@dataclass(slots=True)
class _Open:
    """A queue a claim may take from: how many jobs at most, whether each is counted in
    the throttle window, and its fairness rules (None: plain FIFO)."""

    room: int
    throttled: bool
    rules: KeyRules | None = None


@dataclass(frozen=True, slots=True, order=True)
class _Pick:
    """A job a claim may take. Picks sort most urgent first, then by `slot`: the job's place
    in FIFO order, or for a fair queue the place FIFO would give it among that queue's picks."""

    priority: int
    slot: int
    seq: int = field(compare=False)
    queue: str = field(compare=False)


@dataclass(slots=True)
class _Takes:
    """What a round of a claim locks and leases: how many of the best jobs of each plain
    queue, and the (seq, slot) of each job fair picks chose (expired ones included, to be
    dead-lettered)."""

    plain: dict[str, int]
    fair: list[tuple[int, int]] = field(default_factory=list)
    expired: bool = False  # the fair picks found expired jobs
    retry_at: int | None = None  # when a throttled key of a fair queue with nothing reopens


def _lock_key(queue: str) -> str:
    return f"jobbie.queue:{queue}"


async def fetch_plain(tx: Tx, params: FetchParams) -> Claim | None:
    """A fetch from one plain queue as one statement (run with `write(..., single=True)`).
    None when it needs `claim`'s transaction instead: the queue is not plain (nothing was
    claimed), the worker is due to be recorded, or expired jobs wait at the queue's head and
    nothing was leased (`claim` dead-letters them). With some jobs leased it answers them, even
    if expired jobs cut the fetch short: a fetch may return fewer jobs than it asked for."""
    if len(params.queues) != 1 or _worker_due(tx, params.worker_id, params.hostname, params.queues):
        return None
    names = list(params.queues)
    picks: list[object] = [names, names, [params.count]]
    args = _claim_args(tx, params, picks, budget=params.max_bytes, first=True)
    rows = await tx.all(_FETCH_PLAIN, (*args, tx.now))
    leased = sorted((r for r in rows if r["outcome"] == "leased"), key=_claim_order)
    if not leased and any(r["outcome"] in ("closed", "expired") for r in rows):
        return None
    tx.logged = bool(leased)
    return Claim(jobs=[fetched_job_from_record(row, params.lease_ms) for row in leased])


async def claim(tx: Tx, params: FetchParams) -> Claim:
    """Lease up to `params.count` jobs: most urgent first, then FIFO (or each fair queue's
    own order), across the queues."""
    jobs: list[FetchedJob] = []
    opened, retry_at, first = await _open_queues(tx, params)
    for _ in range(_MAX_ROUNDS):
        wanted = params.count - len(jobs)
        rooms = {queue: min(wanted, o.room) for queue, o in opened.items() if o.room > 0}
        if wanted <= 0 or not rooms:
            break
        budget = None
        if params.max_bytes is not None:
            budget = params.max_bytes - sum(len(j.payload) + len(j.checkpoint) for j in jobs)
        if first is not None:  # `_open_queues` ran the first round already
            takes = _Takes(plain=rooms)
            leased, expired, over = await _outcome(tx, params, first)
            first = None
        else:
            if any(opened[queue].rules is not None for queue in rooms):
                takes = await _fair_takes(tx, opened, rooms, wanted)
                if takes.retry_at is not None:
                    reopen = takes.retry_at
                    retry_at = reopen if retry_at is None else min(retry_at, reopen)
            else:
                takes = _Takes(plain=await _takes(tx, rooms, wanted))
            leased, expired, over = await _lease(
                tx, params, takes.plain, budget, first=not jobs, fair=takes.fair
            )
        jobs.extend(leased)
        by_queue = Counter(job.queue for job in leased)
        for queue, n in by_queue.items():
            opened[queue].room -= n
        throttled = [
            (queue, tx.now)
            for queue, n in by_queue.items()
            if opened[queue].throttled
            for _ in range(n)
        ]
        if throttled:
            await tx.many("INSERT INTO rate_limit_window (queue, at) VALUES (%s, %s)", throttled)
        for queue in sorted(by_queue):
            rules = opened[queue].rules
            if rules is not None:
                await fairpick.served(tx, queue, rules, (j.key for j in leased if j.queue == queue))
        # Another round only to step over expired jobs; a full budget ends the fetch.
        if not (expired or takes.expired) or over:
            break
    if jobs:
        record_events(tx, EventType.STARTED, ((job.job_id, job.queue) for job in jobs))
    touch_worker(tx, params.worker_id, params.hostname, list(params.queues))
    return Claim(jobs=jobs, retry_at=None if jobs else retry_at)


async def _open_queues(
    tx: Tx, params: FetchParams
) -> tuple[dict[str, _Open], int | None, list[Row] | None]:
    """The queues that may hand out jobs now, with their room under each queue's pause,
    drain, concurrency limit and throttle; when the first closed throttle reopens; and the
    rows of a first round of the claim when it ran with the settings' read (one plain queue).
    Limited and fair queues are locked (in name order, so claims cannot deadlock on them)
    before their active jobs and window are counted (and their keys' turns and limits read)."""
    names = list(params.queues)
    if len(names) == 1:
        configs, claimed = await tx.batch(
            (_SETTINGS, (names,)),
            (
                _CLAIM_OPEN_PLAIN,
                _claim_args(
                    tx, params, [names, names, [params.count]], budget=params.max_bytes, first=True
                ),
            ),
        )
        # Rows: the queue was plain to the claim. None: it is plain and had nothing to give.
        if claimed or (configs and _plain(configs[0])):
            return {names[0]: _Open(room=params.count, throttled=False)}, None, claimed
    else:
        configs = await tx.all(_SETTINGS, (names,))
    opened: dict[str, _Open] = {}
    retry_at: int | None = None
    for config in sorted(configs, key=lambda c: str(c["name"])):
        queue = config["name"]
        room = params.count
        throttled = config["rate_limit"] is not None
        rules = KeyRules.of(config)
        if config["max_concurrency"] is not None or throttled or rules is not None:
            await tx.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (_lock_key(queue),))
        if config["max_concurrency"] is not None:
            # Read after the lock: this statement sees every claim that held it before.
            row = await tx.one(
                "SELECT COALESCE(sum(n), 0)::bigint AS n FROM queue_counts"
                " WHERE queue = %s AND state = 'active'",
                (queue,),
            )
            assert row is not None
            room = min(room, config["max_concurrency"] - row["n"])
        if throttled:
            window = config["rate_window_ms"]
            row = await tx.one(
                "SELECT count(*) AS used, min(at) AS oldest FROM rate_limit_window"
                " WHERE queue = %s AND at > %s",
                (queue, tx.now - window),
            )
            assert row is not None
            left = config["rate_limit"] - row["used"]
            if left <= 0:
                reopen = row["oldest"] + window
                retry_at = reopen if retry_at is None else min(retry_at, reopen)
                continue
            room = min(room, left)
        if room > 0:
            opened[queue] = _Open(room=room, throttled=throttled, rules=rules)
    return opened, retry_at, None


def _plain(config: Row) -> bool:
    """A queue's settings need no lock, count or fair pick (paused and draining ones are not
    read at all)."""
    return (
        config["max_concurrency"] is None
        and config["rate_limit"] is None
        and KeyRules.of(config) is None
    )


async def _takes(tx: Tx, rooms: dict[str, int], wanted: int) -> dict[str, int]:
    """How many jobs to take from each queue: the queues of the `wanted` most urgent, oldest
    pending jobs (read without locking: cheap index reads)."""
    if len(rooms) == 1:
        return rooms
    return dict(Counter(pick.queue for pick in await _candidates(tx, rooms, wanted)))


async def _candidates(tx: Tx, rooms: dict[str, int], wanted: int) -> list[_Pick]:
    """The `wanted` most urgent, oldest pending jobs of plain queues (not locked)."""
    if not rooms:
        return []
    names = list(rooms)
    rows = await tx.all(_CANDIDATES, (names, [rooms[name] for name in names], wanted))
    return [_Pick(row["priority"], row["seq"], row["seq"], row["queue"]) for row in rows]


async def _fair_takes(
    tx: Tx, opened: dict[str, _Open], rooms: dict[str, int], wanted: int
) -> _Takes:
    """What to take when some of the queues are fair: each fair queue's pick in its own
    order, merged with the plain queues' best jobs by priority, then slot."""
    plain = {queue: room for queue, room in rooms.items() if opened[queue].rules is None}
    candidates = await _candidates(tx, plain, wanted)
    takes = _Takes(plain={})
    doomed: list[int] = []
    for queue, room in rooms.items():
        rules = opened[queue].rules
        if rules is None:
            continue
        rows = await fairpick.pick(tx, queue, rules, room)
        if not rows:
            reopen = await fairpick.key_reopens_at(tx, queue, rules)
            if reopen is not None:
                takes.retry_at = reopen if takes.retry_at is None else min(takes.retry_at, reopen)
        live = []
        for row in rows:
            if row["expire_at"] is not None and row["expire_at"] <= tx.now:
                doomed.append(row["seq"])
            else:
                live.append(row)
        candidates.extend(_in_slots(live, queue))
    candidates.sort()
    for pick in candidates[:wanted]:
        if pick.queue in plain:
            takes.plain[pick.queue] = takes.plain.get(pick.queue, 0) + 1
        else:
            takes.fair.append((pick.seq, pick.slot))
    # Expired jobs a fair pick found are locked and dead-lettered with the round's lease.
    takes.fair.extend((seq, seq) for seq in doomed)
    takes.expired = bool(doomed)
    return takes


def _in_slots(rows: list[Row], queue: str) -> list[_Pick]:
    """Picks for one fair queue's rows, given in serve order (`fairness.serve_slots`)."""
    slots = serve_slots([(row["priority"], row["seq"]) for row in rows])
    return [
        _Pick(row["priority"], slot, row["seq"], queue)
        for row, slot in zip(rows, slots, strict=True)
    ]


async def _lease(
    tx: Tx,
    params: FetchParams,
    takes: dict[str, int],
    budget: int | None,
    *,
    first: bool,
    fair: Sequence[tuple[int, int]] = (),
) -> tuple[list[FetchedJob], bool, bool]:
    """Lock and lease the best jobs, `takes[queue]` at most from each queue, and the jobs of
    `fair` (seq, slot); dead-letter the expired ones found. Only the `first` job of a fetch
    may pass the byte budget. Returns (jobs in claim order, whether any expired, whether the
    budget left some out)."""
    if not takes and not fair:
        return [], False, False
    names = list(takes)
    plain_args: list[object] = [names, [takes[name] for name in names]]
    fair_args: list[object] = [[seq for seq, _ in fair], [slot for _, slot in fair]]
    if not fair:
        sql, picks = _CLAIM_PLAIN, plain_args
    elif not takes:
        sql, picks = _CLAIM_FAIR, fair_args
    else:
        sql, picks = _CLAIM_MIXED, plain_args + fair_args
    rows = await tx.all(sql, _claim_args(tx, params, picks, budget=budget, first=first))
    return await _outcome(tx, params, rows)


def _claim_args(
    tx: Tx, params: FetchParams, picks: list[object], *, budget: int | None, first: bool
) -> tuple[object, ...]:
    """The parameters of a `_CLAIM` statement: `picks` (its picks' own), then the lease's."""
    lease = (params.worker_id, params.hostname, tx.now, tx.now + params.lease_ms, params.lease_ms)
    return (*picks, tx.now, *lease, budget, budget, first)


async def _outcome(
    tx: Tx, params: FetchParams, rows: list[Row]
) -> tuple[list[FetchedJob], bool, bool]:
    """What a `_CLAIM` statement did: the jobs leased, in claim order; whether it found expired
    jobs (dead-lettered here) and whether the budget left some out."""
    leased = sorted((r for r in rows if r["outcome"] == "leased"), key=_claim_order)
    expired = [r["seq"] for r in rows if r["outcome"] == "expired"]
    if expired:
        # Still locked by this transaction (and pending), so these guarded updates hold.
        for row in await tx.all(
            f"SELECT {job_columns()} FROM jobs WHERE seq = ANY(%s) ORDER BY seq", (expired,)
        ):
            await expire_waiting_job(tx, row)
    over = any(r["outcome"] == "over budget" for r in rows)
    jobs = [fetched_job_from_record(row, params.lease_ms) for row in leased]
    return jobs, bool(expired), over


def _claim_order(row: Row) -> tuple[int, int]:
    return row["priority"], row["slot"]


async def heartbeat(tx: Tx, params: HeartbeatParams) -> dict[str, str]:
    """Extend the caller's leases, save progress and checkpoints; answer ok, cancel or lost."""
    answers: dict[str, str] = {}
    for entry in params.jobs:
        row = await tx.one(
            "SELECT seq, id, state, worker_id, attempt, lease_expires_at, lease_duration_ms,"
            " cancel_requested FROM jobs WHERE id = %s",
            (entry.job_id,),
        )
        fence = Fence(worker_id=params.worker_id, attempt=entry.attempt)
        # A heartbeat never revives an expired lease.
        if row is None or not lease_holds(row, fence, tx.now):
            answers[entry.job_id] = "lost"
            continue
        cur = await tx.execute(
            "UPDATE jobs SET lease_expires_at = %s, progress = COALESCE(%s, progress),"
            f" checkpoint = COALESCE(%s, checkpoint) WHERE seq = %s AND {guarded('state')}"
            " = 'active' AND attempt = %s",
            (
                tx.now + row["lease_duration_ms"],
                entry.progress,
                entry.checkpoint,
                row["seq"],
                row["attempt"],
            ),
        )
        if not cur.rowcount:
            answers[entry.job_id] = "lost"
        else:
            answers[entry.job_id] = "cancel" if row["cancel_requested"] else "ok"
    if params.worker_id is not None:
        touch_worker(tx, params.worker_id, None, None)
    return answers


# When each worker was last recorded, per database (this process may serve several).
_seen: dict[tuple[Any, ...], int] = {}


def _worker_key(
    tx: Tx, worker_id: str, hostname: str | None, queues: Sequence[str] | None
) -> tuple[Any, ...]:
    info = tx.conn.info
    return (
        info.host,
        info.port,
        info.dbname,
        worker_id,
        hostname,
        None if queues is None else tuple(queues),
    )


def _worker_due(tx: Tx, worker_id: str, hostname: str | None, queues: Sequence[str] | None) -> bool:
    """Whether this server last recorded the worker (as it describes itself now) over a
    second ago, or never."""
    last = _seen.get(_worker_key(tx, worker_id, hostname, queues))
    return last is None or not 0 <= tx.now - last < _WORKER_SEEN_MS


def touch_worker(tx: Tx, worker_id: str, hostname: str | None, queues: list[str] | None) -> None:
    """Record that a worker was seen (its hostname and queues when it says them).

    A worker that fetches in a tight loop is recorded at most once a second by this server:
    `last_seen` is for humans and the worker list, not worth a write per fetch.
    """
    if not _worker_due(tx, worker_id, hostname, queues):
        return
    queues_json = None if queues is None else msgspec.json.encode(queues).decode()
    if len(_seen) > 10_000:
        _seen.clear()
    _seen[_worker_key(tx, worker_id, hostname, queues)] = tx.now
    tx.defer(  # nothing reads its answer: it goes with the COMMIT
        "INSERT INTO workers (id, hostname, queues, last_seen, started_at)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET"
        " hostname = COALESCE(excluded.hostname, workers.hostname),"
        " queues = CASE WHEN %s THEN excluded.queues ELSE workers.queues END,"
        " last_seen = excluded.last_seen",
        (worker_id, hostname, queues_json or "[]", tx.now, tx.now, queues is not None),
    )
