"""Where a fair queue's picks stand among other queues' jobs (`fairness.serve_slots`)."""

from __future__ import annotations

from jobbie.store.fairness import serve_slots


def test_the_nth_pick_served_takes_the_nth_smallest_seq_of_its_priority() -> None:
    # Served k2's job 30, then k1's 10, then k2's 40, then k1's 20 (round robin by key).
    assert serve_slots([(2, 30), (2, 10), (2, 40), (2, 20)]) == [10, 20, 30, 40]


def test_each_priority_has_its_own_slots() -> None:
    picks = [(0, 50), (2, 30), (0, 7), (2, 10)]
    assert serve_slots(picks) == [7, 10, 50, 30]


def test_nothing_picked() -> None:
    assert serve_slots([]) == []
