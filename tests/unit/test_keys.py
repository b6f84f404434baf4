"""API key entries: `name=secret` naming, base64 padding kept whole, actors and secrets."""

from __future__ import annotations

import pytest

from jobbie.config import Settings
from jobbie.keys import fingerprint, parse_keys, secret_of, split_entry


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("ci=s3cret", ("ci", "s3cret")),
        ("ops=a=b", ("ops", "a=b")),  # only the first = splits
        ("abc123==", (None, "abc123==")),  # base64 padding: not a name
        ("abc=", (None, "abc=")),
        ("=secret", (None, "=secret")),  # no name before the =
        ("plain", (None, "plain")),
        ("k=c2VjcmV0==", ("k", "c2VjcmV0==")),
    ],
)
def test_split_entry(entry: str, expected: tuple[str | None, str]) -> None:
    assert split_entry(entry) == expected


def test_actor_is_the_name_or_a_fingerprint_never_the_key() -> None:
    named, bare, reader = parse_keys(("ci=s3cret", "abc=="), ("dash=r0",))
    assert (named.actor, named.secret, named.read_only) == ("ci", "s3cret", False)
    assert bare.actor == fingerprint("abc==") and "abc" not in bare.actor
    assert (reader.actor, reader.secret, reader.read_only) == ("dash", "r0", True)
    assert secret_of(" ci=s3cret ") == "s3cret"


def test_settings_read_keys_and_console_options_from_the_environment() -> None:
    env = {
        "JOBBIE_API_KEY": "ci=one,two",
        "JOBBIE_READ_ONLY_API_KEY": "viewer",
        "JOBBIE_SESSION_TTL": "1h",
        "JOBBIE_RETENTION_AUDIT": "7d",
    }
    s = Settings.build({}, env)
    assert [(k.actor, k.read_only) for k in s.keys] == [
        ("ci", False),
        (fingerprint("two"), False),
        (fingerprint("viewer"), True),
    ]
    assert s.session_ttl_s == 3600
    assert s.audit_retention_ms == 7 * 86_400_000
