"""Reading a stopped server's embedded database whole, for moving it to another store.

The server keeps no lock file; what guards its data directory is SQLite's own locking. A server
holds its writer connection open in WAL mode for as long as it runs, and that connection's
shared lock on the database file is what `open_source` tests: it asks for the file's exclusive
lock (`PRAGMA locking_mode=EXCLUSIVE`, then `BEGIN EXCLUSIVE`), which SQLite grants only when no
other process has the database open. So a running server, even an idle one, is refused, and
while the returned connection holds the lock a server starting on the directory fails to open
it ("database is locked") instead of writing behind the copy's back.

Nothing is written: no migration, no row. (Closing the connection folds a WAL left by a killed
server into the database file, as the server's own next start would; the rows are unchanged.)
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from jobbie.store.sqlite.database import migration_files
from jobbie.store.sqlite.store import DB_FILE

# How long to wait for the exclusive lock: a server that just stopped has let go already.
LOCK_WAIT_S = 1.0


class SourceRefused(Exception):
    """The data directory cannot be read for a move; the message says why, for an operator."""


def open_source(data_dir: Path) -> sqlite3.Connection:
    """A connection holding `data_dir`'s database exclusively, inside a transaction (so every
    read sees one state), after checking that its schema is the one this code writes.
    Close it to let go of the lock."""
    path = data_dir / DB_FILE
    if not path.is_file():
        raise SourceRefused(f"no Jobbie database at {path}")
    conn = sqlite3.connect(path, isolation_level=None, timeout=LOCK_WAIT_S)
    try:
        conn.execute("PRAGMA locking_mode=EXCLUSIVE")
        try:
            conn.execute("BEGIN EXCLUSIVE")
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                raise SourceRefused(
                    f"{path} is in use (a server is running on {data_dir}?): stop it first"
                ) from exc
            raise SourceRefused(f"cannot open {path}: {exc}") from exc
        check_schema(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn


def check_schema(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse a database whose migrations differ from the ones this code ships."""
    try:
        done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    except sqlite3.DatabaseError as exc:
        raise SourceRefused(f"{path} is not a Jobbie database ({exc})") from exc
    shipped = {version for version, _, _ in migration_files()}
    if done - shipped:
        raise SourceRefused(
            f"{path} was written by a newer Jobbie (schema version {max(done)}): move it with"
            " that version's migrate-store"
        )
    if shipped - done:
        raise SourceRefused(
            f"{path} has an older schema (version {max(done, default=0)}, this Jobbie writes"
            f" {max(shipped)}): start the current server on it once and stop it, then run"
            " migrate-store again"
        )


def columns(conn: sqlite3.Connection, table: str) -> list[str]:
    """The table's columns, in their order."""
    return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
