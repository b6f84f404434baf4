"""Progress of long operations, on stderr so stdout keeps only the result."""

from __future__ import annotations

import os
import select
import sys
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any

from jobbie.cli.remote import stderr_console

if TYPE_CHECKING:
    from rich.status import Status


class StatusLine:
    """One line of progress: a spinner rewritten in place on a terminal; elsewhere (a pipe, a
    log file) a plain line each time the text changes."""

    def __init__(self) -> None:
        self._console = stderr_console()
        self._status: Status | None = None
        self._last: str | None = None

    def __enter__(self) -> StatusLine:
        if self._console.is_terminal:
            self._status = self._console.status("")
            self._status.start()
        return self

    def update(self, text: str) -> None:
        """Show `text`, unless it is what is already shown."""
        if text == self._last:
            return
        self._last = text
        if self._status is not None:
            self._status.update(text)
        else:
            self._console.print(text, soft_wrap=True)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._status is not None:
            self._status.stop()
            if self._last:
                # The spinner line vanishes on stop; leave the last state visible.
                self._console.print(self._last, soft_wrap=True)


class KeyReader:
    """Single key presses from a terminal on stdin, without waiting for Enter.

    Off a terminal (a pipe, a test) `wait` just lets the time pass; Ctrl-C still works.
    """

    def __init__(self) -> None:
        self._fd: int | None = None
        self._saved: list[Any] | None = None

    def __enter__(self) -> KeyReader:
        if sys.stdin.isatty():
            try:
                import termios
                import tty
            except ImportError:  # not a POSIX terminal
                return self
            self._fd = sys.stdin.fileno()
            self._saved = termios.tcgetattr(self._fd)
            tty.setcbreak(self._fd)
        return self

    def wait(self, timeout: float) -> str | None:
        """The key pressed within `timeout` seconds, or None."""
        if self._fd is None:
            time.sleep(timeout)
            return None
        ready, _, _ = select.select([self._fd], [], [], timeout)
        if not ready:
            return None
        return os.read(self._fd, 32).decode(errors="ignore")[:1] or None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd is not None and self._saved is not None:
            import termios

            termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved)
