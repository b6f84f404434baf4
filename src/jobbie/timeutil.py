"""Pure conversions for durations and timestamps (no I/O).

Durations in the API are a number of seconds or a string such as `500ms`, `1.5s`, `10m`, `1h`,
`2d`. Timestamps are stored as integer epoch milliseconds and shown as RFC 3339 with
milliseconds and `Z`.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from jobbie.errors import ValidationError

_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h|d)?\s*$(?!\n)")

SECOND_MS = 1000
DAY_MS = 86_400_000
# No duration is longer (models.py bounds the numbers too, so 1e308 never gets here).
MAX_DURATION_MS = 3650 * DAY_MS


def now_ms() -> int:
    """The wall clock as integer epoch milliseconds."""
    return time.time_ns() // 1_000_000


def parse_duration_ms(value: float | str, field: str) -> int:
    """Parse a duration (seconds as a number, or a string with a unit) into milliseconds."""
    if isinstance(value, bool):
        raise ValidationError(f"{field}: expected a duration, got a boolean")
    if isinstance(value, int | float):
        if isinstance(value, int) and value > MAX_DURATION_MS:
            raise ValidationError(f"{field}: duration over {format_seconds(MAX_DURATION_MS)}")
        seconds = float(value)
        if seconds != seconds or seconds in (float("inf"), float("-inf")):
            raise ValidationError(f"{field}: duration must be finite")
        if seconds < 0:
            raise ValidationError(f"{field}: duration must not be negative")
        if seconds * 1000 > MAX_DURATION_MS:
            raise ValidationError(f"{field}: duration over {format_seconds(MAX_DURATION_MS)}")
        return round(seconds * 1000)
    match = _DURATION.match(value)
    if match is None:
        raise ValidationError(
            f"{field}: invalid duration {value!r} (use seconds or a number with ms, s, m, h, d)"
        )
    number, unit = match.groups()
    ms = float(number) * _UNIT_MS[unit or "s"]
    if ms > MAX_DURATION_MS:
        raise ValidationError(f"{field}: duration over {format_seconds(MAX_DURATION_MS)}")
    return round(ms)


def check_duration_ms(ms: int, field: str, low_ms: int, high_ms: int) -> int:
    """Return `ms` when it lies within [low_ms, high_ms], else raise a ValidationError."""
    if not low_ms <= ms <= high_ms:
        raise ValidationError(
            f"{field}: must be between {format_seconds(low_ms)} and {format_seconds(high_ms)}"
        )
    return ms


def duration_ms(value: float | str, field: str, low_ms: int, high_ms: int) -> int:
    """Parse and bound-check a duration in one step."""
    return check_duration_ms(parse_duration_ms(value, field), field, low_ms, high_ms)


def format_seconds(ms: int) -> str:
    """A bound for error messages: `1s`, `365d`, `100ms`."""
    for unit in ("d", "h", "m", "s"):
        if ms >= _UNIT_MS[unit] and ms % _UNIT_MS[unit] == 0:
            return f"{ms // _UNIT_MS[unit]}{unit}"
    return f"{ms}ms"


def ms_to_seconds(ms: int | None) -> float | None:
    """Milliseconds to the API's (possibly fractional) seconds."""
    return None if ms is None else ms / 1000


def rfc3339(ms: int | None) -> str | None:
    """Epoch milliseconds to `2026-02-11T10:00:00.123Z`; None stays None."""
    if ms is None:
        return None
    seconds, millis = divmod(ms, 1000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{base}.{millis:03d}Z"


def datetime_to_ms(value: datetime) -> int:
    """An aware datetime to epoch milliseconds (naive ones are taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return round(value.timestamp() * 1000)
