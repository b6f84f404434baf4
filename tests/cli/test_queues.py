"""Queue and overview commands against a live server: queues, pause, resume, clear, drain
(with --wait), destroy, status, workers, schedules, top."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time

from jobbie import Client
from tests.cli.conftest import CLEAN_ENV, Jobbie
from tests.serverproc import ServerProcess

QUEUE_KEYS = {
    "name", "paused", "draining", "max_concurrency", "throttle", "fairness", "key_concurrency",
    "key_throttle", "counts", "totals", "oldest_pending_age",
}  # fmt: skip


def test_queue_actions(jobbie: Jobbie, queue: str, client: Client) -> None:
    client.enqueue(queue, 1)
    client.enqueue(queue, 2, delay="1h")

    listed = jobbie("queues", "-o", "json").json()
    (mine,) = [q for q in listed["queues"] if q["name"] == queue]
    assert set(mine) == QUEUE_KEYS
    assert (mine["counts"]["pending"], mine["counts"]["scheduled"]) == (1, 1)

    table = jobbie("queues")
    assert table.code == 0
    lines = table.stdout.splitlines()
    assert "PEND" in lines[0]
    assert all(len(line) <= 80 for line in lines)
    # Names fold over lines, the narrower the more columns the session's other queues need
    # (KEYS) and the longer their names: read the QUEUE column top to bottom.
    names = "".join(line[: lines[0].index("STATUS")].strip() for line in lines[2:])
    assert queue in names

    assert jobbie("pause", queue, "-o", "json").json()["paused"] is True
    resumed = jobbie("resume", queue)
    assert (resumed.code, resumed.stdout.split(":")[0]) == (0, queue)
    assert not client.queue(queue).paused

    assert jobbie("clear", queue, "-o", "json").json() == {"queue": queue, "cleared": 2}

    client.enqueue(queue, 3)
    assert jobbie("destroy", queue, "--confirm", "-o", "json").json() == {
        "queue": queue,
        "deleted_jobs": 1,
    }
    gone = jobbie("clear", queue)
    assert gone.code == 1
    assert gone.stderr.startswith("error: NOT_FOUND")


def test_drain_wait_follows_until_no_job_is_active(
    server: ServerProcess, queue: str, client: Client
) -> None:
    client.enqueue(queue, 1)
    job = client.fetch(queue, timeout=5)
    assert job is not None
    cmd = [sys.executable, "-m", "jobbie", "drain", queue, "--wait", "--timeout", "30"]
    proc = subprocess.Popen(
        [*cmd, "--server", server.url, "-o", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=CLEAN_ENV,
        start_new_session=True,
    )
    try:
        # The progress line shows the running job; only then does the job finish.
        assert proc.stderr is not None
        assert b"1 active" in _read_until(proc.stderr.fileno(), b"1 active", 20)
        assert proc.poll() is None
        client.ack(job, "done")
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0, err
    final = json.loads(out)
    assert (final["paused"], final["draining"], final["counts"]["active"]) == (True, False, 0)
    assert b"0 active" in err


def test_drain_without_wait(jobbie: Jobbie, queue: str, client: Client) -> None:
    client.enqueue(queue, 1)
    assert jobbie("drain", queue, "-o", "json").code == 0


def test_status_and_workers(jobbie: Jobbie, queue: str, client: Client) -> None:
    client.enqueue(queue, 1)
    assert client.fetch(queue, timeout=5) is not None  # registers this client as a worker

    status = jobbie("status", "-o", "json").json()
    assert set(status) == {"server", "jobs", "queues", "workers"}
    assert set(status["server"]) == {"url", "status", "mode", "backend", "nodes"}
    assert status["server"]["status"] == "ok"
    assert status["jobs"]["active"] >= 1
    assert client.worker_id in {w["id"] for w in status["workers"]}

    workers = jobbie("workers", "-o", "json").json()
    (me,) = [w for w in workers["workers"] if w["id"] == client.worker_id]
    assert set(me) == {"id", "hostname", "queues", "active_jobs", "last_seen", "started_at"}
    assert me["active_jobs"] >= 1

    table = jobbie("status")
    assert table.code == 0
    assert "server" in table.stdout and "WORKER" in table.stdout
    assert all(len(line) <= 80 for line in table.stdout.splitlines())


def test_schedules_add_list_remove(jobbie: Jobbie, queue: str) -> None:
    added = jobbie(
        "schedules", "add", "nightly", queue, "0 3 * * *", "--payload", '{"r": 1}',
        "--timezone", "Europe/Paris", "--priority", "high", "--tag", "k=v", "-o", "json",
    )  # fmt: skip
    assert added.code == 0, added.stderr
    schedule = added.json()
    assert (schedule["queue"], schedule["timezone"], schedule["payload"]) == (
        queue,
        "Europe/Paris",
        {"r": 1},
    )
    assert schedule["next_run"] is not None

    listed = jobbie("schedules", "list", "-o", "json").json()
    assert schedule["id"] in {s["id"] for s in listed["schedules"]}
    assert schedule["id"] in jobbie("schedules", "list").stdout

    removed = jobbie("schedules", "remove", schedule["id"], "-o", "json").json()
    assert removed == {"schedule_id": schedule["id"], "deleted": True}
    assert jobbie("schedules", "remove", schedule["id"]).code == 1

    bad = jobbie("schedules", "add", "x", queue, "not a cron")
    assert bad.code == 1
    assert "VALIDATION_ERROR" in bad.stderr


def test_top_for_scripts(jobbie: Jobbie, queue: str, client: Client) -> None:
    client.enqueue(queue, 1)
    result = jobbie("top", "--queue", queue, "--iterations", "2", "--interval", "0.1", "-o", "json")
    assert result.code == 0, result.stderr
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert [q["name"] for q in first["queues"]] == [queue]
    assert first["queues"][0]["rates"] is None  # nothing to compare with yet
    assert set(second["queues"][0]["rates"]) == {"enqueued", "completed", "failed"}

    table = jobbie("top", "--queue", queue, "--iterations", "1")
    assert table.code == 0
    assert queue[:12] in table.stdout and "DONE/s" in table.stdout  # long names fold


def test_top_quits_on_q_in_a_terminal(server: ServerProcess) -> None:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobbie", "top", "--interval", "0.2", "--server", server.url],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**CLEAN_ENV, "TERM": "xterm"},
        start_new_session=True,
    )
    os.close(slave)
    try:
        _read_until(master, b"q quits", 20)  # the first screen is drawn
        os.write(master, b"q")
        # Keep reading: with the session's many queues a screen can outgrow the terminal's
        # buffer, and `top` blocked on a write would never read the key.
        deadline = time.monotonic() + 20
        while proc.poll() is None and time.monotonic() < deadline:
            if select.select([master], [], [], 0.1)[0]:
                with contextlib.suppress(OSError):  # EIO once the process has closed the pty
                    os.read(master, 65536)
        assert proc.wait(timeout=1) == 0
    finally:
        proc.kill()
        proc.wait()
        os.close(master)


def _read_until(fd: int, needle: bytes, timeout: float) -> bytes:
    """Read from `fd` until `needle` shows up; fail at the deadline."""
    deadline = time.monotonic() + timeout
    seen = b""
    while needle not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"timed out waiting for {needle!r}; got {seen[-500:]!r}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 65536)
            assert chunk, f"EOF before {needle!r}; got {seen[-500:]!r}"
            seen += chunk
    return seen
