"""The one source of "now" for the store and the scheduler.

Every lifecycle rule that depends on time (leases, scheduled promotion, expiry, cron fire
times, throttle windows, retention) reads the clock it was given, so tests can move time
forward instead of sleeping. Production uses `Clock()`, the wall clock with no offset.
"""

from __future__ import annotations

import threading
import time


class Clock:
    """The wall clock plus an offset that only tests move (`advance`).

    Thread-safe: the SQLite writer thread and the event loop read it concurrently.
    """

    def __init__(self, offset_ms: int = 0) -> None:
        self._offset_ms = offset_ms
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        """Epoch milliseconds, offset included."""
        return time.time_ns() // 1_000_000 + self._offset_ms

    @property
    def offset_ms(self) -> int:
        return self._offset_ms

    def advance(self, seconds: float) -> int:
        """Move time forward by `seconds` (never backwards); returns the new offset in ms."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._offset_ms += round(seconds * 1000)
            return self._offset_ms


class ManualClock(Clock):
    """A clock that stands still until told to move: exact times for unit and store tests."""

    def __init__(self, start_ms: int) -> None:
        super().__init__()
        self._now = start_ms

    def now_ms(self) -> int:
        return self._now

    def advance(self, seconds: float) -> int:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._now += round(seconds * 1000)
            return self._now

    def set(self, now_ms: int) -> None:
        """Jump to `now_ms` (forward only)."""
        if now_ms < self._now:
            raise ValueError("the clock only moves forward")
        self._now = now_ms
