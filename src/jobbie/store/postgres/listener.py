"""Wake-ups across servers: LISTEN for the other servers' commits, with a poll as the fallback.

Every transaction that may have made work available ends with one NOTIFY on the `jobbie`
channel naming its node and the queues it woke (`tx.Announcer`). Each server keeps one dedicated
connection (outside the pool) LISTENing, and hands other servers' wake-ups to its commit
callback, as if it had committed them itself: parked long-polls claim again and the SSE hub
reads the new events. A notification can be lost (the connection drops and reconnects, or the
payload was too big and says "all"), so every `POLL_S` the listener also wakes one waiter per
queue with pending jobs, read cheaply from the slotted counters: a lost notification delays a
job by at most that long, never strands it.

At start-up the listener checks that notifications reach it: it sends itself one through the
pool and waits for it. A connection pooler in transaction mode (PgBouncer's
`pool_mode = transaction`) hands the LISTEN to a server connection the listener no longer
holds, so the probe never arrives and the server refuses to start, saying why, rather than
run with wake-ups (and, soon after, prepared statements) silently broken.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from typing import Any

import msgspec
import psycopg
from psycopg.conninfo import make_conninfo

from jobbie.errors import Unavailable
from jobbie.notifier import Wakes
from jobbie.store.base import CommitCallback
from jobbie.store.postgres.database import CONNECT_TIMEOUT_S, PoolSettings, conninfo, safe_dsn
from jobbie.store.postgres.tx import CHANNEL, Database, Tx

log = logging.getLogger("jobbie.store")

POLL_S = 1.5
# How long the start-up probe waits for its own notification (it takes milliseconds).
PROBE_S = 5.0
# Reconnecting after the connection dropped: the first wait, doubling up to the last.
_BACKOFF_S = (0.1, 2.0)


class _Notice(msgspec.Struct):
    node: str
    wake: dict[str, int] = {}
    all: bool = False
    probe: str | None = None  # the start-up check's token (see Listener.start)


_decode = msgspec.json.Decoder(_Notice).decode


class Listener:
    """One LISTEN connection per server, and the fallback poll."""

    def __init__(
        self, url: str, settings: PoolSettings, db: Database, on_commit: CommitCallback
    ) -> None:
        # TCP keepalives, so a connection to a vanished host is noticed without traffic.
        self._conninfo = make_conninfo(
            conninfo(url, settings), keepalives_idle=5, keepalives_interval=2, keepalives_count=3
        )
        self._url = url
        self._db = db
        self._on_commit = on_commit
        self._poll_now = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Listen before returning, so that no commit after start-up goes unheard; refuse
        (Unavailable) when notifications do not reach this connection."""
        conn = await self._connect()
        try:
            await self._probe(conn)
        except BaseException:
            with contextlib.suppress(psycopg.Error, OSError):
                await conn.close()
            raise
        self._tasks = [
            asyncio.create_task(self._listen(conn), name="jobbie-listen"),
            asyncio.create_task(self._poll_loop(), name="jobbie-poll"),
        ]

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        try:
            conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
            await conn.execute(f"LISTEN {CHANNEL}")
        except (psycopg.Error, OSError) as exc:
            raise Unavailable(f"cannot listen on {safe_dsn(self._url)}: {exc}") from exc
        return conn

    async def _probe(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Notify ourselves through the pool and wait for it on the LISTEN connection."""
        token = secrets.token_hex(8)
        payload = msgspec.json.encode(_Notice(node=self._db.node_id, probe=token)).decode()
        await self._db.read(lambda tx: _notify(tx, payload), "the notification check")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(PROBE_S):
                async for notice in conn.notifies():
                    if notice.payload == payload:
                        return
                    self._handle(notice.payload)  # another server's, meanwhile
        raise Unavailable(
            f"notifications do not reach this server through {safe_dsn(self._url)}: a"
            " connection pooler in transaction mode (PgBouncer's pool_mode = transaction)"
            " breaks LISTEN, session locks and prepared statements; connect Jobbie to"
            " PostgreSQL directly, or through PgBouncer in session mode"
        )

    async def _listen(self, conn: psycopg.AsyncConnection[Any] | None) -> None:
        delay = _BACKOFF_S[0]
        while True:
            try:
                if conn is None:
                    conn = await asyncio.wait_for(self._connect(), CONNECT_TIMEOUT_S * 2)
                    log.info("listening for other servers' commits again")
                    # Whatever was notified while we were away is found by polling now.
                    self._poll_now.set()
                self._db.unreachable = False
                delay = _BACKOFF_S[0]
                async for notice in conn.notifies():
                    self._handle(notice.payload)
            except (Unavailable, psycopg.Error, OSError, TimeoutError) as exc:
                # Requests now give up on the pool quickly rather than wait its full timeout.
                self._db.unreachable = True
                log.warning("LISTEN connection lost, reconnecting: %s", exc)
            finally:
                if conn is not None:
                    with contextlib.suppress(psycopg.Error, OSError):
                        await conn.close()
                    conn = None
            await asyncio.sleep(delay)
            delay = min(delay * 2, _BACKOFF_S[1])

    def _handle(self, payload: str) -> None:
        try:
            notice = _decode(payload)
        except msgspec.DecodeError:
            log.debug("ignored a notification: %r", payload[:200])
            return
        if notice.node == self._db.node_id:
            return  # this server woke its own waiters when it committed
        if notice.all:
            self._poll_now.set()
        else:
            self._on_commit(Wakes(notice.wake))

    async def _poll_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL_S):
                    await self._poll_now.wait()
            self._poll_now.clear()
            try:
                queues = await self._db.read(_pending_queues, "wake-up poll")
            except Unavailable as exc:
                log.debug("wake-up poll failed: %s", exc.message)
                continue
            # One waiter per queue: one that gets a full claim passes the wake-up on.
            self._on_commit(Wakes(dict.fromkeys(queues, 1)))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []


async def _notify(tx: Tx, payload: str) -> None:
    await tx.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))


async def _pending_queues(tx: Tx) -> list[str]:
    rows = await tx.all(
        "SELECT queue FROM queue_counts WHERE state = 'pending' GROUP BY queue HAVING sum(n) > 0"
    )
    return [row["queue"] for row in rows]
