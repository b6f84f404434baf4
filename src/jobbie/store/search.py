"""Job search as a backend-agnostic value: the validated filter and the keyset-pagination cursor.

`search_filter` turns a wire `SearchRequest` into a `SearchFilter` of normalised values (epoch
ms, priority numbers, a parsed `payload_jq`); each backend compiles that filter to its own SQL.

Pagination is keyset on (sort value, seq) in one direction, so every matching job is visited
once even while jobs are inserted between pages. In the nullable sort columns (`started_at`,
`completed_at`, `scheduled_at`) NULL sorts below every value, as SQLite orders it: first when
ascending, last when descending (PostgreSQL needs `NULLS FIRST`/`NULLS LAST` spelt out). Plain
column order lets an index such as (state, completed_at) serve the sort.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from jobbie.errors import ValidationError
from jobbie.models import SearchRequest, SortField
from jobbie.store import jq
from jobbie.store.cursor import NULLABLE_SORTS, Cursor, decode_cursor
from jobbie.store.states import Priority
from jobbie.timeutil import datetime_to_ms

__all__ = [
    "DEFAULT_LIMIT",
    "NULLABLE_SORTS",
    "TOTAL_CAP",
    "SearchFilter",
    "search_filter",
]

DEFAULT_LIMIT = 50
# A search's `total` counts at most this many matches (then `total_capped`): counting every
# match of a broad filter would read up to every job in the store to draw one page.
TOTAL_CAP = 10_000
MAX_LIST = 100  # queues in one filter: each is a bound parameter
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True, slots=True, kw_only=True)
class SearchFilter:
    """A validated search; empty tuples and None mean "no condition". Times are epoch ms and
    every `*_after`/`*_before` bound is exclusive."""

    queues: tuple[str, ...] = ()
    states: tuple[str, ...] = ()
    priorities: tuple[int, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()  # every (key, value) pair must match
    payload_contains: str | None = None
    payload_jq: jq.Expr | None = None
    created_after: int | None = None
    created_before: int | None = None
    scheduled_after: int | None = None
    scheduled_before: int | None = None
    started_after: int | None = None
    started_before: int | None = None
    completed_after: int | None = None
    completed_before: int | None = None
    expire_after: int | None = None
    expire_before: int | None = None
    attempt_min: int | None = None
    attempt_max: int | None = None
    unique_key: str | None = None
    key: str | None = None
    batch_id: str | None = None
    worker_id: str | None = None
    has_errors: bool | None = None
    error_contains: str | None = None
    job_id_prefix: str | None = None
    error_signature: str | None = None
    sort: SortField = "created_at"
    descending: bool = True
    limit: int = DEFAULT_LIMIT
    cursor: Cursor | None = None
    # Searches only (bulk ignores it): past this many ms the store answers with what it found
    # and `timed_out` (SQLite: a progress-handler deadline; PostgreSQL: statement_timeout).
    time_limit_ms: int | None = None


def search_filter(req: SearchRequest, *, time_limit_ms: int | None = None) -> SearchFilter:
    """Validate and normalise a search request; raise ValidationError (400) on a bad one.
    `time_limit_ms` bounds the search's queries (None: no limit)."""
    sort: SortField = req.sort or "created_at"
    descending = req.order != "asc"
    cursor = None
    if req.cursor is not None:
        cursor = decode_cursor(req.cursor)
        if (cursor.sort, cursor.descending) != (sort, descending):
            made_for = _describe(cursor.sort, cursor.descending)
            raise ValidationError(
                f"cursor: it belongs to a search sorted by {made_for}, not"
                f" {_describe(sort, descending)}; send the same sort and order on every page"
            )
    low, high = req.attempt_min, req.attempt_max
    if low is not None and high is not None and low > high:
        raise ValidationError("attempt_min must not be greater than attempt_max")
    times = {name: _ms(getattr(req, name)) for name in _TIME_FIELDS}
    for prefix in ("created", "scheduled", "started", "completed", "expire"):
        after, before = times[f"{prefix}_after"], times[f"{prefix}_before"]
        if after is not None and before is not None and after >= before:
            raise ValidationError(f"{prefix}_after must be earlier than {prefix}_before")
    return SearchFilter(
        queues=_names("queue", req.queue),
        states=_names("state", req.state),
        priorities=tuple(Priority.parse(p).value for p in _names("priority", req.priority)),
        tags=tuple(sorted((req.tags or {}).items())),
        payload_contains=req.payload_contains,
        payload_jq=None if req.payload_jq is None else jq.parse_jq(req.payload_jq),
        created_after=times["created_after"],
        created_before=times["created_before"],
        scheduled_after=times["scheduled_after"],
        scheduled_before=times["scheduled_before"],
        started_after=times["started_after"],
        started_before=times["started_before"],
        completed_after=times["completed_after"],
        completed_before=times["completed_before"],
        expire_after=times["expire_after"],
        expire_before=times["expire_before"],
        attempt_min=req.attempt_min,
        attempt_max=req.attempt_max,
        unique_key=req.unique_key,
        key=req.key,
        batch_id=req.batch_id,
        worker_id=req.worker_id,
        has_errors=req.has_errors,
        error_contains=req.error_contains,
        job_id_prefix=req.job_id_prefix,
        error_signature=req.error_signature,
        sort=sort,
        descending=descending,
        limit=req.limit or DEFAULT_LIMIT,
        cursor=cursor,
        time_limit_ms=time_limit_ms,
    )


_TIME_FIELDS = tuple(
    f"{prefix}_{side}"
    for prefix in ("created", "scheduled", "started", "completed", "expire")
    for side in ("after", "before")
)


def _ms(value: datetime | None) -> int | None:
    return None if value is None else datetime_to_ms(value)


def _names(field: str, value: str | Sequence[str] | None) -> tuple[str, ...]:
    """One name or a list, without duplicates; an empty list is refused rather than read as
    "everything", since the same filter drives bulk deletes."""
    if value is None:
        return ()
    names = [value] if isinstance(value, str) else value
    if not names:
        raise ValidationError(f"{field}: an empty list matches nothing; omit {field} to match all")
    unique = tuple(dict.fromkeys(names))
    if len(unique) > MAX_LIST:
        raise ValidationError(f"{field}: at most {MAX_LIST} values")
    return unique


def _describe(sort: str, descending: bool) -> str:
    return f"{sort} {'desc' if descending else 'asc'}"
