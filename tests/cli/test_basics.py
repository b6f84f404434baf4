"""The CLI without a server: help, version, completion, usage errors, unreachable server,
and the imports that keep start-up fast."""

from __future__ import annotations

import subprocess
import sys
from functools import partial

from tests.cli.conftest import CLEAN_ENV, run_jobbie, run_many
from tests.serverproc import free_port

COMMANDS = [
    *("server", "worker", "enqueue", "inspect", "retry", "cancel", "move", "delete"),
    *("search", "bulk", "queues", "pause", "resume", "clear", "drain", "destroy"),
    *("fairness", "key-limit", "keys"),
    *("status", "workers", "top", "schedules"),
]


def test_help_version_and_completion() -> None:
    from jobbie import __version__

    main, enqueue, schedules_add, version, completion = run_many(
        [
            partial(run_jobbie, "--help"),
            partial(run_jobbie, "enqueue", "--help"),
            partial(run_jobbie, "schedules", "add", "-h"),
            partial(run_jobbie, "--version"),
            partial(run_jobbie, "--show-completion", "bash"),
        ]
    )
    assert main.code == 0
    for name in COMMANDS:
        assert f" {name} " in main.stdout, name
    assert all(len(line) <= 80 for line in main.stdout.splitlines())
    for sub in (enqueue, schedules_add):
        assert sub.code == 0
        assert "--server" in sub.stdout and "JOBBIE_URL" in sub.stdout
    assert (version.code, version.stdout.strip()) == (0, f"jobbie {__version__}")
    assert completion.code == 0
    assert "_JOBBIE_COMPLETE" in completion.stdout


USAGE_ERRORS = [
    (["enqueue"], "Missing argument"),
    (["enqueue", "q", "{not json"], "not valid JSON"),
    (["enqueue", "q", "--tag", "novalue"], "key=value"),
    (["enqueue", "q", "--at", "2030-01-01T00:00:00"], "time zone"),
    (["enqueue", "q", "--priority", "urgent"], "urgent"),
    (["destroy", "q"], "--confirm"),
    (["key-limit", "q", "--rate", "10"], "RATE/PERIOD"),
    (["bulk", "move", "--filter", "{}"], "--to"),
    (["search", "--created-after", "yesterday"], "RFC 3339"),
    (["queues", "--server", "localhost:8080"], "http://"),
    (["queues", "--server", "http://127.0.0.1:9,localhost:8080"], "'localhost:8080'"),
    (["no-such-command"], "No such command"),
]


def test_usage_errors_exit_2_with_one_line() -> None:
    # A port nobody listens on: usage errors must be found before any request is sent.
    results = run_many(
        [
            partial(
                run_jobbie,
                *args,
                *([] if "--server" in args else ["--server", "http://127.0.0.1:9"]),
            )
            for args, _ in USAGE_ERRORS
        ]
    )
    for (args, needle), result in zip(USAGE_ERRORS, results, strict=True):
        assert result.code == 2, (args, result)
        assert result.stdout == "", args
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, (args, result.stderr)
        assert lines[0].startswith("error: "), args
        assert needle in lines[0], (args, lines[0])


def test_unreachable_server_exits_3_naming_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = run_jobbie("queues", "--server", url)
    assert result.code == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert url in lines[0]
    assert "Traceback" not in result.stderr


def test_server_url_from_the_environment() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = run_jobbie("status", env={"JOBBIE_URL": url})
    assert result.code == 3
    assert url in result.stderr


def test_no_server_of_several_answering_exits_3_naming_each() -> None:
    urls = [f"http://127.0.0.1:{free_port()}" for _ in range(2)]
    by_env, by_flag = run_many(
        [
            partial(run_jobbie, "enqueue", "q", env={"JOBBIE_URL": ",".join(urls)}),
            partial(run_jobbie, "queues", "--server", f"{urls[0]}, {urls[1]}/"),
        ]
    )
    for result in (by_env, by_flag):
        assert result.code == 3
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1
        assert lines[0].startswith("error: no Jobbie server answered: ")
        assert f"{urls[0]}: ConnectionRefusedError" in lines[0]
        assert f"{urls[1]}: ConnectionRefusedError" in lines[0]


def test_help_imports_neither_the_client_nor_the_server() -> None:
    # Start-up time is mostly imports: `jobbie --help` must not load httpx, msgspec-based
    # client code or the server stack (they are imported inside the commands).
    code = (
        "import sys; sys.argv = ['jobbie', '--help']\n"
        "from jobbie.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = {'httpx', 'jobbie.client', 'starlette', 'uvicorn', 'jobbie.server', 'msgspec'}\n"
        "print(sorted(heavy & set(sys.modules)), file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=CLEAN_ENV, timeout=30
    )
    assert proc.stderr.strip() == "[]"
