"""Load and audit for the fault tests: threads enqueue, fetch and ack; only answered requests
count; after the fault, a restarted server must hold every answered write and hand out again
every job not yet completed (at-least-once), with the database intact."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field

import httpx

from tests.backends import TEST_BACKEND
from tests.serverproc import ServerProcess


@dataclass
class Record:
    """What the server acknowledged, shared by the load threads."""

    queue: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    enqueued: set[str] = field(default_factory=set)
    acked: set[str] = field(default_factory=set)
    fetched: set[str] = field(default_factory=set)
    unexpected: list[str] = field(default_factory=list)
    connection_errors: int = 0
    refused: int = 0  # 503 answers (shutting down): allowed, prove nothing


def load(url: str, worker: str, record: Record, stop: threading.Event) -> None:
    """Enqueue one job, then fetch one and ack it, until stopped."""
    queue = record.queue
    with httpx.Client(base_url=url, timeout=10.0) as client:
        n = 0
        while not stop.is_set():
            n += 1
            try:
                resp = client.post("/api/v1/enqueue", json={"queue": queue, "payload": [worker, n]})
                if resp.status_code == 201:
                    with record.lock:
                        record.enqueued.add(resp.json()["job_id"])
                elif resp.status_code == 503:
                    record.refused += 1
                else:
                    record.unexpected.append(f"enqueue {resp.status_code} {resp.text[:200]}")
                resp = client.post(
                    "/api/v1/fetch", json={"queues": [queue], "worker_id": worker, "timeout": 0}
                )
                if resp.status_code != 200:
                    if resp.status_code == 503:
                        record.refused += 1
                    elif resp.status_code != 204:
                        record.unexpected.append(f"fetch {resp.status_code} {resp.text[:200]}")
                    continue
                job = resp.json()
                with record.lock:
                    record.fetched.add(job["job_id"])
                resp = client.post(
                    f"/api/v1/ack/{job['job_id']}",
                    json={"result": n, "worker_id": worker, "attempt": job["attempt"]},
                )
                if resp.status_code == 200 and resp.json()["status"] == "completed":
                    with record.lock:
                        record.acked.add(job["job_id"])
                elif resp.status_code == 503:
                    record.refused += 1
                else:
                    record.unexpected.append(f"ack {resp.status_code} {resp.text[:200]}")
            except httpx.HTTPError:
                # The server went away under us: this request was not answered.
                with record.lock:
                    record.connection_errors += 1
                if stop.wait(0.01):
                    return


class Load:
    """`threads` load threads against `url` until stopped."""

    def __init__(self, url: str, record: Record, threads: int = 4) -> None:
        self.record = record
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=load, args=(url, f"w{i}", record, self.stop), daemon=True)
            for i in range(threads)
        ]
        for thread in self.threads:
            thread.start()

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=15)
        assert not any(t.is_alive() for t in self.threads), "a load thread hung"


def wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


@dataclass
class Audit:
    answered_enqueues: int
    answered_acks: int
    lost_enqueues: int
    lost_acks: int
    never_completed: int
    redelivered: int


def audit(server: ServerProcess, record: Record, head_start: float = 0.0) -> Audit:
    """On a server restarted after the fault (with `--test-clock`): check every answered
    write, then drain the queue (moving the clock past leases and backoffs) and check every
    answered enqueue ends completed: acknowledged means durable, and nothing is left behind.
    `head_start` seconds move the clock first, past any clock the victim had (a restarted
    server's clock starts at the wall clock again)."""
    assert not record.unexpected, record.unexpected[:10]
    assert record.acked <= record.fetched
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        lost_enqueues = lost_acks = 0
        # Completed jobs are pruned once the clock moves past their retention: note them now.
        completed: set[str] = set()
        for job_id in sorted(record.enqueued | record.fetched):
            resp = client.get(f"/api/v1/jobs/{job_id}")
            if resp.status_code == 404:
                lost_enqueues += 1
                continue
            assert resp.status_code == 200, resp.text
            if resp.json()["state"] == "completed":
                completed.add(job_id)
            elif job_id in record.acked:
                lost_acks += 1
        redelivered = empty_rounds = 0
        if TEST_BACKEND == "postgres":
            # The killed server's leadership runs out on the database's clock (seconds), not
            # the test clock; until then this server's scheduler passes do nothing.
            address = server.url.removeprefix("http://")
            # A scheduler pass (maintain) is what takes the leadership.
            assert wait_for(
                lambda: (
                    client.post("/_test/clock", json={"seconds": 0}).status_code == 200
                    and _leader(client) == address
                ),
                30.0,
            ), "no new leader"
        client.post("/_test/clock", json={"seconds": head_start})
        for _ in range(30):
            # Leases of the jobs active at the fault expire; retries come due.
            client.post("/_test/clock", json={"seconds": 86400})
            resp = client.post(
                "/api/v1/fetch",
                json={"queues": [record.queue], "worker_id": "auditor", "timeout": 0,
                      "count": 100},
            )  # fmt: skip
            if resp.status_code == 204:
                empty_rounds += 1
                if empty_rounds == 3:
                    break
                continue
            empty_rounds = 0
            for job in resp.json()["jobs"]:
                redelivered += 1
                acked = client.post(
                    f"/api/v1/ack/{job['job_id']}",
                    json={"worker_id": "auditor", "attempt": job["attempt"]},
                )
                assert acked.status_code == 200, acked.text
                assert acked.json()["status"] == "completed"
                completed.add(job["job_id"])
        left = [
            f"{job_id}: {client.get(f'/api/v1/jobs/{job_id}').text[:300]}"
            for job_id in record.enqueued - completed
        ]
        assert not left, left[:3]
    if TEST_BACKEND == "sqlite":
        db = server.data_dir / "jobbie.db"
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    return Audit(
        answered_enqueues=len(record.enqueued),
        answered_acks=len(record.acked),
        lost_enqueues=lost_enqueues,
        lost_acks=lost_acks,
        never_completed=len(left),
        redelivered=redelivered,
    )


def _leader(client: httpx.Client) -> str | None:
    """The address of the server leading the cluster (PostgreSQL), if any."""
    nodes = client.get("/api/v1/cluster/status").json()["nodes"]
    return next((node["address"] for node in nodes if node["leader"]), None)


def report(test: str, **figures: object) -> None:
    """Print the figures, and append them to $JOBBIE_FAULT_REPORT (JSON lines) when set."""
    line = json.dumps({"test": test, **figures}, sort_keys=True)
    print(line)
    path = os.environ.get("JOBBIE_FAULT_REPORT")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(line + "\n")
