"""PostgreSQL for the bench: a fresh database per run, and what PostgreSQL spent on it.

`bench.run --database postgres[=ADMIN_URL]` gives every run its own database, created through
the admin URL (`CREATE DATABASE jobbie_bench_<pid>_<n>`) and dropped after the run. Over a
timed window the bench then reads two costs from PostgreSQL itself:

- WAL bytes: `pg_current_wal_lsn()` before and after (`pg_wal_lsn_diff`). The WAL is one stream
  for the whole cluster, so another database busy meanwhile inflates that figure; when
  PostgreSQL runs here and its `pg_wal` is readable, `pg_waldump` over the window's range also
  gives the bytes of this database's own records (a block of one of its relations, or a
  transaction that touched one, e.g. its commit record), which is the figure reported.
- CPU: utime + stime from `/proc/<pid>/stat` of the postmaster and its children, before and
  after, counting the backends connected to the bench's database and the shared background
  processes (WAL writer, checkpointer, background writer, autovacuum), but not the backends of
  other databases (they are reported apart, as noise). Only possible when PostgreSQL runs on
  this machine; otherwise the CPU figure is n/a.
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
CLK_TCK = os.sysconf("SC_CLK_TCK")
# Past this range pg_waldump is not worth running (and the segments may be recycled already).
WALDUMP_MAX_BYTES = 2 * 2**30
_numbers = itertools.count(1)
_RECORD = re.compile(r"len \(rec/tot\):\s*\d+/\s*(\d+), tx:\s*(\d+),")
_RELATION = re.compile(r"rel \d+/(\d+)/\d+")


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


def own_wal_bytes(dump: Any, database_oid: int) -> int:
    """The bytes (8-aligned, full-page images included) of the records in `pg_waldump` output
    that belong to one database: a block of one of its relations, or the same transaction."""
    total, xids = 0, set()
    for line in dump:
        match = _RECORD.search(line)
        if match is None:
            continue
        size, xid = int(match[1]), int(match[2])
        ours = any(int(db) == database_oid for db in _RELATION.findall(line))
        if ours and xid:
            xids.add(xid)  # its commit record (no relation named) comes later
        if ours or (xid and xid in xids):
            total += (size + 7) & ~7
    return total


@dataclass(frozen=True)
class PgSample:
    """One reading: the WAL position and the CPU of PostgreSQL's processes."""

    wal_lsn: int
    wal_text: str = ""  # the same position as PostgreSQL writes it (X/Y), for pg_waldump
    own_cpu: dict[int, float] = field(default_factory=dict)  # backends of this database
    shared_cpu: dict[int, float] = field(default_factory=dict)  # postmaster, WAL writer...
    other_cpu: dict[int, float] = field(default_factory=dict)  # backends of other databases


@dataclass(frozen=True)
class PgCost:
    """What PostgreSQL spent between two samples."""

    wal_bytes: int  # the whole cluster's WAL
    own_wal_bytes: int | None  # this database's records (None: pg_waldump not possible here)
    cpu_s: float | None  # backends + shared; None: PostgreSQL does not run on this machine
    backend_cpu_s: float | None  # the backends connected to this database
    other_db_cpu_s: float | None
    wal_note: str = ""  # why own_wal_bytes is None, when pg_waldump was tried


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


def find_waldump(conn: Any) -> tuple[str, str] | None:
    """(pg_waldump, pg_wal directory) when both are usable from this process, else None."""
    import psycopg

    try:
        bindir = conn.execute("SELECT setting FROM pg_config WHERE name = 'BINDIR'").fetchone()[0]
        data_dir = conn.execute("SHOW data_directory").fetchone()[0]
    except psycopg.Error:  # not a superuser: pg_config and data_directory are hidden
        return None
    binary, wal_dir = Path(bindir) / "pg_waldump", Path(data_dir) / "pg_wal"
    if not os.access(binary, os.X_OK) or not os.access(wal_dir, os.R_OK | os.X_OK):
        return None
    return str(binary), str(wal_dir)


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
        if find_postmaster(conn) is None:
            where = "remote: CPU n/a, WAL of the whole cluster"
        elif find_waldump(conn) is None:
            where = "on this machine, pg_wal unreadable: WAL of the whole cluster"
        else:
            where = "on this machine: CPU and this database's WAL records (pg_waldump)"
    return f"PostgreSQL {where}; " + ", ".join(f"{k}={v}" for k, v in rows)


class PgDatabase:
    """A fresh database for one run (create(), then drop()), and its cost probe."""

    def __init__(self, admin_url: str = DEFAULT_ADMIN_URL) -> None:
        self.admin_url = admin_url
        self.name = f"jobbie_bench_{os.getpid()}_{next(_numbers)}"
        self.url = database_url(admin_url, self.name)
        self._conn: Any = None
        self._postmaster: int | None = None
        self._oid = 0
        self._waldump: tuple[str, str] | None = None  # (pg_waldump, pg_wal directory)

    def create(self) -> None:
        """CREATE DATABASE, and open the probe connection (on the admin database)."""
        import psycopg

        self._conn = psycopg.connect(self.admin_url, autocommit=True)
        self._conn.execute(f'CREATE DATABASE "{self.name}"')
        self._postmaster = find_postmaster(self._conn)
        self._oid = int(
            self._conn.execute(
                "SELECT oid FROM pg_database WHERE datname = %s", (self.name,)
            ).fetchone()[0]
        )
        if self._postmaster is not None:
            self._waldump = find_waldump(self._conn)
        if self._waldump is not None:
            self._waldump = self._reserve_wal()

    def _reserve_wal(self) -> tuple[str, str] | None:
        """Keep the run's WAL segments until pg_waldump has read them: a checkpoint (forced by
        any DROP DATABASE, ours or another test's) may otherwise recycle them mid-window. The
        slot is temporary, so it goes with the probe's session even if the bench is killed."""
        import psycopg

        try:
            self._conn.execute(
                "SELECT pg_create_physical_replication_slot(%s, true, true)", (self.name,)
            )
        except psycopg.Error:  # e.g. max_replication_slots reached: whole-cluster WAL only
            return None
        return self._waldump

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
        lsn, text, activity = self._conn.execute(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint,"
            " pg_current_wal_lsn()::text,"
            " coalesce(json_object_agg(pid, datname), '{}')"
            " FROM pg_stat_activity"
        ).fetchone()
        if self._postmaster is None:
            return PgSample(int(lsn), text)
        own: dict[int, float] = {}
        shared: dict[int, float] = {}
        other: dict[int, float] = {}
        master = _proc_stat(self._postmaster)
        if master is not None:
            shared[self._postmaster] = master[1]
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            stat = _proc_stat(int(entry.name))
            if stat is None or stat[0] != self._postmaster:
                continue
            database = activity.get(entry.name)
            if database == self.name:
                own[int(entry.name)] = stat[1]
            elif database is None:  # background processes serve every database
                shared[int(entry.name)] = stat[1]
            else:
                other[int(entry.name)] = stat[1]
        return PgSample(int(lsn), text, own, shared, other)

    def cost(self, before: PgSample, after: PgSample) -> PgCost:
        """WAL and CPU between two samples (a process born in between counts from zero)."""

        def spent(start: dict[int, float], end: dict[int, float]) -> float:
            return sum(cpu - start.get(pid, 0.0) for pid, cpu in end.items())

        wal = after.wal_lsn - before.wal_lsn
        if self._postmaster is None:
            return PgCost(wal, None, None, None, None)
        own, note = self._own_wal(before, after)
        backends = spent(before.own_cpu, after.own_cpu)
        return PgCost(
            wal,
            own,
            backends + spent(before.shared_cpu, after.shared_cpu),
            backends,
            spent(before.other_cpu, after.other_cpu),
            note,
        )

    def _own_wal(self, before: PgSample, after: PgSample) -> tuple[int | None, str]:
        """This database's WAL between two samples by pg_waldump, or (None, why not)."""
        if after.wal_lsn == before.wal_lsn:
            return 0, ""
        if self._waldump is None:
            return None, "pg_waldump, pg_wal or a replication slot not usable here"
        if after.wal_lsn - before.wal_lsn > WALDUMP_MAX_BYTES:
            return None, f"over {WALDUMP_MAX_BYTES // 2**30} GiB of WAL: not dumped"
        binary, wal_dir = self._waldump
        cmd = [binary, "--path", wal_dir, "--start", before.wal_text, "--end", after.wal_text]
        with subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        ) as proc:
            assert proc.stdout is not None and proc.stderr is not None
            total = own_wal_bytes(proc.stdout, self._oid)
            error = proc.stderr.read()
        # A range whose segments were recycled meanwhile cannot be read: no figure then.
        if proc.returncode != 0 or error.strip():
            first = error.strip().splitlines()[0] if error.strip() else ""
            return None, f"pg_waldump exit {proc.returncode}: {first[:160]}"
        return total, ""

    def size_mib(self) -> float:
        """The database's size on disk (pg_database_size), in MiB."""
        size = self._conn.execute("SELECT pg_database_size(%s)", (self.name,)).fetchone()[0]
        return int(size) / 2**20
