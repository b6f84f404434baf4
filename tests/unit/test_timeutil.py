"""Durations and timestamps: parsing, bounds and RFC 3339 rendering."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobbie.errors import ValidationError
from jobbie.timeutil import (
    DAY_MS,
    MAX_DURATION_MS,
    SECOND_MS,
    check_duration_ms,
    datetime_to_ms,
    duration_ms,
    format_seconds,
    ms_to_seconds,
    now_ms,
    parse_duration_ms,
    rfc3339,
)

RFC3339_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("500ms", 500),
        ("0ms", 0),
        ("5s", 5_000),
        ("1.5s", 1_500),
        ("0.5s", 500),
        (".5s", 500),
        ("10m", 600_000),
        ("1h", 3_600_000),
        ("2d", 2 * 86_400_000),
        ("30", 30_000),  # a bare number in a string is seconds
        ("1.25", 1_250),
        (0, 0),
        (5, 5_000),
        (0.5, 500),
        (1.5, 1_500),
        (0.001, 1),
        (86_400, 86_400_000),
    ],
)
def test_parse_duration(value: float | str, expected: int) -> None:
    assert parse_duration_ms(value, "delay") == expected


@pytest.mark.parametrize(
    "value",
    [
        "5x",
        "abc",
        "",
        "-1",
        "-1s",
        "s",
        "1.5.5s",
        "1 hour",
        "1e3",
        "nan",
        "inf",
        "5 s s",
        "1,5s",
    ],
)
def test_invalid_duration_strings_raise(value: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_duration_ms(value, "delay")
    assert info.value.code == "VALIDATION_ERROR"
    assert info.value.status == 400
    assert "delay" in info.value.message


@pytest.mark.parametrize("value", [-1, -0.001, float("nan"), float("inf"), float("-inf"), True])
def test_invalid_duration_numbers_raise(value: float) -> None:
    with pytest.raises(ValidationError):
        parse_duration_ms(value, "timeout")


@given(st.integers(min_value=0, max_value=MAX_DURATION_MS // SECOND_MS))
def test_integer_seconds_and_string_seconds_agree(seconds: int) -> None:
    assert parse_duration_ms(seconds, "d") == seconds * SECOND_MS
    assert parse_duration_ms(f"{seconds}s", "d") == seconds * SECOND_MS
    assert parse_duration_ms(f"{seconds * 1000}ms", "d") == seconds * SECOND_MS


@given(st.integers(min_value=0, max_value=3650), st.sampled_from(["ms", "s", "m", "h", "d"]))
def test_units_multiply(amount: int, unit: str) -> None:
    factor = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": DAY_MS}[unit]
    assert parse_duration_ms(f"{amount}{unit}", "d") == amount * factor


def test_check_duration_bounds() -> None:
    assert check_duration_ms(1_000, "x", 1_000, 2_000) == 1_000
    assert check_duration_ms(2_000, "x", 1_000, 2_000) == 2_000
    with pytest.raises(ValidationError, match="x"):
        check_duration_ms(999, "x", 1_000, 2_000)
    with pytest.raises(ValidationError):
        check_duration_ms(2_001, "x", 1_000, 2_000)


def test_duration_ms_parses_and_checks() -> None:
    assert duration_ms("1m", "lease_duration", SECOND_MS, DAY_MS) == 60_000
    with pytest.raises(ValidationError):
        duration_ms("0", "lease_duration", SECOND_MS, DAY_MS)
    with pytest.raises(ValidationError):
        duration_ms("2d", "lease_duration", SECOND_MS, DAY_MS)
    with pytest.raises(ValidationError):
        duration_ms("soon", "lease_duration", SECOND_MS, DAY_MS)


@pytest.mark.parametrize(
    ("ms", "text"),
    [(100, "100ms"), (1_000, "1s"), (60_000, "1m"), (3_600_000, "1h"), (365 * DAY_MS, "365d")],
)
def test_format_seconds(ms: int, text: str) -> None:
    assert format_seconds(ms) == text


def test_ms_to_seconds() -> None:
    assert ms_to_seconds(None) is None
    assert ms_to_seconds(1_500) == 1.5
    assert ms_to_seconds(0) == 0


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, "1970-01-01T00:00:00.000Z"),
        (1, "1970-01-01T00:00:00.001Z"),
        (999, "1970-01-01T00:00:00.999Z"),
        (1_000, "1970-01-01T00:00:01.000Z"),
        (1_770_804_000_123, "2026-02-11T10:00:00.123Z"),
    ],
)
def test_rfc3339_has_milliseconds_and_z(ms: int, text: str) -> None:
    assert rfc3339(ms) == text


def test_rfc3339_none_stays_none() -> None:
    assert rfc3339(None) is None


@given(st.integers(min_value=0, max_value=253_402_300_799_999))
def test_rfc3339_round_trips(ms: int) -> None:
    text = rfc3339(ms)
    assert text is not None
    assert RFC3339_MS.match(text)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert datetime_to_ms(parsed) == ms


def test_datetime_to_ms_respects_offsets_and_naive_is_utc() -> None:
    aware = datetime(2026, 2, 11, 10, 0, 0, 123_000, tzinfo=UTC)
    assert datetime_to_ms(aware) == 1_770_804_000_123
    plus_two = datetime(2026, 2, 11, 12, 0, 0, 123_000, tzinfo=timezone(timedelta(hours=2)))
    assert datetime_to_ms(plus_two) == 1_770_804_000_123
    naive = datetime(2026, 2, 11, 10, 0, 0, 123_000)
    assert datetime_to_ms(naive) == 1_770_804_000_123


def test_now_ms_is_current_epoch_ms() -> None:
    before = datetime.now(UTC).timestamp() * 1000
    value = now_ms()
    after = datetime.now(UTC).timestamp() * 1000
    assert isinstance(value, int)
    assert before - 1 <= value <= after + 1


@pytest.mark.parametrize("value", [1e308, 10**400, "99999999999999999999d", 3650 * 86_400 + 1])
def test_durations_beyond_ten_years_are_refused_not_overflowed(value: float | str) -> None:
    with pytest.raises(ValidationError, match="over 3650d"):
        parse_duration_ms(value, "delay")
