"""Error signatures: the same fault with different ids, numbers or values is one group."""

from __future__ import annotations

import pytest

from jobbie.store.signature import MAX_LENGTH, error_signature


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ("KeyError: 'user 42'", "KeyError: '<str>'"),
        ('ValueError: bad value "x=1" in row 17', 'ValueError: bad value "<str>" in row <n>'),
        ("TimeoutError: no answer after 30.5 s", "TimeoutError: no answer after <n> s"),
        (
            "NotFound: order 3fa85f64-5717-4562-b3fc-2c963f66afa6 missing",
            "NotFound: order <id> missing",
        ),
        ("NotFound: job job_01M8KPNKZ6NBCDTJMCA8NVC6DE gone", "NotFound: job job_<id> gone"),
        ("MemoryError at 0x7f3a2b1c", "MemoryError at <addr>"),
        ("Conflict: etag 9f86d081884c7d65 stale", "Conflict: etag <id> stale"),
        ("HTTPError: 503 from 10.0.0.7:8080", "HTTPError: <n> from <n>"),
        ("  \n  RuntimeError: first line\n  second line 99", "RuntimeError: first line"),
        ("Exception:   many    spaces", "Exception: many spaces"),
        ("lease_expired", "lease_expired"),
    ],
)
def test_normalises_what_varies(error: str, expected: str) -> None:
    assert error_signature(error) == expected


def test_same_fault_same_signature_different_faults_apart() -> None:
    a = error_signature("KeyError: 'user 1'")
    assert a == error_signature("KeyError: 'some other key'")
    assert a != error_signature("IndexError: 'user 1'")
    assert error_signature("retry 3 of 5") == error_signature("retry 4 of 5")


def test_no_error_no_signature_and_long_errors_are_cut() -> None:
    assert error_signature(None) is None
    assert error_signature("   \n ") is None
    long = error_signature("E: " + "word " * 200)
    assert long is not None and len(long) == MAX_LENGTH and long.endswith("…")
