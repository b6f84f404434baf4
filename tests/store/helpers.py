"""Running store operations directly on a connection, as the writer does."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TypeVar

from jobbie.store.sqlite.writer import Tx, flush_group

T = TypeVar("T")


def run_tx(conn: sqlite3.Connection, op: Callable[[Tx], T], now: int) -> T:
    """One writer transaction at `now`: the operation, its buffered events and totals, COMMIT."""
    conn.execute("BEGIN")
    tx = Tx(conn, now)
    try:
        result = op(tx)
        flush_group(conn, [tx])
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result
