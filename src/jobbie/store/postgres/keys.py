"""Per-key state of fair queues: the busiest keys, backlog counts for /metrics, and pruning.

Counts come from the trigger-kept `key_counts` and `key_done` (migration 006), whose rows are
slots: a reader sums a (queue, key, state)'s slots, and one slot may be negative while the sum
is not. None of this reads `jobs`.
"""

from __future__ import annotations

from jobbie.errors import NotFound
from jobbie.models import QueueKey
from jobbie.store.fairness import MINUTE_MS, completed_last_minute
from jobbie.store.postgres.tx import Row, Tx

_UNFINISHED = "('scheduled', 'pending', 'active', 'retrying')"


async def busiest(tx: Tx, queue: str, limit: int, now: int) -> list[QueueKey]:
    """The queue's keys with pending or active jobs, most pending first."""
    if await tx.one("SELECT 1 FROM queues WHERE name = %s", (queue,)) is None:
        raise NotFound(f"queue {queue} not found")
    rows = await tx.all(
        "SELECT key, sum(n) FILTER (WHERE state = 'pending')::bigint AS pending,"
        " sum(n) FILTER (WHERE state = 'active')::bigint AS active"
        " FROM key_counts WHERE queue = %s AND state IN ('pending', 'active')"
        " GROUP BY key HAVING sum(n) > 0"
        ' ORDER BY pending DESC NULLS LAST, active DESC NULLS LAST, key COLLATE "C" LIMIT %s',
        (queue, limit),
    )
    minute = now // MINUTE_MS
    done: dict[tuple[str, int], int] = {}
    if rows:
        done = {
            (row["key"], row["minute"]): row["n"]
            for row in await tx.all(
                "SELECT key, minute, sum(n)::bigint AS n FROM key_done"
                " WHERE queue = %s AND minute >= %s AND key = ANY(%s::text[])"
                " GROUP BY key, minute",
                (queue, minute - 1, [row["key"] for row in rows]),
            )
        }
    return [
        QueueKey(
            key=row["key"],
            pending=max(0, row["pending"] or 0),
            active=max(0, row["active"] or 0),
            completed_last_minute=completed_last_minute(
                done.get((row["key"], minute), 0), done.get((row["key"], minute - 1), 0), now
            ),
        )
        for row in rows
    ]


async def with_backlog(tx: Tx) -> dict[str, int]:
    """Per queue, the number of keys with pending jobs."""
    rows = await tx.all(
        "SELECT queue, count(*) AS n FROM (SELECT queue, key FROM key_counts"
        " WHERE state = 'pending' GROUP BY queue, key HAVING sum(n) > 0) AS k GROUP BY queue"
    )
    return {row["queue"]: row["n"] for row in rows}


async def prune(tx: Tx, limit: int) -> int:
    """Forget keys with no unfinished jobs (their turn, counters and throttle records that
    left the window) and per-minute completions older than the previous minute. Returns how
    many rows went."""
    minute = tx.now // MINUTE_MS
    cur = await tx.execute(
        "DELETE FROM key_done WHERE (queue, key, minute, slot) IN"
        " (SELECT queue, key, minute, slot FROM key_done WHERE minute < %s LIMIT %s)",
        (minute - 1, limit),
    )
    gone: int = cur.rowcount
    left_window = await tx.all(
        "DELETE FROM key_rate_window WHERE id IN (SELECT r.id FROM key_rate_window AS r"
        " LEFT JOIN queues AS q ON q.name = r.queue"
        " WHERE r.at <= %s - COALESCE(q.key_rate_window_ms, 0) LIMIT %s) RETURNING queue, key",
        (tx.now, limit),
    )
    gone += len(left_window)
    slots, zeroed = await _collapse_zeroed(tx, limit)
    gone += slots
    idle = {(row["queue"], row["key"]) for row in [*zeroed, *left_window]}
    if idle:
        gone += await _forget_idle(tx, idle)
    return gone


async def _forget_idle(tx: Tx, idle: set[tuple[str, str]]) -> int:
    """Delete the turn rows of those keys that have no unfinished jobs and no hand-out in a
    throttle window. An enqueue (or retry, or move) of a job with a key holds the shared side
    of its queue's key lock until it commits (see migration 006), having found the key's turn
    row there or made it: the queues whose lock is held are left for the next pass, and the
    others are read in a statement after the lock is taken, so it sees every such write."""
    queues = sorted({queue for queue, _ in idle})
    locked = {
        row["queue"]
        for row in await tx.all(
            "SELECT queue FROM unnest(%s::text[]) AS queue"
            " WHERE pg_try_advisory_xact_lock(hashtext('jobbie.keys:' || queue))",
            (queues,),
        )
    }
    keys = sorted((queue, key) for queue, key in idle if queue in locked)
    if not keys:
        return 0
    rows = await tx.all(
        "DELETE FROM queue_keys AS k USING unnest(%s::text[], %s::text[]) AS i(queue, key)"
        " WHERE k.queue = i.queue AND k.key = i.key"
        " AND NOT EXISTS (SELECT FROM key_counts AS c WHERE c.queue = i.queue"
        f" AND c.key = i.key AND c.state IN {_UNFINISHED} GROUP BY c.state"
        " HAVING sum(c.n) > 0)"
        " AND NOT EXISTS (SELECT FROM key_rate_window AS w"
        " WHERE w.queue = i.queue AND w.key = i.key)"
        " RETURNING 1",
        ([queue for queue, _ in keys], [key for _, key in keys]),
    )
    return len(rows)


async def _collapse_zeroed(tx: Tx, limit: int) -> tuple[int, list[Row]]:
    """Delete the slots of up to `limit` (queue, key, state)s whose slots sum to zero, all of
    a group's slots or none (one slot may be negative while the sum is positive). The slots
    are locked first, skipping any a transaction is changing: a group whose slots were not all
    locked, or whose locked slots no longer sum to zero, stays. Returns how many slots went,
    and the (queue, key) of each group deleted."""
    rows = await tx.all(
        "SELECT c.queue, c.key, c.state, c.slot, c.n, z.slots FROM key_counts AS c"
        " JOIN (SELECT queue, key, state, count(*) AS slots FROM key_counts"
        "  GROUP BY queue, key, state HAVING sum(n) = 0 LIMIT %s) AS z"
        " USING (queue, key, state)"
        " ORDER BY c.queue, c.key, c.state, c.slot FOR UPDATE OF c SKIP LOCKED",
        (limit,),
    )
    groups: dict[tuple[str, str, str], list[Row]] = {}
    for row in rows:
        groups.setdefault((row["queue"], row["key"], row["state"]), []).append(row)
    doomed = [
        slots
        for slots in groups.values()
        if len(slots) == slots[0]["slots"] and sum(slot["n"] for slot in slots) == 0
    ]
    if not doomed:
        return 0, []
    # Only the slots locked above: a slot made since carries its own count.
    rows = [slot for slots in doomed for slot in slots]
    cur = await tx.execute(
        "DELETE FROM key_counts AS c"
        " USING unnest(%s::text[], %s::text[], %s::text[], %s::smallint[])"
        " AS d(queue, key, state, slot)"
        " WHERE c.queue = d.queue AND c.key = d.key AND c.state = d.state AND c.slot = d.slot",
        tuple([row[column] for row in rows] for column in ("queue", "key", "state", "slot")),
    )
    return cur.rowcount, [{"queue": slots[0]["queue"], "key": slots[0]["key"]} for slots in doomed]
