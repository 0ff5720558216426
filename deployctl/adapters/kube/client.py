"""The cluster through the official ``kubernetes`` client: API errors, a namespace's snapshot, the probes for an
autoscaler; no judging here (``rollout.live`` judges a snapshot).

``kubernetes`` imports slowly (hundreds of ms), so it is imported inside the functions that use
it: importing this module is free and ``deployctl --help`` stays fast.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from typing import Any

from deployctl.adapters.helm_argv import Kube
from deployctl.adapters.kube.view import View
from deployctl.core.errors import DeployctlError, OperationError, UsageError

# A kind's namespaced list call: the kubernetes client's API group class and method (``rollout.kinds`` says which).
ListCall = tuple[str, str]

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
    """An exception of the kubernetes client or urllib3 (an API call's), which ``translate`` turns into deployctl's."""
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


def list_call(api: Any, call: ListCall) -> Any:
    """The namespaced list ``call`` (group class, method) on ``api``."""
    from kubernetes import client as kclient

    group, method = call
    return getattr(getattr(kclient, group)(api), method)


def list_json(api: Any, call: ListCall, namespace: str, **options: str) -> dict[str, Any]:
    """One list ``call`` in ``namespace`` as the API server sent it (issue 29: building the client's models and
    turning them back into dicts was most of the CPU of a release's snapshot); ``options``: the call's own
    (``field_selector``)."""
    response = list_call(api, call)(namespace, _preload_content=False, **options)
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


def live_view(kube: Kube, namespace: str, kinds: Mapping[str, ListCall]) -> tuple[Any, View]:
    """One listing of ``kinds`` (kind -> its list call) in ``namespace``: the API client and kind -> name -> object."""
    api = api_client(kube)
    view = {}
    for kind, call in kinds.items():
        listed = list_json(api, call, namespace)
        view[kind] = {o["metadata"]["name"]: o for o in listed.get("items") or ()}
    return api, view
