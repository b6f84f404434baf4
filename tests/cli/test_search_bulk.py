"""search (filters, pages, --all) and bulk (ids from stdin or a filter, dry run, confirmation,
background operations), including the pipelines of the spec."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from functools import partial

from jobbie import Client
from tests.cli.conftest import CLEAN_ENV, Jobbie, make_dead, run_jobbie, run_many
from tests.serverproc import ServerProcess

PAGE_KEYS = {"jobs", "total", "cursor", "has_more", "duration_ms", "total_capped", "timed_out"}
BULK_KEYS = {
    "action", "matched", "dry_run", "affected", "skipped", "errors", "duration_ms",
    "bulk_operation_id",
}  # fmt: skip


def test_search_filters_and_pages(jobbie: Jobbie, queue: str, client: Client) -> None:
    make_dead(client, queue, 2)
    critical = client.enqueue(queue, {"user": {"id": 42}}, priority="critical", tags={"t": "x"})
    critical_id = critical.job_id
    client.enqueue(queue, {"user": {"id": 7}}, delay="1h")

    queries = {
        "all": (),
        "dead": ("--state", "dead", "--has-errors", "--error-contains", "boom"),
        "jq": ("--priority", "critical", "--tag", "t=x", "--jq", ".user.id == 42"),
        "contains": ("--payload-contains", '"id":7', "--scheduled-after", "1m"),
        "states": ("--state", "dead", "--state", "scheduled", "--attempt-max", "0"),
        "none": ("--created-after", "1h", "--created-before", "2099-01-01T00:00:00Z",
                 "--attempt-min", "1", "--no-errors"),
        "sorted": ("--sort", "priority", "--order", "asc", "--job-id-prefix", "job_"),
    }  # fmt: skip
    results = run_many(
        [partial(jobbie, "search", "-q", queue, *q, "-o", "json") for q in queries.values()]
    )
    found: dict[str, list[str]] = {}
    for name, result in zip(queries, results, strict=True):
        assert result.code == 0, (name, result.stderr)
        assert set(result.json()) == PAGE_KEYS
        found[name] = [job["id"] for job in result.json()["jobs"]]
    counts = {name: len(ids) for name, ids in found.items()}
    assert counts == {
        "all": 4,
        "dead": 2,
        "jq": 1,
        "contains": 1,
        "states": 1,
        "none": 0,
        "sorted": 4,
    }
    assert found["sorted"][0] == critical_id

    first = jobbie("search", "-q", queue, "--limit", "3", "-o", "json").json()
    assert (len(first["jobs"]), first["total"], first["has_more"]) == (3, 4, True)
    rest = jobbie("search", "-q", queue, "--limit", "3", "--cursor", first["cursor"], "-o", "json")
    rest_ids = {job["id"] for job in rest.json()["jobs"]}
    assert len(rest_ids) == 1
    assert not {j["id"] for j in first["jobs"]} & rest_ids

    every = jobbie("search", "-q", queue, "--limit", "1", "--all", "-o", "json").json()
    assert (len(every["jobs"]), every["total"], every["has_more"]) == (4, 4, False)
    assert every["cursor"] is None

    table = jobbie("search", "-q", queue, "--limit", "3")
    assert "3 of 4 jobs" in table.stdout and "--cursor" in table.stdout
    assert all(len(line) <= 80 for line in table.stdout.splitlines())

    bad = jobbie("search", "--jq", ".a ==")
    assert (bad.code, bad.stderr.startswith("error: VALIDATION_ERROR")) == (1, True)


def test_pipeline_search_dead_into_bulk_retry(
    server: ServerProcess, queue: str, client: Client
) -> None:
    dead = make_dead(client, queue, 3)
    jobbie = f"{shlex.quote(sys.executable)} -m jobbie"
    url = shlex.quote(server.url)
    pipeline = (
        f"{jobbie} search --state dead -q {shlex.quote(queue)} --output json --server {url}"
        f" | {jobbie} bulk retry --server {url} -o json"
    )
    proc = subprocess.run(
        pipeline, shell=True, capture_output=True, text=True, env=CLEAN_ENV, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert set(result) == BULK_KEYS
    assert (result["matched"], result["affected"], result["skipped"]) == (3, 3, 0)
    assert {client.get_job(i).state for i in dead} == {"pending"}


def test_bulk_move_by_ids_and_by_filter(jobbie: Jobbie, queue: str, client: Client) -> None:
    ids = [client.enqueue(queue, i).job_id for i in range(3)]
    target = f"{queue}.moved"

    # One id per line (the first word, so `enqueue` output can be piped too).
    lines = f"{ids[0]} pending\n{ids[1]}\n\n"
    moved = jobbie("bulk", "move", "--to", target, "-o", "json", input=lines).json()
    assert (moved["matched"], moved["affected"]) == (2, 2)
    assert client.get_job(ids[1]).queue == target

    dry = jobbie("bulk", "move", "--to", target, "--filter", f'{{"queue": "{queue}"}}',
                 "--dry-run", "-o", "json").json()  # fmt: skip
    assert (dry["matched"], dry["dry_run"], dry["affected"]) == (1, True, None)
    assert client.get_job(ids[2]).queue == queue

    by_filter = jobbie("bulk", "move", "--to", target, "--filter", f'{{"queue": "{queue}"}}')
    assert by_filter.code == 0
    assert by_filter.stdout.startswith("move: 1 affected, 0 skipped")
    assert client.get_job(ids[2]).queue == target

    reprioritised = jobbie(
        "bulk", "change-priority", "-p", "critical", "--filter", f'{{"queue": "{target}"}}',
        "-o", "json",
    ).json()  # fmt: skip
    assert reprioritised["affected"] == 3
    assert client.get_job(ids[0]).priority == "critical"

    cancelled = jobbie("bulk", "cancel", "-o", "json", input="[" + f'"{ids[0]}"' + "]").json()
    assert (cancelled["affected"], client.get_job(ids[0]).state) == (1, "cancelled")
    skipped = jobbie("bulk", "requeue", "-o", "json", input=ids[0]).json()
    assert (skipped["affected"], skipped["skipped"]) == (0, 1)  # requeue is for dead jobs

    empty = jobbie("bulk", "delete", "-o", "json", input="")
    assert (empty.code, empty.json()["matched"]) == (0, 0)


def test_large_bulk_asks_first_then_runs_in_the_background(
    server: ServerProcess, queue: str, client: Client
) -> None:
    for start in (0, 10_000):
        count = 10_000 if start == 0 else 1
        client.enqueue_batch([{"queue": queue, "payload": start + i} for i in range(count)])
    args = ("bulk", "delete", "--filter", f'{{"queue": "{queue}"}}', "--server", server.url)

    # No terminal to ask on (the tests run in their own session): --yes is required.
    refused = run_jobbie(*args)
    assert refused.code == 2
    assert "--yes" in refused.stderr
    assert client.queue(queue).counts.pending == 10_001

    done = run_jobbie(*args, "--yes", "-o", "json")
    assert done.code == 0, done.stderr
    result = done.json()
    assert (result["matched"], result["affected"]) == (10_001, 10_001)
    assert result["bulk_operation_id"].startswith("bulk_")  # the server answered 202
    assert "in the background" in done.stderr  # progress, on stderr
    assert client.queue(queue).counts.pending == 0


def test_bulk_usage_errors(jobbie: Jobbie) -> None:
    not_json = jobbie("bulk", "retry", input="[not json")
    assert (not_json.code, "not valid JSON" in not_json.stderr) == (2, True)
    no_ids = jobbie("bulk", "retry", input='{"jobs": [{"queue": "q"}]}')
    assert (no_ids.code, "no job id" in no_ids.stderr) == (2, True)
    extra = jobbie("bulk", "retry", "--to", "elsewhere", input="")
    assert extra.code == 2
