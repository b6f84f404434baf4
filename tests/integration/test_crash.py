"""Crash durability (spec section 2): an answered write survives `kill -9`.

Several threads enqueue, fetch and ack in a loop; the server is killed with SIGKILL in the
middle. Only requests that got an answer are recorded: every job whose enqueue was answered
201 must exist after a restart on the same data directory, and every job whose ack was
answered 200 must be completed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import pytest

from tests.serverproc import ServerProcess

MakeServer = Callable[..., ServerProcess]
THREADS = 4
QUEUE = "crash.q"


@dataclass
class Record:
    """What the server acknowledged, shared by the load threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    enqueued: set[str] = field(default_factory=set)
    acked: set[str] = field(default_factory=set)
    fetched: set[str] = field(default_factory=set)
    unexpected: list[str] = field(default_factory=list)
    connection_errors: int = 0


def load(url: str, worker: str, record: Record, stop: threading.Event) -> None:
    """Enqueue one job, then fetch one and ack it, until stopped."""
    with httpx.Client(base_url=url, timeout=5.0) as client:
        n = 0
        while not stop.is_set():
            n += 1
            try:
                resp = client.post("/api/v1/enqueue", json={"queue": QUEUE, "payload": [worker, n]})
                if resp.status_code == 201:
                    with record.lock:
                        record.enqueued.add(resp.json()["job_id"])
                elif resp.status_code != 503:
                    record.unexpected.append(f"enqueue {resp.status_code} {resp.text[:200]}")
                resp = client.post(
                    "/api/v1/fetch",
                    json={"queues": [QUEUE], "worker_id": worker, "timeout": 0},
                )
                if resp.status_code != 200:
                    if resp.status_code not in (204, 503):
                        record.unexpected.append(f"fetch {resp.status_code} {resp.text[:200]}")
                    continue
                job = resp.json()
                with record.lock:
                    record.fetched.add(job["job_id"])
                resp = client.post(
                    f"/api/v1/ack/{job['job_id']}",
                    json={"result": n, "worker_id": worker, "attempt": job["attempt"]},
                )
                if resp.status_code == 200:
                    assert resp.json()["status"] == "completed"
                    with record.lock:
                        record.acked.add(job["job_id"])
                elif resp.status_code != 503:
                    record.unexpected.append(f"ack {resp.status_code} {resp.text[:200]}")
            except httpx.HTTPError:
                # The server died under us: this request was not answered, so it proves nothing.
                with record.lock:
                    record.connection_errors += 1
                if stop.wait(0.01):
                    return


def wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


# `fast` (synchronous=NORMAL) may lose writes to a power cut, never to a process crash.
@pytest.mark.parametrize("durability", ["full", "fast"])
def test_answered_writes_survive_kill_9(make_server: MakeServer, durability: str) -> None:
    first = make_server("--durability", durability)
    record = Record()
    stop = threading.Event()
    threads = [
        threading.Thread(target=load, args=(first.url, f"crash-w{i}", record, stop), daemon=True)
        for i in range(THREADS)
    ]
    for thread in threads:
        thread.start()
    try:
        # Let the load run until a good amount is on record (bounded), then kill mid-stream.
        wait_for(lambda: len(record.acked) >= 200 and len(record.enqueued) >= 300, 2.0)
        assert record.enqueued, f"no enqueue was answered: {record.unexpected[:5]}"
        first.kill()
        # Each thread notices the dead server (or is between requests) before we stop them.
        wait_for(lambda: record.connection_errors >= THREADS, 5.0)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
    assert not any(t.is_alive() for t in threads)
    assert not record.unexpected, record.unexpected[:10]
    assert record.acked <= record.fetched
    assert record.acked, "no ack was answered before the kill"

    second = ServerProcess(first.data_dir)
    second.start()
    try:
        with httpx.Client(base_url=second.url, timeout=10.0) as client:
            missing, not_completed = [], []
            for job_id in sorted(record.enqueued | record.fetched):
                resp = client.get(f"/api/v1/jobs/{job_id}")
                if resp.status_code == 404:
                    missing.append(job_id)
                    continue
                assert resp.status_code == 200, resp.text
                job = resp.json()
                if job_id in record.acked and job["state"] != "completed":
                    not_completed.append((job_id, job["state"]))
            assert not missing, f"{len(missing)} answered enqueues lost: {missing[:5]}"
            assert not not_completed, (
                f"{len(not_completed)} answered acks lost: {not_completed[:5]}"
            )

            queues = {q["name"]: q for q in client.get("/api/v1/queues").json()["queues"]}
            counts = queues[QUEUE]["counts"]
            assert counts["completed"] >= len(record.acked)
            assert sum(counts.values()) >= len(record.enqueued)
    finally:
        second.stop()
