"""Pure lifecycle rules shared by every backend: backoff and the outcome of a failed attempt."""

from __future__ import annotations

from dataclasses import dataclass

from jobbie.store.states import Backoff, State


def backoff_delay_ms(policy: Backoff, base_ms: int, max_ms: int, failure: int) -> int:
    """Delay before the retry that follows the `failure`-th failed attempt (1-based).

    none = 0; fixed = base; linear = base * n; exponential = base * 2^(n-1); capped at max.
    """
    n = max(failure, 1)
    if policy is Backoff.NONE:
        return 0
    if policy is Backoff.FIXED:
        delay = base_ms
    elif policy is Backoff.LINEAR:
        delay = base_ms * n
    else:
        # Cap the exponent so huge attempt numbers cannot build enormous integers.
        delay = base_ms * (1 << min(n - 1, 62))
    return min(delay, max_ms)


def attempts_remaining(max_retries: int, attempt: int) -> int:
    """How many more times the job may run: `max_retries + 1 - attempt`, never negative."""
    return max(0, max_retries + 1 - attempt)


@dataclass(frozen=True, slots=True, kw_only=True)
class FailureOutcome:
    """Where a failed attempt sends a job."""

    state: State
    next_attempt_at: int | None  # epoch ms; None when the job will not run again
    reason: str | None = None  # "expired" when expiry, not the retry budget, ended the job


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """A job's retry settings."""

    max_retries: int
    backoff: Backoff
    base_delay_ms: int
    max_delay_ms: int


def failure_outcome(
    *,
    attempt: int,
    policy: RetryPolicy,
    cancel_requested: bool,
    expire_at: int | None,
    now: int,
) -> FailureOutcome:
    """Decide what a failed attempt (a fail call or an expired lease) does to the job.

    A requested cancel wins; a job past its expiry dies as `expired` instead of retrying;
    otherwise attempt n is retried when n <= max_retries, else the job is dead.
    """
    if cancel_requested:
        return FailureOutcome(state=State.CANCELLED, next_attempt_at=None)
    if expire_at is not None and expire_at <= now:
        return FailureOutcome(state=State.DEAD, next_attempt_at=None, reason="expired")
    if attempt > policy.max_retries:
        return FailureOutcome(state=State.DEAD, next_attempt_at=None)
    delay = backoff_delay_ms(policy.backoff, policy.base_delay_ms, policy.max_delay_ms, attempt)
    # A zero delay makes the job pending in the same transaction; the answer still says retrying.
    state = State.PENDING if delay == 0 else State.RETRYING
    return FailureOutcome(state=state, next_attempt_at=now + delay)


DEFAULT_RETRY = RetryPolicy(
    max_retries=3, backoff=Backoff.EXPONENTIAL, base_delay_ms=5_000, max_delay_ms=600_000
)
DEFAULT_UNIQUE_PERIOD_MS = 3_600_000
DEFAULT_LEASE_MS = 60_000
