"""Pure values and rules: image references, release tags, exit policy. No I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

# Defined with the errors (``ci steps`` raises it without importing the model); re-exported for the model's users.
from deployctl.core.errors import InvalidValueError as InvalidValueError  # noqa: PLC0414

# \Z, not $: "$" also matches before a trailing newline, so "sha256:...\n" would pass.
DIGEST_RE = re.compile(r"\Asha256:[a-f0-9]{64}\Z")
TAG_RE = re.compile(r"\A[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\Z")
SEMVER_RE = re.compile(
    r"(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)"
    r"(?:-(?P<pre>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
)


SHOWN_CHARS = 80  # how much of a rejected value an error message quotes


def shown(value: str, limit: int = SHOWN_CHARS) -> str:
    """``value`` quoted for an error message: ``repr``, cut to ``limit`` characters with ``…`` and the
    length (a 5000-character argument is not echoed back in full)."""
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}… ({len(value)} characters)"


@dataclass(frozen=True)
class ImageRef:
    """An image in a registry: repository plus tag and/or digest."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    def __post_init__(self) -> None:
        if self.tag is not None and not TAG_RE.match(self.tag):
            raise InvalidValueError(
                f"invalid image tag {shown(self.tag)}: use letters, digits, '_', '.', '-' (max 128)"
            )
        if self.digest is not None and not DIGEST_RE.match(self.digest):
            raise InvalidValueError(f"invalid digest {shown(self.digest)}: expected sha256:<64 hex digits>")

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    @property
    def pinned(self) -> str:
        """The reference that names exactly these bytes (digest when known)."""
        if self.digest:
            return f"{self.name}@{self.digest}"
        return f"{self.name}:{self.tag}"

    def __str__(self) -> str:
        if self.tag and self.digest:
            return f"{self.name}:{self.tag}@{self.digest}"
        return self.pinned


@total_ordering
@dataclass(frozen=True)
class Version:
    """A semantic version; pre-releases sort before their release (semver 2.0 §11)."""

    major: int
    minor: int
    patch: int
    pre: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Version:
        match = SEMVER_RE.fullmatch(text)
        if not match:
            raise InvalidValueError(f"{shown(text)} is not a semantic version (expected X.Y.Z or X.Y.Z-pre)")
        pre = tuple(match["pre"].split(".")) if match["pre"] else ()
        return cls(int(match["major"]), int(match["minor"]), int(match["patch"]), pre)

    def _key(self) -> tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]:
        pre_key = tuple((0, int(p)) if p.isdigit() else (1, p) for p in self.pre)
        return (self.major, self.minor, self.patch, 0 if self.pre else 1, pre_key)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() < other._key()

    def __str__(self) -> str:
        core = f"{self.major}.{self.minor}.{self.patch}"
        return f"{core}-{'.'.join(self.pre)}" if self.pre else core


@dataclass(frozen=True)
class ReleaseTag:
    """A git tag that names a release, e.g. ``release-1.4.0`` for the pattern ``release-<semver>``."""

    tag: str
    version: Version

    @classmethod
    def parse(cls, tag: str, pattern: str = "release-<semver>", *, allow_prerelease: bool = False) -> ReleaseTag:
        prefix, _, suffix = pattern.partition("<semver>")
        expected = pattern.replace("<semver>", "X.Y.Z")
        if not (tag.startswith(prefix) and tag.endswith(suffix)) or len(tag) <= len(prefix) + len(suffix):
            raise InvalidValueError(
                f"malformed release tag {shown(tag)}: expected {expected}, e.g. {prefix}1.4.0{suffix}"
            )
        core = tag[len(prefix) : len(tag) - len(suffix)]
        try:
            version = Version.parse(core)
        except InvalidValueError:
            raise InvalidValueError(
                f"malformed release tag {shown(tag)}: expected {expected}, e.g. {prefix}1.4.0{suffix}"
            ) from None
        if version.pre and not allow_prerelease:
            raise InvalidValueError(
                f"release tag {shown(tag)} is a pre-release; pre-releases are not allowed for this environment "
                "(set allow_prerelease = true to permit them)"
            )
        return cls(tag, version)

    def __str__(self) -> str:
        return self.tag
