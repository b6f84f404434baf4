"""Cron firing at the store level with a controlled clock: once per fire time, missed times
collapsed, no repeat across a restart, IANA time zones, and the job a fire enqueues."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import pytest

from jobbie.store.params import ScheduleSpec
from jobbie.store.sqlite import schedules
from jobbie.store.sqlite.database import migrate, open_connection
from jobbie.store.sqlite.writer import Tx
from tests.store.helpers import run_tx

T = TypeVar("T")
MINUTE_MS = 60_000


def ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    """Epoch ms of a UTC wall-clock time."""
    return int(datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp() * 1000)


def open_db(path: Path) -> sqlite3.Connection:
    conn = open_connection(path, durable=False)
    conn.row_factory = sqlite3.Row
    migrate(conn)
    return conn


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "jobbie.db"


@pytest.fixture
def conn(db_path: Path) -> Iterator[sqlite3.Connection]:
    connection = open_db(db_path)
    yield connection
    connection.close()


def run(conn: sqlite3.Connection, now: int, op: Callable[[Tx], T]) -> T:
    """One writer transaction at `now`."""
    return run_tx(conn, op, now)


def spec(**fields: Any) -> ScheduleSpec:
    values: dict[str, Any] = {
        "name": "report",
        "queue": "reports",
        "cron": "*/5 * * * *",
        "timezone": "UTC",
        "payload": '{"kind":"daily"}',
        "priority": 1,
        "max_retries": 7,
        "tags": '{"team":"ops"}',
        "paused": False,
        **fields,
    }
    return ScheduleSpec(**values)


def create(conn: sqlite3.Connection, now: int, **fields: Any) -> str:
    return run(conn, now, lambda tx: schedules.create(tx, spec(**fields)))


def fire(conn: sqlite3.Connection, now: int) -> int:
    return run(conn, now, lambda tx: schedules.fire_due(tx, 100))


def schedule_row(conn: sqlite3.Connection, schedule_id: str) -> sqlite3.Row:
    row: sqlite3.Row = conn.execute(
        "SELECT * FROM schedules WHERE id = ?", (schedule_id,)
    ).fetchone()
    return row


def jobs(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    return list(conn.execute("SELECT * FROM jobs ORDER BY seq"))


T0 = ms(2026, 1, 5, 10, 2)  # a Monday, 10:02 UTC


def test_create_computes_the_first_fire_time(conn: sqlite3.Connection) -> None:
    schedule_id = create(conn, T0)
    row = schedule_row(conn, schedule_id)
    assert row["next_run"] == ms(2026, 1, 5, 10, 5)
    assert row["last_run"] is None
    assert row["created_at"] == T0
    assert jobs(conn) == []


def test_one_fire_per_due_time(conn: sqlite3.Connection) -> None:
    schedule_id = create(conn, T0)
    assert fire(conn, ms(2026, 1, 5, 10, 5) - 1) == 0
    assert jobs(conn) == []

    assert fire(conn, ms(2026, 1, 5, 10, 5)) == 1
    assert len(jobs(conn)) == 1
    row = schedule_row(conn, schedule_id)
    assert (row["last_run"], row["next_run"]) == (ms(2026, 1, 5, 10, 5), ms(2026, 1, 5, 10, 10))

    # the same fire time never fires twice, however often the scheduler looks
    for now in (ms(2026, 1, 5, 10, 5), ms(2026, 1, 5, 10, 5, 30), ms(2026, 1, 5, 10, 10) - 1):
        assert fire(conn, now) == 0
    assert len(jobs(conn)) == 1

    assert fire(conn, ms(2026, 1, 5, 10, 10, 0) + 250) == 1
    assert len(jobs(conn)) == 2
    assert schedule_row(conn, schedule_id)["next_run"] == ms(2026, 1, 5, 10, 15)


def test_missed_fire_times_collapse_into_one_run(conn: sqlite3.Connection) -> None:
    schedule_id = create(conn, T0)
    # down from 10:02 to 10:21: 10:05, 10:10, 10:15 and 10:20 were missed
    now = ms(2026, 1, 5, 10, 21)
    assert fire(conn, now) == 1
    assert len(jobs(conn)) == 1
    row = schedule_row(conn, schedule_id)
    assert row["next_run"] > now
    assert row["next_run"] == ms(2026, 1, 5, 10, 25)
    assert row["last_run"] is not None and row["last_run"] <= now
    assert fire(conn, now) == 0
    assert len(jobs(conn)) == 1


def test_no_fire_time_repeats_across_a_restart(db_path: Path) -> None:
    conn = open_db(db_path)
    schedule_id = create(conn, T0)
    assert fire(conn, ms(2026, 1, 5, 10, 5)) == 1
    conn.close()

    conn = open_db(db_path)  # a restart: same file, new connection
    try:
        assert fire(conn, ms(2026, 1, 5, 10, 5)) == 0
        assert fire(conn, ms(2026, 1, 5, 10, 7)) == 0
        assert len(jobs(conn)) == 1
        assert schedule_row(conn, schedule_id)["next_run"] == ms(2026, 1, 5, 10, 10)

        # a crash inside the firing transaction leaves neither a job nor an advanced next_run
        conn.execute("BEGIN")
        assert schedules.fire_due(Tx(conn, ms(2026, 1, 5, 10, 10)), 100) == 1
        conn.execute("ROLLBACK")
    finally:
        conn.close()

    conn = open_db(db_path)
    try:
        assert len(jobs(conn)) == 1
        assert schedule_row(conn, schedule_id)["next_run"] == ms(2026, 1, 5, 10, 10)
        assert fire(conn, ms(2026, 1, 5, 10, 10)) == 1
        assert fire(conn, ms(2026, 1, 5, 10, 10)) == 0
        assert len(jobs(conn)) == 2
    finally:
        conn.close()


def test_missed_times_after_a_restart_collapse(db_path: Path) -> None:
    conn = open_db(db_path)
    create(conn, T0)
    assert fire(conn, ms(2026, 1, 5, 10, 5)) == 1
    conn.close()
    conn = open_db(db_path)
    try:
        # an hour of downtime: one run, not twelve
        assert fire(conn, ms(2026, 1, 5, 11, 6)) == 1
        assert fire(conn, ms(2026, 1, 5, 11, 6)) == 0
        assert len(jobs(conn)) == 2
    finally:
        conn.close()


NEW_YORK = "America/New_York"


@pytest.mark.parametrize(
    ("created", "expected"),
    [
        (ms(2026, 1, 10, 0, 0), ms(2026, 1, 10, 14, 0)),  # EST, UTC-5
        (ms(2026, 7, 10, 0, 0), ms(2026, 7, 10, 13, 0)),  # EDT, UTC-4
    ],
)
def test_daily_schedule_in_new_york(conn: sqlite3.Connection, created: int, expected: int) -> None:
    schedule_id = create(conn, created, cron="0 9 * * *", timezone=NEW_YORK)
    assert schedule_row(conn, schedule_id)["next_run"] == expected
    assert fire(conn, expected - 1) == 0
    assert fire(conn, expected) == 1
    assert schedule_row(conn, schedule_id)["next_run"] == expected + 86_400_000


def test_daily_schedule_across_the_dst_change(conn: sqlite3.Connection) -> None:
    # DST starts in New York on Sunday 2026-03-08 at 02:00 local.
    schedule_id = create(conn, ms(2026, 3, 6, 15, 0), cron="0 9 * * *", timezone=NEW_YORK)
    fired_at = []
    now = ms(2026, 3, 6, 15, 0)
    for _ in range(4):
        now = schedule_row(conn, schedule_id)["next_run"]
        assert fire(conn, now) == 1
        fired_at.append(now)
    assert fired_at == [
        ms(2026, 3, 7, 14, 0),  # Saturday, EST
        ms(2026, 3, 8, 13, 0),  # Sunday, EDT
        ms(2026, 3, 9, 13, 0),
        ms(2026, 3, 10, 13, 0),
    ]
    assert len(jobs(conn)) == 4


def test_fired_job_carries_the_schedule_fields(conn: sqlite3.Connection) -> None:
    schedule_id = create(conn, T0)
    now = ms(2026, 1, 5, 10, 5)
    fire(conn, now)
    [job] = jobs(conn)
    assert job["id"].startswith("job_")
    assert job["queue"] == "reports"
    assert job["state"] == "pending"
    assert msgspec.json.decode(job["payload"]) == {"kind": "daily"}
    assert job["priority"] == 1
    assert job["max_retries"] == 7
    assert job["attempt"] == 0
    assert msgspec.json.decode(job["tags"]) == {"team": "ops", "schedule_id": schedule_id}
    assert job["created_at"] == now
    # the queue exists, its totals and counts include the job, and the enqueue is an event
    assert conn.execute("SELECT 1 FROM queues WHERE name = 'reports'").fetchone() is not None
    assert (
        conn.execute("SELECT enqueued FROM queue_stats WHERE queue = 'reports'").fetchone()[0] == 1
    )
    assert (
        conn.execute(
            "SELECT n FROM queue_counts WHERE queue = 'reports' AND state = 'pending'"
        ).fetchone()[0]
        == 1
    )
    events = conn.execute("SELECT type, job_id, queue FROM events").fetchall()
    assert [tuple(e) for e in events] == [("enqueued", job["id"], "reports")]


def test_paused_schedule_does_not_fire(conn: sqlite3.Connection) -> None:
    schedule_id = create(conn, T0, paused=True)
    assert fire(conn, ms(2026, 1, 5, 11, 0)) == 0
    assert jobs(conn) == []
    # unpausing computes the next fire time from now: no burst of missed runs
    unpause_at = ms(2026, 1, 5, 11, 1)
    run(conn, unpause_at, lambda tx: schedules.update(tx, schedule_id, spec(paused=False)))
    assert schedule_row(conn, schedule_id)["next_run"] == ms(2026, 1, 5, 11, 5)
    assert fire(conn, unpause_at) == 0
    assert fire(conn, ms(2026, 1, 5, 11, 5)) == 1


def test_each_due_schedule_fires_once(conn: sqlite3.Connection) -> None:
    a = create(conn, T0, name="a", queue="qa")
    b = create(conn, T0, name="b", queue="qb", cron="@hourly")
    c = create(conn, T0, name="c", queue="qc", cron="@daily")
    assert fire(conn, ms(2026, 1, 5, 11, 0)) == 2
    queues = sorted(row["queue"] for row in jobs(conn))
    assert queues == ["qa", "qb"]
    assert schedule_row(conn, a)["next_run"] == ms(2026, 1, 5, 11, 5)
    assert schedule_row(conn, b)["next_run"] == ms(2026, 1, 5, 12, 0)
    assert schedule_row(conn, c)["next_run"] == ms(2026, 1, 6, 0, 0)


def test_deleted_schedule_never_fires(conn: sqlite3.Connection) -> None:
    schedule_id = create(conn, T0)
    run(conn, T0, lambda tx: schedules.delete(tx, schedule_id))
    assert fire(conn, ms(2026, 1, 5, 12, 0)) == 0
    assert jobs(conn) == []
