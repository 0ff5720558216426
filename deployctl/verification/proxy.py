"""Where an HTTP check's requests go: through the API server's service proxy
(``/api/v1/namespaces/NS/services/NAME:PORT/proxy/PATH``, with the kubeconfig's credentials, through the
kubernetes client's ``ApiClient.call_api``: no port-forward, no network path into the cluster), or to a URL.

The Service and its port are checked first: a Service or port that does not exist is the configuration's
mistake (exit 2), never a failed check. What the proxy answers after that is the release's answer: the app's
status and body. The API server's own 404 or 503 (a ``Status``: no endpoint to proxy to) is not: the Endpoints
follow the pods' readiness a moment after the rollout is complete, so the check asks again until its timeout.
"""

from __future__ import annotations

import json
from typing import Any

from deployctl.adapters.helm_argv import Kube
from deployctl.adapters.kube.client import api_client, translate
from deployctl.core.errors import UsageError
from deployctl.verification.judge import Answer

BODY_LIMIT = 64 * 1024
API_SERVER = "(API server)"  # how the body of the API server's own answer (a ``Status``) is shown
NOT_SERVED_YET = (404, 503)  # the proxy's own answers when the Service has no endpoint (yet)


class ServiceProxy:
    """The service proxy of one namespace."""

    def __init__(self, kube: Kube, namespace: str) -> None:
        self.kube = kube
        self.namespace = namespace
        self._api = api_client(kube)

    def port(self, service: str, port: str | int) -> str:
        """``service``'s port as the proxy path names it (``NAME:PORT``); UsageError when the Service or the port
        does not exist, the translated API error when the cluster cannot say."""
        from kubernetes import client as kclient
        from kubernetes.client.exceptions import ApiException

        from deployctl.adapters.kube.client import errors

        try:
            found = kclient.CoreV1Api(self._api).read_namespaced_service(service, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                raise UsageError(
                    f"Service {service} does not exist in {self.namespace}",
                    "name a Service of the release (service = ...), or check the chart renders it",
                ) from None
            raise translate(exc, self.kube, f"read Service {service}") from None
        except errors() as exc:
            raise translate(exc, self.kube, f"read Service {service}") from None
        ports = found.spec.ports or []
        for spec in ports:
            if str(port) in (spec.name, str(spec.port)):
                return f"{service}:{spec.name or spec.port}"
        known = ", ".join(f"{p.name or '-'}/{p.port}" for p in ports) or "none"
        raise UsageError(
            f"Service {service} in {self.namespace} has no port {port!r} (its ports: {known})",
            "name one of its ports (port = NAME or NUMBER)",
        )

    def request(self, method: str, target: str, path: str, timeout: float) -> Answer:
        """``method`` ``path`` on ``target`` (``NAME:PORT`` from ``port``); the status and body, whatever they are."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        resource = f"/api/v1/namespaces/{self.namespace}/services/{target}/proxy{path}"
        try:
            response = self._api.call_api(
                resource,
                method,
                header_params={"Accept": "*/*"},
                auth_settings=["BearerToken"],
                _preload_content=False,
                _return_http_data_only=True,
                _request_timeout=timeout,
            )
        except ApiException as exc:
            if exc.status in (401, 403):
                raise translate(exc, self.kube, f"{method} through the service proxy") from None
            status = int(exc.status or 0)
            text = _text(exc.body)
            own = status in NOT_SERVED_YET and text.startswith(API_SERVER)
            return Answer(status, text, "" if exc.status else str(exc.reason), served=not own)
        except (HTTPError, OSError) as exc:
            return Answer(
                0, error=f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
            )
        return Answer(int(response.status), _text(response.data))


def _text(body: Any) -> str:
    """The body as text; the API server's own errors (a ``Status``) by their message."""
    raw = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
    raw = raw[:BODY_LIMIT]
    try:
        doc = json.loads(raw)
    except ValueError:
        return raw
    if isinstance(doc, dict) and doc.get("kind") == "Status" and doc.get("message"):
        return f"{API_SERVER} {doc['message']}"
    return raw


def url_request(method: str, url: str, timeout: float) -> Answer:
    """``method`` ``url`` (an Ingress' URL): the status and body; no answer when it cannot be reached."""
    import urllib3

    try:
        response = urllib3.PoolManager().request(
            method, url, timeout=urllib3.Timeout(total=timeout), retries=False, preload_content=True
        )
    except urllib3.exceptions.HTTPError as exc:
        return Answer(0, error=f"{type(exc).__name__}: {exc}")
    return Answer(int(response.status), _text(response.data))
