"""Pure lifecycle rules: backoff delays, remaining attempts and where a failed attempt goes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobbie.store.rules import (
    DEFAULT_RETRY,
    RetryPolicy,
    attempts_remaining,
    backoff_delay_ms,
    failure_outcome,
)
from jobbie.store.states import Backoff, State

NOW = 1_770_000_000_000
BASE = 5_000
CAP = 600_000


@pytest.mark.parametrize(
    ("policy", "failure", "expected"),
    [
        (Backoff.NONE, 1, 0),
        (Backoff.NONE, 50, 0),
        (Backoff.FIXED, 1, BASE),
        (Backoff.FIXED, 7, BASE),
        (Backoff.LINEAR, 1, BASE),
        (Backoff.LINEAR, 2, 2 * BASE),
        (Backoff.LINEAR, 10, 10 * BASE),
        (Backoff.LINEAR, 1000, CAP),
        (Backoff.EXPONENTIAL, 1, BASE),
        (Backoff.EXPONENTIAL, 2, 2 * BASE),
        (Backoff.EXPONENTIAL, 3, 4 * BASE),
        (Backoff.EXPONENTIAL, 7, 64 * BASE),  # 320 s, still under the 600 s cap
        (Backoff.EXPONENTIAL, 8, CAP),  # 640 s would pass the cap
    ],
)
def test_backoff_delay_per_policy(policy: Backoff, failure: int, expected: int) -> None:
    assert backoff_delay_ms(policy, BASE, CAP, failure) == expected


@pytest.mark.parametrize("policy", list(Backoff))
@pytest.mark.parametrize("failure", [1_000, 10**6, 10**18])
def test_backoff_huge_attempt_numbers_stay_capped(policy: Backoff, failure: int) -> None:
    delay = backoff_delay_ms(policy, BASE, CAP, failure)
    assert 0 <= delay <= CAP
    expected = {Backoff.NONE: 0, Backoff.FIXED: BASE}.get(policy, CAP)
    assert delay == expected


def test_backoff_cap_below_base_wins() -> None:
    assert backoff_delay_ms(Backoff.FIXED, 10_000, 3_000, 1) == 3_000
    assert backoff_delay_ms(Backoff.EXPONENTIAL, 10_000, 3_000, 1) == 3_000


def test_backoff_zero_base_is_zero() -> None:
    for policy in Backoff:
        assert backoff_delay_ms(policy, 0, CAP, 5) == 0


def test_default_retry_policy_matches_spec() -> None:
    assert DEFAULT_RETRY.max_retries == 3
    assert DEFAULT_RETRY.backoff is Backoff.EXPONENTIAL
    assert DEFAULT_RETRY.base_delay_ms == 5_000
    assert DEFAULT_RETRY.max_delay_ms == 600_000


policies = st.sampled_from(list(Backoff))
bases = st.integers(min_value=0, max_value=365 * 86_400_000)
caps = st.integers(min_value=0, max_value=365 * 86_400_000)
failures = st.integers(min_value=1, max_value=10**9)


@given(policy=policies, base=bases, cap=caps, n=failures)
def test_backoff_is_monotonic_in_n_and_never_exceeds_cap(
    policy: Backoff, base: int, cap: int, n: int
) -> None:
    first = backoff_delay_ms(policy, base, cap, n)
    second = backoff_delay_ms(policy, base, cap, n + 1)
    assert 0 <= first <= second <= cap


@given(policy=policies, base=bases, cap=caps, n=failures)
def test_backoff_never_exceeds_uncapped_formula(
    policy: Backoff, base: int, cap: int, n: int
) -> None:
    delay = backoff_delay_ms(policy, base, cap, n)
    if policy is Backoff.NONE:
        assert delay == 0
    elif policy is Backoff.FIXED:
        assert delay == min(base, cap)
    elif policy is Backoff.LINEAR:
        assert delay == min(base * n, cap)
    elif n <= 64:
        assert delay == min(base * 2 ** (n - 1), cap)


@pytest.mark.parametrize(
    ("max_retries", "attempt", "expected"),
    [
        (3, 0, 4),
        (3, 1, 3),
        (3, 4, 0),
        (3, 5, 0),
        (0, 1, 0),
        (0, 100, 0),
        (1000, 1, 1000),
    ],
)
def test_attempts_remaining(max_retries: int, attempt: int, expected: int) -> None:
    assert attempts_remaining(max_retries, attempt) == expected


@given(
    max_retries=st.integers(min_value=0, max_value=1000),
    attempt=st.integers(min_value=0, max_value=10**9),
)
def test_attempts_remaining_never_negative(max_retries: int, attempt: int) -> None:
    remaining = attempts_remaining(max_retries, attempt)
    assert remaining >= 0
    assert remaining == max(0, max_retries + 1 - attempt)


def _policy(
    max_retries: int = 3,
    backoff: Backoff = Backoff.EXPONENTIAL,
    base_ms: int = BASE,
    max_ms: int = CAP,
) -> RetryPolicy:
    return RetryPolicy(
        max_retries=max_retries, backoff=backoff, base_delay_ms=base_ms, max_delay_ms=max_ms
    )


def test_failure_with_retries_left_is_retrying_after_backoff() -> None:
    outcome = failure_outcome(
        attempt=2, policy=_policy(), cancel_requested=False, expire_at=None, now=NOW
    )
    assert outcome.state is State.RETRYING
    assert outcome.next_attempt_at == NOW + 2 * BASE
    assert outcome.reason is None


def test_failure_with_zero_delay_goes_straight_to_pending() -> None:
    outcome = failure_outcome(
        attempt=1,
        policy=_policy(backoff=Backoff.NONE),
        cancel_requested=False,
        expire_at=None,
        now=NOW,
    )
    assert outcome.state is State.PENDING
    assert outcome.next_attempt_at == NOW


def test_failure_of_last_allowed_attempt_still_retries() -> None:
    # Failure of attempt n schedules a retry when n <= max_retries.
    outcome = failure_outcome(
        attempt=3, policy=_policy(max_retries=3), cancel_requested=False, expire_at=None, now=NOW
    )
    assert outcome.state is State.RETRYING


def test_failure_with_no_retries_left_is_dead() -> None:
    outcome = failure_outcome(
        attempt=4, policy=_policy(max_retries=3), cancel_requested=False, expire_at=None, now=NOW
    )
    assert outcome.state is State.DEAD
    assert outcome.next_attempt_at is None
    assert outcome.reason is None


def test_failure_with_max_retries_zero_is_dead_at_once() -> None:
    outcome = failure_outcome(
        attempt=1, policy=_policy(max_retries=0), cancel_requested=False, expire_at=None, now=NOW
    )
    assert outcome.state is State.DEAD


def test_failure_past_expiry_is_dead_expired_not_retry() -> None:
    outcome = failure_outcome(
        attempt=1, policy=_policy(), cancel_requested=False, expire_at=NOW - 1, now=NOW
    )
    assert outcome.state is State.DEAD
    assert outcome.next_attempt_at is None
    assert outcome.reason == "expired"


def test_failure_exactly_at_expiry_is_expired() -> None:
    outcome = failure_outcome(
        attempt=1, policy=_policy(), cancel_requested=False, expire_at=NOW, now=NOW
    )
    assert outcome.state is State.DEAD
    assert outcome.reason == "expired"


def test_failure_before_expiry_retries() -> None:
    outcome = failure_outcome(
        attempt=1, policy=_policy(), cancel_requested=False, expire_at=NOW + 1, now=NOW
    )
    assert outcome.state is State.RETRYING


@pytest.mark.parametrize("expire_at", [None, NOW - 1])
@pytest.mark.parametrize("attempt", [1, 4, 100])
def test_cancel_request_wins_over_everything(expire_at: int | None, attempt: int) -> None:
    outcome = failure_outcome(
        attempt=attempt, policy=_policy(), cancel_requested=True, expire_at=expire_at, now=NOW
    )
    assert outcome.state is State.CANCELLED
    assert outcome.next_attempt_at is None


@given(
    attempt=st.integers(min_value=1, max_value=2000),
    max_retries=st.integers(min_value=0, max_value=1000),
    backoff=policies,
    base=st.integers(min_value=0, max_value=86_400_000),
    cap=st.integers(min_value=0, max_value=86_400_000),
    cancel=st.booleans(),
    expire_offset=st.one_of(st.none(), st.integers(min_value=-10_000, max_value=10_000)),
)
def test_failure_outcome_is_consistent(
    attempt: int,
    max_retries: int,
    backoff: Backoff,
    base: int,
    cap: int,
    cancel: bool,
    expire_offset: int | None,
) -> None:
    expire_at = None if expire_offset is None else NOW + expire_offset
    outcome = failure_outcome(
        attempt=attempt,
        policy=_policy(max_retries, backoff, base, cap),
        cancel_requested=cancel,
        expire_at=expire_at,
        now=NOW,
    )
    assert outcome.state in {State.CANCELLED, State.DEAD, State.RETRYING, State.PENDING}
    if outcome.state in {State.CANCELLED, State.DEAD}:
        assert outcome.next_attempt_at is None
    else:
        assert outcome.next_attempt_at is not None
        assert NOW <= outcome.next_attempt_at <= NOW + cap
        assert (outcome.state is State.PENDING) == (outcome.next_attempt_at == NOW)
        assert attempt <= max_retries
    if cancel:
        assert outcome.state is State.CANCELLED
