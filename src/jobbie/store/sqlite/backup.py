"""Online backup of the embedded database: a consistent copy taken while a server writes.

SQLite's backup API copies every page inside one read transaction, so the copy is the database
as of one commit: a write acknowledged before the copy began is in it, one acknowledged after
is not, and nothing is half there. In WAL mode the server's writer never waits for it; the
WAL only stops shrinking until the copy is done.
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from jobbie.store.sqlite.database import BUSY_TIMEOUT_MS
from jobbie.store.sqlite.store import DB_FILE


class BackupError(Exception):
    """The copy could not be made; the message says why, for an operator."""


@dataclass(frozen=True, slots=True)
class BackupResult:
    """What `backup_database` wrote."""

    path: Path
    bytes: int
    jobs: int
    seconds: float


def backup_target(path: str | Path) -> Path:
    """A directory (existing, or named with a trailing slash) gets `jobbie.db` inside, so it
    is a ready data directory; anything else is the file to write."""
    target = Path(path)
    if target.is_dir() or str(path).endswith(("/", os.sep)):
        return target / DB_FILE
    return target


def backup_database(data_dir: Path, path: str | Path, *, overwrite: bool = False) -> BackupResult:
    """Copy `data_dir`'s database to `path` (see `backup_target`) and check the copy.

    The copy is written to a temporary file beside the target, fsync-ed, checked with
    `PRAGMA quick_check` and renamed into place, so a crash never leaves a partial backup
    under the target's name.
    """
    source = data_dir / DB_FILE
    if not source.is_file():
        raise BackupError(f"no database at {source}")
    target = backup_target(path)
    if target.resolve() == source.resolve():
        raise BackupError("the backup would overwrite the database itself")
    if target.exists() and not overwrite:
        raise BackupError(f"{target} exists (--force replaces it)")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    partial.unlink(missing_ok=True)
    started = time.perf_counter()
    # Read-only: a backup never creates, migrates or checkpoints the server's database.
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, isolation_level=None)
    try:
        src.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        dst = sqlite3.connect(partial, isolation_level=None)
        try:
            # pages=-1: every page in one step, one read transaction, one consistent snapshot
            # (a step-wise copy would restart each time the server commits).
            src.backup(dst, pages=-1)
            # The copy keeps WAL mode; fold it into the main file so one file is the backup.
            dst.execute("PRAGMA journal_mode=DELETE")
            check = dst.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise BackupError(f"the copy failed its integrity check: {check}")
            jobs = int(dst.execute("SELECT count(*) FROM jobs").fetchone()[0])
        finally:
            dst.close()
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise BackupError(f"backup of {source} failed: {exc}") from exc
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        src.close()
    _fsync(partial)
    partial.replace(target)
    _fsync(target.parent)
    return BackupResult(
        path=target,
        bytes=target.stat().st_size,
        jobs=jobs,
        seconds=time.perf_counter() - started,
    )


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
