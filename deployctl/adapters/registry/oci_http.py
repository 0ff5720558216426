"""The HTTP side of an OCI registry (urllib3, imported on first use): requests, their failures, retries.

Transient failures (5xx, 429, connection resets, timeouts) are retried with exponential backoff, a few
tries and a deadline (``retry``); everything else fails at once with the registry's own words. A registry
that stopped answering gets one try per operation for the rest of the run.
"""

from __future__ import annotations

import base64
import json
import logging
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypeVar

from deployctl.adapters.registry.errors import RegistryError, TagInvalidError, TransientError
from deployctl.adapters.registry.retry import RetryPolicy, seconds, with_retries

if TYPE_CHECKING:
    import urllib3

log = logging.getLogger(__name__)

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
DEFAULT_PARALLEL = 4

T = TypeVar("T")


def base_url(host: str) -> str:
    """``http`` for a registry on this machine (the sandbox), ``https`` for everything else."""
    bare = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return f"http://{host}" if bare in LOOPBACK_HOSTS else f"https://{host}"


def error_codes(body: bytes) -> list[str]:
    """The ``code`` of each error in an OCI error body (``{"errors": [{"code": ...}]}``); [] otherwise."""
    try:
        errors = json.loads(body).get("errors")
    except (ValueError, AttributeError):
        return []
    return [str(e.get("code")) for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


@dataclass
class OciHttp:
    """One registry host over HTTP: the connection pool, its credentials, requests with retries and a deadline."""

    host: str
    username: str | None = None
    password: str | None = None
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    url: str = ""
    _pool: urllib3.PoolManager | None = None
    _silent: bool = False  # it stopped answering earlier in this run: one try per operation from then on

    def __post_init__(self) -> None:
        if not self.url:
            self.url = base_url(self.host)

    @property
    def pool(self) -> urllib3.PoolManager:
        if self._pool is None:
            import urllib3

            self._pool = urllib3.PoolManager(
                maxsize=DEFAULT_PARALLEL * 2,
                timeout=urllib3.Timeout(connect=self.policy.connect_timeout, read=self.policy.read_timeout),
                # Retries are ours (with_retries); urllib3 only follows redirects (ECR sends blob GETs to S3).
                retries=urllib3.Retry(total=None, connect=0, read=0, status=0, other=0, redirect=5),
            )
        return self._pool

    def _headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        headers = {"User-Agent": "deployctl"}
        if self.username is not None and self.password is not None:
            token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        headers.update(extra or {})
        return headers

    def _absolute(self, path_or_url: str) -> str:
        return path_or_url if "://" in path_or_url else self.url + path_or_url

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        stream: bool = False,
        ok: Iterable[int] = (200,),
        missing_ok: bool = False,
        read_timeout: float | None = None,
    ) -> urllib3.BaseHTTPResponse | None:
        """One request; None on 404 when ``missing_ok``. Transient failures raise ``TransientError``
        (the caller's retry loop decides), a ``TAG_INVALID`` refusal ``TagInvalidError``."""
        import urllib3

        url = self._absolute(path)
        read = read_timeout if read_timeout is not None else self.policy.read_timeout
        try:
            response = self.pool.request(
                method,
                url,
                headers=self._headers(headers),
                body=body,
                preload_content=not stream,
                redirect=method in ("GET", "HEAD"),
                timeout=urllib3.Timeout(connect=self.policy.connect_timeout, read=read),
            )
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            state, detail = self._failure(exc, read)
            raise TransientError(f"{method} {_short(url)}: {detail}", host=self.host, state=state) from None
        status = response.status
        if status in ok:
            return response
        data = b"" if stream else response.data
        text = data[:300].decode(errors="replace").strip()
        response.release_conn()
        if status == 404 and missing_ok:
            return None
        if status in RETRY_STATUSES:
            raise TransientError(f"{method} {_short(url)}: HTTP {status} {text}".strip(), host=self.host)
        if status in (401, 403):
            raise RegistryError(
                f"{method} {_short(url)}: HTTP {status} (not authorized) {text}".strip(),
                "check the registry credentials (for ECR: the environment's role needs ecr:* on the repository)",
            )
        if status == 400 and "TAG_INVALID" in error_codes(data):
            raise TagInvalidError(f"{method} {_short(url)}: HTTP 400 {text}")
        raise RegistryError(f"{method} {_short(url)}: HTTP {status} {text}".strip())

    def _failure(self, exc: BaseException, read_timeout: float) -> tuple[str, str]:
        """(state, detail) of a request that got no HTTP answer: a timeout is a registry not answering,
        anything else (refused, reset, unknown host) one not reachable."""
        import urllib3

        cause = getattr(exc, "reason", None)  # urllib3 wraps the failure of the last try in a MaxRetryError
        exc = cause if isinstance(cause, BaseException) else exc
        if isinstance(exc, urllib3.exceptions.NewConnectionError):  # (a ConnectTimeoutError subclass: first)
            return "not reachable", reason(exc)
        if isinstance(exc, urllib3.exceptions.ReadTimeoutError):
            return "not answering", f"no answer within {seconds(read_timeout)}"
        if isinstance(exc, urllib3.exceptions.ConnectTimeoutError):
            return "not answering", f"no connection within {seconds(self.policy.connect_timeout)}"
        return "not reachable", reason(exc)

    def retrying(self, what: str, action: Callable[[], T], *, deadline: bool = True) -> T:
        """``with_retries`` under this registry's policy. A registry that stopped answering (or could not be
        reached) through every try is remembered: later operations of the run get one try, no retries, so a
        follow-up question (did the tag move?) costs at most one timeout, not another full round."""
        if self._silent:
            what += " (one try: the registry stopped answering earlier in this run)"
        policy = replace(self.policy, attempts=1) if self._silent else self.policy
        try:
            return with_retries(what, policy, action, deadline=deadline)
        except RegistryError as exc:
            if exc.details.get("dependency_state") in ("not answering", "not reachable"):
                self._silent = True
            raise

    def need(self, method: str, path: str, **kwargs: Any) -> urllib3.BaseHTTPResponse:
        """``request`` for a response that must be there (a 404 is an error)."""
        response = self.request(method, path, **kwargs)
        if response is None:  # pragma: no cover - missing_ok=False never returns None
            raise RegistryError(f"{method} {path}: not found")
        return response


def _short(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.netloc}{parts.path}"


def reason(exc: BaseException) -> str:
    cause = getattr(exc, "reason", None)
    return f"{type(cause or exc).__name__}: {cause or exc}"
