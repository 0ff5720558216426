"""The cluster through the official ``kubernetes`` client: API errors, workload snapshots, helm's
release records, and a generic object reader (for ``diff``).

``kubernetes`` imports slowly (hundreds of ms), so it is imported inside the functions that use
it: importing this module is free and ``deployctl --help`` stays fast.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from deployctl.errors import DeployctlError, OperationError, UsageError
from deployctl.helm import Kube, Release
from deployctl.rollout import Health, Verdict, WorkloadHealth, release_health
from deployctl.tracking import View, desired_image, health_of, hook_verdicts, targets_in
from deployctl.verdicts import Context, Tuning

# kind -> (API group client, namespaced list call): what a ``tracking.View`` holds.
LISTS = {
    "Deployment": ("AppsV1Api", "list_namespaced_deployment"),
    "ReplicaSet": ("AppsV1Api", "list_namespaced_replica_set"),
    "StatefulSet": ("AppsV1Api", "list_namespaced_stateful_set"),
    "DaemonSet": ("AppsV1Api", "list_namespaced_daemon_set"),
    "Job": ("BatchV1Api", "list_namespaced_job"),
    "Pod": ("CoreV1Api", "list_namespaced_pod"),
    "Event": ("CoreV1Api", "list_namespaced_event"),
}


# A call that passes no ``_request_timeout`` of its own (a watch does) gets these (connect, read) seconds.
KUBE_TIMEOUT = (3, 15)
POOL_SIZE = 64  # connections kept per API server: one client serves every watch of a release's apps
_clients: dict[tuple[str, str | None, int, int], Any] = {}
_clients_guard = threading.Lock()


def api_client(kube: Kube) -> Any:
    """The ``kubernetes.client.ApiClient`` for ``kube`` (kubernetes imported here, lazily): one per kubeconfig and
    context in a process, shared by its threads (issue 29: each watch and snapshot of each app built one, and on EKS
    that runs the exec credential plugin, a Python process). It renews an expired exec token itself.

    Fail fast on an unhealthy cluster rather than waiting on it: one retry of a failed connection but
    none of a read that timed out (that only doubles the wait on a hung API server), and every call
    bounded by ``KUBE_TIMEOUT`` unless it passes its own (the client's default is to wait forever)."""
    try:
        stat = kube.kubeconfig.stat()  # a rewritten kubeconfig gets a new client
    except OSError:  # the new client says what is wrong with it
        return _new_client(kube)
    key = (str(kube.kubeconfig), kube.context, stat.st_mtime_ns, stat.st_size)
    with _clients_guard:  # the apps of a level ask at once: one builds it
        if key not in _clients:
            _clients[key] = _new_client(kube)
        return _clients[key]


def _new_client(kube: Kube) -> Any:
    import urllib3
    from kubernetes import client as kclient
    from kubernetes import config as kconfig

    configuration = type.__call__(kclient.Configuration)  # as new_client_from_config does: no shared default
    # Read by the REST client when it is built, so it is set before (setting it afterwards does nothing).
    configuration.retries = urllib3.Retry(total=1, connect=1, read=0, status=0, other=0, redirect=3)
    configuration.connection_pool_maxsize = POOL_SIZE
    try:
        client = kconfig.new_client_from_config(
            config_file=str(kube.kubeconfig), context=kube.context, client_configuration=configuration
        )
    except kconfig.ConfigException as exc:
        raise UsageError(
            f"cannot use kubeconfig {kube.kubeconfig}: {exc}", "check cluster.kubeconfig/context"
        ) from None
    rest = client.rest_client
    send = rest.request

    def bounded(*args: Any, _request_timeout: Any = None, **kwargs: Any) -> Any:
        return send(*args, _request_timeout=_request_timeout or KUBE_TIMEOUT, **kwargs)

    rest.request = bounded
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


def list_call(api: Any, kind: str) -> Any:
    """The namespaced list call of ``kind`` (see ``LISTS``) on ``api``."""
    from kubernetes import client as kclient

    group, call = LISTS[kind]
    return getattr(getattr(kclient, group)(api), call)


def list_json(api: Any, kind: str, namespace: str) -> dict[str, Any]:
    """One list of ``kind`` in ``namespace`` as the API server sent it (issue 29: building the client's models and
    turning them back into dicts was most of the CPU of a release's snapshot)."""
    response = list_call(api, kind)(namespace, _preload_content=False)
    try:
        found: dict[str, Any] = json.loads(response.data)
    finally:
        response.release_conn()
    return found


_autoscalers: dict[int, bool] = {}  # id(client) -> the answer (clients live as long as the process: see api_client)


def autoscaler_present(api: Any) -> bool:
    """Whether a node autoscaler may add a node for an unschedulable pod: Karpenter (its API group is served)
    or the cluster-autoscaler (its status ConfigMap in kube-system). A refused check counts as yes: the
    longer schedule grace is the safe side. A clear answer is kept for the client's cluster (every watch asked
    again: two API calls each); one that a failed call left open is not."""
    if id(api) in _autoscalers:
        return _autoscalers[id(api)]
    found, clear = _autoscaler_present(api)
    with _clients_guard:
        if clear and any(api is client for client in _clients.values()):
            _autoscalers[id(api)] = found
    return found


def _autoscaler_present(api: Any) -> tuple[bool, bool]:
    """(present, clear): clear unless a probe failed without the API's answer."""
    from kubernetes import client as kclient
    from kubernetes.client.exceptions import ApiException

    def karpenter() -> object:
        return api.call_api("/apis/karpenter.sh", "GET", auth_settings=["BearerToken"], _request_timeout=5)

    def cluster_autoscaler() -> object:
        core = kclient.CoreV1Api(api)
        return core.read_namespaced_config_map("cluster-autoscaler-status", "kube-system", _request_timeout=5)

    probes: tuple[Callable[[], object], ...] = (karpenter, cluster_autoscaler)
    clear = True
    for probe in probes:
        try:
            probe()
        except ApiException as exc:
            if exc.status in (401, 403):
                return True, True
            clear = clear and exc.status == 404
            continue
        except errors():
            clear = False
            continue
        return True, True
    return False, clear


@dataclass(frozen=True)
class LiveWorkload:
    """A workload of a release as it runs now: its health inputs plus the provenance annotations."""

    health: WorkloadHealth
    image: str
    tag: str | None
    git_sha: str | None


@dataclass(frozen=True)
class LiveRelease:
    """A release as it runs now: helm's latest revision (status, manifest, hooks), each workload its manifest names
    judged from one snapshot of the namespace, and the revision's hooks that failed."""

    release: Release
    workloads: tuple[LiveWorkload, ...]
    failed_hooks: tuple[Verdict, ...] = ()

    def health(self, digest: str | None) -> Health:
        """The one definition of healthy (``rollout.release_health``) for this release, ``digest`` when given."""
        return release_health(self.release.status, [w.health for w in self.workloads], digest, self.failed_hooks)


def live_view(kube: Kube, namespace: str, kinds: tuple[str, ...]) -> tuple[Any, View]:
    """One listing of ``kinds`` in ``namespace``: the API client and kind -> name -> object."""
    api = api_client(kube)
    view = {}
    for kind in kinds:
        listed = list_json(api, kind, namespace)
        view[kind] = {o["metadata"]["name"]: o for o in listed.get("items") or ()}
    return api, view


SNAPSHOT_KINDS = ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "Pod")


def live_release(kube: Kube, namespace: str, release: Release) -> LiveRelease:
    """``release`` (a revision with its manifest and hooks) as it runs: every workload its manifest names, whatever
    the chart's labels, each judged from one snapshot of the namespace (its object, its ReplicaSets, its pods by
    owner uid); a workload missing from the cluster is a failure, as is a hook of the revision that failed."""
    targets = targets_in(release.manifest)
    try:
        api, view = live_view(kube, namespace, SNAPSHOT_KINDS)
        ctx = Context(tuning=Tuning(autoscaler=autoscaler_present(api)), now=time.time())
    except errors() as exc:
        raise translate(exc, kube, f"read the workloads of release {release.name} in {namespace}") from None
    found = []
    for target in targets:
        obj = (view.get(target.kind) or {}).get(target.name)
        if obj is None:
            missing = Verdict("failed", f"{target.ref} is not in {namespace}", reason="Missing", resource=target.ref)
            health = WorkloadHealth(target.kind, target.name, target.digest, target.min_replicas or 1, missing)
            found.append(LiveWorkload(health, "", None, None))
            continue
        image, _ = desired_image(obj)
        template = (obj.get("spec") or {}).get("template") or {}
        annotations = {
            **((obj.get("metadata") or {}).get("annotations") or {}),
            **((template.get("metadata") or {}).get("annotations") or {}),
        }
        found.append(
            LiveWorkload(
                health_of(target.kind, obj, view, ctx, target),
                image,
                annotations.get("deployctl.dev/image-tag"),
                annotations.get("deployctl.dev/git-sha"),
            )
        )
    return LiveRelease(release, tuple(found), tuple(hook_verdicts(release.hooks, view, ctx)))


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


def delete_hook(kube: Kube, namespace: str, kind: str, name: str) -> None:
    """Delete a hook Job (its pods with it) or Pod; one already gone is fine, a failure is only logged (clean-up
    never fails what it cleans up after)."""
    import logging

    from kubernetes import client as kclient

    api = api_client(kube)
    try:
        if kind == "Job":
            kclient.BatchV1Api(api).delete_namespaced_job(name, namespace, propagation_policy="Background")
        elif kind == "Pod":
            kclient.CoreV1Api(api).delete_namespaced_pod(name, namespace)
    except errors() as exc:
        if getattr(exc, "status", None) != 404:
            logging.getLogger(__name__).warning("could not delete %s/%s: %s", kind, name, translate(exc, kube).message)


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
