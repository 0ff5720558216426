"""Multi-document YAML as charts render it (a release's manifest), parsed by one loader for every reader.

libyaml's safe loader when PyYAML carries it (its wheels do): the pure-Python one was a tenth of a promotion's
CPU, per app (issue 29). Both give the same documents (``tests/unit/test_manifest_loader.py``).
"""

from __future__ import annotations

from typing import Any

import yaml

LOADER: type[yaml.SafeLoader] | type[yaml.CSafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def documents(text: str) -> list[Any]:
    """Every document of ``text``, empty ones (``None``) included, in order."""
    return list(yaml.load_all(text, Loader=LOADER))
