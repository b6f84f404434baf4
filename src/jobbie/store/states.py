"""Lifecycle vocabulary as data: states, priorities, backoff policies and allowed transitions."""

from __future__ import annotations

from enum import Enum, StrEnum


class State(StrEnum):
    """A job's lifecycle state."""

    SCHEDULED = "scheduled"
    PENDING = "pending"
    ACTIVE = "active"
    COMPLETED = "completed"
    RETRYING = "retrying"
    DEAD = "dead"
    CANCELLED = "cancelled"


class Priority(int, Enum):
    """Stored as 0/1/2 so that ascending order is most urgent first."""

    CRITICAL = 0
    HIGH = 1
    NORMAL = 2

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: str | int) -> Priority:
        """A name (`critical`) or its number (0-2)."""
        if isinstance(value, str):
            return cls[value.upper()]
        return cls(value)


class Backoff(StrEnum):
    """How the delay before a retry grows with the attempt number."""

    NONE = "none"
    FIXED = "fixed"
    LINEAR = "linear"
    EXPONENTIAL = "exponential"


class EventType(StrEnum):
    """Lifecycle events appended to the event log."""

    ENQUEUED = "enqueued"
    STARTED = "started"
    COMPLETED = "completed"
    FAILED = "failed"
    RETRYING = "retrying"
    DEAD = "dead"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    MOVED = "moved"
    DELETED = "deleted"
    PROMOTED = "promoted"
    RECLAIMED = "reclaimed"
    RELEASED = "released"


# States a job waits in before a worker takes it.
WAITING: frozenset[State] = frozenset({State.SCHEDULED, State.PENDING, State.RETRYING})
# States a job never leaves on its own.
FINISHED: frozenset[State] = frozenset({State.COMPLETED, State.DEAD, State.CANCELLED})

TRANSITIONS: dict[State, frozenset[State]] = {
    State.SCHEDULED: frozenset({State.PENDING, State.CANCELLED, State.DEAD}),
    State.PENDING: frozenset({State.ACTIVE, State.CANCELLED, State.DEAD}),
    State.ACTIVE: frozenset(
        {State.COMPLETED, State.RETRYING, State.PENDING, State.DEAD, State.CANCELLED}
    ),
    State.RETRYING: frozenset({State.PENDING, State.CANCELLED, State.DEAD}),
    State.COMPLETED: frozenset({State.PENDING}),
    State.DEAD: frozenset({State.PENDING}),
    State.CANCELLED: frozenset({State.PENDING}),
}


def can_transition(source: State, target: State) -> bool:
    """Whether the lifecycle allows `source` -> `target`."""
    return target in TRANSITIONS[source]


class TransitionError(Exception):
    """A store tried a state change the lifecycle does not allow (a bug, never client input)."""


def transition(source: State | str, target: State) -> State:
    """`target`, after checking that the lifecycle allows `source` -> `target`.

    Stores call this before every guarded state change, so the table above is the one
    statement of which changes exist.
    """
    source = State(source)
    if not can_transition(source, target):
        raise TransitionError(f"a {source.value} job cannot become {target.value}")
    return target


def states_reaching(target: State, among: frozenset[State] = frozenset(State)) -> frozenset[State]:
    """The states (of `among`) from which the lifecycle allows a change to `target`."""
    return frozenset(s for s in among if can_transition(s, target))
