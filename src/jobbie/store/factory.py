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
    if scheme != "sqlite":
        raise ValueError("--database postgresql://... is not supported yet: use SQLite")
    if not str(sqlite_dir(url, Path("."))).strip("."):
        raise ValueError("--database sqlite:///PATH needs a path")


def sqlite_dir(url: str | None, data_dir: Path) -> Path:
    """The data directory of a `sqlite:///path` URL, or `data_dir` when no URL is given."""
    if url is None:
        return data_dir
    # sqlite:///relative/dir and sqlite:////absolute/dir, as SQLAlchemy spells them.
    path = unquote(urlsplit(url).path)
    return Path(path[1:] if path.startswith("/") else path)


async def open_store(
    *,
    database: str | None,
    data_dir: Path,
    durable: bool,
    retention: Retention,
    clock: Clock,
    on_commit: CommitCallback | None = None,
) -> Store:
    """Open (creating and migrating if needed) the store `database` names."""
    check_database_url(database)
    # Imported here so a backend's driver loads only when that backend is chosen.
    from jobbie.store.sqlite.store import SqliteStore

    return await SqliteStore.open(
        sqlite_dir(database, data_dir),
        durable=durable,
        on_commit=on_commit,
        retention=retention,
        clock=clock,
    )
