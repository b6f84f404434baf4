"""Throughput and depth charts as server-drawn SVG geometry (no chart library, no script)."""

from __future__ import annotations

from dataclasses import dataclass

from jobbie.store.base import Store
from jobbie.store.history import MINUTE_MS, Point, buckets, minute_of, rollup
from jobbie.timeutil import rfc3339

WIDTH, HEIGHT = 600, 120
DEPTH_HEIGHT = 60


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    done_y: float
    done_h: float
    failed_y: float
    failed_h: float
    title: str


@dataclass(frozen=True)
class Chart:
    label: str  # e.g. "last hour, per minute"
    bars: list[Bar]
    depth_points: str  # an SVG polyline's points
    max_rate: int
    max_depth: int
    completed: int
    failed: int

    @property
    def summary(self) -> str:
        return (
            f"{self.label}: {self.completed} completed, {self.failed} failed attempts;"
            f" waiting jobs peaked at {self.max_depth}"
        )


def draw(points: list[Point], label: str, unit: str) -> Chart:
    n = max(1, len(points))
    step = WIDTH / n
    peak = max([p.completed + p.failed for p in points] + [1])
    deepest = max([p.depth for p in points] + [1])
    bars = []
    coords = []
    for i, p in enumerate(points):
        done_h = HEIGHT * p.completed / peak
        failed_h = HEIGHT * p.failed / peak
        at = rfc3339(p.minute) or ""
        bars.append(
            Bar(
                x=round(i * step, 2),
                width=round(max(step - 1, 0.5), 2),
                done_y=round(HEIGHT - done_h, 2),
                done_h=round(done_h, 2),
                failed_y=round(HEIGHT - done_h - failed_h, 2),
                failed_h=round(failed_h, 2),
                title=f"{at[11:16]} UTC, {unit}: {p.completed} completed, {p.failed} failed,"
                f" {p.depth} waiting",
            )
        )
        y = DEPTH_HEIGHT - DEPTH_HEIGHT * p.depth / deepest
        coords.append(f"{round(i * step + step / 2, 2)},{round(y, 2)}")
    return Chart(
        label=label,
        bars=bars,
        depth_points=" ".join(coords),
        max_rate=max(p.completed + p.failed for p in points) if points else 0,
        max_depth=max((p.depth for p in points), default=0),
        completed=sum(p.completed for p in points),
        failed=sum(p.failed for p in points),
    )


async def history_charts(store: Store, queue: str | None) -> list[Chart]:
    """The last hour per minute and the last day per 15 minutes."""
    now = minute_of(store.clock.now_ms())
    day_start = now - 24 * 60 * MINUTE_MS + MINUTE_MS
    snapshots = await store.read_history(queue, day_start)
    day = rollup(snapshots, day_start, now)
    return [
        draw(day[-60:], "Last hour, per minute", "minute"),
        draw(buckets(day, 15), "Last day, per 15 minutes", "15 minutes"),
    ]
