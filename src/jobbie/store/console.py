"""Backend-neutral helpers for what the web console asks of a store beyond job operations."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from jobbie.models import FailureGroup, Schedule
from jobbie.store.params import NewJob
from jobbie.store.rules import DEFAULT_RETRY, RetryPolicy
from jobbie.store.states import Priority
from jobbie.timeutil import rfc3339

# Failure groups shown on one page: the most frequent first.
FAILURE_GROUPS_LIMIT = 200
# Old audit entries pruned per write, so one write never does much more than its insert.
AUDIT_PRUNE_BATCH = 500


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditRecord:
    """A management action to record (see `Store.record_audit`)."""

    actor: str
    action: str
    target: str
    affected: int | None
    source: Literal["api", "console"]


def schedule_job(schedule: Schedule) -> NewJob:
    """The job a schedule enqueues when it fires, for "run now" (tagged like a fired one)."""
    tags = {**schedule.tags, "schedule_id": schedule.id}
    return NewJob(
        queue=schedule.queue,
        payload=bytes(schedule.payload).decode(),
        priority=Priority.parse(schedule.priority).value,
        retry=RetryPolicy(
            max_retries=schedule.max_retries,
            backoff=DEFAULT_RETRY.backoff,
            base_delay_ms=DEFAULT_RETRY.base_delay_ms,
            max_delay_ms=DEFAULT_RETRY.max_delay_ms,
        ),
        tags=msgspec.json.encode(tags).decode(),
        key=schedule.key,
    )


def fold_failure_cells(rows: Iterable[Sequence[Any]]) -> list[FailureGroup]:
    """Failure groups from per-queue cells `(signature, total, queue, first_failed_at,
    last_failed_at)` read in the groups' order (most frequent first): one group per
    signature, with its queues sorted and its first and last failure over all its cells."""
    groups: dict[str, tuple[int, set[str], list[int], list[int]]] = {}
    for signature, total, queue, first, last in rows:
        _, queues, firsts, lasts = groups.setdefault(signature, (total, set(), [], []))
        queues.add(queue)
        firsts.extend([first] if first is not None else [])
        lasts.extend([last] if last is not None else [])
    return [
        FailureGroup(
            signature=signature,
            count=total,
            queues=sorted(queues),
            first_seen=rfc3339(min(firsts, default=None)),
            last_seen=rfc3339(max(lasts, default=None)),
        )
        for signature, (total, queues, firsts, lasts) in groups.items()
    ]
