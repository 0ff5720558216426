"""The one place where secrets are masked.

Known secret values (registered at run time: tokens, passwords, sensitive
``--set`` values) and secret-shaped text (credentials in URLs, AWS secret keys,
bearer/basic auth headers, EKS tokens) are replaced by ``***`` in everything
deployctl prints or logs: command lines, error messages, child output.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import logging

MASK = "***"

# Secret-shaped text that is masked even when nobody registered the value.
# Only the named group ``secret`` is replaced; the rest of the match stays readable.
_PATTERN_SOURCES: tuple[str, ...] = (
    # scheme://user:password@host -> scheme://user:***@host
    r"://[^/\s:@]+:(?P<secret>[^/\s@]+)@",
    # Authorization headers
    r"(?i)\b(?:bearer|basic) (?P<secret>[A-Za-z0-9._~+/=-]{8,})",
    # EKS tokens: presigned STS URLs
    r"(?P<secret>k8s-aws-v1\.[A-Za-z0-9_-]+)",
    # KEY=VALUE / "KEY": "VALUE" for names that are secrets by convention. JSON/YAML literals are not
    # secrets: masking them corrupts machine output (helm's `"automountServiceAccountToken": false`).
    (
        r"(?i)(?:secret_access_key|secretaccesskey|session_token|sessiontoken|password|passwd|token|secret)"
        r"[\"']?\s*[=:]\s*[\"']?(?!(?:true|false|null)\b)(?P<secret>[^\s\"',}]{4,})"
    ),
)


@cache
def _patterns() -> tuple[re.Pattern[str], ...]:
    """Compiled on first use: `deployctl --help` never masks anything."""
    return tuple(re.compile(source) for source in _PATTERN_SOURCES)


class Redactor:
    """Masks registered secret values and secret-shaped text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        """Register a value that must never be shown. Short values are ignored (they would mask too much)."""
        if secret and len(secret) >= 4:
            self._secrets.add(secret)

    def __call__(self, text: str) -> str:
        # Longest first, so a secret that contains another is masked whole.
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
        for pattern in _patterns():
            text = pattern.sub(_mask_match, text)
        return text

    def argv(self, argv: Iterable[str]) -> list[str]:
        return [self(arg) for arg in argv]


def _mask_match(match: re.Match[str]) -> str:
    start, end = match.span("secret")
    offset = match.start()
    whole = match.group(0)
    return whole[: start - offset] + MASK + whole[end - offset :]


class RedactingFilter:
    """A logging filter that redacts the fully formatted message of every record (logging takes any object
    with ``filter``: no ``logging.Filter`` base, so importing this module does not import logging)."""

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redactor(record.getMessage())
        record.args = None
        return True
