"""An environment's values file (``values-prod.yaml``): the one reader and editor of it.

ruamel.yaml's round-trip mode keeps comments, key order and quoting; new values keep the
quoting style of the old ones. An edit is returned as a unified diff so it can be shown
before (and instead of, with ``--dry-run``) writing. Every malformed file is a usage error
(exit 2) naming the file: never a parser traceback.
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
    """What the values file pins: ``image.tag``, ``image.digest`` and ``build.gitSha`` ("" when unset)."""

    tag: str
    digest: str
    git_sha: str = ""


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


@dataclass(frozen=True)
class ValuesFile:
    """One environment's values file; ``setting`` names the configuration key that points at it."""

    path: Path
    setting: str = "values"

    def exists(self) -> bool:
        return self.path.is_file()

    def require(self) -> None:
        if not self.exists():
            raise UsageError(
                f"values file {self.path} ({self.setting}) does not exist",
                f"create it, or fix {self.setting} in the configuration",
            )

    def text(self) -> str:
        try:
            return self.path.read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"{self.path}: cannot read: {exc.strerror}", f"check {self.setting}") from None

    def mapping(self) -> dict[str, Any]:
        """The whole document (an empty mapping when the file does not exist)."""
        if not self.exists():
            return {}
        doc: dict[str, Any] = _load(self.text(), str(self.path))
        return doc

    def image(self) -> ImageValues:
        """What the file pins (all empty when the file does not exist)."""
        return read_image(self.text(), str(self.path)) if self.exists() else ImageValues("", "")

    def edit_image(self, *, tag: str, digest: str) -> ValuesEdit:
        """The edit that records ``tag``/``digest`` (not written; call ``.write()``)."""
        before = self.text()
        return ValuesEdit(self.path, before, set_image(before, tag=tag, digest=digest, label=str(self.path)))


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
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"{label}: not valid YAML: {first}", "fix the file, then re-run") from None
    if doc is None:
        from ruamel.yaml.comments import CommentedMap

        doc = CommentedMap()
    if not isinstance(doc, dict):
        raise UsageError(f"{label}: the top level must be a mapping", "fix the file, then re-run")
    return doc


def _block(doc: dict[str, Any], key: str, label: str) -> dict[str, Any]:
    block = doc.get(key) or {}
    if not isinstance(block, dict):
        raise UsageError(f"{label}: {key} must be a mapping", "fix the file, then re-run")
    return block


def read_image(text: str, label: str = "values") -> ImageValues:
    doc = _load(text, label)
    image = _block(doc, "image", label)
    build = _block(doc, "build", label)
    return ImageValues(
        tag=str(image.get("tag") or ""), digest=str(image.get("digest") or ""), git_sha=str(build.get("gitSha") or "")
    )


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
