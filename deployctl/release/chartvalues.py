"""What an app's chart is given, pure: its own section of the environment's values file, and the image
pinned through the app's ``image_values`` mapping (any chart's keys: ``image.digest``, or one string
``image: "{registry}/{repository}@{digest}"``, ...). Also the reverse: the image a values section pins.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from deployctl.config import App
from deployctl.core.refs import DIGEST_RE, ImageRef

_PLACEHOLDER = re.compile(r"{([a-z_]+)}")
_PART = {"digest": r"sha256:[0-9a-f]{64}", "tag": r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"}


def image_parts(image: ImageRef, git_sha: str | None) -> dict[str, str]:
    return {
        "registry": image.registry,
        "repository": image.repository,
        "digest": image.digest or "",
        "tag": image.tag or "",
        "git_sha": git_sha or "",
    }


def image_values(app: App, image: ImageRef, git_sha: str | None) -> dict[str, str]:
    """Chart value key -> value that pin ``image``; a key whose placeholders are not all known is left out
    (no tag, no commit), so the chart's own default applies there."""
    parts = image_parts(image, git_sha)
    found = {}
    for key, template in app.image_values.items():
        names = _PLACEHOLDER.findall(template)
        if all(parts.get(name) for name in names):
            found[key] = _PLACEHOLDER.sub(lambda m: parts[m.group(1)], template)
    return found


def nested(values: Mapping[str, str]) -> dict[str, Any]:
    """``{"image.digest": "x"}`` -> ``{"image": {"digest": "x"}}`` (what a values file holds)."""
    tree: dict[str, Any] = {}
    for key, value in values.items():
        node = tree
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return tree


def lookup(section: Mapping[str, Any], key: str) -> Any:
    node: Any = section
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def pinned(app: App, section: Mapping[str, Any]) -> dict[str, str]:
    """The image parts a values section pins through ``app.image_values`` (e.g. ``{"digest": ..., "tag": ...}``):
    each key's value is read back against its template. Parts that are not there, or do not read back, are
    absent; ``digest`` is present only when it is a full sha256 digest."""
    found: dict[str, str] = {}
    for key, template in app.image_values.items():
        value = lookup(section, key)
        if not isinstance(value, str) or not value:
            continue
        match = re.fullmatch(_pattern(template), value)
        if match is None:
            continue
        for name, part in match.groupdict().items():
            if part:
                found.setdefault(name, part)
    if "digest" in found and not DIGEST_RE.match(found["digest"]):
        del found["digest"]
    return found


def _pattern(template: str) -> str:
    """A regex that reads a value back against its template (each placeholder a named group, once)."""
    out, seen, last = [], set(), 0
    for match in _PLACEHOLDER.finditer(template):
        out.append(re.escape(template[last : match.start()]))
        name = match.group(1)
        part = _PART.get(name, r".+?")
        out.append(f"(?P={name})" if name in seen else f"(?P<{name}>{part})")
        seen.add(name)
        last = match.end()
    out.append(re.escape(template[last:]))
    return "".join(out)
