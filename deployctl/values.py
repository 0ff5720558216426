"""Round-trip edits of an environment values file (``values-prod.yaml``): image.tag and image.digest.

ruamel.yaml's round-trip mode keeps comments, key order and quoting; the new
values keep the quoting style of the old ones. The edit is returned as a unified
diff so it can be shown before (and instead of, with ``--dry-run``) writing.
"""

from __future__ import annotations

import difflib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deployctl.errors import UsageError
from deployctl.model import DIGEST_RE


@dataclass(frozen=True)
class ImageValues:
    tag: str
    digest: str


@dataclass(frozen=True)
class ValuesEdit:
    path: Path
    before: str
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after

    @property
    def diff(self) -> str:
        name = self.path.name
        return "".join(
            difflib.unified_diff(
                self.before.splitlines(keepends=True),
                self.after.splitlines(keepends=True),
                fromfile=f"a/{name}",
                tofile=f"b/{name}",
            )
        )

    def write(self) -> None:
        if self.changed:
            tmp = self.path.with_name(f".{self.path.name}.deployctl-tmp")
            tmp.write_text(self.after, encoding="utf-8")
            tmp.replace(self.path)


def _yaml() -> Any:
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap long lines (digests, comments)
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def _load(text: str, label: str) -> Any:
    from ruamel.yaml.error import YAMLError

    try:
        doc = _yaml().load(text)
    except YAMLError as exc:
        raise UsageError(f"{label}: not valid YAML: {exc}", "fix the file, then re-run") from None
    if doc is None:
        from ruamel.yaml.comments import CommentedMap

        doc = CommentedMap()
    if not isinstance(doc, dict):
        raise UsageError(f"{label}: the top level must be a mapping", "fix the file, then re-run")
    return doc


def read_image(text: str, label: str = "values") -> ImageValues:
    doc = _load(text, label)
    image = doc.get("image") or {}
    if not isinstance(image, dict):
        raise UsageError(f"{label}: image must be a mapping", "fix the file, then re-run")
    return ImageValues(tag=str(image.get("tag") or ""), digest=str(image.get("digest") or ""))


def _styled(old: Any, new: str) -> Any:
    """``new`` in the quoting style of ``old`` (``""`` stays double-quoted, 'x' single-quoted)."""
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString

    if isinstance(old, DoubleQuotedScalarString):
        return DoubleQuotedScalarString(new)
    if isinstance(old, SingleQuotedScalarString):
        return SingleQuotedScalarString(new)
    return new


def set_image(text: str, *, tag: str, digest: str, label: str = "values") -> str:
    """``text`` with image.tag and image.digest set; everything else byte-identical where ruamel allows."""
    if not DIGEST_RE.match(digest):
        raise ValueError(f"invalid digest {digest!r}")
    doc = _load(text, label)
    if "image" not in doc or doc["image"] is None:
        from ruamel.yaml.comments import CommentedMap

        doc["image"] = CommentedMap()
    image = doc["image"]
    if not isinstance(image, dict):
        raise UsageError(f"{label}: image must be a mapping", "fix the file, then re-run")
    image["tag"] = _styled(image.get("tag"), tag)
    image["digest"] = _styled(image.get("digest"), digest)
    out = io.StringIO()
    _yaml().dump(doc, out)
    return out.getvalue()


def edit_image(path: Path, *, tag: str, digest: str) -> ValuesEdit:
    """The edit that records ``tag``/``digest`` in ``path`` (not written; call ``.write()``)."""
    try:
        before = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}", "check the environment's 'values' path") from None
    return ValuesEdit(path, before, set_image(before, tag=tag, digest=digest, label=str(path)))
