"""Which server runs the scheduler, and which servers are alive.

Leadership is one row in `leader` with a lease: the leader renews it on every scheduler pass
(and on its heartbeat), any server takes it once it has run out, in one statement, so two
servers never both succeed. A killed leader is replaced within `LEADER_TTL_MS` plus one
scheduler interval. Lease times are the database's own clock (`clock_timestamp()`), never a
server's, and never the test offset: a test moving one server's clock must not end the
leader's lease.

Every server also keeps a row in `nodes` fresh (its heartbeat, every `HEARTBEAT_S`); a server
not seen for `NODE_TTL_MS` is gone: not listed, and pruned. The heartbeat also measures how far
this machine's clock is from the database's, for `DbClock`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from jobbie.errors import Unavailable
from jobbie.models import ClusterNode
from jobbie.store.postgres.tx import Database, Tx
from jobbie.timeutil import rfc3339

log = logging.getLogger("jobbie.store")

LEADER = "scheduler"
LEADER_TTL_MS = 3000
HEARTBEAT_S = 1.0
NODE_TTL_MS = 10_000
# A skew measured over a slower round trip than this is too uncertain to use (a distant
# database's 100 ms still tells a clock that is seconds off).
_SKEW_MAX_RTT_MS = 1000
_SKEW_SAMPLES = 3

# The database's clock in epoch milliseconds, advancing within a transaction.
DB_NOW = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint"


class Leadership:
    """This server's membership of the cluster and its claim on the scheduler."""

    def __init__(self, db: Database, *, node_id: str, address: str) -> None:
        self._db = db
        self.node_id = node_id
        self.address = address
        self._task: asyncio.Task[None] | None = None
        self._leading = False
        # Why the last heartbeat failed (None: it worked): readiness answers from it at once
        # rather than wait for the database again.
        self.failing: str | None = None

    async def start(self) -> None:
        """Measure the clock skew, join the cluster, and keep the heartbeat going."""
        await self._heartbeat()
        self._task = asyncio.create_task(self._beat(), name="jobbie-heartbeat")

    async def lead(self) -> bool:
        """Renew or take the leadership; True while this server leads. Called on every
        scheduler pass; False (not leading) while the database is unreachable."""
        try:
            leading = await self._db.read(self._claim, "leader election")
        except Unavailable as exc:
            leading = False
            if self._leading:
                log.warning("no longer leading: %s", exc.message)
        if leading != self._leading:
            log.info("leading the scheduler" if leading else "another server leads the scheduler")
        self._leading = leading
        return leading

    async def _claim(self, tx: Tx) -> bool:
        row = await tx.one(
            "INSERT INTO leader (name, node_id, expires_at)"
            f" VALUES (%s, %s, {DB_NOW} + %s)"
            " ON CONFLICT (name) DO UPDATE SET node_id = excluded.node_id,"
            " expires_at = excluded.expires_at"
            f" WHERE leader.node_id = excluded.node_id OR leader.expires_at <= {DB_NOW}"
            " RETURNING node_id",
            (LEADER, self.node_id, LEADER_TTL_MS),
        )
        return row is not None

    async def nodes(self) -> list[ClusterNode]:
        """The servers seen within `NODE_TTL_MS`, the leader flagged, by id."""
        rows = await self._db.read(
            lambda tx: tx.all(
                "SELECT n.id, n.address, n.last_seen, l.node_id IS NOT NULL AS leader"
                " FROM nodes AS n LEFT JOIN leader AS l ON l.name = %s AND l.node_id = n.id"
                f" AND l.expires_at > {DB_NOW}"
                f" WHERE n.last_seen > {DB_NOW} - %s ORDER BY n.id",
                (LEADER, NODE_TTL_MS),
            ),
            "cluster status",
        )
        return [
            ClusterNode(
                id=row["id"],
                address=row["address"] or None,
                leader=row["leader"],
                last_seen=rfc3339(row["last_seen"]) or "",
            )
            for row in rows
        ]

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            try:
                await self._heartbeat()
            except Unavailable as exc:
                if self.failing is None:
                    log.warning("heartbeat failed: %s", exc.message)
                self.failing = exc.message
            else:
                if self.failing is not None:
                    log.info("heartbeat works again")
                self.failing = None

    async def _heartbeat(self) -> None:
        """Refresh this node's row, renew a leadership it holds, forget departed nodes, and
        measure the clock skew."""

        async def beat(tx: Tx) -> None:
            await self._measure_skew(tx)
            await tx.execute(
                "INSERT INTO nodes (id, address, started_at, last_seen)"
                f" VALUES (%s, %s, {DB_NOW}, {DB_NOW})"
                " ON CONFLICT (id) DO UPDATE SET address = excluded.address,"
                " last_seen = excluded.last_seen",
                (self.node_id, self.address),
            )
            await tx.execute(
                f"UPDATE leader SET expires_at = {DB_NOW} + %s"
                f" WHERE name = %s AND node_id = %s AND expires_at > {DB_NOW}",
                (LEADER_TTL_MS, LEADER, self.node_id),
            )
            await tx.execute(f"DELETE FROM nodes WHERE last_seen <= {DB_NOW} - %s", (NODE_TTL_MS,))
            # A departed node's background bulk operations will never finish: say so (the
            # jobs they changed stay changed; running the request again does the rest).
            await tx.execute(
                f"UPDATE bulk_operations SET status = 'failed', finished_at = {DB_NOW}"
                " WHERE status = 'running' AND node_id IS NOT NULL"
                " AND node_id NOT IN (SELECT id FROM nodes)"
            )

        await self._db.read(beat, "heartbeat")

    async def _measure_skew(self, tx: Tx) -> None:
        """Set `DbClock.skew_ms` from the quickest of a few round trips. The database read
        its clock somewhere within the round trip: the estimate is good to half of it, so a
        change within that is noise and is ignored (the clock does not jitter)."""
        clock = self._db.clock

        def local_ms() -> int:
            # This machine's clock as the DbClock wraps it, without the skew or test offset.
            return clock.now_ms() - clock.skew_ms - clock.offset_ms

        best: tuple[int, int] | None = None  # (round trip, skew)
        for _ in range(_SKEW_SAMPLES):
            before = local_ms()
            row = await tx.one(f"SELECT {DB_NOW} AS now")
            after = local_ms()
            assert row is not None
            sample = (after - before, row["now"] - (before + after) // 2)
            if best is None or sample[0] < best[0]:
                best = sample
        assert best is not None
        rtt, skew = best
        if rtt <= _SKEW_MAX_RTT_MS and abs(skew - clock.skew_ms) > rtt // 2 + 1:
            clock.skew_ms = skew

    async def close(self) -> None:
        """Stop the heartbeat, hand the leadership back and leave the cluster, so another
        server leads at its next pass instead of waiting for the lease to run out."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Unavailable):
            await self._db.read(
                lambda tx: tx.execute(
                    "DELETE FROM leader WHERE name = %s AND node_id = %s", (LEADER, self.node_id)
                ),
                "leaving the cluster",
            )
            await self._db.read(
                lambda tx: tx.execute("DELETE FROM nodes WHERE id = %s", (self.node_id,)),
                "leaving the cluster",
            )
        self._leading = False
