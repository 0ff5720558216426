"""Any object by apiVersion and kind, read through the API's discovery (the drift check's live side)."""

from __future__ import annotations

from typing import Any

from deployctl.adapters.helm_argv import Kube
from deployctl.adapters.kube.client import api_client, translate
from deployctl.core.errors import OperationError


class ObjectReader:
    """GET any object by apiVersion/kind/name; the resource name comes from API discovery (cached)."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self._api = api_client(kube)
        self._resources: dict[str, dict[str, tuple[str, bool]]] = {}

    def _resource(self, api_version: str, kind: str) -> tuple[str, bool]:
        if api_version not in self._resources:
            base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            doc = self._call(base)
            self._resources[api_version] = {
                r["kind"]: (r["name"], bool(r.get("namespaced")))
                for r in (doc or {}).get("resources", ())
                if "/" not in r["name"]
            }
        found = self._resources[api_version].get(kind)
        if found is None:
            raise OperationError(f"the cluster does not serve {kind} in {api_version}")
        return found

    def _call(self, path: str) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            data = self._api.call_api(
                path,
                "GET",
                auth_settings=["BearerToken"],
                response_type="object",
                _return_http_data_only=True,
                _preload_content=True,
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise translate(exc, self.kube) from None
        except HTTPError as exc:
            raise translate(exc, self.kube) from None
        return data if isinstance(data, dict) else None

    def get(self, api_version: str, kind: str, name: str, namespace: str | None) -> dict[str, Any] | None:
        resource, namespaced = self._resource(api_version, kind)
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        if namespaced and namespace:
            return self._call(f"{base}/namespaces/{namespace}/{resource}/{name}")
        return self._call(f"{base}/{resource}/{name}")
