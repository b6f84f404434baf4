"""Fair queueing from the command line against a live server: enqueue --key, schedules
--key, fairness, key-limit, keys, the KEYS column of `queues`, search --key and the key in a
job's display."""

from __future__ import annotations

from jobbie import Client
from jobbie.models import Throttle
from tests.cli.conftest import Jobbie, run_many


def test_enqueue_with_a_key_then_find_and_inspect_it(
    jobbie: Jobbie, queue: str, client: Client
) -> None:
    first = jobbie("enqueue", queue, '{"n": 1}', "--key", "acme", "-o", "json")
    assert first.code == 0, first.stderr
    job_id = first.json()["job_id"]
    jobbie("enqueue", queue, '{"n": 2}', "--key", "globex")
    jobbie("enqueue", queue, '{"n": 3}')
    assert client.get_job(job_id).key == "acme"

    inspected = jobbie("inspect", job_id)
    assert inspected.code == 0
    assert any(line.split() == ["key", "acme"] for line in inspected.stdout.splitlines())
    assert jobbie("inspect", job_id, "-o", "json").json()["key"] == "acme"

    found = jobbie("search", "--queue", queue, "--key", "acme", "-o", "json").json()
    assert [j["id"] for j in found["jobs"]] == [job_id]
    # The table gains a KEY column when a job has a key; jobs without one show "-".
    table = jobbie("search", "--queue", queue)
    assert "KEY" in table.stdout
    assert all(len(line) <= 80 for line in table.stdout.splitlines())
    rows = [line.split() for line in table.stdout.splitlines() if line.startswith("job_")]
    assert sorted(row[2] for row in rows) == ["-", "acme", "globex"]

    too_long = jobbie("enqueue", queue, "--key", "k" * 201)
    assert too_long.code == 1
    assert too_long.stderr.startswith("error: VALIDATION")


def test_fairness_key_limit_and_queues_column(jobbie: Jobbie, queue: str, client: Client) -> None:
    client.enqueue(queue, key="acme")

    set_mode = jobbie("fairness", queue, "round_robin")
    assert set_mode.code == 0, set_mode.stderr
    assert _words(set_mode.stdout) == f"{queue}: round_robin, per-key limits: none"
    assert client.queue(queue).fairness == "round_robin"

    both = jobbie("key-limit", queue, "--concurrency", "2", "--rate", "10/1m", "-o", "json")
    assert both.code == 0, both.stderr
    answer = both.json()
    assert (answer["fairness"], answer["key_concurrency"]) == ("round_robin", 2)
    assert answer["key_throttle"] == {"rate": 10, "period": 60.0}
    queue_now = client.queue(queue)
    assert (queue_now.key_concurrency, queue_now.key_throttle) == (2, Throttle(10, 60.0))

    listed = jobbie("queues", "-o", "json").json()
    (mine,) = [q for q in listed["queues"] if q["name"] == queue]
    assert (mine["fairness"], mine["key_concurrency"]) == ("round_robin", 2)
    table = jobbie("queues")
    assert "KEYS" in table.stdout
    assert all(len(line) <= 80 for line in table.stdout.splitlines())
    # The mode, then one line per limit, in the KEYS column of the queue's row.
    cell = _cell_lines(table.stdout, "KEYS", queue)
    assert cell == ["round_robin", "2 active/key", "10/1m/key"], table.stdout

    # Only the named limit changes; the others stay.
    rate_only = jobbie("key-limit", queue, "--rate", "5/s")
    assert rate_only.code == 0, rate_only.stderr
    assert _words(rate_only.stdout) == f"{queue}: round_robin, per-key limits: 2 active, 5/1s"
    assert client.queue(queue).key_throttle == Throttle(5, 1.0)

    cleared = jobbie("key-limit", queue, "--concurrency", "none", "--no-rate")
    assert cleared.code == 0, cleared.stderr
    assert _words(cleared.stdout) == f"{queue}: round_robin, per-key limits: none"
    after = client.queue(queue)
    assert (after.key_concurrency, after.key_throttle) == (None, None)
    assert jobbie("fairness", queue, "fifo", "-o", "json").json()["fairness"] == "fifo"


def test_keys_lists_the_busiest_keys(jobbie: Jobbie, queue: str, client: Client) -> None:
    client.enqueue_batch([{"queue": queue, "key": "big"} for _ in range(3)])
    client.enqueue(queue, key="small")
    client.enqueue(queue)  # no key: not listed
    job = client.fetch(queue, timeout=1)  # FIFO: one of big's
    assert job is not None and job.key == "big"

    doc = jobbie("keys", queue, "-o", "json").json()
    assert doc == {
        "queue": queue,
        "keys": [
            {"key": "big", "pending": 2, "active": 1, "completed_last_minute": 0},
            {"key": "small", "pending": 1, "active": 0, "completed_last_minute": 0},
        ],
    }
    table = jobbie("keys", queue, "--limit", "1")
    assert table.code == 0, table.stderr
    rows = [line.split() for line in table.stdout.splitlines()]
    assert rows[0] == ["KEY", "PENDING", "ACTIVE", "DONE/MIN"]
    assert rows[-1] == ["big", "2", "1", "0"] and len(rows) == 3  # header, rule, one key

    client.ack(job)
    doc = jobbie("keys", queue, "-o", "json").json()
    assert doc["keys"][0] == {"key": "big", "pending": 2, "active": 0, "completed_last_minute": 1}

    empty = jobbie("keys", f"{queue}.quiet")
    assert empty.code == 1 and "NOT_FOUND" in empty.stderr
    client.enqueue(f"{queue}.quiet")
    assert "no key has pending or active jobs" in jobbie("keys", f"{queue}.quiet").stdout


def test_schedule_with_a_key(jobbie: Jobbie, queue: str, client: Client) -> None:
    added = jobbie("schedules", "add", f"s-{queue}", queue, "@daily", "--key", "acme", "-o", "json")
    assert added.code == 0, added.stderr
    schedule = added.json()
    try:
        assert schedule["key"] == "acme"
        assert client.get_schedule(schedule["id"]).key == "acme"
    finally:
        client.delete_schedule(schedule["id"])


def test_fairness_usage_errors(jobbie: Jobbie, queue: str) -> None:
    results = run_many(
        [
            lambda: jobbie("fairness", queue, "lottery"),
            lambda: jobbie("key-limit", queue),
            lambda: jobbie("key-limit", queue, "--rate", "10"),
            lambda: jobbie("key-limit", queue, "--rate", "ten/1m"),
            lambda: jobbie("key-limit", queue, "--rate", "10/1m", "--no-rate"),
            lambda: jobbie("key-limit", queue, "--concurrency", "two"),
        ]
    )
    needles = ["lottery", "name a limit", "RATE/PERIOD", "RATE/PERIOD", "not both", "none"]
    for result, needle in zip(results, needles, strict=True):
        assert result.code == 2, result
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], lines
    refused = jobbie("key-limit", queue, "--concurrency", "0")
    assert refused.code == 1 and refused.stderr.startswith("error: VALIDATION"), refused


def _words(text: str) -> str:
    """Printed text with its line wrapping undone."""
    return " ".join(text.split())


def _cell_lines(stdout: str, column: str, queue: str) -> list[str]:
    """The lines of `column` in the row of `queue` in the `jobbie queues` table: a row goes on
    until the next row's STATUS cell."""
    header, _, *lines = stdout.splitlines()
    status, at = header.index("STATUS"), header.index(column)
    rows: list[list[str]] = []
    for line in lines:
        if line[status : status + 6].strip():
            rows.append([])
        if rows:
            rows[-1].append(line)
    (mine,) = [row for row in rows if "".join(line[:status].strip() for line in row) == queue]
    return [text for line in mine if (text := line[at:].strip())]
