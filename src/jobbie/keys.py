"""API keys: `--api-key` entries, optionally named (`name=secret`), and read-only keys.

An entry is named only when the text after its first `=` is non-empty and not only `=` signs,
so a base64 key with padding (`abc==`) stays one secret. The actor recorded in the audit log
is the key's name, or a short fingerprint of the key when it has none (never the key).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

ANONYMOUS = "anonymous"


@dataclass(frozen=True, slots=True)
class ApiKey:
    secret: str
    name: str | None = None
    read_only: bool = False

    @property
    def actor(self) -> str:
        return self.name or fingerprint(self.secret)


def split_entry(entry: str) -> tuple[str | None, str]:
    """(name, secret) of one `--api-key` entry."""
    name, sep, rest = entry.partition("=")
    if sep and name and rest.strip("="):
        return name, rest
    return None, entry


def secret_of(entry: str) -> str:
    """What a client sends for an entry of JOBBIE_API_KEY: the secret part only."""
    return split_entry(entry.strip())[1]


def fingerprint(secret: str) -> str:
    return "key:" + hashlib.sha256(secret.encode()).hexdigest()[:8]


def parse_keys(entries: tuple[str, ...], read_only: tuple[str, ...] = ()) -> tuple[ApiKey, ...]:
    keys = [ApiKey(secret, name) for name, secret in map(split_entry, entries)]
    keys += [ApiKey(secret, name, read_only=True) for name, secret in map(split_entry, read_only)]
    return tuple(keys)
