"""The per-minute history rollup: throughput from consecutive totals, depth as last seen."""

from __future__ import annotations

from jobbie.store.history import MINUTE_MS, Point, Snapshot, buckets, minute_of, rollup

M = MINUTE_MS
T0 = 1_700_000_040_000  # a minute boundary


def test_minute_of_floors_to_the_minute() -> None:
    assert minute_of(T0 + 59_999) == T0 and minute_of(T0) == T0


def test_throughput_is_the_difference_of_consecutive_totals() -> None:
    snaps = [
        Snapshot(T0 - M, completed=100, failed=5, depth=7),  # before the window: the base
        Snapshot(T0, completed=110, failed=5, depth=3),
        Snapshot(T0 + M, completed=130, failed=8, depth=0),
    ]
    assert rollup(snaps, T0, T0 + M) == [
        Point(T0, 10, 0, 3),
        Point(T0 + M, 20, 3, 0),
    ]


def test_gaps_have_no_throughput_and_keep_the_depth() -> None:
    snaps = [Snapshot(T0, 10, 1, 4), Snapshot(T0 + 3 * M, 16, 1, 2)]
    points = rollup(snaps, T0, T0 + 3 * M)
    assert [(p.completed, p.failed, p.depth) for p in points] == [
        (10, 1, 4),  # the first snapshot ever counts from zero
        (0, 0, 4),
        (0, 0, 4),
        (6, 0, 2),  # the whole gap's work lands in the minute that saw it
    ]


def test_totals_that_go_down_never_give_negative_rates() -> None:
    snaps = [Snapshot(T0, 50, 9, 0), Snapshot(T0 + M, 3, 0, 1)]  # queue deleted and re-created
    assert rollup(snaps, T0 + M, T0 + M) == [Point(T0 + M, 0, 0, 1)]


def test_empty_history_is_a_flat_line() -> None:
    assert rollup([], T0, T0 + 2 * M) == [Point(T0 + i * M, 0, 0, 0) for i in range(3)]


def test_buckets_sum_rates_and_keep_the_last_depth() -> None:
    points = [Point(T0 + i * M, i, 1, 10 - i) for i in range(5)]
    assert buckets(points, 2) == [
        Point(T0, 1, 2, 9),
        Point(T0 + 2 * M, 5, 2, 7),
        Point(T0 + 4 * M, 4, 1, 6),
    ]
