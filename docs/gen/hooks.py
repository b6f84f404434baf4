"""MkDocs hooks (mkdocs.yml `hooks:`): fill the `<!-- generated: NAME -->` markers of the
hand-written pages from the code, and publish the OpenAPI document beside the site.

Everything is built in process from the installed `jobbie` package: no server is started.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # so `docs.gen` imports when mkdocs runs from its script

from mkdocs.exceptions import PluginError  # noqa: E402
from mkdocs.structure.files import File, Files  # noqa: E402

from docs.gen import cli_ref, config_ref, http_ref, metrics_ref  # noqa: E402

MARKER = re.compile(r"<!--\s*generated:\s*([\w-]+)\s*-->")
GENERATORS: dict[str, Callable[[], str]] = {
    "cli": cli_ref.render,
    "configuration": config_ref.render,
    "http-api": http_ref.render,
    "metrics": metrics_ref.render,
}


def on_files(files: Files, config: Any) -> Files:
    """Publish /reference/openapi.json: the same document the server serves."""
    document = json.dumps(http_ref.document(), indent=2)
    files.append(File.generated(config, "reference/openapi.json", content=document))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    """Replace each marker with its generated Markdown; an unknown marker fails the build."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        generator = GENERATORS.get(name)
        if generator is None:
            raise PluginError(f"{page.file.src_path}: unknown generated section {name!r}")
        return generator()

    return MARKER.sub(fill, markdown)
