"""PostgreSQL's failure counts are kept in slots (one per server connection, like queue_counts):
a job counted dead in one slot and retried from another leaves a +1 and a -1 behind. The
failure groups must ignore such cells, and maintenance must delete them, but never a row that a
concurrent transaction is counting in at that moment. (The groups themselves are checked on
both backends by tests/contract/test_failure_groups.py.)"""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from jobbie.store.postgres.store import PostgresStore

pytestmark = pytest.mark.postgres

Cell = tuple[str, str, str, int, int]  # signature, state, queue, slot, n


def rows(conn: psycopg.Connection[tuple[object, ...]]) -> list[tuple[object, ...]]:
    return conn.execute(
        "SELECT signature, state, queue, slot, n FROM failure_counts ORDER BY 1, 2, 3, 4"
    ).fetchall()


def test_cells_summing_to_zero_are_ignored_then_compacted(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:

        async def main() -> None:
            store = await PostgresStore.open(url, node_id="node-a", address="http://a")
            try:
                cells: list[Cell] = [
                    ("KeyError: '<str>'", "dead", "a", 3, 1),  # counted in slot 3,
                    ("KeyError: '<str>'", "dead", "a", 5, -1),  # uncounted in slot 5
                    ("KeyError: '<str>'", "retrying", "a", 1, 0),
                    ("ValueError", "dead", "b", 2, 2),  # its jobs are not in the table: the
                    ("ValueError", "dead", "b", 7, -1),  # groups count what the rows say
                    ("Locked", "dead", "c", 4, 1),
                    ("Locked", "dead", "c", 6, -1),
                ]
                conn.execute(
                    "INSERT INTO failure_counts (signature, state, queue, slot, n)"
                    " SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::smallint[],"
                    " %s::bigint[])",
                    [list(column) for column in zip(*cells, strict=True)],
                )
                groups = await store.failure_groups()
                assert [(g.signature, g.count, g.queues) for g in groups] == [
                    ("ValueError", 1, ["b"])
                ]

                # Another transaction counting in one of the "Locked" rows: that cell stays.
                with psycopg.connect(url) as other:
                    other.execute(
                        "SELECT * FROM failure_counts WHERE signature = 'Locked' AND slot = 4"
                        " FOR UPDATE"
                    )
                    assert await store.compact_failure_counts(100) == 3
                assert rows(conn) == [
                    ("Locked", "dead", "c", 4, 1),
                    ("Locked", "dead", "c", 6, -1),
                    ("ValueError", "dead", "b", 2, 2),
                    ("ValueError", "dead", "b", 7, -1),
                ]
                await store.maintain()
                assert [r[0] for r in rows(conn)] == ["ValueError", "ValueError"]
            finally:
                await store.close()

        asyncio.run(main())
