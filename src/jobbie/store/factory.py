"""Opening the store a server is configured for: the one place that names the backends."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from jobbie.clock import Clock
from jobbie.store.base import CommitCallback, Store
from jobbie.store.params import Retention

SCHEMES = ("sqlite", "postgresql", "postgres")


def check_database_url(url: str | None) -> None:
    """Raise ValueError, with a message for the operator, unless `url` can be served."""
    if url is None:
        return
    scheme = urlsplit(url).scheme.lower()
    if scheme not in SCHEMES:
        raise ValueError(
            f"--database must be sqlite:///PATH or postgresql://..., got a {scheme or 'bare'} URL"
        )
    if scheme == "sqlite" and not str(sqlite_dir(url, Path("."))).strip("."):
        raise ValueError("--database sqlite:///PATH needs a path")


def sqlite_dir(url: str | None, data_dir: Path) -> Path:
    """The data directory of a `sqlite:///path` URL, or `data_dir` when no URL is given."""
    if url is None:
        return data_dir
    # sqlite:///relative/dir and sqlite:////absolute/dir, as SQLAlchemy spells them.
    path = unquote(urlsplit(url).path)
    return Path(path[1:] if path.startswith("/") else path)


def is_postgres(url: str | None) -> bool:
    """Whether `url` names a PostgreSQL database."""
    return url is not None and urlsplit(url).scheme.lower() in ("postgresql", "postgres")


async def open_store(
    *,
    database: str | None,
    data_dir: Path,
    durable: bool,
    retention: Retention,
    clock: Clock,
    on_commit: CommitCallback | None = None,
    node_id: str = "local",
    address: str = "",
    pool_size: int = 10,
    statement_timeout_ms: int = 5000,
) -> Store:
    """Open (creating and migrating if needed) the store `database` names. `node_id` and
    `address` name this server among those sharing a PostgreSQL database; `pool_size` and
    `statement_timeout_ms` apply to PostgreSQL only, `data_dir` and `durable` to SQLite only."""
    check_database_url(database)
    # Imported here so a backend's driver loads only when that backend is chosen.
    if database is not None and is_postgres(database):
        try:
            from jobbie.store.postgres.database import PoolSettings
            from jobbie.store.postgres.store import PostgresStore
        except ImportError as exc:
            raise ValueError(
                "--database postgresql://... needs the PostgreSQL driver:"
                " pip install 'jobbie[postgres]'"
            ) from exc
        return await PostgresStore.open(
            database,
            node_id=node_id,
            address=address,
            settings=PoolSettings(size=pool_size, statement_timeout_ms=statement_timeout_ms),
            on_commit=on_commit,
            retention=retention,
            clock=clock,
        )
    from jobbie.store.sqlite.store import SqliteStore

    return await SqliteStore.open(
        sqlite_dir(database, data_dir),
        durable=durable,
        on_commit=on_commit,
        retention=retention,
        clock=clock,
    )
