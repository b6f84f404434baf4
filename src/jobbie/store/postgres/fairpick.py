"""The fetch's pick from a queue whose keys are served fairly or limited per key (see
`jobbie.store.fairness` for the rules; this module reads the lanes and writes the turns).

The same pick as SQLite's (`jobbie.store.sqlite.fairpick`), one priority level at a time,
most urgent first, but each step is one statement rather than one per key: the keys with
ready jobs at that level are read as lanes (round robin: in turn order, stopping once there
are enough; FIFO: every key, in the order of its oldest ready job), each with its room under
the per-key limits, and `fairness` picks the jobs. Reading a key is one index range
(`jobs_key_pending`); jobs without a key are read apart, as `key IS NULL` (an `IS NOT
DISTINCT FROM` could not use the index).

Claims of such a queue run under the queue's advisory lock (`claim._open_queues`), so the
active counts, throttle windows and turns read here stay true until the claim commits, on
every server. The pick reads without locking jobs; the claim locks and leases them.
"""

from __future__ import annotations

from collections.abc import Iterable

from jobbie.store import fairness
from jobbie.store.fairness import NO_KEY, KeyRules, Lane
from jobbie.store.postgres.tx import Row, Tx


def _room(rules: KeyRules, now: int) -> tuple[str, list[object]]:
    """SQL for the room of key `k.key` under the per-key limits (NULL: no limit)."""
    parts: list[str] = []
    params: list[object] = []
    if rules.concurrency is not None:
        parts.append(
            "%s::bigint - COALESCE((SELECT sum(c.n) FROM key_counts AS c WHERE c.queue = k.queue"
            " AND c.key = k.key AND c.state = 'active'), 0)::bigint"
        )
        params.append(rules.concurrency)
    if rules.throttled:
        assert rules.window_ms is not None
        parts.append(
            "%s::bigint - (SELECT count(*) FROM key_rate_window AS w WHERE w.queue = k.queue"
            " AND w.key = k.key AND w.at > %s::bigint)"
        )
        params.extend([rules.rate, now - rules.window_ms])
    if not parts:
        return "NULL::bigint", params
    return (parts[0] if len(parts) == 1 else f"LEAST({parts[0]}, {parts[1]})"), params


# A key's ready jobs at one priority level, oldest first (the jobs_key_pending index).
_HEADS = (
    "SELECT seq, priority, expire_at FROM jobs WHERE queue = k.queue AND key = k.key"
    " AND state = 'pending' AND priority = %s AND seq > {after} ORDER BY seq LIMIT {limit}"
)
_NO_KEY_HEADS = (
    "SELECT seq, priority, expire_at FROM jobs WHERE queue = %s AND key IS NULL"
    " AND state = 'pending' AND priority = %s AND seq > %s ORDER BY seq LIMIT %s"
)


async def pick(tx: Tx, queue: str, rules: KeyRules, room: int) -> list[Row]:
    """Up to `room` pending jobs of `queue` in serve order (most urgent level first), as rows
    of seq, priority, key and expire_at."""
    picked: list[Row] = []
    level = -(2**31)
    while len(picked) < room:
        row = await tx.one(
            "SELECT min(priority) AS level FROM jobs WHERE queue = %s AND state = 'pending'"
            " AND priority > %s",
            (queue, level),
        )
        if row is None or row["level"] is None:
            break
        level = row["level"]
        picked.extend(await _pick_level(tx, queue, rules, level, room - len(picked)))
    return picked


async def _pick_level(tx: Tx, queue: str, rules: KeyRules, level: int, wanted: int) -> list[Row]:
    room_sql, room_params = _room(rules, tx.now)
    # Round robin reads keys in turn order and stops once each wanted job has a key; FIFO
    # reads every key and keeps those with the oldest heads. (OFFSET 0 computes a key's room
    # once, not again for the filter.)
    order = 'k.served, k.key COLLATE "C"' if rules.round_robin else "h.seq"
    limited = "" if room_sql.startswith("NULL") else "AND r.room > 0"
    rows = await tx.all(
        f"(SELECT k.key, k.served AS turn, r.room, h.seq, h.priority, h.expire_at"
        f" FROM queue_keys AS k CROSS JOIN LATERAL (SELECT {room_sql} AS room OFFSET 0) AS r"
        f" CROSS JOIN LATERAL ({_HEADS.format(after=-1, limit=1)}) AS h"
        f" WHERE k.queue = %s AND k.key <> '' {limited} ORDER BY {order} LIMIT %s)"
        " UNION ALL"
        " (SELECT '', COALESCE((SELECT served FROM queue_keys WHERE queue = %s AND key = ''), 0),"
        f" NULL, h.seq, h.priority, h.expire_at FROM ({_NO_KEY_HEADS}) AS h)",
        (*room_params, level, queue, wanted, queue, queue, level, -1, 1),
    )
    lanes = [
        Lane(key=row["key"], turn=row["turn"], jobs=[_job(row)], room=_clamp(row["room"]))
        for row in rows
    ]
    if rules.round_robin:
        lanes.sort(key=lambda lane: (lane.turn, lane.key))
    else:
        # FIFO: the oldest heads first; only the first `wanted` keys can contribute.
        lanes.sort(key=lambda lane: int(lane.jobs[0]["seq"]))
    lanes = lanes[:wanted]
    taken: list[Row] = []
    after: dict[str, int] = {}  # per key, the last seq already taken
    while lanes and len(taken) < wanted:
        left = wanted - len(taken)
        depth = fairness.depth(rules, left, len(lanes))
        reads: dict[str, tuple[int, int]] = {}
        for lane in lanes:
            limit = fairness.lane_limit(depth, lane.room)
            if lane.key in after or limit > len(lane.jobs):
                reads[lane.key] = (limit, after.get(lane.key, -1))
        if reads:
            read = await _read_lanes(tx, queue, level, reads)
            for lane in lanes:
                if lane.key in reads:
                    lane.jobs = read.get(lane.key, [])
        chosen = fairness.choose(rules, lanes, left, _seq)
        if not chosen:
            break
        taken.extend(job for _, job in chosen)
        lanes = fairness.settle(lanes, chosen, depth, after, _seq)
    return taken


def _seq(job: Row) -> int:
    return int(job["seq"])


async def _read_lanes(
    tx: Tx, queue: str, level: int, reads: dict[str, tuple[int, int]]
) -> dict[str, list[Row]]:
    """For each key of `reads`, its oldest `limit` pending jobs at priority `level` past seq
    `after` ((limit, after) per key), read in one statement."""
    keys = [key for key in reads if key != NO_KEY]
    no_key_limit, no_key_after = reads.get(NO_KEY, (0, -1))
    rows = await tx.all(
        "SELECT k.key, h.seq, h.priority, h.expire_at"
        " FROM unnest(%s::text[], %s::int[], %s::bigint[]) AS l(key, n, after)"
        " CROSS JOIN LATERAL (SELECT %s::text AS queue, l.key) AS k"
        f" CROSS JOIN LATERAL ({_HEADS.format(after='l.after', limit='l.n')}) AS h"
        " UNION ALL"
        f" SELECT '', h.seq, h.priority, h.expire_at FROM ({_NO_KEY_HEADS}) AS h",
        (
            keys,
            [reads[key][0] for key in keys],
            [reads[key][1] for key in keys],
            queue,
            level,
            queue,
            level,
            no_key_after,
            no_key_limit,
        ),
    )
    jobs: dict[str, list[Row]] = {}
    for row in rows:
        jobs.setdefault(row["key"], []).append(_job(row))
    for lane_jobs in jobs.values():
        lane_jobs.sort(key=lambda job: int(job["seq"]))
    return jobs


def _job(row: Row) -> Row:
    return {
        "seq": row["seq"],
        "priority": row["priority"],
        "expire_at": row["expire_at"],
        "key": row["key"] or None,
    }


def _clamp(room: int | None) -> int | None:
    return None if room is None else max(0, room)


async def key_reopens_at(tx: Tx, queue: str, rules: KeyRules) -> int | None:
    """When the first throttled key of `queue` may be served again (for a fetch that found
    nothing), or None."""
    if rules.rate is None or rules.window_ms is None:
        return None
    row = await tx.one(
        "SELECT min(at) AS at FROM key_rate_window WHERE queue = %s AND at > %s",
        (queue, tx.now - rules.window_ms),
    )
    return None if row is None or row["at"] is None else int(row["at"]) + rules.window_ms


async def served(tx: Tx, queue: str, rules: KeyRules, keys: Iterable[str | None]) -> None:
    """Record the keys just handed jobs, in serve order: their new turns (round robin) and
    their hand-outs in the per-key throttle window."""
    order = [NO_KEY if key is None else key for key in keys]
    if not order:
        return
    if rules.round_robin:
        # Turns after the queue's latest; an upsert, since the row of the jobs without a key
        # is made by their first turn.
        offsets = fairness.turns(order, 0)
        names = sorted(offsets)
        await tx.execute(
            "INSERT INTO queue_keys (queue, key, served)"
            " SELECT %s, t.key, b.base + t.turn"
            " FROM (SELECT COALESCE(max(served), 0) AS base FROM queue_keys WHERE queue = %s) AS b,"
            " unnest(%s::text[], %s::bigint[]) AS t(key, turn)"
            " ON CONFLICT (queue, key) DO UPDATE SET served = excluded.served",
            (queue, queue, names, [offsets[name] for name in names]),
        )
    if rules.rate is not None:
        keyed = [key for key in order if key != NO_KEY]
        if keyed:
            await tx.execute(
                "INSERT INTO key_rate_window (queue, key, at)"
                " SELECT %s, key, %s FROM unnest(%s::text[]) AS key",
                (queue, tx.now, keyed),
            )
