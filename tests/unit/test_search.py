"""Search filter normalisation and the pagination cursor (no database)."""

from __future__ import annotations

import base64
import contextlib
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobbie.errors import ValidationError
from jobbie.models import SearchRequest
from jobbie.store.cursor import Cursor, decode_cursor, encode_cursor
from jobbie.store.jq import Compare, Path
from jobbie.store.search import DEFAULT_LIMIT, SearchFilter, search_filter
from jobbie.store.sqlite.search_sql import like_pattern
from jobbie.wirenum import decode_request


def req(**fields: Any) -> SearchRequest:
    """Decode like the server does, so the model's own bounds apply too."""
    return decode_request(json.dumps(fields).encode(), SearchRequest)


def test_defaults() -> None:
    f = search_filter(req())
    assert f == SearchFilter()
    assert (f.sort, f.descending, f.limit, f.cursor) == ("created_at", True, DEFAULT_LIMIT, None)


def test_single_values_and_lists_become_deduplicated_tuples() -> None:
    f = search_filter(
        req(queue="a", state=["dead", "pending", "dead"], priority=["normal", "critical"])
    )
    assert f.queues == ("a",)
    assert f.states == ("dead", "pending")
    assert f.priorities == (2, 0)
    assert search_filter(req(priority="high")).priorities == (1,)


@pytest.mark.parametrize("field", ["queue", "state", "priority"])
def test_an_empty_list_is_refused_not_read_as_everything(field: str) -> None:
    with pytest.raises(ValidationError, match=f"{field}: an empty list matches nothing"):
        search_filter(req(**{field: []}))


def test_too_many_queues() -> None:
    search_filter(req(queue=[f"q{i}" for i in range(100)]))
    with pytest.raises(ValidationError, match="queue: at most 100 values"):
        search_filter(req(queue=[f"q{i}" for i in range(101)]))


def test_tags_are_sorted_pairs() -> None:
    assert search_filter(req(tags={"b": "2", "a": "1"})).tags == (("a", "1"), ("b", "2"))


def test_times_become_epoch_ms() -> None:
    f = search_filter(
        req(
            created_after="2026-01-01T00:00:00Z",
            created_before="2026-01-01T01:00:00.250+01:00",
            completed_after="1970-01-01T00:00:01.5Z",
            expire_before="2030-01-01T00:00:00Z",
        )
    )
    base = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1000)
    assert f.created_after == base
    assert f.created_before == base + 250
    assert f.completed_after == 1500
    assert f.expire_before == int(datetime(2030, 1, 1, tzinfo=UTC).timestamp() * 1000)
    assert f.started_after is None and f.scheduled_before is None


@pytest.mark.parametrize("prefix", ["created", "scheduled", "started", "completed", "expire"])
def test_an_empty_time_range_is_refused(prefix: str) -> None:
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    later = moment + timedelta(milliseconds=1)
    fields: dict[str, Any] = {f"{prefix}_after": moment, f"{prefix}_before": later}
    search_filter(SearchRequest(**fields))
    for before in (moment, later):
        fields = {f"{prefix}_after": later, f"{prefix}_before": before}
        with pytest.raises(ValidationError, match=f"{prefix}_after must be earlier than"):
            search_filter(SearchRequest(**fields))


def test_time_zones_are_honoured() -> None:
    east = timezone(timedelta(hours=5))
    f = search_filter(SearchRequest(created_after=datetime(2026, 1, 1, 5, tzinfo=east)))
    assert f.created_after == int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1000)


def test_attempt_bounds() -> None:
    f = search_filter(req(attempt_min=2, attempt_max=2))
    assert (f.attempt_min, f.attempt_max) == (2, 2)
    with pytest.raises(ValidationError, match="attempt_min must not be greater than attempt_max"):
        search_filter(req(attempt_min=3, attempt_max=2))


def test_plain_fields_pass_through() -> None:
    f = search_filter(
        req(
            payload_contains='"a":1',
            unique_key="u",
            batch_id="batch_1",
            worker_id="w",
            has_errors=False,
            error_contains="boom",
            job_id_prefix="job_01",
            limit=7,
        )
    )
    assert f.payload_contains == '"a":1'
    assert (f.unique_key, f.batch_id, f.worker_id) == ("u", "batch_1", "w")
    assert f.has_errors is False and f.error_contains == "boom"
    assert f.job_id_prefix == "job_01" and f.limit == 7


def test_payload_jq_is_parsed_and_its_errors_are_400() -> None:
    f = search_filter(req(payload_jq=".a == 1"))
    assert f.payload_jq == Compare(Path(("a",)), "==", 1)
    with pytest.raises(ValidationError, match=r"payload_jq: .* at position 3"):
        search_filter(req(payload_jq=".a ?"))


@pytest.mark.parametrize(
    ("sort", "order", "descending"),
    [("priority", "asc", False), ("attempt", None, True), (None, "asc", False)],
)
def test_sort_and_order(sort: str | None, order: str | None, descending: bool) -> None:
    fields = {k: v for k, v in (("sort", sort), ("order", order)) if v is not None}
    f = search_filter(req(**fields))
    assert (f.sort, f.descending) == (sort or "created_at", descending)


# --- cursors --------------------------------------------------------------------------------------

_sorts = st.sampled_from(["created_at", "priority", "started_at", "completed_at", "attempt"])
_int64 = st.integers(-(2**63), 2**63 - 1)


@given(sort=_sorts, descending=st.booleans(), key=_int64, seq=st.integers(0, 2**63 - 1))
def test_cursor_round_trip(sort: Any, descending: bool, key: int, seq: int) -> None:
    cursor = Cursor(sort=sort, descending=descending, key=key, seq=seq)
    token = encode_cursor(cursor)
    assert token.isascii() and "=" not in token and "+" not in token and "/" not in token
    assert len(token) <= 1000  # the request model's cap
    assert decode_cursor(token) == cursor


def test_a_null_key_round_trips_for_nullable_sorts_only() -> None:
    cursor = Cursor(sort="completed_at", descending=True, key=None, seq=3)
    assert decode_cursor(encode_cursor(cursor)) == cursor
    token = encode_cursor(Cursor(sort="created_at", descending=True, key=None, seq=3))
    with pytest.raises(ValidationError, match="cursor: not a cursor"):
        decode_cursor(token)


def _token(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "token",
    [
        "",
        "!!!",
        "not base64 at all",
        "é",
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        _token({"sort": "created_at"}),
        _token([1, "created_at", "desc", 5]),
        _token([1, "created_at", "desc", 5, 6, 7]),
        _token([2, "created_at", "desc", 5, 6]),
        _token([1, "nope", "desc", 5, 6]),
        _token([1, "created_at", "sideways", 5, 6]),
        _token([1, "created_at", "desc", "5", 6]),
        _token([1, "created_at", "desc", 5.5, 6]),
        _token([1, "created_at", "desc", True, 6]),
        _token([1, "created_at", "desc", 5, -1]),
        _token([1, "created_at", "desc", 2**63, 6]),
        _token([1, "created_at", "desc", 5, 2**64]),
    ],
)
def test_malformed_cursors_are_400(token: str) -> None:
    with pytest.raises(ValidationError, match="cursor: not a cursor returned by this server"):
        decode_cursor(token)
    with pytest.raises(ValidationError):
        search_filter(SearchRequest(cursor=token))


@given(st.text(max_size=80))
def test_any_text_decodes_or_raises_a_validation_error(token: str) -> None:
    with contextlib.suppress(ValidationError):
        decode_cursor(token)


def test_a_cursor_is_only_valid_for_its_own_sort_and_order() -> None:
    token = encode_cursor(Cursor(sort="priority", descending=False, key=1, seq=9))
    f = search_filter(req(sort="priority", order="asc", cursor=token))
    assert f.cursor == Cursor(sort="priority", descending=False, key=1, seq=9)
    for other in ({"sort": "priority"}, {"order": "asc"}, {}, {"sort": "attempt", "order": "asc"}):
        with pytest.raises(ValidationError, match="cursor: it belongs to a search sorted by"):
            search_filter(req(cursor=token, **other))


def test_the_default_sort_accepts_its_own_cursor() -> None:
    token = encode_cursor(Cursor(sort="created_at", descending=True, key=1, seq=9))
    assert search_filter(req(cursor=token)).cursor is not None


def test_like_pattern_escapes_wildcards_and_the_escape_character() -> None:
    assert like_pattern("50%_off\\") == "%50\\%\\_off\\\\%"
    assert like_pattern("plain") == "%plain%"
