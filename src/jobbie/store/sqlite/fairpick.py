"""The fetch's pick from a queue whose keys are served fairly or limited per key (see
`jobbie.store.fairness` for the rules; this module reads the lanes and writes the turns).

One priority level at a time, most urgent first: the keys with ready jobs at that level are
read as lanes (round robin: in turn order, stopping once there are enough; FIFO: every key, in
the order of its oldest ready job), each with its room under the per-key limits, and
`fairness` picks the jobs. Reading a key is one index range (`jobs_key_pending`), so the cost
grows with the keys visited, not with the jobs queued behind a busy key.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from jobbie.store import fairness
from jobbie.store.fairness import NO_KEY, KeyRules, Lane
from jobbie.store.sqlite.finish import job_columns
from jobbie.store.sqlite.writer import Tx

_ROW = (
    f"SELECT {job_columns()}, priority, key, length(CAST(payload AS BLOB))"
    " + COALESCE(length(CAST(checkpoint AS BLOB)), 4) AS size FROM jobs"
)


def pick(tx: Tx, queue: str, rules: KeyRules, room: int) -> list[sqlite3.Row]:
    """Up to `room` pending jobs of `queue` in serve order (most urgent level first)."""
    tx.execute(
        "INSERT INTO queue_keys (queue, key) VALUES (?, ?) ON CONFLICT DO NOTHING", (queue, NO_KEY)
    )
    picked: list[sqlite3.Row] = []
    level = -(2**63)
    while len(picked) < room:
        row = tx.execute(
            "SELECT min(priority) FROM jobs WHERE queue = ? AND state = 'pending' AND priority > ?",
            (queue, level),
        ).fetchone()
        if row[0] is None:
            break
        level = row[0]
        picked.extend(_pick_level(tx, queue, rules, level, room - len(picked)))
    return picked


def _pick_level(tx: Tx, queue: str, rules: KeyRules, level: int, wanted: int) -> list[sqlite3.Row]:
    lanes: list[Lane[sqlite3.Row]] = []
    keys = tx.execute(
        "SELECT key, served FROM queue_keys WHERE queue = ? ORDER BY served, key", (queue,)
    )
    for key, served in keys:
        # Round robin reads keys in turn order and stops once each wanted job has a key.
        if rules.round_robin and len(lanes) >= wanted:
            break
        room = None if key == NO_KEY else _room(tx, queue, key, rules)
        if room == 0:
            continue
        head = _jobs(tx, queue, key, level, 1)
        if head:
            lanes.append(Lane(key=key, turn=served, jobs=head, room=room))
    if not rules.round_robin:
        # FIFO: the oldest heads first; only the first `wanted` keys can contribute.
        lanes.sort(key=lambda lane: lane.jobs[0]["seq"])
        lanes = lanes[:wanted]
    taken: list[sqlite3.Row] = []
    after: dict[str, int] = {}  # per key, the last seq already taken
    while lanes and len(taken) < wanted:
        left = wanted - len(taken)
        depth = fairness.depth(rules, left, len(lanes))
        for lane in lanes:
            limit = fairness.lane_limit(depth, lane.room)
            if lane.key in after or limit > len(lane.jobs):
                lane.jobs = _jobs(tx, queue, lane.key, level, limit, after.get(lane.key))
        chosen = fairness.choose(rules, lanes, left, _seq)
        if not chosen:
            break
        taken.extend(job for _, job in chosen)
        lanes = fairness.settle(lanes, chosen, depth, after, _seq)
    return taken


def _seq(job: sqlite3.Row) -> int:
    return int(job["seq"])


def _jobs(
    tx: Tx, queue: str, key: str, level: int, limit: int, after: int | None = None
) -> list[sqlite3.Row]:
    """The key's oldest `limit` pending jobs at priority `level` (past seq `after`)."""
    return tx.execute(
        f"{_ROW} WHERE queue = ? AND key IS ? AND state = 'pending' AND priority = ?"
        " AND seq > ? ORDER BY seq LIMIT ?",
        (queue, None if key == NO_KEY else key, level, -1 if after is None else after, limit),
    ).fetchall()


def _room(tx: Tx, queue: str, key: str, rules: KeyRules) -> int | None:
    """How many more jobs of `key` may be handed out now under the per-key limits."""
    room: int | None = None
    if rules.concurrency is not None:
        row = tx.execute(
            "SELECT n FROM key_counts WHERE queue = ? AND key = ? AND state = 'active'",
            (queue, key),
        ).fetchone()
        room = rules.concurrency - (row[0] if row else 0)
    if rules.rate is not None and rules.window_ms is not None:
        (used,) = tx.execute(
            "SELECT count(*) FROM key_rate_window WHERE queue = ? AND key = ? AND at > ?",
            (queue, key, tx.now - rules.window_ms),
        ).fetchone()
        left = rules.rate - used
        room = left if room is None else min(room, left)
    return None if room is None else max(0, room)


def key_reopens_at(tx: Tx, queue: str, rules: KeyRules) -> int | None:
    """When the first throttled key of `queue` may be served again (for a fetch that found
    nothing), or None."""
    if rules.rate is None or rules.window_ms is None:
        return None
    row = tx.execute(
        "SELECT min(at) FROM key_rate_window WHERE queue = ? AND at > ?",
        (queue, tx.now - rules.window_ms),
    ).fetchone()
    return None if row[0] is None else int(row[0]) + rules.window_ms


def served(tx: Tx, queue: str, rules: KeyRules, keys: Iterable[str | None]) -> None:
    """Record the keys just handed jobs, in serve order: their new turns (round robin) and
    their hand-outs in the per-key throttle window."""
    order = [NO_KEY if key is None else key for key in keys]
    if not order:
        return
    if rules.round_robin:
        (base,) = tx.execute(
            "SELECT COALESCE(max(served), 0) FROM queue_keys WHERE queue = ?", (queue,)
        ).fetchone()
        tx.conn.executemany(
            "UPDATE queue_keys SET served = ? WHERE queue = ? AND key = ?",
            [(turn, queue, key) for key, turn in fairness.turns(order, base).items()],
        )
    if rules.rate is not None:
        tx.conn.executemany(
            "INSERT INTO key_rate_window (queue, key, at) VALUES (?, ?, ?)",
            [(queue, key, tx.now) for key in order if key != NO_KEY],
        )
