"""`jobbie migrate-store`: moving a stopped SQLite server's store to PostgreSQL, as a user would.

A SQLite server is given jobs in every state, a batch, a schedule, unique jobs, keyed jobs and
queue settings; it is stopped, `jobbie migrate-store` copies its data directory into a new
PostgreSQL database, and a server started on that database must answer the same things and
carry on: the unique lock, the batch and its callback, the FIFO order, new enqueues.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.backends import (
    POSTGRES_HOWTO,
    PostgresUnavailable,
    postgres_database,
    sqlite_database,
)
from tests.cli.conftest import run_jobbie
from tests.integration.helpers import ack, enqueue, fail, fetch, fetch_one, get_job
from tests.serverproc import ServerProcess

pytestmark = pytest.mark.postgres

HOUR = 3600


def new_database(path: Path) -> str:
    """A new, empty PostgreSQL database (skipped, outside CI, when none is reachable)."""
    try:
        return postgres_database(path)
    except PostgresUnavailable as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"{POSTGRES_HOWTO} ({exc})")


def with_password(url: str, password: str) -> str:
    """The URL with a password (trust authentication ignores it): it must never be printed."""
    return url.replace("postgres@", f"postgres:{password}@", 1)


def tables(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = 'public' ORDER BY 1"
        ).fetchall()
    return [str(row[0]) for row in rows]


def job_count(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM jobs").fetchone()
    assert row is not None
    return int(row[0])


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    """Servers a test started, stopped at its end whatever happens."""
    started: list[ServerProcess] = []
    yield started
    for proc in started:
        proc.stop()


def start(servers: list[ServerProcess], data_dir: Path, database: str) -> ServerProcess:
    proc = ServerProcess(data_dir, database=database)
    servers.append(proc)
    return proc.start()


def populate(api: httpx.Client) -> dict[str, Any]:
    """Work in every state and every kind of setting; returns what the test needs later."""
    made: dict[str, Any] = {}
    # FIFO order across the move: two waiting jobs, fetched after the move before a new one.
    made["fifo"] = [enqueue(api, "fifo", payload={"n": n}, tags={"n": str(n)}) for n in (1, 2)]
    made["scheduled"] = enqueue(api, "misc", payload="later", delay=HOUR, expire_after=2 * HOUR)
    # Active, with a long lease, progress and a checkpoint.
    active = enqueue(api, "running", payload={"big": "x" * 100}, priority="high")
    assert fetch_one(api, "running", worker_id="w-run", lease_duration=600)["job_id"] == active
    beat = api.post(
        "/api/v1/heartbeat",
        json={
            "worker_id": "w-run",
            "jobs": {active: {"progress": {"current": 3, "total": 10}, "checkpoint": {"at": 3}}},
        },
    )
    assert beat.status_code == 200, beat.text
    made["active"] = active
    # Retrying (far in the future) and dead, each with its errors.
    retrying = enqueue(api, "flaky", payload=1, max_retries=5, retry_base_delay=HOUR)
    assert fetch_one(api, "flaky")["job_id"] == retrying
    assert fail(api, retrying, "timeout", backtrace="line 1").json()["status"] == "retrying"
    dead = enqueue(api, "flaky", payload=2, max_retries=0)
    # The retrying job is not due: the fetch hands out the second one.
    assert fetch_one(api, "flaky")["job_id"] == dead
    assert fail(api, dead, "bad input\nsecond line").json()["status"] == "dead"
    made["retrying"], made["dead"] = retrying, dead
    # PostgreSQL text cannot hold U+0000, SQLite's can: it is copied as U+FFFD.
    made["nul"] = enqueue(api, "nul", payload="\u0000 in JSON is fine", max_retries=0)
    assert fetch_one(api, "nul")["job_id"] == made["nul"]
    assert fail(api, made["nul"], "bad\x00byte").json()["status"] == "dead"
    completed = enqueue(api, "misc", payload="done")
    assert fetch_one(api, "misc")["job_id"] == completed
    assert ack(api, completed, result={"ok": True}).status_code == 200
    cancelled = enqueue(api, "misc", payload="never")
    assert api.post(f"/api/v1/jobs/{cancelled}/cancel").status_code == 200
    made["completed"], made["cancelled"] = completed, cancelled
    made["unique"] = enqueue(api, "uniq", payload="u", unique_key="report-1", unique_period=HOUR)
    # A batch with one of two jobs done.
    resp = api.post(
        "/api/v1/enqueue/batch",
        json={
            "jobs": [{"queue": "batch", "payload": 1}, {"queue": "batch", "payload": 2}],
            "batch": {"callback_queue": "batch.cb", "callback_payload": {"report": "x"}},
        },
    )
    assert resp.status_code == 201, resp.text
    made["batch_id"] = resp.json()["batch_id"]
    made["batch_done"], made["batch_rest"] = resp.json()["job_ids"]
    assert fetch_one(api, "batch")["job_id"] == made["batch_done"]
    assert ack(api, made["batch_done"]).status_code == 200
    # Keyed jobs on a queue with every setting.
    made["keyed"] = [
        enqueue(api, "tenants", payload=n, key=key, tags={"tenant": key})
        for n, key in enumerate(["acme", "acme", "globex"])
    ]
    for path, body in (
        ("concurrency", {"max": 5}),
        ("throttle", {"rate": 100, "period": 60}),
        ("fairness", {"mode": "round_robin"}),
        ("key-concurrency", {"max": 1}),
        ("key-throttle", {"rate": 50, "period": 30}),
    ):
        assert api.post(f"/api/v1/queues/tenants/{path}", json=body).status_code == 200
    made["held"] = enqueue(api, "held", payload="p")
    assert api.post("/api/v1/queues/held/pause").status_code == 200
    resp = api.post(
        "/api/v1/schedules",
        json={"name": "yearly", "queue": "misc", "cron": "0 0 1 1 *", "key": "acme"},
    )
    assert resp.status_code == 201, resp.text
    return made


def snapshot(api: httpx.Client, ids: list[str], batch_id: str) -> dict[str, Any]:
    """Everything a user sees of the store (events and clock-relative ages left out)."""
    jobs = {}
    for job_id in ids:
        job = get_job(api, job_id)
        job.pop("events")  # not copied
        jobs[job_id] = job
    queues = api.get("/api/v1/queues").json()["queues"]
    for queue in queues:
        queue.pop("oldest_pending_age")
    audit = api.get("/api/v1/audit").json()
    return {
        "jobs": jobs,
        "queues": sorted(queues, key=lambda q: q["name"]),
        "keys": api.get("/api/v1/queues/tenants/keys").json(),
        "schedules": api.get("/api/v1/schedules").json(),
        "batch": api.get(f"/api/v1/batches/{batch_id}").json(),
        "workers": api.get("/api/v1/workers").json(),
        "audit": [{k: v for k, v in e.items() if k != "id"} for e in audit["entries"]],
    }


def all_ids(made: dict[str, Any]) -> list[str]:
    ids = [*made["fifo"], *made["keyed"]]
    for name in (
        *("scheduled", "active", "retrying", "dead", "completed", "cancelled"),
        *("unique", "batch_done", "batch_rest", "held", "nul"),
    ):
        ids.append(made[name])
    return ids


def test_a_stopped_sqlite_store_moves_to_postgresql_whole(
    tmp_path: Path, servers: list[ServerProcess]
) -> None:
    data_dir = tmp_path / "data"
    url = new_database(tmp_path / "pg")
    sqlite_server = start(servers, data_dir, sqlite_database(data_dir))
    with httpx.Client(base_url=sqlite_server.url, timeout=10) as api:
        made = populate(api)
        before = snapshot(api, all_ids(made), made["batch_id"])
    assert sqlite_server.terminate() == 0

    moved = run_jobbie(
        "migrate-store", "--from", str(data_dir), "--to", with_password(url, "s3cret")
    )
    assert moved.code == 0, moved.stderr
    assert "s3cret" not in moved.stdout + moved.stderr
    assert "counts verified" in moved.stdout
    # last_error, the error and the error signature.
    assert "3 text values held the character U+0000" in moved.stdout
    assert f"jobs {len(all_ids(made))}" in " ".join(moved.stdout.split())

    # A second run finds the target full: refused, nothing added.
    again = run_jobbie("migrate-store", "--from", str(data_dir), "--to", url, "-o", "json")
    assert again.code == 1
    assert "not empty" in again.stderr
    assert job_count(url) == len(all_ids(made))

    pg_server = start(servers, tmp_path / "pg-server", url)
    with httpx.Client(base_url=pg_server.url, timeout=10) as api:
        after = snapshot(api, all_ids(made), made["batch_id"])
        nul_job = before["jobs"][made["nul"]]
        assert nul_job["payload"] == "\u0000 in JSON is fine"
        assert nul_job["last_error"] == nul_job["errors"][0]["error"] == "bad\x00byte"
        nul_job["last_error"] = nul_job["errors"][0]["error"] = "bad\ufffdbyte"
        assert after == before
        assert before["jobs"][made["dead"]]["errors"][0]["error"] == "bad input\nsecond line"
        assert before["schedules"]["schedules"][0]["next_run"] is not None

        # The unique lock holds.
        dup = api.post("/api/v1/enqueue", json={"queue": "uniq", "unique_key": "report-1"})
        assert dup.status_code == 200, dup.text
        assert dup.json()["job_id"] == made["unique"]
        assert dup.json()["unique_existing"] is True

        # The batch completes with its last job and fires its callback once.
        assert fetch(api, "batch.cb") is None
        assert fetch_one(api, "batch")["job_id"] == made["batch_rest"]
        assert ack(api, made["batch_rest"]).status_code == 200
        callback = fetch_one(api, "batch.cb", timeout=5)
        assert callback["payload"] == {
            "batch_id": made["batch_id"],
            "total": 2,
            "succeeded": 2,
            "failed": 0,
            "callback_payload": {"report": "x"},
        }
        assert api.get(f"/api/v1/batches/{made['batch_id']}").json()["completed_at"] is not None

        # New jobs queue behind the copied ones (the sequence moved past them).
        new = enqueue(api, "fifo", payload={"n": 3})
        order = [fetch_one(api, "fifo")["job_id"] for _ in range(3)]
        assert order == [*made["fifo"], new]

        # The active job's lease is still its worker's: it can complete it.
        assert ack(api, made["active"], worker_id="w-run").status_code == 200
        # Keyed jobs are served in turn, one per key at a time.
        keys = [fetch_one(api, "tenants", worker_id="w-t")["key"] for _ in range(2)]
        assert sorted(keys) == ["acme", "globex"]
        assert fetch(api, "tenants", worker_id="w-t") is None
        # The paused queue stays paused.
        assert fetch(api, "held") is None


def test_a_data_directory_in_use_is_refused_and_nothing_is_written(
    tmp_path: Path, servers: list[ServerProcess]
) -> None:
    data_dir = tmp_path / "data"
    url = new_database(tmp_path / "pg")
    sqlite_server = start(servers, data_dir, sqlite_database(data_dir))
    with httpx.Client(base_url=sqlite_server.url, timeout=10) as api:
        enqueue(api, "q", payload=1)
        result = run_jobbie("migrate-store", "--from", str(data_dir), "--to", url)
        assert result.code == 1
        assert "in use" in result.stderr and "stop it first" in result.stderr
        # The server was not disturbed.
        assert fetch_one(api, "q")["payload"] == 1
    assert tables(url) == []  # not even migrated


def test_a_copy_that_fails_midway_leaves_the_target_as_it_was(
    tmp_path: Path, servers: list[ServerProcess]
) -> None:
    import sqlite3

    data_dir = tmp_path / "data"
    url = new_database(tmp_path / "pg")
    sqlite_server = start(servers, data_dir, sqlite_database(data_dir))
    with httpx.Client(base_url=sqlite_server.url, timeout=10) as api:
        for n in range(3):
            enqueue(api, "q", payload=n)
    assert sqlite_server.terminate() == 0
    # A damaged source: an error row of a job that does not exist (SQLite checks foreign keys
    # only when asked; PostgreSQL always does), copied after the jobs.
    conn = sqlite3.connect(data_dir / "jobbie.db", isolation_level=None)
    conn.execute(
        "INSERT INTO job_errors (job_id, attempt, error, at) VALUES ('job_gone', 1, 'x', 0)"
    )
    conn.close()
    result = run_jobbie("migrate-store", "--from", str(data_dir), "--to", url)
    assert result.code == 1
    assert "copying job_errors into" in result.stderr and "nothing was kept" in result.stderr
    assert job_count(url) == 0
    with psycopg.connect(url) as pg:
        assert pg.execute("SELECT count(*) FROM queues").fetchone() == (0,)


def test_an_older_schema_is_refused_untouched(tmp_path: Path) -> None:
    import sqlite3

    from jobbie.store.sqlite.database import migration_files

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    db = data_dir / "jobbie.db"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT, applied_at INT)"
    )
    for version, name, sql in migration_files()[:3]:
        conn.executescript(sql)
        conn.execute("INSERT INTO schema_migrations VALUES (?, ?, 0)", (version, name))
    conn.close()
    url = new_database(tmp_path / "pg")
    was = digest(db)
    result = run_jobbie("migrate-store", "--from", str(data_dir), "--to", url)
    assert result.code == 1
    assert "older schema" in result.stderr
    assert "start the current server on it once and stop it" in result.stderr
    assert digest(db) == was
    assert tables(url) == []
