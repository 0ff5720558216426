"""The GitHub REST API, as ``ci github-apply`` needs it: JSON requests with a token, and errors that say what to do.

The token goes only into the ``Authorization`` header: never into a URL, a log line or an error message (the
caller also registers it with the redactor). Plain http is refused except to a loopback address (a local
stand-in), so a token never crosses a network unencrypted.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from deployctl.core.errors import OperationError, UsageError

log = logging.getLogger(__name__)

DEFAULT_API = "https://api.github.com"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
# A hint about the token, not one (the noqa's reason).
TOKEN_HINT = (
    "set GITHUB_TOKEN to a repository admin's token (fine-grained: Administration, Environments, Actions: write)"  # noqa: S105
)


class GitHubError(OperationError):
    """GitHub answered with an error status (``status``)."""

    def __init__(self, status: int, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.status = status


class GitHubApi:
    """Requests to one GitHub API (``GITHUB_API_URL`` in Actions; a GitHub Enterprise server's ``/api/v3``)."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 30.0) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise UsageError(f"GitHub API URL {base_url!r} is not an http(s) URL", f"unset it (default {DEFAULT_API})")
        if parsed.scheme == "http" and parsed.hostname not in LOOPBACK:
            raise UsageError(
                f"refusing to send the token over plain http to {parsed.hostname}", "use the API's https URL"
            )
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._timeout = timeout
        # No proxy from the environment for a loopback stand-in (an https one is used as configured).
        handlers = [urllib.request.ProxyHandler({})] if parsed.hostname in LOOPBACK else []
        self._opener = urllib.request.build_opener(*handlers)

    def get(self, path: str, *, missing_ok: bool = False) -> Any:
        """The JSON at ``path``; ``None`` for 404 when ``missing_ok``."""
        try:
            return self.request("GET", path)
        except GitHubError as exc:
            if missing_ok and exc.status == 404:
                return None
            raise

    def request(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        url = f"{self.base_url}{path}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 (the scheme is checked above)
        request.add_header("Accept", "application/vnd.github+json")
        request.add_header("X-GitHub-Api-Version", "2022-11-28")
        request.add_header("Authorization", f"Bearer {self._token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        log.debug("%s %s", method, url)
        try:
            with self._opener.open(request, timeout=self._timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            raise _error(method, path, exc.code, exc.read()) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise OperationError(
                f"cannot reach GitHub at {self.base_url}: {reason}", "check the network, or GITHUB_API_URL"
            ) from None
        try:
            return json.loads(payload) if payload.strip() else None
        except ValueError:
            raise OperationError(f"GitHub answered {method} {path} with something that is not JSON") from None


def _error(method: str, path: str, status: int, payload: bytes) -> GitHubError:
    try:
        message = str(json.loads(payload).get("message") or "")
    except (ValueError, AttributeError):
        message = ""
    said = f": {message}" if message else ""
    if status in (401, 403):
        return _CredentialsError(status, f"GitHub refused {method} {path} (HTTP {status}){said}", TOKEN_HINT)
    if status == 404:
        return GitHubError(
            status,
            f"GitHub has no {path} (HTTP 404), or the token may not see it",
            "check --repo OWNER/NAME, and that the token is a repository admin's",
        )
    return GitHubError(status, f"GitHub answered {method} {path} with HTTP {status}{said}")


class _CredentialsError(GitHubError):
    exit_code = UsageError.exit_code  # credentials: exit 2 (README: Exit codes)
