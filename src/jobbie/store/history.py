"""Per-minute queue history for the console's charts, backend-neutral.

A backend keeps one snapshot per queue and minute: the queue's cumulative completed and
failed totals and its waiting depth (pending + scheduled + retrying), overwritten while the
minute lasts. `rollup` turns snapshots into per-minute points: throughput is the difference
of consecutive totals; a queue's first snapshot counts from zero (a new queue's first minute
shows its work), and totals that went down (the queue was deleted and re-created) count as
0, never as a negative rate.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

MINUTE_MS = 60_000
KEEP_MS = 7 * 24 * 60 * MINUTE_MS
# How often the server snapshots (a minute's last snapshot is the one kept).
SNAPSHOT_INTERVAL_S = 5.0


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Totals and depth at `minute` (epoch ms, a multiple of MINUTE_MS), summed over the
    queues asked for."""

    minute: int
    completed: int
    failed: int
    depth: int


@dataclass(frozen=True, slots=True)
class Point:
    minute: int
    completed: int  # jobs completed during this minute
    failed: int  # failed attempts during this minute
    depth: int  # waiting jobs at the minute's end


def minute_of(ms: int) -> int:
    return ms - ms % MINUTE_MS


def rollup(snapshots: Iterable[Snapshot], start: int, end: int) -> list[Point]:
    """One point per minute from `start` to `end` (inclusive, epoch ms minutes), oldest
    first. A minute without a snapshot has no throughput and keeps the last depth known."""
    by_minute = {s.minute: s for s in snapshots}
    points: list[Point] = []
    before = max((m for m in by_minute if m < start), default=None)
    previous = by_minute.get(before) if before is not None else None
    minute = minute_of(start)
    while minute <= end:
        current = by_minute.get(minute)
        if current is None:
            depth = previous.depth if previous is not None else 0
            points.append(Point(minute, 0, 0, depth))
        else:
            base = previous or Snapshot(minute, 0, 0, 0)
            done = max(0, current.completed - base.completed)
            failed = max(0, current.failed - base.failed)
            points.append(Point(minute, done, failed, current.depth))
            previous = current
        minute += MINUTE_MS
    return points


def buckets(points: Sequence[Point], size: int) -> list[Point]:
    """Points merged `size` minutes at a time (sums of throughput, the last depth)."""
    merged = []
    for i in range(0, len(points), size):
        part = points[i : i + size]
        merged.append(
            Point(
                part[0].minute,
                sum(p.completed for p in part),
                sum(p.failed for p in part),
                part[-1].depth,
            )
        )
    return merged
