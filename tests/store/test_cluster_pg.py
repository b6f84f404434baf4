"""Two PostgresStores on one database, as two servers would open them: leadership, the cron
guard when two fire at once, and wake-ups from the other server, including a lost
notification that the fallback poll makes up for."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

import psycopg
import pytest

from jobbie.clock import Clock
from jobbie.store.params import ScheduleSpec
from jobbie.store.postgres.leader import DB_NOW
from jobbie.store.postgres.listener import POLL_S
from jobbie.store.postgres.store import PostgresStore
from tests.contract.support import new_job

pytestmark = pytest.mark.postgres


@pytest.fixture
def database(url: str) -> str:
    """A fresh PostgreSQL database (tests/store/conftest.py)."""
    return url


class Woken:
    """A commit callback that remembers the queues it was given, and when."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, set[str]]] = []

    def __call__(self, queues: Iterable[str]) -> None:
        self.calls.append((time.monotonic(), set(queues)))

    async def wait_for(self, queue: str, timeout: float, since: float | None = None) -> float:
        """Seconds from `since` (default: now) until `queue` is woken."""
        start = time.monotonic() if since is None else since
        while time.monotonic() - start < timeout:
            if any(queue in queues and at >= start for at, queues in self.calls):
                return time.monotonic() - start
            await asyncio.sleep(0.01)
        raise AssertionError(f"{queue} not woken within {timeout} s: {self.calls[-5:]}")


@asynccontextmanager
async def two_servers(database: str) -> AsyncIterator[tuple[PostgresStore, PostgresStore, Woken]]:
    """Stores `a` and `b` on one database; `b`'s commit callback is returned to inspect."""
    woken = Woken()
    a = await PostgresStore.open(database, node_id="a:1", address="127.0.0.1:1")
    try:
        b = await PostgresStore.open(
            database, node_id="b:2", address="127.0.0.1:2", on_commit=woken, clock=Clock()
        )
        try:
            yield a, b, woken
        finally:
            await b.close()
    finally:
        await a.close()


def test_one_server_leads_until_it_leaves(database: str) -> None:
    async def main() -> None:
        async with two_servers(database) as (a, b, _):
            assert (await a.maintain(), await b.maintain()) != ({}, {})
            leaders = [n.id for n in await b.cluster_nodes() or [] if n.leader]
            assert leaders in (["a:1"], ["b:2"])
            assert sorted(n.id for n in await a.cluster_nodes() or []) == ["a:1", "b:2"]
            # Both read the database's clock, to within a few ms.
            async with await psycopg.AsyncConnection.connect(database) as conn:
                cur = await conn.execute(f"SELECT {DB_NOW}")
                db_now = (await cur.fetchone() or [0])[0]
            assert abs(a.clock.now_ms() - db_now) < 100
            assert abs(b.clock.now_ms() - db_now) < 100
            leader, other = (a, b) if leaders == ["a:1"] else (b, a)
            assert await other.maintain() == {}
            await leader._leadership.close()
            assert await other.maintain() != {}
            assert [n.id for n in await other.cluster_nodes() or [] if n.leader] == [
                other._leadership.node_id
            ]

    asyncio.run(main())


def test_two_servers_firing_at_once_enqueue_one_job_per_fire_time(database: str) -> None:
    async def main() -> None:
        async with two_servers(database) as (a, b, _):
            spec = ScheduleSpec(name="s", queue="cron", cron="* * * * *", timezone="UTC",
                                payload="null", priority=2, max_retries=3, tags="{}",
                                paused=False)  # fmt: skip
            await a.create_schedule(spec)
            fired = 0
            for _ in range(3):
                a.clock.advance(60)
                b.clock.advance(60)
                # Both ask at once, bypassing the leadership (as an old leader overlapping
                # its successor might): the guarded update lets one of them fire.
                fired += sum(await asyncio.gather(a.fire_schedules(10), b.fire_schedules(10)))
            assert fired == 3
            assert (await b.get_queue("cron")).counts.pending == 3

    asyncio.run(main())


def test_an_enqueue_on_one_server_wakes_the_other(database: str) -> None:
    async def main() -> None:
        async with two_servers(database) as (a, _, woken):
            start = time.monotonic()
            await a.enqueue(new_job("wake"))
            # Well within the fallback poll's period: the notification did it.
            assert await woken.wait_for("wake", POLL_S, since=start) < POLL_S / 3

    asyncio.run(main())


def test_a_lost_notification_only_delays_the_wake_up(database: str) -> None:
    async def main() -> None:
        async with two_servers(database) as (a, _, woken):
            job = await a.enqueue(new_job("quiet", delay=3600))
            # Made pending behind the servers' backs: no NOTIFY tells anyone.
            async with await psycopg.AsyncConnection.connect(database, autocommit=True) as conn:
                await conn.execute("UPDATE jobs SET state = 'pending' WHERE id = %s", (job.job_id,))
            assert await woken.wait_for("quiet", POLL_S * 2 + 1) <= POLL_S * 2 + 1

    asyncio.run(main())


def test_a_notification_too_big_to_name_its_queues_wakes_those_with_work(database: str) -> None:
    async def main() -> None:
        async with two_servers(database) as (a, _, woken):
            await a.enqueue(new_job("big"))
            await woken.wait_for("big", POLL_S * 2 + 1)
            async with await psycopg.AsyncConnection.connect(database, autocommit=True) as conn:
                start = time.monotonic()
                await conn.execute("""SELECT pg_notify('jobbie', '{"node": "c:3", "all": true}')""")
            # At once, not at the next poll.
            assert await woken.wait_for("big", POLL_S, since=start) < POLL_S / 3

    asyncio.run(main())


class FastClock(Clock):
    """A machine whose clock runs ten minutes ahead."""

    def now_ms(self) -> int:
        return super().now_ms() + 600_000


def test_a_server_with_a_skewed_clock_keeps_the_database_time(database: str) -> None:
    async def main() -> None:
        other = await PostgresStore.open(database, node_id="other:2", address="127.0.0.1:2")
        store = await PostgresStore.open(
            database, node_id="fast:1", address="127.0.0.1:1", clock=FastClock()
        )
        try:
            async with await psycopg.AsyncConnection.connect(database) as conn:
                cur = await conn.execute(f"SELECT {DB_NOW}")
                db_now = (await cur.fetchone() or [0])[0]
            assert abs(store.clock.now_ms() - db_now) < 100
            # A job another server made due in a minute is not promoted early here.
            job = await other.enqueue(new_job("skew", delay=60))
            await other._leadership.close()
            assert await store.maintain() != {}, "the fast server should lead now"
            assert (await store.get_job(job.job_id)).state == "scheduled"
            # The test offset still moves it.
            store.clock.advance(61)
            await store.maintain()
            assert (await store.get_job(job.job_id)).state == "pending"
        finally:
            await store.close()
            await other.close()

    asyncio.run(main())


def test_a_departed_servers_background_bulk_operation_is_failed(database: str) -> None:
    async def main() -> None:
        async with two_servers(database) as (a, _, _):
            async with await psycopg.AsyncConnection.connect(database, autocommit=True) as conn:
                for bulk_id, node in (("bulk_gone", "gone:9"), ("bulk_mine", "a:1")):
                    await conn.execute(
                        "INSERT INTO bulk_operations (id, action, status, estimated_total,"
                        " request, created_at, node_id) VALUES (%s, 'retry', 'running', 5000,"
                        " '{}', 0, %s)",
                        (bulk_id, node),
                    )
            await a._leadership._heartbeat()
            assert (await a.get_bulk("bulk_gone")).status == "failed"
            assert (await a.get_bulk("bulk_mine")).status == "running"

    asyncio.run(main())


def test_a_pooled_connection_the_database_ended_is_replaced_before_use(database: str) -> None:
    """The pool skips its round-trip check for a connection with nothing to read; one the
    server ended (a restart, a terminated backend) has, so it is replaced, not handed out."""

    async def main() -> None:
        woken = Woken()
        store = await PostgresStore.open(
            database, node_id="a:1", address="127.0.0.1:1", on_commit=woken
        )
        try:
            await asyncio.gather(*(store.enqueue(new_job("ended")) for _ in range(4)))
            async with await psycopg.AsyncConnection.connect(database, autocommit=True) as conn:
                cur = await conn.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    " AND state = 'idle' AND application_name = 'jobbie'"
                    " AND query NOT LIKE 'LISTEN%%' AND query NOT LIKE '%%jobbie_announce%%'"
                )
                assert (await cur.fetchone() or [0])[0] >= 1
            await asyncio.sleep(0.2)  # the termination reaches the sockets
            # Every pooled connection was ended: each of these would fail if handed out.
            await asyncio.gather(*(store.enqueue(new_job("ended")) for _ in range(4)))
            assert (await store.get_queue("ended")).counts.pending == 8
        finally:
            await store.close()

    asyncio.run(main())
