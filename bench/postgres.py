"""PostgreSQL for the bench: a fresh database per run, and what PostgreSQL spent on it.

`bench.run --database postgres[=ADMIN_URL]` gives every run its own database, created through
the admin URL (`CREATE DATABASE jobbie_bench_<pid>_<n>`) and dropped after the run. Over a
timed window the bench then reads two costs from PostgreSQL itself:

- WAL bytes: `pg_current_wal_lsn()` before and after (`pg_wal_lsn_diff`). The WAL is one stream
  for the whole cluster, so another database busy meanwhile inflates the figure.
- CPU: utime + stime from `/proc/<pid>/stat` of the postmaster and its children, before and
  after, counting the backends connected to the bench's database and the shared background
  processes (WAL writer, checkpointer, background writer, autovacuum), but not the backends of
  other databases (they are reported apart, as noise). Only possible when PostgreSQL runs on
  this machine; otherwise the CPU figure is n/a.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
CLK_TCK = os.sysconf("SC_CLK_TCK")
_numbers = itertools.count(1)


def database_url(admin_url: str, name: str) -> str:
    """The admin URL with its database name replaced (user, host, port and options kept)."""
    parts = urlsplit(admin_url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def _proc_stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, utime + stime in seconds) of a process, None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / CLK_TCK


@dataclass(frozen=True)
class PgSample:
    """One reading: the WAL position and the CPU of PostgreSQL's processes."""

    wal_lsn: int
    own_cpu: dict[int, float] = field(default_factory=dict)  # this database + shared processes
    other_cpu: dict[int, float] = field(default_factory=dict)  # backends of other databases


@dataclass(frozen=True)
class PgCost:
    """What PostgreSQL spent between two samples."""

    wal_bytes: int
    cpu_s: float | None  # None: PostgreSQL does not run on this machine
    other_db_cpu_s: float | None


def find_postmaster(conn: Any) -> int | None:
    """The postmaster's pid if PostgreSQL runs on this machine: the parent of `conn`'s backend."""
    backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    stat = _proc_stat(int(backend))
    if stat is None:
        return None
    try:
        comm = Path(f"/proc/{stat[0]}/comm").read_text().strip()
    except OSError:
        return None
    return stat[0] if comm.startswith("postgres") else None


def describe(admin_url: str) -> str:
    """The server's version and the settings that decide what a commit costs (connecting once
    also fails the bench early, before any run, when PostgreSQL does not answer)."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT name, setting FROM pg_settings WHERE name IN"
            " ('server_version', 'synchronous_commit', 'fsync', 'wal_level',"
            " 'full_page_writes', 'max_connections', 'shared_buffers')"
            " ORDER BY name"
        ).fetchall()
        where = "on this machine" if find_postmaster(conn) is not None else "remote: CPU n/a"
    return f"PostgreSQL {where}: " + ", ".join(f"{k}={v}" for k, v in rows)


class PgDatabase:
    """A fresh database for one run (create(), then drop()), and its cost probe."""

    def __init__(self, admin_url: str = DEFAULT_ADMIN_URL) -> None:
        self.admin_url = admin_url
        self.name = f"jobbie_bench_{os.getpid()}_{next(_numbers)}"
        self.url = database_url(admin_url, self.name)
        self._conn: Any = None
        self._postmaster: int | None = None

    def create(self) -> None:
        """CREATE DATABASE, and open the probe connection (on the admin database)."""
        import psycopg

        self._conn = psycopg.connect(self.admin_url, autocommit=True)
        self._conn.execute(f'CREATE DATABASE "{self.name}"')
        self._postmaster = find_postmaster(self._conn)

    def drop(self) -> None:
        """DROP DATABASE (forcing out any connection a killed server left behind)."""
        if self._conn is None:
            return
        try:
            self._conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        finally:
            self._conn.close()
            self._conn = None

    def sample(self) -> PgSample:
        """The WAL position now, and the CPU so far of every PostgreSQL process, split by owner."""
        lsn, activity = self._conn.execute(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint,"
            " coalesce(json_object_agg(pid, datname), '{}')"
            " FROM pg_stat_activity"
        ).fetchone()
        if self._postmaster is None:
            return PgSample(int(lsn))
        own: dict[int, float] = {}
        other: dict[int, float] = {}
        master = _proc_stat(self._postmaster)
        if master is not None:
            own[self._postmaster] = master[1]
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            stat = _proc_stat(int(entry.name))
            if stat is None or stat[0] != self._postmaster:
                continue
            database = activity.get(entry.name)
            if database is None or database == self.name:
                own[int(entry.name)] = stat[1]
            else:
                other[int(entry.name)] = stat[1]
        return PgSample(int(lsn), own, other)

    def cost(self, before: PgSample, after: PgSample) -> PgCost:
        """WAL and CPU between two samples (a process born in between counts from zero)."""

        def spent(start: dict[int, float], end: dict[int, float]) -> float:
            return sum(cpu - start.get(pid, 0.0) for pid, cpu in end.items())

        if self._postmaster is None:
            return PgCost(after.wal_lsn - before.wal_lsn, None, None)
        return PgCost(
            after.wal_lsn - before.wal_lsn,
            spent(before.own_cpu, after.own_cpu),
            spent(before.other_cpu, after.other_cpu),
        )

    def size_mib(self) -> float:
        """The database's size on disk (pg_database_size), in MiB."""
        size = self._conn.execute("SELECT pg_database_size(%s)", (self.name,)).fetchone()[0]
        return int(size) / 2**20
