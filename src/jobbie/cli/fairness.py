"""Fair queueing commands: fairness (the mode), key-limit (per-key limits), keys (the busiest)."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from jobbie.cli.options import (
    DEFAULT_SERVER,
    ApiKeyOpt,
    Output,
    OutputOpt,
    QueueArg,
    ServerOpt,
)
from jobbie.cli.remote import Remote

if TYPE_CHECKING:
    from rich.console import Console

    from jobbie.models import Queue


class Mode(StrEnum):
    """How a queue serves its keys."""

    fifo = "fifo"
    round_robin = "round_robin"


# A bare unit after the slash means one of it: `10/m` is `10/1m`.
_UNITS = ("ms", "s", "m", "h", "d")


def parse_rate(value: str) -> tuple[int, float | str]:
    """`RATE/PERIOD` (`10/1m`, `100/30s`, `5/m`, `2/0.5`) as (rate, period); the period is a
    duration as the API takes it (a plain number is seconds). The server checks the bounds."""
    rate_text, _, period_text = (part.strip() for part in value.partition("/"))
    if not rate_text.isdigit() or not period_text:
        raise typer.BadParameter(
            f"{value!r} is not RATE/PERIOD, e.g. 10/1m (10 jobs per minute)", param_hint="--rate"
        )
    if period_text in _UNITS:
        period_text = "1" + period_text
    try:
        return int(rate_text), float(period_text)
    except ValueError:
        return int(rate_text), period_text


def parse_concurrency(value: str) -> int | None:
    """A per-key concurrency: a whole number, or `none` to remove the limit."""
    if value.strip().lower() == "none":
        return None
    try:
        return int(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is neither a whole number nor none", param_hint="--concurrency"
        ) from None


def _print_fairness(queue: Queue) -> None:
    from jobbie.cli.remote import stdout_console
    from jobbie.cli.render import key_limits_text

    stdout_console().print(
        f"{queue.name}: {queue.fairness}, per-key limits: {key_limits_text(queue)}"
    )


def fairness(
    queue: QueueArg,
    mode: Annotated[
        Mode,
        typer.Argument(
            help="fifo: oldest job first (the default); round_robin: keys in turn, the key "
            "served least recently first, oldest first within a key. Priority wins first.",
            show_default=False,
        ),
    ],
    server: ServerOpt = DEFAULT_SERVER,
    api_key: ApiKeyOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Set how a queue serves its keys: fifo or round_robin.

    E.g. `jobbie fairness emails round_robin`.
    """
    remote = Remote(server, api_key, output)
    with remote.connect() as client:
        answer = client.set_fairness(queue, mode.value)
    remote.emit(answer, lambda _: _print_fairness(answer))


def key_limit(
    queue: QueueArg,
    concurrency: Annotated[
        str | None,
        typer.Option(
            "--concurrency",
            "-c",
            metavar="N|none",
            help="At most N active jobs per key; none removes the limit.",
            show_default=False,
        ),
    ] = None,
    rate: Annotated[
        str | None,
        typer.Option(
            "--rate",
            "-r",
            metavar="RATE/PERIOD",
            help="At most RATE jobs of one key handed out per sliding PERIOD, e.g. 10/1m, "
            "100/30s, 5/h.",
            show_default=False,
        ),
    ] = None,
    no_rate: Annotated[
        bool, typer.Option("--no-rate", help="Remove the per-key rate limit.")
    ] = False,
    server: ServerOpt = DEFAULT_SERVER,
    api_key: ApiKeyOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Set or clear a queue's per-key limits: active jobs and hand-out rate per key.

    E.g. `jobbie key-limit emails --concurrency 2 --rate 10/1m`.

    Limits not named stay as they are; `--concurrency none` and `--no-rate` remove them.

    Jobs without a key are not limited per key.
    """
    remote = Remote(server, api_key, output)
    if rate is not None and no_rate:
        raise typer.BadParameter("give either --rate or --no-rate, not both", param_hint="--rate")
    if concurrency is None and rate is None and not no_rate:
        raise typer.BadParameter(
            "name a limit: --concurrency N|none, --rate RATE/PERIOD or --no-rate",
            param_hint="--concurrency",
        )
    limit = parse_concurrency(concurrency) if concurrency is not None else None
    throttle = parse_rate(rate) if rate is not None else None
    with remote.connect() as client:
        # Each call answers the queue; the last answer shows every change.
        answers = []
        if concurrency is not None:
            answers.append(client.set_key_concurrency(queue, limit))
        if throttle is not None:
            answers.append(client.set_key_throttle(queue, rate=throttle[0], period=throttle[1]))
        elif no_rate:
            answers.append(client.remove_key_throttle(queue))
    answer = answers[-1]
    remote.emit(answer, lambda _: _print_fairness(answer))


def keys(
    queue: QueueArg,
    limit: Annotated[int, typer.Option("--limit", "-n", help="At most this many keys.")] = 20,
    server: ServerOpt = DEFAULT_SERVER,
    api_key: ApiKeyOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """A queue's busiest keys, most pending first: pending, active, completed last minute."""
    remote = Remote(server, api_key, output)
    with remote.connect() as client:
        found = client.queue_keys(queue, limit=limit)

    def render(console: Console) -> None:
        from jobbie.cli.render import keys_table

        console.print(keys_table(found) if found else f"{queue}: no key has pending or active jobs")

    remote.emit({"queue": queue, "keys": found}, render)
