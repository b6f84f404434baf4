"""Job commands against a live server: enqueue (every flag, every payload source), inspect,
retry, cancel, move, delete; refusals exit 1 with the server's code."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

from jobbie import Client
from tests.cli.conftest import Jobbie, make_dead, run_jobbie, run_many
from tests.serverproc import ServerProcess, free_port


def test_enqueue_with_every_flag_then_inspect(jobbie: Jobbie, queue: str) -> None:
    result = jobbie(
        "enqueue", queue, '{"to": "a@example.com"}',
        "--priority", "high", "--unique-key", "welcome-a", "--unique-period", "10m",
        "--max-retries", "5", "--backoff", "linear", "--base-delay", "2s", "--max-delay", "1m",
        "--delay", "1h", "--expire-after", "2d", "--tag", "tenant=acme", "--tag", "kind=mail",
        "-o", "json",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    answer = result.json()
    assert answer == {"job_id": answer["job_id"], "status": "scheduled", "unique_existing": False}

    job = jobbie("inspect", answer["job_id"], "-o", "json").json()
    assert job["payload"] == {"to": "a@example.com"}
    assert (job["priority"], job["max_retries"], job["retry_backoff"]) == ("high", 5, "linear")
    assert (job["retry_base_delay"], job["retry_max_delay"]) == (2.0, 60.0)
    assert (job["unique_key"], job["unique_period"]) == ("welcome-a", 600.0)
    assert job["tags"] == {"tenant": "acme", "kind": "mail"}
    assert job["scheduled_at"] is not None
    assert job["expire_at"] is not None
    assert [e["type"] for e in job["events"]] == ["enqueued"]

    again = jobbie("enqueue", queue, "{}", "--unique-key", "welcome-a", "-o", "json").json()
    assert again["unique_existing"] is True
    assert again["job_id"] == answer["job_id"]


def test_payload_from_text_file_and_stdin(
    jobbie: Jobbie, queue: str, client: Client, tmp_path: Path
) -> None:
    path = tmp_path / "payload.json"
    path.write_text('{"from": "file", "n": [1, 2]}')
    sources = [
        (("enqueue", queue, '"text"'), None, "text"),
        (("enqueue", queue, f"@{path}"), None, {"from": "file", "n": [1, 2]}),
        (("enqueue", queue, "-"), '{"from": "stdin"}', {"from": "stdin"}),
        (("enqueue", queue), None, None),
    ]
    for args, stdin, expected in sources:
        result = jobbie(*args, input=stdin)
        assert result.code == 0, result.stderr
        job_id, state = result.stdout.split()
        assert state == "pending"
        assert client.get_job(job_id).payload == expected


def test_enqueue_at_a_time(jobbie: Jobbie, queue: str, client: Client) -> None:
    result = jobbie("enqueue", queue, "1", "--at", "2099-01-02T03:04:05Z", "-o", "json")
    job = client.get_job(result.json()["job_id"])
    assert job.state == "scheduled"
    assert job.scheduled_at is not None
    assert job.scheduled_at.isoformat().startswith("2099-01-02T03:04:05")


def test_job_actions(jobbie: Jobbie, queue: str, client: Client) -> None:
    (dead_id,) = make_dead(client, queue, 1)

    retried = jobbie("retry", dead_id, "-o", "json")
    assert retried.code == 0, retried.stderr
    assert (retried.json()["id"], retried.json()["state"]) == (dead_id, "pending")

    moved = jobbie("move", dead_id, f"{queue}.other", "-o", "json").json()
    assert (moved["queue"], moved["state"]) == (f"{queue}.other", "pending")

    cancelled = jobbie("cancel", dead_id, "-o", "json").json()
    assert cancelled == {"job_id": dead_id, "status": "cancelled"}

    table = jobbie("inspect", dead_id)
    assert table.code == 0
    assert dead_id in table.stdout and "cancelled" in table.stdout
    assert "boom" in table.stdout  # the error history stays
    assert all(len(line) <= 80 for line in table.stdout.splitlines())

    deleted = jobbie("delete", dead_id, "-o", "json").json()
    assert deleted == {"job_id": dead_id, "deleted": True}


def test_refusals_exit_1_with_the_servers_code(jobbie: Jobbie, queue: str) -> None:
    job_id = jobbie("enqueue", queue, "{}", "-o", "json").json()["job_id"]

    conflict = jobbie("retry", job_id)  # a pending job cannot be retried
    assert conflict.code == 1
    assert conflict.stderr.startswith("error: CONFLICT: ")
    assert len(conflict.stderr.strip().splitlines()) == 1

    missing = jobbie("inspect", "job_00000000000000000000000000")
    assert (missing.code, missing.stdout) == (1, "")
    assert missing.stderr.startswith("error: NOT_FOUND: ")

    invalid = jobbie("enqueue", queue, "{}", "--delay", "soon")
    assert invalid.code == 1
    assert invalid.stderr.startswith("error: VALIDATION_ERROR: ")


def test_api_key_from_flag_or_environment(make_server: Callable[..., ServerProcess]) -> None:
    server = make_server("--api-key", "k1,k2")
    refused, by_flag, by_env = run_many(
        [
            partial(run_jobbie, "queues", "--server", server.url),
            partial(run_jobbie, "queues", "--server", server.url, "--api-key", "k2"),
            # The server's comma-separated form: the client sends the first key.
            partial(run_jobbie, "queues", "-o", "json", env={"JOBBIE_URL": server.url,
                                                              "JOBBIE_API_KEY": "k1,k2"}),
        ]
    )  # fmt: skip
    assert refused.code == 1
    assert refused.stderr.startswith("error: UNAUTHORIZED")
    assert by_flag.code == 0, by_flag.stderr
    assert (by_env.code, by_env.json()) == (0, {"queues": []})


def test_several_servers_in_the_environment(server: ServerProcess, queue: str) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # refused: the next server is tried
    env = {"JOBBIE_URL": f"{dead},{server.url}"}
    enqueued = run_jobbie("enqueue", queue, '{"n": 1}', "-o", "json", env=env)
    assert enqueued.code == 0, enqueued.stderr
    with Client(server.url) as client:
        assert client.get_job(enqueued.json()["job_id"]).payload == {"n": 1}
    status = run_jobbie("status", "-o", "json", env=env).json()
    assert status["server"]["url"] == server.url  # the server that answered
