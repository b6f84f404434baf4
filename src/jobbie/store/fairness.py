"""Fair queueing: the order in which a fetch takes ready jobs from a queue's keys.

A job may carry a `key` (a tenant: a customer, an account). A queue serves its keys in one of
two modes, and may cap each key's active jobs and hand-out rate (per-key limits):

- `fifo` (the default): oldest first, as without keys; a key at its limit is stepped over.
- `round_robin`: among ready jobs of the same priority, the next job comes from the key served
  least recently, FIFO within a key. Jobs without a key form one key of their own.

Priority always wins across keys: a claim serves one priority level at a time, most urgent
first. Both backends read the same things for a level (each key's oldest ready jobs, its turn
and its room under the per-key limits) into `Lane`s, and this module decides which jobs a fetch
takes and in what order. Jobs without a key are not subject to per-key limits.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

FIFO = "fifo"
ROUND_ROBIN = "round_robin"
MODES = (FIFO, ROUND_ROBIN)
# The turn row of the jobs without a key (a real key is never empty).
NO_KEY = ""
MINUTE_MS = 60_000

J = TypeVar("J")


@dataclass(frozen=True, slots=True)
class KeyRules:
    """A queue's fairness mode and per-key limits (from its `queues` row)."""

    round_robin: bool
    concurrency: int | None
    rate: int | None
    window_ms: int | None

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> KeyRules | None:
        """The rules of a queue that needs the fair pick; None for a plain FIFO queue."""
        rules = cls(
            round_robin=config["fairness"] == ROUND_ROBIN,
            concurrency=config["key_concurrency"],
            rate=config["key_rate_limit"],
            window_ms=config["key_rate_window_ms"],
        )
        if not rules.round_robin and rules.concurrency is None and rules.rate is None:
            return None
        return rules

    @property
    def throttled(self) -> bool:
        return self.rate is not None and self.window_ms is not None


@dataclass(slots=True)
class Lane(Generic[J]):
    """One key's ready jobs at the priority level being served, oldest first."""

    key: str  # NO_KEY for the jobs without a key
    turn: int  # when the key was last served: smaller is longer ago
    jobs: list[J] = field(default_factory=list)
    room: int | None = None  # how many more it may be handed now (None: no per-key limit)


def share(wanted: int, lanes: int) -> int:
    """How many jobs one key may give to a fetch of `wanted` over `lanes` keys with ready jobs:
    ceil(wanted / lanes), so no key takes more than its share while others wait."""
    return -(-wanted // lanes) if lanes else 0


def lane_limit(wanted: int, room: int | None) -> int:
    """How many of a key's jobs are worth reading for a fetch of `wanted`."""
    return wanted if room is None else max(0, min(wanted, room))


def round_robin(lanes: Sequence[Lane[J]], wanted: int) -> list[tuple[str, J]]:
    """Take jobs in turns: the first job of each key, least recently served key first, then
    the second of each, and so on, until `wanted` are taken. Returns (key, job) in serve order."""
    order = sorted(lanes, key=lambda lane: (lane.turn, lane.key))
    taken: list[tuple[str, J]] = []
    depth = 0
    while len(taken) < wanted:
        progressed = False
        for lane in order:
            limit = lane_limit(len(lane.jobs), lane.room)
            if depth < limit:
                taken.append((lane.key, lane.jobs[depth]))
                progressed = True
                if len(taken) == wanted:
                    break
        if not progressed:
            break
        depth += 1
    return taken


def oldest_first(
    lanes: Sequence[Lane[J]], wanted: int, seq: Callable[[J], int]
) -> list[tuple[str, J]]:
    """FIFO across keys with per-key limits: the `wanted` oldest jobs (by `seq`) that fit
    each key's room. Returns (key, job) in serve order."""
    pool = [
        (seq(job), lane.key, job)
        for lane in lanes
        for job in lane.jobs[: lane_limit(len(lane.jobs), lane.room)]
    ]
    pool.sort(key=lambda entry: entry[0])
    return [(key, job) for _, key, job in pool[:wanted]]


def depth(rules: KeyRules, wanted: int, lanes: int) -> int:
    """How many jobs to read from each key for a pass that wants `wanted` more."""
    return share(wanted, lanes) if rules.round_robin else wanted


def choose(
    rules: KeyRules, lanes: Sequence[Lane[J]], wanted: int, seq: Callable[[J], int]
) -> list[tuple[str, J]]:
    """One pass of the pick over the lanes as read: in turns, or oldest first."""
    if rules.round_robin:
        return round_robin(lanes, wanted)
    return oldest_first(lanes, wanted, seq)


def settle(
    lanes: Sequence[Lane[J]],
    chosen: Sequence[tuple[str, J]],
    asked: int,
    after: dict[str, int],
    seq: Callable[[J], int],
) -> list[Lane[J]]:
    """After a pass that read up to `asked` jobs per key: note in `after` each key's last seq
    taken, lower the keys' rooms, and return the lanes worth another pass (those that gave
    all they were asked, may have more, and still have room)."""
    gave = Counter(key for key, _ in chosen)
    for key, job in chosen:
        after[key] = seq(job)
    still = []
    for lane in lanes:
        limit = lane_limit(asked, lane.room)
        if lane.room is not None:
            lane.room -= gave[lane.key]
        if gave[lane.key] == limit and len(lane.jobs) == limit and lane.room != 0:
            still.append(lane)
    return still


def turns(served: Sequence[str], base: int) -> dict[str, int]:
    """The new turn of each key served, in serve order after `base` (the queue's latest
    turn): a key served last gets the largest, so it waits longest for its next turn."""
    return {key: base + index for index, key in enumerate(served, start=1)}


def serve_slots(picks: Sequence[tuple[int, int]]) -> list[int]:
    """The slot of each pick of a fair queue, given as (priority, seq) in serve order: within a
    priority the n-th pick served takes the n-th smallest seq, so the queue keeps its own order
    while merging with other queues' jobs (slot: their seq) by age."""
    seqs: dict[int, list[int]] = {}
    for priority, seq in picks:
        seqs.setdefault(priority, []).append(seq)
    for level in seqs.values():
        level.sort(reverse=True)
    return [seqs[priority].pop() for priority, _ in picks]


def completed_last_minute(this_minute: int, last_minute: int, now_ms: int) -> int:
    """Completions in the sliding minute before `now_ms`, estimated from the counts of the
    current and the previous clock minute (the part of the previous minute still inside the
    window, assuming its completions were spread evenly)."""
    elapsed = (now_ms % MINUTE_MS) / MINUTE_MS
    return this_minute + round(last_minute * (1 - elapsed))
