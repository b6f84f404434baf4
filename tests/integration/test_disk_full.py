"""Fault: the disk fills up under a running server, then space returns.

The server runs in a private mount namespace (`unshare`) on a size-limited tmpfs; the test
fills that file system with a ballast file through /proc/PID/root, so the database itself is
what hits ENOSPC. Required: writes answer 503 promptly (no hang), `/healthz` stays 200 while
`/readyz` says 503, the server recovers without a restart once space returns, no answered
enqueue or ack is lost, the database passes integrity_check, and SIGTERM still stops it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.faultload import report
from tests.serverproc import ServerProcess

pytestmark = pytest.mark.sqlite_only

QUEUE = "disk.full"
PAYLOAD = "x" * 30_000


def _can_mount_tmpfs(where: Path) -> bool:
    if shutil.which("unshare") is None:
        return False
    script = f"mount -t tmpfs -o size=1m tmpfs {where}"
    done = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True)
    return done.returncode == 0


def _fill(path: Path) -> int:
    """Write zeros to `path` until the file system is full; returns the bytes written."""
    written = 0
    chunk = b"\0" * 65536
    with path.open("wb", buffering=0) as ballast:
        while True:
            try:
                written += ballast.write(chunk)
            except OSError:
                break
    # Small writes may still fit in the last partial block; take them too.
    with path.open("ab", buffering=0) as ballast:
        while True:
            try:
                written += ballast.write(b"\0" * 512)
            except OSError:
                return written


def _timed_post(client: httpx.Client, url: str, body: object) -> tuple[int, float]:
    started = time.monotonic()
    resp = client.post(url, json=body)
    elapsed = time.monotonic() - started
    if resp.status_code >= 500:
        assert resp.headers["content-type"] == "application/json", resp.text
        assert resp.json()["code"] == "UNAVAILABLE", resp.text
    return resp.status_code, elapsed


def test_disk_full_answers_503_and_recovers_without_restart(tmp_path: Path) -> None:
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if not _can_mount_tmpfs(mnt):
        pytest.skip("cannot mount a size-limited tmpfs here (needs unshare -rm)")
    prefix = ("unshare", "-rm", "sh", "-c", f'mount -t tmpfs -o size=24m tmpfs {mnt} && exec "$@"',
              "sh")  # fmt: skip
    server = ServerProcess(mnt / "data", prefix=prefix)
    server.start()
    assert server.proc is not None
    inside = Path(f"/proc/{server.proc.pid}/root") / str(mnt).lstrip("/")
    enqueued: set[str] = set()
    acked: set[str] = set()
    try:
        with httpx.Client(base_url=server.url, timeout=30.0) as client:
            for i in range(20):
                resp = client.post("/api/v1/enqueue", json={"queue": QUEUE, "payload": i})
                assert resp.status_code == 201
                enqueued.add(resp.json()["job_id"])
            for _ in range(10):
                job = client.post(
                    "/api/v1/fetch", json={"queues": [QUEUE], "worker_id": "w", "timeout": 0}
                ).json()
                resp = client.post(f"/api/v1/ack/{job['job_id']}", json={"attempt": 1})
                assert resp.status_code == 200
                acked.add(job["job_id"])

            _fill(inside / "ballast")
            refused, slowest = 0, 0.0
            for _ in range(400):
                status, elapsed = _timed_post(
                    client, "/api/v1/enqueue", {"queue": QUEUE, "payload": PAYLOAD}
                )
                slowest = max(slowest, elapsed)
                if status == 201:
                    continue  # still fits (WAL space is reused after a checkpoint)
                assert status == 503
                refused += 1
                if refused >= 5:
                    break
            assert refused >= 5, "the full disk never refused a write"
            assert slowest < 10.0, f"a write took {slowest:.1f} s on a full disk"

            # Liveness stays green, readiness tells the truth.
            assert client.get("/healthz").status_code == 200
            ready = client.get("/readyz")
            assert ready.status_code == 503, ready.text
            body = ready.json()
            assert body["status"] == "unavailable"
            assert body["database"] == "failing"
            assert body["writer"] == "running"
            # Reads still work, and so does an ack that fits (or it is a clean 503).
            assert client.get("/api/v1/queues").status_code == 200

            (inside / "ballast").unlink()
            freed = time.monotonic()
            deadline = freed + 20
            while client.get("/readyz").status_code != 200:
                assert time.monotonic() < deadline, "readiness did not come back"
                time.sleep(0.2)
            recovered_after = time.monotonic() - freed
            for _ in range(20):
                resp = client.post("/api/v1/enqueue", json={"queue": QUEUE, "payload": PAYLOAD})
                assert resp.status_code == 201, resp.text
                enqueued.add(resp.json()["job_id"])
            for job_id in enqueued:
                resp = client.get(f"/api/v1/jobs/{job_id}")
                assert resp.status_code == 200, job_id
                if job_id in acked:
                    assert resp.json()["state"] == "completed"

            # SQLite resolves /proc/PID/root to "/", so check from inside the namespace.
            db = mnt / "data" / "jobbie.db"
            check = (
                "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]);"
                " print(c.execute('PRAGMA integrity_check').fetchone()[0])"
            )
            enter = ["nsenter", "-t", str(server.proc.pid), "-U", "-m", "--preserve-credentials"]
            done = subprocess.run(
                [*enter, sys.executable, "-c", check, str(db)], capture_output=True, text=True
            )
            assert done.stdout.strip() == "ok", done.stdout + done.stderr
        assert server.terminate(timeout=30) == 0
    finally:
        server.stop()
    log = server.log()
    # The failing checkpoint is logged once per minute at most, not every 250 ms.
    assert log.count("WAL checkpoint failed") <= 2, log[-3000:]
    report(
        "disk-full",
        refused_503=refused,
        slowest_answer_s=round(slowest, 2),
        ready_again_after_s=round(recovered_after, 2),
        answered_enqueues=len(enqueued),
        answered_acks=len(acked),
        jobs_lost=0,
    )
