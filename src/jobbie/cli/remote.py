"""The connection a client command works through: global options, errors, output.

Exit codes: 0 ok, 1 the server refused (its code and message), 2 usage error, 3 the server
could not be reached. Every error is one line on stderr.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

import typer

from jobbie.cli.options import Output

if TYPE_CHECKING:
    from rich.console import Console

    from jobbie.client import Client

EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3


def fail(message: str, code: int) -> NoReturn:
    """Print `error: message` as one line on stderr and exit with `code`."""
    line = " ".join(message.split())
    print(f"error: {line}", file=sys.stderr, flush=True)
    raise typer.Exit(code)


def stdout_console() -> Console:
    """The console tables are printed on (no colours or width guessing when piped)."""
    from rich.console import Console

    return Console(highlight=False)


def stderr_console() -> Console:
    """The console progress is shown on, so stdout stays clean for the result."""
    from rich.console import Console

    return Console(stderr=True, highlight=False)


@dataclass(frozen=True, slots=True)
class Remote:
    """The global options of a client command: where the server is, the key, the output."""

    server: str
    api_key: str | None
    output: Output

    def __post_init__(self) -> None:
        from jobbie.client._failover import parse_urls

        try:
            parse_urls(self.server)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--server") from None

    @property
    def wants_json(self) -> bool:
        """True with `--output json`."""
        return self.output is Output.json

    @contextmanager
    def connect(self) -> Iterator[Client]:
        """A `jobbie.Client` for the server; its errors become one line and an exit code."""
        from jobbie.client import Client, ServerUnreachable
        from jobbie.client._failover import parse_urls
        from jobbie.errors import JobbieError
        from jobbie.keys import secret_of

        # JOBBIE_API_KEY may hold the server's comma-separated list (entries possibly named
        # `name=secret`); a client sends one key's secret.
        key = secret_of(self.api_key.split(",")[0]) if self.api_key else None
        urls = parse_urls(self.server)
        try:
            with Client(urls, api_key=key or None) as client:
                yield client
        except ServerUnreachable as exc:
            if len(urls) > 1:  # the message names each server tried and its failure
                fail(f"no Jobbie server answered: {exc.message}", EXIT_UNREACHABLE)
            detail = exc.message.removeprefix(f"{urls[0]}: ")
            fail(f"cannot reach the Jobbie server at {urls[0]} ({detail})", EXIT_UNREACHABLE)
        except JobbieError as exc:
            fail(f"{exc.code}: {exc.message}", EXIT_REFUSED)

    def emit(self, document: Any, render: Callable[[Console], None]) -> None:
        """Print `document` as JSON with `--output json`, else call `render` with a console."""
        if self.wants_json:
            print_json(document)
        else:
            render(stdout_console())


def print_json(document: Any) -> None:
    """One JSON document on stdout (structs and datetimes encoded as the API does)."""
    import msgspec

    text = msgspec.json.format(msgspec.json.encode(document), indent=2)
    sys.stdout.write(text.decode() + "\n")
    sys.stdout.flush()
