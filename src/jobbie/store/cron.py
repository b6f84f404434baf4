"""Cron expressions and time zones for schedules (pure; the parsing is croniter's)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from jobbie.errors import ValidationError


def zone(name: str) -> ZoneInfo:
    """An IANA time zone, or a ValidationError."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"timezone: unknown IANA time zone {name!r}") from None


def check_cron(expression: str, timezone: str = "UTC") -> str:
    """A 5-field expression or an @-alias (`@hourly`, `@daily`...) that fires at least once;
    else a ValidationError. Parsing alone accepts dates that never come (`0 0 31 2 *`), so
    the next fire time is computed here, not first inside the scheduler."""
    text = " ".join(expression.split())
    fields = text.split(" ")
    if not text.startswith("@") and len(fields) != 5:
        raise ValidationError(f"cron: expected 5 fields or an @alias, got {len(fields)} fields")
    if not croniter.is_valid(text):
        raise ValidationError(f"cron: invalid expression {expression!r}")
    try:
        next_fire_ms(text, timezone, 0)
    except Exception:  # croniter raises several types (CroniterError, ValueError, ...)
        raise ValidationError(f"cron: {expression!r} never fires") from None
    return text


def next_fire_ms(expression: str, timezone: str, after_ms: int) -> int:
    """The first fire time strictly after `after_ms`, as epoch ms."""
    start = datetime.fromtimestamp(after_ms / 1000, tz=UTC).astimezone(zone(timezone))
    fire: datetime = croniter(expression, start).get_next(datetime)
    return int(fire.timestamp() * 1000)
