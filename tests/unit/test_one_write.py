"""The HTTP protocol's transport wrapper: one write per event-loop step."""

from __future__ import annotations

import asyncio
from typing import Any

from jobbie.server.protocol import _OneWrite


class _Recorder:
    """A transport that records what reaches it."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "written after close"
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 1) if name == "peername" else default


def _wrapped() -> tuple[_OneWrite, _Recorder]:
    raw = _Recorder()
    return _OneWrite(raw, asyncio.get_running_loop()), raw  # type: ignore[arg-type]


def test_the_writes_of_one_step_leave_as_one() -> None:
    asyncio.run(_the_writes_of_one_step_leave_as_one())


async def _the_writes_of_one_step_leave_as_one() -> None:
    transport, raw = _wrapped()
    transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    transport.write(b"{}")
    assert raw.writes == []  # not before the step ends
    await asyncio.sleep(0)
    assert raw.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    transport.write(b"next")
    await asyncio.sleep(0)
    assert raw.writes[1:] == [b"next"]


def test_close_sends_what_is_pending_first() -> None:
    asyncio.run(_close_sends_what_is_pending_first())


async def _close_sends_what_is_pending_first() -> None:
    transport, raw = _wrapped()
    transport.write(b"last words")
    transport.close()
    assert raw.writes == [b"last words"] and raw.closed
    await asyncio.sleep(0)  # the scheduled flush finds nothing left
    assert raw.writes == [b"last words"]


def test_other_calls_reach_the_transport() -> None:
    asyncio.run(_other_calls_reach_the_transport())


async def _other_calls_reach_the_transport() -> None:
    transport, raw = _wrapped()
    assert transport.get_extra_info("peername") == ("127.0.0.1", 1)
    assert not transport.is_closing()
    raw.close()
    transport.write(b"too late")
    await asyncio.sleep(0)
    assert raw.writes == []  # the connection closed meanwhile: dropped, not an error
