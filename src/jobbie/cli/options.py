"""Options shared by the client commands, and the parsing of values typed on the command line.

Only typer and the standard library are imported here: every command's signature is built
from these types when `jobbie --help` runs, so this module must stay cheap to import.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

DEFAULT_SERVER = "http://localhost:8080"


class Output(StrEnum):
    """How a client command prints its answer."""

    table = "table"
    json = "json"


class Priority(StrEnum):
    """Job priorities, most urgent first."""

    critical = "critical"
    high = "high"
    normal = "normal"


class State(StrEnum):
    """Job states."""

    scheduled = "scheduled"
    pending = "pending"
    active = "active"
    completed = "completed"
    retrying = "retrying"
    dead = "dead"
    cancelled = "cancelled"


# The environment is read through typer's `envvar=`: the CLI's only settings are these two, so
# a settings object of its own would add a module without adding a rule.
ServerOpt = Annotated[
    str,
    typer.Option(
        "--server",
        envvar="JOBBIE_URL",
        help=(
            "Base URL of the Jobbie server, or several servers' URLs separated by commas: the "
            "next one is tried when one does not answer."
        ),
        rich_help_panel="Connection",
    ),
]
ApiKeyOpt = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="JOBBIE_API_KEY",
        help="API key sent as a Bearer token (the first one when the variable lists several).",
        show_default=False,
        rich_help_panel="Connection",
    ),
]
OutputOpt = Annotated[
    Output,
    typer.Option(
        "--output",
        "-o",
        help="table for people, json for scripts (one document with stable keys).",
        rich_help_panel="Connection",
    ),
]
QueueArg = Annotated[str, typer.Argument(help="Queue name.", show_default=False)]
JobIdArg = Annotated[str, typer.Argument(help="Job id (job_...).", show_default=False)]
KeyOpt = Annotated[
    str | None,
    typer.Option(
        "--key",
        help="Fairness key (a tenant): round-robin queues serve keys in turn, per-key limits "
        "count by it.",
        show_default=False,
    ),
]
TagOpt = Annotated[
    list[str] | None,
    typer.Option("--tag", help="Tag as key=value; repeat for several.", show_default=False),
]


def parse_tags(values: list[str] | None) -> dict[str, str] | None:
    """`["k=v", ...]` as a dict; None when no tag was given."""
    if not values:
        return None
    tags: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{item!r} is not key=value", param_hint="--tag")
        tags[key] = value
    return tags


def read_json(text: str, param_hint: str) -> Any:
    """A JSON value given as text, `@path` (a file) or `-` (standard input)."""
    source = text
    if text == "-":
        source = sys.stdin.read()
    elif text.startswith("@"):
        try:
            source = Path(text[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise typer.BadParameter(
                f"cannot read {text[1:]}: {exc.strerror}", param_hint=param_hint
            ) from None
    try:
        return json.loads(source)
    except ValueError as exc:
        raise typer.BadParameter(
            f"not valid JSON ({exc}); quote strings, e.g. '\"text\"'", param_hint=param_hint
        ) from None


def parse_duration(value: str | None) -> float | str | None:
    """A duration as the API takes it: a plain number means seconds, else a string like `10m`.

    The server checks the string's syntax and bounds, so its message is the one users see.
    """
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return value.strip()


_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_instant(value: str | None, param_hint: str) -> datetime | None:
    """An RFC 3339 time with a zone, or a duration meaning "that long ago" (`90s`, `2h`, `1d`)."""
    if value is None:
        return None
    text = value.strip()
    for unit in sorted(_UNIT_SECONDS, key=len, reverse=True):
        number = text.removesuffix(unit)
        if number != text:
            try:
                seconds = float(number) * _UNIT_SECONDS[unit]
            except ValueError:
                break
            return datetime.now(UTC) - timedelta(seconds=seconds)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is neither an RFC 3339 time nor a duration like 2h", param_hint=param_hint
        ) from None
    if moment.tzinfo is None:
        raise typer.BadParameter(
            f"{value!r} has no time zone (add Z or +02:00)", param_hint=param_hint
        )
    return moment
