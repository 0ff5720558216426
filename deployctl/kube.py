"""The cluster through the official ``kubernetes`` client: access, rollout watch, live state.

``kubernetes`` imports slowly (hundreds of ms), so it is imported inside the functions
that use it: importing this module is free and ``deployctl --help`` stays fast.

The rollout verdict is a pure function (``evaluate``) over plain snapshots of the
Deployment and its new pods, table-tested in tests/unit/test_rollout.py; ``watch_rollout``
is the thin loop that feeds it from two API watches (Deployment and pods).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deployctl.errors import OperationError, UsageError
from deployctl.helm import Kube

if TYPE_CHECKING:
    from deployctl.config import Environment, LoadedConfig
    from deployctl.redact import Redactor

log = logging.getLogger(__name__)

# Container states that never fix themselves during a rollout: report them at once.
FATAL_WAITING_REASONS = frozenset(
    {
        "ImagePullBackOff",
        "ErrImagePull",
        "CrashLoopBackOff",
        "CreateContainerConfigError",
        "CreateContainerError",
        "InvalidImageName",
        "ErrImageNeverPull",
    }
)
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
EKS_TOKEN_PREFIX = "k8s-aws-v1."  # noqa: S105 (a format prefix, not a secret)
EKS_TOKEN_TTL_SECONDS = 60  # presign lifetime; the token is valid ~15 minutes from signing either way


# --------------------------------------------------------------------------- access


@contextmanager
def access(config: LoadedConfig, env_name: str, redactor: Redactor | None = None) -> Iterator[Kube]:
    """The kubeconfig (and context) to reach ``env_name``'s cluster, for helm and for the client.

    ``cluster.kubeconfig`` is used as is. For ``cluster.eks`` a kubeconfig is written to a
    private temp file (token inside, registered with the redactor) and removed afterwards.
    """
    env = config.settings.environments[env_name]
    if env.cluster is None:
        raise UsageError(f"environment {env_name!r} has no cluster")
    if env.cluster.kubeconfig is not None:
        path = config.resolve(env.cluster.kubeconfig)
        if not path.is_file():
            raise UsageError(
                f"kubeconfig {path} (environments.{env_name}.cluster.kubeconfig) does not exist",
                "fix the path in the configuration, or create the cluster first",
            )
        yield Kube(kubeconfig=path, context=env.cluster.context)
        return
    assert env.cluster.eks is not None  # noqa: S101 (the config validator guarantees one of the two)
    document = eks_kubeconfig_for(env, env.cluster.eks, redactor)
    fd, name = tempfile.mkstemp(prefix="deployctl-kubeconfig-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle)
        yield Kube(kubeconfig=Path(name), context=env.cluster.eks)
    finally:
        Path(name).unlink(missing_ok=True)


def eks_token(env: Environment, cluster_name: str) -> str:
    """An EKS bearer token: a presigned STS GetCallerIdentity URL with the ``x-k8s-aws-id`` header signed in."""
    from deployctl import aws

    sts = aws.client(env, "sts")

    def add_cluster_header(request: Any, **_: Any) -> None:
        request.headers["x-k8s-aws-id"] = cluster_name

    sts.meta.events.register("before-sign.sts.GetCallerIdentity", add_cluster_header)
    url = sts.generate_presigned_url(
        "get_caller_identity", Params={}, ExpiresIn=EKS_TOKEN_TTL_SECONDS, HttpMethod="GET"
    )
    return token_from_presigned_url(str(url))


def token_from_presigned_url(url: str) -> str:
    return EKS_TOKEN_PREFIX + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


def eks_kubeconfig(*, name: str, endpoint: str, ca_data: str, token: str) -> dict[str, Any]:
    """A kubeconfig document with one cluster, user and context, all named ``name``."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": endpoint, "certificate-authority-data": ca_data}}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
    }


def eks_kubeconfig_for(env: Environment, cluster_name: str, redactor: Redactor | None = None) -> dict[str, Any]:
    from deployctl import aws

    try:
        cluster = aws.client(env, "eks").describe_cluster(name=cluster_name)["cluster"]
    except Exception as exc:  # noqa: BLE001 (botocore: not found, no credentials, endpoint down)
        raise OperationError(
            f"cannot describe EKS cluster {cluster_name!r}: {exc}",
            "check that the cluster exists (`deployctl apply ENV`) and the environment's AWS credentials",
        ) from None
    token = eks_token(env, cluster_name)
    if redactor is not None:
        redactor.add(token)
    return eks_kubeconfig(
        name=cluster_name,
        endpoint=str(cluster["endpoint"]),
        ca_data=str(cluster.get("certificateAuthority", {}).get("data", "")),
        token=token,
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


def unreachable(exc: BaseException, kube: Kube) -> OperationError:
    return OperationError(
        f"cannot reach the cluster ({kube.kubeconfig}{', context ' + kube.context if kube.context else ''}): {exc}",
        "check that the cluster is up and the kubeconfig/context are right (`deployctl doctor`)",
    )


# --------------------------------------------------------------------------- rollout: pure verdict


@dataclass(frozen=True)
class Condition:
    type: str
    status: str
    reason: str = ""
    message: str = ""


@dataclass(frozen=True)
class DeploymentState:
    name: str
    generation: int
    observed_generation: int
    replicas: int  # desired (spec)
    status_replicas: int = 0  # all pods of all ReplicaSets
    updated_replicas: int = 0
    available_replicas: int = 0
    ready_replicas: int = 0
    revision: str = ""
    conditions: tuple[Condition, ...] = ()

    def condition(self, kind: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == kind), None)


@dataclass(frozen=True)
class ContainerState:
    name: str
    ready: bool = False
    waiting_reason: str = ""
    waiting_message: str = ""
    restart_count: int = 0
    last_terminated_reason: str = ""
    last_exit_code: int | None = None


@dataclass(frozen=True)
class PodState:
    name: str
    containers: tuple[ContainerState, ...] = ()
    phase: str = "Pending"
    deleting: bool = False


@dataclass(frozen=True)
class Verdict:
    state: str  # progressing | complete | failed
    message: str
    pod: str | None = None
    container: str | None = None
    reason: str | None = None

    @property
    def done(self) -> bool:
        return self.state != "progressing"


def evaluate(deployment: DeploymentState, new_pods: Sequence[PodState]) -> Verdict:
    """The state of a rollout, from the Deployment and the pods of its new ReplicaSet.

    Failed as soon as a new pod cannot pull or keeps crashing, or the Deployment reports
    ProgressDeadlineExceeded/ReplicaFailure; complete when every desired replica is updated,
    available, and no old replica remains (what ``kubectl rollout status`` waits for).
    """
    for pod in new_pods:
        if pod.deleting:
            continue
        for container in pod.containers:
            if container.waiting_reason in FATAL_WAITING_REASONS:
                detail = container.waiting_message or ""
                if container.last_terminated_reason or container.last_exit_code is not None:
                    last = f"last exit: {container.last_terminated_reason or 'terminated'}"
                    if container.last_exit_code is not None:
                        last += f" (code {container.last_exit_code})"
                    detail = f"{detail}; {last}" if detail else last
                return Verdict(
                    "failed",
                    f"pod {pod.name} container {container.name}: {container.waiting_reason}"
                    + (f": {detail}" if detail else ""),
                    pod=pod.name,
                    container=container.name,
                    reason=container.waiting_reason,
                )
    progressing = deployment.condition("Progressing")
    if progressing is not None and progressing.status == "False" and progressing.reason == "ProgressDeadlineExceeded":
        return Verdict(
            "failed",
            f"deployment {deployment.name}: ProgressDeadlineExceeded: {progressing.message}",
            reason="ProgressDeadlineExceeded",
        )
    failure = deployment.condition("ReplicaFailure")
    if failure is not None and failure.status == "True":
        return Verdict(
            "failed",
            f"deployment {deployment.name}: {failure.reason or 'ReplicaFailure'}: {failure.message}",
            reason=failure.reason or "ReplicaFailure",
        )
    if deployment.observed_generation < deployment.generation:
        return Verdict("progressing", "waiting for the deployment controller to observe the new spec")
    want = deployment.replicas
    if deployment.updated_replicas < want:
        return Verdict("progressing", f"{deployment.updated_replicas} of {want} new replicas updated")
    if deployment.status_replicas > deployment.updated_replicas:
        old = deployment.status_replicas - deployment.updated_replicas
        return Verdict("progressing", f"{old} old replica(s) pending termination")
    if deployment.available_replicas < deployment.updated_replicas:
        return Verdict("progressing", f"{deployment.available_replicas} of {want} updated replicas available")
    return Verdict("complete", f"{want} of {want} replicas updated and available")


# --------------------------------------------------------------------------- snapshots from API objects


def deployment_state(obj: Mapping[str, Any]) -> DeploymentState:
    """From a Deployment as a JSON dict (camelCase, as the API serves it)."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    return DeploymentState(
        name=str(meta.get("name", "")),
        generation=int(meta.get("generation") or 0),
        observed_generation=int(status.get("observedGeneration") or 0),
        replicas=int(spec["replicas"]) if spec.get("replicas") is not None else 1,
        status_replicas=int(status.get("replicas") or 0),
        updated_replicas=int(status.get("updatedReplicas") or 0),
        available_replicas=int(status.get("availableReplicas") or 0),
        ready_replicas=int(status.get("readyReplicas") or 0),
        revision=str((meta.get("annotations") or {}).get(REVISION_ANNOTATION, "")),
        conditions=tuple(
            Condition(
                type=str(c.get("type", "")),
                status=str(c.get("status", "")),
                reason=str(c.get("reason") or ""),
                message=str(c.get("message") or ""),
            )
            for c in status.get("conditions") or ()
        ),
    )


def pod_state(obj: Mapping[str, Any]) -> PodState:
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    containers = []
    for cs in [*(status.get("initContainerStatuses") or ()), *(status.get("containerStatuses") or ())]:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        last = (cs.get("lastState") or {}).get("terminated") or {}
        containers.append(
            ContainerState(
                name=str(cs.get("name", "")),
                ready=bool(cs.get("ready")),
                waiting_reason=str(waiting.get("reason") or ""),
                waiting_message=str(waiting.get("message") or ""),
                restart_count=int(cs.get("restartCount") or 0),
                last_terminated_reason=str(last.get("reason") or ""),
                last_exit_code=int(last["exitCode"]) if last.get("exitCode") is not None else None,
            )
        )
    return PodState(
        name=str(meta.get("name", "")),
        containers=tuple(containers),
        phase=str(status.get("phase") or "Pending"),
        deleting=meta.get("deletionTimestamp") is not None,
    )


# --------------------------------------------------------------------------- rollout: the watch loop


@dataclass
class _RolloutView:
    """What the watch loop knows: the latest Deployment and the pods, by name."""

    deployment: dict[str, Any] | None = None
    pods: dict[str, dict[str, Any]] = field(default_factory=dict)
    new_hash: str | None = None
    hash_for_revision: str = ""


def _selector(match_labels: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(match_labels.items()))


def _sanitize(api: Any, obj: Any) -> dict[str, Any]:
    result: dict[str, Any] = api.sanitize_for_serialization(obj)
    return result


def watch_rollout(  # noqa: PLR0915 (one loop with its two watch threads reads best in one place)
    kube: Kube,
    namespace: str,
    name: str,
    *,
    timeout: float,
    on_progress: Callable[[str], None] | None = None,
) -> Verdict:
    """Watch Deployment ``name`` until ``evaluate`` says complete or failed, or ``timeout`` seconds pass.

    Two API watches (the Deployment, its pods) feed one queue; each event re-evaluates.
    A watch that ends (server timeout, 410 Gone) is restarted from a fresh list.
    """
    from kubernetes import client as kclient
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    api = api_client(kube)
    apps = kclient.AppsV1Api(api)
    core = kclient.CoreV1Api(api)
    try:
        first = _sanitize(api, apps.read_namespaced_deployment(name, namespace))
    except ApiException as exc:
        if exc.status == 404:
            raise OperationError(f"deployment {name} not found in namespace {namespace}") from None
        raise unreachable(exc, kube) from None
    except HTTPError as exc:
        raise unreachable(exc, kube) from None
    selector = _selector(first["spec"]["selector"].get("matchLabels") or {})
    events: queue.Queue[tuple[str, str, dict[str, Any]] | None] = queue.Queue()
    stop = threading.Event()

    def pump(kind: str, list_call: Callable[..., Any], **kwargs: Any) -> None:
        from kubernetes import watch

        while not stop.is_set():
            try:
                listed = list_call(namespace, **kwargs)
                events.put((kind, "SYNC", _sanitize(api, listed)))
                watcher = watch.Watch()
                for event in watcher.stream(
                    list_call,
                    namespace,
                    resource_version=listed.metadata.resource_version,
                    timeout_seconds=30,
                    _request_timeout=40,
                    **kwargs,
                ):
                    if stop.is_set():
                        watcher.stop()
                        break
                    events.put((kind, str(event["type"]), _sanitize(api, event["object"])))
            except Exception as exc:  # noqa: BLE001 (a broken watch is restarted; the loop's deadline bounds it)
                log.debug("%s watch ended: %s; restarting", kind, exc)
                if stop.wait(1.0):
                    return

    threads = [
        threading.Thread(
            target=pump,
            args=("deployment", apps.list_namespaced_deployment),
            kwargs={"field_selector": f"metadata.name={name}"},
            daemon=True,
        ),
        threading.Thread(
            target=pump, args=("pod", core.list_namespaced_pod), kwargs={"label_selector": selector}, daemon=True
        ),
    ]
    for thread in threads:
        thread.start()
    view = _RolloutView(deployment=first)
    deadline = time.monotonic() + timeout
    last_message = ""
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                verdict = _evaluate_view(view, apps, namespace, selector, api)
                return Verdict(
                    "failed", f"rollout not complete after {timeout:.0f}s: {verdict.message}", reason="Timeout"
                )
            try:
                item = events.get(timeout=min(remaining, 5.0))
            except queue.Empty:
                item = None  # no event for a while: re-evaluate anyway (e.g. the new ReplicaSet appeared)
            if item is not None:
                _apply(view, *item)
            verdict = _evaluate_view(view, apps, namespace, selector, api)
            if verdict.message != last_message:
                last_message = verdict.message
                if on_progress is not None and not verdict.done:
                    on_progress(verdict.message)
            if verdict.done:
                return verdict
    finally:
        stop.set()


def _apply(view: _RolloutView, kind: str, event: str, obj: dict[str, Any]) -> None:
    if kind == "deployment":
        if event == "SYNC":
            items = obj.get("items") or []
            if items:
                view.deployment = items[0]
        elif event in ("ADDED", "MODIFIED"):
            view.deployment = obj
        return
    if event == "SYNC":
        view.pods = {p["metadata"]["name"]: p for p in obj.get("items") or ()}
    elif event == "DELETED":
        view.pods.pop(obj["metadata"]["name"], None)
    elif event in ("ADDED", "MODIFIED"):
        view.pods[obj["metadata"]["name"]] = obj


def _evaluate_view(view: _RolloutView, apps: Any, namespace: str, selector: str, api: Any) -> Verdict:
    assert view.deployment is not None  # noqa: S101 (set from the first read)
    state = deployment_state(view.deployment)
    if state.observed_generation >= state.generation and state.revision and view.hash_for_revision != state.revision:
        view.new_hash = _new_replicaset_hash(apps, namespace, selector, state.revision, api)
        if view.new_hash is not None:
            view.hash_for_revision = state.revision
    new_pods = [
        pod_state(p)
        for p in view.pods.values()
        if view.new_hash is not None and (p["metadata"].get("labels") or {}).get("pod-template-hash") == view.new_hash
    ]
    return evaluate(state, new_pods)


def _new_replicaset_hash(apps: Any, namespace: str, selector: str, revision: str, api: Any) -> str | None:
    """The pod-template-hash of the ReplicaSet whose revision is the Deployment's (the new one)."""
    for rs in apps.list_namespaced_replica_set(namespace, label_selector=selector).items:
        doc = _sanitize(api, rs)
        meta = doc.get("metadata") or {}
        if (meta.get("annotations") or {}).get(REVISION_ANNOTATION) == revision:
            return (meta.get("labels") or {}).get("pod-template-hash")
    return None


# --------------------------------------------------------------------------- live state


@dataclass(frozen=True)
class Workload:
    """A Deployment of a release, as it runs."""

    name: str
    image: str
    digest: str | None
    tag: str | None
    git_sha: str | None
    desired: int
    ready: int
    updated: int
    available: int


def workloads(kube: Kube, namespace: str, release: str) -> list[Workload]:
    """The Deployments of ``release`` (label app.kubernetes.io/instance) and what they run."""
    from kubernetes import client as kclient
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    api = api_client(kube)
    try:
        listed = kclient.AppsV1Api(api).list_namespaced_deployment(
            namespace, label_selector=f"app.kubernetes.io/instance={release}"
        )
    except (ApiException, HTTPError) as exc:
        raise unreachable(exc, kube) from None
    found = []
    for item in listed.items:
        doc = _sanitize(api, item)
        found.append(workload_of(doc))
    return found


def workload_of(doc: Mapping[str, Any]) -> Workload:
    template = doc.get("spec", {}).get("template", {})
    annotations = {
        **(doc.get("metadata", {}).get("annotations") or {}),
        **(template.get("metadata", {}).get("annotations") or {}),
    }
    containers = template.get("spec", {}).get("containers") or [{}]
    image = str(containers[0].get("image", ""))
    digest = image.partition("@")[2] or annotations.get("deployctl.dev/image-digest")
    status = doc.get("status") or {}
    spec_replicas = doc.get("spec", {}).get("replicas")
    return Workload(
        name=str(doc.get("metadata", {}).get("name", "")),
        image=image,
        digest=digest or None,
        tag=annotations.get("deployctl.dev/image-tag"),
        git_sha=annotations.get("deployctl.dev/git-sha"),
        desired=int(spec_replicas) if spec_replicas is not None else 1,
        ready=int(status.get("readyReplicas") or 0),
        updated=int(status.get("updatedReplicas") or 0),
        available=int(status.get("availableReplicas") or 0),
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
        raise unreachable(exc, kube) from None
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
            raise unreachable(exc, kube) from None
    except HTTPError as exc:
        raise unreachable(exc, kube) from None


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
            raise unreachable(exc, self.kube) from None
        except HTTPError as exc:
            raise unreachable(exc, self.kube) from None
        return data if isinstance(data, dict) else None

    def get(self, api_version: str, kind: str, name: str, namespace: str | None) -> dict[str, Any] | None:
        resource, namespaced = self._resource(api_version, kind)
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        if namespaced and namespace:
            return self._call(f"{base}/namespaces/{namespace}/{resource}/{name}")
        return self._call(f"{base}/{resource}/{name}")
