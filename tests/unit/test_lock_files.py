"""The lock files (requirements/*.txt, written by `make lock`) pin every dependency that
pyproject.toml names, at a version pyproject.toml allows.

When this fails after a dependency was added or changed in pyproject.toml: run `make lock` and
commit requirements/.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
LOCKS = {
    # lock file -> the pyproject dependency groups it must cover
    "requirements/docker.txt": ("runtime",),
    "requirements/dev.txt": ("runtime", "dev", "docs"),
}


def pins(path: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, _, version = line.partition("==")
            found[canonicalize_name(name)] = version.split(";")[0].strip()
    return found


def declared(group: str) -> list[Requirement]:
    specs = (
        PROJECT["dependencies"] if group == "runtime" else PROJECT["optional-dependencies"][group]
    )
    return [Requirement(spec) for spec in specs]


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_lock_pins_every_declared_dependency_within_its_range(lock: str) -> None:
    pinned = pins(ROOT / lock)
    problems = []
    for group in LOCKS[lock]:
        for req in declared(group):
            version = pinned.get(canonicalize_name(req.name))
            if version is None:
                problems.append(f"{req.name} ({group}) is not pinned")
            elif not req.specifier.contains(version, prereleases=True):
                problems.append(f"{req.name}=={version} is outside {req.specifier} ({group})")
    assert not problems, f"{lock} is stale; run `make lock`: " + "; ".join(problems)
