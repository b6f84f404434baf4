"""The lifecycle vocabulary and its transition table (spec section 3)."""

from __future__ import annotations

import pytest

from jobbie.store.states import (
    FINISHED,
    TRANSITIONS,
    WAITING,
    Backoff,
    Priority,
    State,
    can_transition,
)

S = State

# Every arrow of the diagram in spec section 3 (plus expiry: a waiting job can die as expired,
# and release: an active job goes back to pending).
ALLOWED: set[tuple[State, State]] = {
    (S.PENDING, S.ACTIVE),
    (S.ACTIVE, S.COMPLETED),
    (S.ACTIVE, S.RETRYING),
    (S.ACTIVE, S.DEAD),
    (S.ACTIVE, S.CANCELLED),
    (S.ACTIVE, S.PENDING),
    (S.RETRYING, S.PENDING),
    (S.SCHEDULED, S.PENDING),
    (S.PENDING, S.CANCELLED),
    (S.SCHEDULED, S.CANCELLED),
    (S.RETRYING, S.CANCELLED),
    (S.DEAD, S.PENDING),
    (S.CANCELLED, S.PENDING),
    (S.COMPLETED, S.PENDING),
    (S.PENDING, S.DEAD),
    (S.SCHEDULED, S.DEAD),
    (S.RETRYING, S.DEAD),
}


def test_state_names_match_spec() -> None:
    assert {s.value for s in State} == {
        "scheduled",
        "pending",
        "active",
        "completed",
        "retrying",
        "dead",
        "cancelled",
    }


def test_every_state_has_a_row() -> None:
    assert set(TRANSITIONS) == set(State)


@pytest.mark.parametrize("source", list(State))
@pytest.mark.parametrize("target", list(State))
def test_transition_table(source: State, target: State) -> None:
    assert can_transition(source, target) == ((source, target) in ALLOWED)


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (S.COMPLETED, S.ACTIVE),
        (S.DEAD, S.ACTIVE),
        (S.CANCELLED, S.ACTIVE),
        (S.COMPLETED, S.DEAD),
        (S.SCHEDULED, S.ACTIVE),
        (S.RETRYING, S.ACTIVE),
        (S.PENDING, S.COMPLETED),
        (S.ACTIVE, S.ACTIVE),
        (S.ACTIVE, S.SCHEDULED),
    ],
)
def test_forbidden_transitions(source: State, target: State) -> None:
    assert not can_transition(source, target)


def test_only_active_jobs_finish() -> None:
    for state in State:
        if state is not S.ACTIVE:
            assert not can_transition(state, S.COMPLETED)


def test_only_pending_jobs_become_active() -> None:
    assert {s for s in State if can_transition(s, S.ACTIVE)} == {S.PENDING}


def test_finished_states_only_go_back_to_pending() -> None:
    assert {S.COMPLETED, S.DEAD, S.CANCELLED} == FINISHED
    for state in FINISHED:
        assert TRANSITIONS[state] == frozenset({S.PENDING})


def test_waiting_states() -> None:
    assert {S.SCHEDULED, S.PENDING, S.RETRYING} == WAITING
    assert not WAITING & FINISHED
    assert S.ACTIVE not in WAITING | FINISHED


def test_state_is_a_string() -> None:
    assert isinstance(S.PENDING, str)
    assert S.PENDING.value == "pending"
    assert f"{S.PENDING.value}" == "pending"
    assert State("dead") is S.DEAD


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("critical", Priority.CRITICAL),
        ("high", Priority.HIGH),
        ("normal", Priority.NORMAL),
        ("HIGH", Priority.HIGH),
        (0, Priority.CRITICAL),
        (1, Priority.HIGH),
        (2, Priority.NORMAL),
    ],
)
def test_priority_parse(value: str | int, expected: Priority) -> None:
    assert Priority.parse(value) is expected


@pytest.mark.parametrize("value", ["urgent", "", 3, -1])
def test_priority_parse_rejects_unknown(value: str | int) -> None:
    with pytest.raises((KeyError, ValueError)):
        Priority.parse(value)


def test_priority_order_and_labels() -> None:
    assert Priority.CRITICAL < Priority.HIGH < Priority.NORMAL
    assert [p.label for p in Priority] == ["critical", "high", "normal"]


def test_backoff_names() -> None:
    assert {b.value for b in Backoff} == {"none", "fixed", "linear", "exponential"}
