"""Fault: `kill -9` under load, then an audit (spec section 2: an answered write survives).

Threads enqueue, fetch and ack in a loop; the server is killed with SIGKILL in the middle.
Only requests that got an answer count. After a restart on the same data directory: every
answered enqueue exists, every answered ack is completed, every job not completed is handed
out again once its lease expires (at-least-once), and integrity_check is ok. The restarted
server is the next run's victim. `JOBBIE_CRASH_RUNS` sets the number of runs (3 in
`make test`, 20 in `make soak`); durability alternates between full and fast (`fast` may lose
writes to a power cut, never to a process crash).
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

from tests.integration.faultload import Load, Record, audit, report, wait_for
from tests.serverproc import ServerProcess

RUNS = int(os.environ.get("JOBBIE_CRASH_RUNS", "3"))


def _start(data_dir: Path, run: int) -> ServerProcess:
    durability = "full" if run % 2 == 0 else "fast"
    args = ("--durability", durability, "--test-clock")
    return ServerProcess(data_dir, scheduler_interval=3600, extra_args=args).start()


def _acked_at_least(record: Record, n: int) -> bool:
    return len(record.acked) >= n


def _all_noticed(record: Record, threads: int) -> bool:
    return record.connection_errors >= threads


def test_answered_writes_survive_kill_9(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = _start(data_dir, 0)
    totals = {"enqueues": 0, "acks": 0, "lost": 0, "redelivered": 0}
    try:
        for run in range(RUNS):
            record = Record(queue=f"crash.q{run}")
            load = Load(server.url, record)
            try:
                # Run until a good amount is on record (bounded), then kill mid-stream.
                wait_for(partial(_acked_at_least, record, 200), 3.0)
                assert record.enqueued, f"no enqueue was answered: {record.unexpected[:5]}"
                server.kill()
                wait_for(partial(_all_noticed, record, len(load.threads)), 5.0)
            finally:
                load.finish()
            assert record.acked, "no ack was answered before the kill"
            server = _start(data_dir, run + 1)
            # Past the clock the victim had (the previous audit moved it up to 30 days on).
            result = audit(server, record, head_start=(run + 1) * 40 * 86400)
            assert (result.lost_enqueues, result.lost_acks) == (0, 0), result
            assert result.never_completed == 0, result
            totals["enqueues"] += result.answered_enqueues
            totals["acks"] += result.answered_acks
            totals["redelivered"] += result.redelivered
    finally:
        server.stop()
    report(
        "kill-9",
        runs=RUNS,
        answered_enqueues=totals["enqueues"],
        answered_acks=totals["acks"],
        redelivered=totals["redelivered"],
        jobs_lost=0,
    )
