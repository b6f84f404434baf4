"""Who may end an attempt: lease and fencing checks, the same on every backend.

A worker proves its claim on a job with a `Fence` (its `worker_id` and the `attempt` it was
handed). The lease is judged by the clock of the operation, so an expired lease is lost even
before the maintenance pass reclaims it.
"""

from __future__ import annotations

from typing import TypeVar

from jobbie.errors import Conflict, JobbieError, LeaseLost, NotFound
from jobbie.store.params import Fence
from jobbie.store.records import Record
from jobbie.store.states import State

R = TypeVar("R", bound=Record)


def check_lease(row: R | None, job_id: str, fence: Fence, now: int) -> R:
    """`row` (with `state`, `lease_expires_at`, `worker_id`, `attempt`) when a caller holding
    `fence` may end its attempt at `now`; otherwise the error to answer."""
    if row is None:
        raise NotFound(f"job {job_id} not found")
    if row["state"] != State.ACTIVE.value:
        raise not_active(job_id, row["state"], fence)
    if row["lease_expires_at"] <= now:
        raise LeaseLost(f"the lease on job {job_id} has expired")
    if fence.worker_id is not None and fence.worker_id != row["worker_id"]:
        raise LeaseLost(f"job {job_id} is leased to another worker")
    if fence.attempt is not None and fence.attempt != row["attempt"]:
        raise LeaseLost(f"job {job_id} is on attempt {row['attempt']}, not {fence.attempt}")
    return row


def lease_holds(row: Record, fence: Fence, now: int) -> bool:
    """Whether the lease `row` shows is live at `now` and held by `fence` (heartbeats ask
    this: their answer is a word per job, not an error)."""
    try:
        check_lease(row, row["id"], fence, now)
    except JobbieError:
        return False
    return True


def not_active(job_id: str, state: str, fence: Fence) -> JobbieError:
    """The error for ending an attempt of a job that is not active: a fenced caller has lost
    its lease (LEASE_LOST); an unfenced one asked for something impossible (CONFLICT)."""
    if fence.given:
        return LeaseLost(f"job {job_id} is {state}, no longer leased to this worker")
    return Conflict(f"job {job_id} is {state}, not active")


def lost_race(job_id: str) -> LeaseLost:
    """A guarded update changed no row: another writer ended or re-leased the attempt between
    the check and the update."""
    return LeaseLost(f"job {job_id} changed while this request ran; its lease is gone")
