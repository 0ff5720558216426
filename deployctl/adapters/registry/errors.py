"""What a registry operation can fail with, and the one wording of an immutable-tag refusal."""

from __future__ import annotations

from deployctl.core.errors import OperationError, PolicyError

IMMUTABLE_HINT = "release tags are immutable: cut a new release tag instead (roll forward)"


class RegistryError(OperationError):
    """A registry request failed (after retries, when the failure was transient)."""


class TransientError(Exception):
    """A failure worth retrying: 5xx/429, connection reset, timeout.

    ``host`` is the registry that failed (when known) and ``state`` what it did, in words for the
    progress line and the final error: ``not answering`` (a timeout: it accepted and went silent),
    ``not reachable`` (refused, reset, unknown host) or ``failing`` (it answered 5xx/429)."""

    def __init__(self, message: str, *, host: str = "", state: str = "failing") -> None:
        super().__init__(message)
        self.host = host
        self.state = state


class TagInvalidError(RegistryError):
    """The registry refused a manifest PUT under a tag with ``TAG_INVALID`` (ECR: the tag exists in an
    immutable repository, even for identical bytes)."""


def tag_conflict(name: str, tag: str, current: str | None, wanted: str) -> PolicyError:
    """The refusal when ``name:tag`` names (or was just given) another image than ``wanted``."""
    found = current or "another image"
    return PolicyError(
        f"{name}:{tag} already points at {found}, not {wanted}: tags are immutable, refusing to move it",
        IMMUTABLE_HINT,
        details={"tag": f"{name}:{tag}", "current": current, "wanted": wanted},
    )
