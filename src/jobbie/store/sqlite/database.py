"""Opening SQLite connections with Jobbie's settings, and applying numbered migrations."""

from __future__ import annotations

import logging
import sqlite3
import time
import urllib.parse
from importlib import resources
from pathlib import Path

log = logging.getLogger("jobbie.store")

MIN_SQLITE = (3, 38, 0)
BUSY_TIMEOUT_MS = 5000


def open_connection(path: Path, *, durable: bool, readonly: bool = False) -> sqlite3.Connection:
    """A connection in WAL mode; `durable` selects synchronous=FULL over NORMAL."""
    if sqlite3.sqlite_version_info < MIN_SQLITE:
        raise RuntimeError(
            f"SQLite {sqlite3.sqlite_version} is too old: Jobbie needs 3.38 or newer"
        )
    if readonly:
        # A URI: `?` and `#` in the path must be escaped or SQLite opens another file.
        uri = f"file:{urllib.parse.quote(str(path.absolute()))}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
    else:
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        # checkpoint.py folds the WAL back in from its own thread; automatic checkpoints by a
        # committing connection are only a backstop (400 MB), and a WAL file left larger than
        # 64 MB by a burst is cut back once it restarts.
        conn.execute("PRAGMA wal_autocheckpoint=100000")
        conn.execute(f"PRAGMA journal_size_limit={64 << 20}")
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA cache_size=-65536")  # 64 MiB page cache per connection
    conn.execute("PRAGMA temp_store=MEMORY")
    return conn


def migration_files() -> list[tuple[int, str, str]]:
    """(version, name, sql) of every migration shipped in the package, in order."""
    found = []
    for entry in resources.files("jobbie.store.sqlite.migrations").iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found.append((version, entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Apply the migrations not yet recorded in `schema_migrations`; return their names."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations"
        " (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)"
    )
    done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    applied = []
    for version, name, sql in migration_files():
        if version in done:
            continue
        # executescript would commit on its own; wrap each file so it applies whole or not.
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _split_statements(sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (version, name, time.time_ns() // 1_000_000),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        log.info("applied migration %s", name)
        applied.append(name)
    return applied


def _split_statements(sql: str) -> list[str]:
    """Split a SQL script into complete statements (triggers contain inner semicolons)."""
    statements, current = [], ""
    for line in sql.splitlines(keepends=True):
        if line.lstrip().startswith("--") and not current.strip():
            continue
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        statements.append(current.strip())
    return statements
