"""The timestamps of log lines."""

from __future__ import annotations

import time

from jobbie.logs import utc_stamp


def test_stamps_are_utc_with_milliseconds() -> None:
    assert utc_stamp(0.0) == "1970-01-01T00:00:00.000Z"
    assert utc_stamp(1_770_804_000.125) == "2026-02-11T10:00:00.125Z"
    assert utc_stamp(1_770_804_001.5) == "2026-02-11T10:00:01.500Z"


def test_stamps_follow_the_clock_across_seconds() -> None:
    # The whole-second part is formatted once per second: going back and forth still works.
    seconds = [1_770_804_000.5, 1_770_804_001.25, 1_770_804_000.75, 1_770_890_400.0]
    for at in seconds * 2:
        expected = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(at)))
        assert utc_stamp(at) == f"{expected}.{round((at % 1) * 1000):03d}Z"
