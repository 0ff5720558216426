"""The cluster through the official ``kubernetes`` client: API errors, workload snapshots, helm's
release records, and a generic object reader (for ``diff``).

``kubernetes`` imports slowly (hundreds of ms), so it is imported inside the functions that use
it: importing this module is free and ``deployctl --help`` stays fast.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from deployctl.errors import DeployctlError, OperationError, UsageError
from deployctl.helm import Kube
from deployctl.rollout import (
    DIGEST_ANNOTATION,
    REVISION_ANNOTATION,
    PodState,
    Verdict,
    WorkloadHealth,
    deployment_state,
    digest_in,
    pod_state,
    serving,
    verdict_of,
)


def api_client(kube: Kube) -> Any:
    """A ``kubernetes.client.ApiClient`` for ``kube`` (kubernetes imported here, lazily)."""
    from kubernetes import config as kconfig

    try:
        client = kconfig.new_client_from_config(config_file=str(kube.kubeconfig), context=kube.context)
    except kconfig.ConfigException as exc:
        raise UsageError(
            f"cannot use kubeconfig {kube.kubeconfig}: {exc}", "check cluster.kubeconfig/context"
        ) from None
    # Fail fast on an unreachable cluster rather than retrying for long.
    client.configuration.retries = 1
    return client


def translate(exc: BaseException, kube: Kube | None = None, doing: str = "") -> DeployctlError:
    """The user-facing error for a failed API call: refused credentials are the user's to fix (exit 2),
    an unreachable or failing API server is an operational failure (exit 1)."""
    if isinstance(exc, DeployctlError):
        return exc
    where = f" ({kube.kubeconfig}{', context ' + kube.context if kube.context else ''})" if kube else ""
    what = f"{doing}: " if doing else ""
    status = getattr(exc, "status", None)
    reason = str(getattr(exc, "reason", "") or "").strip() or type(exc).__name__
    if status == 401:
        return UsageError(
            f"{what}the cluster rejected the credentials (HTTP 401 {reason}){where}",
            "the token is missing or expired: for EKS check the environment's AWS credentials "
            "(`deployctl doctor`); otherwise refresh the kubeconfig's user",
        )
    if status == 403:
        return UsageError(
            f"{what}the cluster denied access (HTTP 403): {_api_message(exc)}{where}",
            "grant the deploying identity that permission (EKS access entry / RBAC), then re-run",
        )
    if isinstance(status, int) and status > 0:
        return OperationError(f"{what}the API server answered HTTP {status} {reason}: {_api_message(exc)}{where}")
    return OperationError(
        f"{what}cannot reach the cluster{where}: {str(exc).strip().splitlines()[0] if str(exc).strip() else reason}",
        "check that the cluster is up and the kubeconfig/context are right (`deployctl doctor`)",
    )


def errors() -> tuple[type[Exception], ...]:
    """What a kubernetes client call raises: API refusals and transport failures (imported lazily)."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    return (ApiException, HTTPError, OSError)


def is_kube_error(exc: BaseException) -> bool:
    return type(exc).__module__.startswith(("kubernetes", "urllib3"))


def _api_message(exc: BaseException) -> str:
    import json

    body = getattr(exc, "body", None)
    try:
        return str(json.loads(body).get("message", "")) if body else ""
    except (ValueError, AttributeError):
        return str(body)[:200]


def _sanitize(api: Any, obj: Any) -> dict[str, Any]:
    result: dict[str, Any] = api.sanitize_for_serialization(obj)
    return result


# --------------------------------------------------------------------------- live state


@dataclass(frozen=True)
class LiveWorkload:
    """A workload of a release as it runs now: its health inputs plus the provenance annotations."""

    health: WorkloadHealth
    image: str
    tag: str | None
    git_sha: str | None


def live_workloads(kube: Kube, namespace: str, release: str) -> list[LiveWorkload]:
    """The Deployments of ``release`` (label app.kubernetes.io/instance), each judged from one snapshot:
    the Deployment, the ReplicaSet of its current revision and the pods of its selector."""
    from kubernetes import client as kclient

    api = api_client(kube)
    apps = kclient.AppsV1Api(api)
    core = kclient.CoreV1Api(api)
    try:
        listed = apps.list_namespaced_deployment(namespace, label_selector=f"app.kubernetes.io/instance={release}")
        found = []
        for item in listed.items:
            doc = _sanitize(api, item)
            selector = ",".join(f"{k}={v}" for k, v in sorted(doc["spec"]["selector"].get("matchLabels", {}).items()))
            sets = [
                _sanitize(api, rs) for rs in apps.list_namespaced_replica_set(namespace, label_selector=selector).items
            ]
            pods = [
                pod_state(_sanitize(api, p)) for p in core.list_namespaced_pod(namespace, label_selector=selector).items
            ]
            found.append(live_workload(doc, sets, pods))
    except errors() as exc:
        raise translate(exc, kube, f"read the workloads of release {release} in {namespace}") from None
    return found


def live_workload(
    deployment: Mapping[str, Any], replica_sets: list[dict[str, Any]], pods: list[PodState]
) -> LiveWorkload:
    """Pure: one Deployment, its ReplicaSets and its pods -> what it should run, its verdict, what serves."""
    state = deployment_state(deployment)
    new_hash = next(
        (
            str((rs.get("metadata", {}).get("labels") or {}).get("pod-template-hash", ""))
            for rs in replica_sets
            if (rs.get("metadata", {}).get("annotations") or {}).get(REVISION_ANNOTATION) == state.revision
        ),
        None,
    )
    new_pods = [p for p in pods if new_hash is not None and p.template_hash == new_hash]
    verdict: Verdict = verdict_of(state, new_pods)
    template = deployment.get("spec", {}).get("template", {})
    annotations = {
        **(deployment.get("metadata", {}).get("annotations") or {}),
        **(template.get("metadata", {}).get("annotations") or {}),
    }
    containers = template.get("spec", {}).get("containers") or [{}]
    image = str(containers[0].get("image", ""))
    health = WorkloadHealth(
        kind="Deployment",
        name=state.name,
        desired_digest=digest_in(image) or annotations.get(DIGEST_ANNOTATION),
        desired=state.replicas,
        verdict=verdict,
        serving=serving(pods),
    )
    return LiveWorkload(
        health, image, annotations.get("deployctl.dev/image-tag"), annotations.get("deployctl.dev/git-sha")
    )


# --------------------------------------------------------------------------- helm release storage


@dataclass(frozen=True)
class ReleaseRecord:
    """One helm release revision as stored by helm's default (secret) driver."""

    secret: str
    revision: int
    status: str


def pending_release_records(kube: Kube, namespace: str, release: str) -> list[ReleaseRecord]:
    """Helm release secrets of ``release`` labelled with a pending status."""
    from kubernetes import client as kclient
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    api = api_client(kube)
    try:
        listed = kclient.CoreV1Api(api).list_namespaced_secret(namespace, label_selector=f"owner=helm,name={release}")
    except (ApiException, HTTPError) as exc:
        raise translate(exc, kube) from None
    records = []
    for item in listed.items:
        labels = item.metadata.labels or {}
        status = labels.get("status", "")
        if status.startswith("pending-"):
            records.append(ReleaseRecord(item.metadata.name, int(labels.get("version", "0")), status))
    return sorted(records, key=lambda r: r.revision)


def delete_release_record(kube: Kube, namespace: str, record: ReleaseRecord) -> None:
    from kubernetes import client as kclient
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    api = api_client(kube)
    try:
        kclient.CoreV1Api(api).delete_namespaced_secret(record.secret, namespace)
    except ApiException as exc:
        if exc.status != 404:
            raise translate(exc, kube) from None
    except HTTPError as exc:
        raise translate(exc, kube) from None


# --------------------------------------------------------------------------- generic GET (diff)


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
