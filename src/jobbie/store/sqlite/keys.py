"""Per-key state of fair queues: the busiest keys, backlog counts for /metrics, and pruning.

Counts come from the trigger-kept `key_counts` and `key_done` (migration 007), so none of this
reads `jobs`.
"""

from __future__ import annotations

import sqlite3

import msgspec

from jobbie.errors import NotFound
from jobbie.models import QueueKey
from jobbie.store.fairness import MINUTE_MS, completed_last_minute
from jobbie.store.sqlite.writer import Tx


def busiest(conn: sqlite3.Connection, queue: str, limit: int, now: int) -> list[QueueKey]:
    """The queue's keys with pending or active jobs, most pending first."""
    if conn.execute("SELECT 1 FROM queues WHERE name = ?", (queue,)).fetchone() is None:
        raise NotFound(f"queue {queue} not found")
    rows = conn.execute(
        "SELECT key, sum(CASE WHEN state = 'pending' THEN n ELSE 0 END) AS pending,"
        " sum(CASE WHEN state = 'active' THEN n ELSE 0 END) AS active"
        " FROM key_counts WHERE queue = ? AND state IN ('pending', 'active') AND n > 0"
        " GROUP BY key ORDER BY pending DESC, active DESC, key LIMIT ?",
        (queue, limit),
    ).fetchall()
    minute = now // MINUTE_MS
    done: dict[tuple[str, int], int] = {}
    if rows:
        done = {
            (key, at): n
            for key, at, n in conn.execute(
                "SELECT key, minute, n FROM key_done WHERE queue = ? AND minute >= ?"
                " AND key IN (SELECT value FROM json_each(?))",
                (queue, minute - 1, _json_list([row["key"] for row in rows])),
            )
        }
    return [
        QueueKey(
            key=row["key"],
            pending=row["pending"],
            active=row["active"],
            completed_last_minute=completed_last_minute(
                done.get((row["key"], minute), 0), done.get((row["key"], minute - 1), 0), now
            ),
        )
        for row in rows
    ]


def with_backlog(conn: sqlite3.Connection) -> dict[str, int]:
    """Per queue, the number of keys with pending jobs."""
    return dict(
        conn.execute(
            "SELECT queue, count(*) FROM key_counts WHERE state = 'pending' AND n > 0"
            " GROUP BY queue"
        ).fetchall()
    )


def prune(tx: Tx, limit: int) -> int:
    """Forget keys with no unfinished jobs (their turn, counters and throttle records that
    left the window) and per-minute completions older than the previous minute. Returns how
    many rows went."""
    minute = tx.now // MINUTE_MS
    gone = tx.execute(
        "DELETE FROM key_done WHERE (queue, key, minute) IN"
        " (SELECT queue, key, minute FROM key_done WHERE minute < ? LIMIT ?)",
        (minute - 1, limit),
    ).rowcount
    left_window = tx.execute(
        "DELETE FROM key_rate_window WHERE id IN (SELECT r.id FROM key_rate_window AS r"
        " LEFT JOIN queues AS q ON q.name = r.queue"
        " WHERE r.at <= ? - COALESCE(q.key_rate_window_ms, 0) LIMIT ?) RETURNING queue, key",
        (tx.now, limit),
    ).fetchall()
    gone += len(left_window)
    # Counter rows at zero go; their keys go too once no counter of an unfinished state is
    # left and none of their hand-outs is still in a throttle window.
    zeroed = tx.execute(
        "DELETE FROM key_counts WHERE (queue, key, state) IN"
        " (SELECT queue, key, state FROM key_counts WHERE n = 0 LIMIT ?) RETURNING queue, key",
        (limit,),
    ).fetchall()
    gone += len(zeroed)
    idle = [
        (queue, key)
        for queue, key in {(row[0], row[1]) for row in [*zeroed, *left_window]}
        if tx.execute(
            "SELECT 1 FROM key_counts WHERE queue = ? AND key = ? AND n > 0"
            " AND state IN ('scheduled', 'pending', 'active', 'retrying')"
            " UNION ALL SELECT 1 FROM key_rate_window WHERE queue = ? AND key = ?",
            (queue, key, queue, key),
        ).fetchone()
        is None
    ]
    tx.conn.executemany("DELETE FROM queue_keys WHERE queue = ? AND key = ?", idle)
    return gone + len(idle)


def _json_list(values: list[str]) -> str:
    return msgspec.json.encode(values).decode()
