"""The repository's values files as a test repository with fewer apps keeps them: only its apps' sections (a
section that names no app is an error, ``deployctl/release/values.py``). Text in, text out: comments and layout kept."""

from __future__ import annotations

import re
from collections.abc import Collection
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_TOP_KEY = re.compile(r"^([^\s#][^:]*):")


def sections(text: str, apps: Collection[str]) -> str:
    """``text`` without the top-level sections of apps not in ``apps``."""
    kept, keep = [], True
    for line in text.splitlines(keepends=True):
        key = _TOP_KEY.match(line)
        if key is not None:
            keep = key.group(1) in apps
        if keep:
            kept.append(line)
    return "".join(kept)


def reference(name: str, apps: Collection[str] = ("api",)) -> str:
    """The repository's ``values-dev.yaml`` or ``values-prod.yaml`` with the sections of ``apps`` only."""
    return sections((ROOT / name).read_text(), apps)
