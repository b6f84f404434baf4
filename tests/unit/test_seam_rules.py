"""The backend-neutral rules of the store seam, on plain dict records."""

from __future__ import annotations

from typing import Any

import pytest

from jobbie.errors import Conflict, LeaseLost, NotFound
from jobbie.store.inserts import plan_batch, plan_inserts
from jobbie.store.leases import check_lease, lease_holds
from jobbie.store.params import Fence, NewJob
from jobbie.store.rules import DEFAULT_RETRY
from jobbie.store.states import State, TransitionError, transition

NOW = 1_000_000


def active(**over: Any) -> dict[str, Any]:
    row = {"id": "job_1", "state": "active", "lease_expires_at": NOW + 1, "worker_id": "w1"}
    row["attempt"] = 2
    return {**row, **over}


def test_a_live_lease_held_by_the_fence_may_end_the_attempt() -> None:
    row = active()
    assert check_lease(row, "job_1", Fence(worker_id="w1", attempt=2), NOW) is row
    assert check_lease(row, "job_1", Fence(), NOW) is row  # unfenced callers are trusted


@pytest.mark.parametrize(
    ("row", "fence", "error"),
    [
        (None, Fence(), NotFound),
        (active(state="completed"), Fence(worker_id="w1"), LeaseLost),
        (active(state="completed"), Fence(), Conflict),
        (active(lease_expires_at=NOW), Fence(), LeaseLost),
        (active(), Fence(worker_id="w2"), LeaseLost),
        (active(), Fence(attempt=1), LeaseLost),
    ],
)
def test_every_broken_claim_has_its_error(
    row: dict[str, Any] | None, fence: Fence, error: type[Exception]
) -> None:
    with pytest.raises(error):
        check_lease(row, "job_1", fence, NOW)
    if row is not None:
        assert not lease_holds(row, fence, NOW)


def test_transitions_come_from_the_table() -> None:
    assert transition("active", State.COMPLETED) is State.COMPLETED
    assert transition(State.DEAD, State.PENDING) is State.PENDING
    with pytest.raises(TransitionError):
        transition(State.COMPLETED, State.ACTIVE)
    with pytest.raises(TransitionError):
        transition(State.PENDING, State.RETRYING)


def job(**over: Any) -> NewJob:
    fields: dict[str, Any] = {"queue": "q", "payload": "{}", "priority": 2, "retry": DEFAULT_RETRY}
    return NewJob(**{**fields, **over})


def test_insert_plan_sets_state_times_and_locks() -> None:
    now, later, soon = plan_inserts(
        [
            job(unique_key="k", unique_period_ms=60_000, expire_after_ms=5_000),
            job(scheduled_at=NOW + 10),
            job(delay_ms=1),
        ],
        NOW,
    )
    assert (now.state, now.lock_expires_at, now.expire_at) == (
        State.PENDING,
        NOW + 60_000,
        NOW + 5_000,
    )
    assert (later.state, later.scheduled_at) == (State.SCHEDULED, NOW + 10)
    assert (soon.state, soon.scheduled_at) == (State.SCHEDULED, NOW + 1)
    assert len({now.id, later.id, soon.id}) == 3 and now.id.startswith("job_")
    assert plan_inserts([job(scheduled_at=NOW - 1)], NOW)[0].state is State.PENDING


def test_batch_plan_folds_repeated_and_held_unique_keys() -> None:
    held = {("q", "taken"): "job_old"}
    slots, fresh = plan_batch(
        [job(unique_key="a"), job(unique_key="taken"), job(), job(unique_key="a")],
        lambda queue, key: held.get((queue, key)),
    )
    assert slots == [0, "job_old", 1, 0]
    assert [j.unique_key for j in fresh] == ["a", None]
