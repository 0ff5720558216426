"""kwok's Stages, kept in the lab's API server: which images fail, and how.

kwok runs with ``--enable-crds=Stage``: it reads Stage objects from the API server and follows changes to
them (a watch), so marking an image is an apply of the re-rendered Stages, not a restart of kwok (a
restart could fail: kwok v0.8.0 once panicked during start-up on a ``sandbox mark`` restart, issue 24).
Stages drive pods to Running/Ready, or, when the image reference contains a marker (a default name below
or a marked digest), to a failure: CrashLoopBackOff (``crashloop``), the same with OOMKilled
(``oomkilled``), ImagePullBackOff (``does-not-exist``), running and never ready (``never-ready``), or exit
code 1 (``exits-nonzero``: a Job's pod that fails)."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from deployctl.sandbox.processes import LabError

log = logging.getLogger(__name__)

STAGES_TEMPLATE = Path(__file__).with_name("kwok-stages.yaml")
STAGE_CRD = Path(__file__).with_name("kwok-stage-crd.yaml")
CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
STAGES_PATH = "/apis/kwok.x-k8s.io/v1alpha1/stages"
# Server-side apply: one idempotent call creates or updates an object (JSON is YAML).
APPLY = "application/apply-patch+yaml"
APPLY_QUERY = "?fieldManager=deployctl-lab&force=true"
# The canary pod that proves kwok has seen a new marker (see ``await_marker``).
CANARY_NAMESPACE = "kube-system"
CANARY_LABEL = "deployctl.lab/kwok-canary"

# Image markers kwok turns into failures (regexes over the pod's image reference): behaviour -> the stage
# placeholders its markers join (an OOM is a crash loop whose last exit says OOMKilled).
BEHAVIOURS = {
    "crashloop": ("__CRASH_MARKERS__",),
    "oom": ("__CRASH_MARKERS__", "__OOM_MARKERS__"),
    "pull-error": ("__PULL_MARKERS__",),
    "not-ready": ("__NOT_READY_MARKERS__",),
    "fail": ("__FAIL_MARKERS__",),
}
DEFAULT_MARKERS = {
    "crashloop": ["crashloop"],
    "oom": ["oomkilled"],
    "pull-error": ["does-not-exist"],
    "not-ready": ["never-ready"],
    "fail": ["exits-nonzero"],
}
MARKER_RE = re.compile(r"[A-Za-z0-9:._/-]{3,200}")


class RawKube(Protocol):
    """``ControlPlane.kube``: a raw call to the API server as the admin."""

    def __call__(
        self, method: str, path: str, body: Mapping[str, Any] | None = None, *, content_type: str = ...
    ) -> tuple[int, Any]: ...


def default_markers() -> dict[str, list[str]]:
    return {behaviour: list(markers) for behaviour, markers in DEFAULT_MARKERS.items()}


def check_marker(marker: str, behaviour: str) -> None:
    if behaviour not in BEHAVIOURS:
        raise LabError(f"unknown behaviour {behaviour!r} (known: {', '.join(BEHAVIOURS)})")
    if not MARKER_RE.fullmatch(marker):
        raise LabError(f"invalid image marker {marker!r}: use letters, digits and ':._/-'")


def render(markers: Mapping[str, list[str]]) -> str:
    """The kwok Stages (YAML) with ``markers`` (regex alternations of plain markers)."""
    text = STAGES_TEMPLATE.read_text(encoding="utf-8")
    joined: dict[str, list[str]] = {}
    for behaviour, placeholders in BEHAVIOURS.items():
        for placeholder in placeholders:
            joined.setdefault(placeholder, []).extend(markers.get(behaviour, []))
    for placeholder, found in joined.items():
        # gojq's test() takes a regex; markers are plain (MARKER_RE), so no escaping is needed
        # inside the jq string ('.' matching any character is harmless for digests and names).
        text = text.replace(placeholder, "|".join(found) or "^$")
    templates = {"__CRASH_TEMPLATE__": "__CRASH_MARKERS__", "__OOM_TEMPLATE__": "__OOM_MARKERS__"}
    for placeholder, source in templates.items():
        tests = " ".join(f'(contains "{m}" .image)' for m in joined.get(source, []))
        text = text.replace(placeholder, f"or {tests} false" if tests else "false")
    return text


def documents(text: str) -> list[dict[str, Any]]:
    import yaml

    return [doc for doc in yaml.safe_load_all(text) if doc]


def install_crd(kube: RawKube, timeout: float) -> None:
    """Install kwok's Stage CRD and wait until the API server serves Stages."""
    (crd,) = documents(STAGE_CRD.read_text(encoding="utf-8"))
    name = crd["metadata"]["name"]
    code, reply = kube("PATCH", f"{CRD_PATH}/{name}{APPLY_QUERY}", crd, content_type=APPLY)
    if code not in (200, 201):
        raise LabError(f"cannot install kwok's Stage CRD: HTTP {code}: {reply}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code, reply = kube("GET", f"{CRD_PATH}/{name}")
        conditions = ((reply or {}).get("status") or {}).get("conditions") or [] if code == 200 else []
        if any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions):
            return
        time.sleep(0.1)
    raise LabError(f"kwok's Stage CRD not established after {timeout:.0f}s: {reply}")


def apply(kube: RawKube, markers: Mapping[str, list[str]], timeout: float) -> str:
    """Create or update every Stage with ``markers`` in the API server; returns the YAML applied."""
    text = render(markers)
    deadline = time.monotonic() + timeout
    for stage in documents(text):
        name = stage["metadata"]["name"]
        while True:
            code, reply = kube("PATCH", f"{STAGES_PATH}/{name}{APPLY_QUERY}", stage, content_type=APPLY)
            if code in (200, 201):
                break
            # Right after the CRD is established, its endpoint can answer 404 for a moment.
            if code != 404 or time.monotonic() > deadline:
                raise LabError(f"cannot apply kwok Stage {name}: HTTP {code}: {reply}")
            time.sleep(0.1)
    return text


def await_marker(kube: RawKube, node: str, marker: str, behaviour: str, timeout: float) -> None:
    """Wait until kwok plays ``marker``'s new Stages: a canary pod of an image containing it must fail.

    kwok follows Stages with a watch, and pods with another: a pod created right after the apply could
    still be played with the old Stages. So a canary pod (bound to ``node``, no scheduler) is created until
    one fails instead of turning Ready; from then on every new pod gets the new Stages."""
    deadline = time.monotonic() + timeout
    seen: str = "no canary created"
    while time.monotonic() < deadline:
        outcome = _canary(kube, node, marker, deadline)
        if outcome == "failed":
            log.debug("kwok plays %s as %s", marker, behaviour)
            return
        seen = outcome
        time.sleep(0.2)
    raise LabError(f"kwok did not play image marker {marker} as {behaviour} within {timeout:.0f}s ({seen})")


def _canary(kube: RawKube, node: str, marker: str, deadline: float) -> str:
    """Create one canary pod, wait for kwok to play it: "failed", "ready" (old Stages) or what was seen."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"generateName": "kwok-canary-", "labels": {CANARY_LABEL: "true"}},
        "spec": {
            "nodeName": node,
            "automountServiceAccountToken": False,
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "canary", "image": f"lab.invalid/kwok-canary@{marker}"}],
        },
    }
    pods = f"/api/v1/namespaces/{CANARY_NAMESPACE}/pods"
    code, reply = kube("POST", pods, pod)
    if code != 201:
        return f"canary pod not created: HTTP {code}: {reply}"
    name = reply["metadata"]["name"]
    try:
        while time.monotonic() < deadline:
            code, reply = kube("GET", f"{pods}/{name}")
            played = _played(reply if code == 200 else {})
            if played is not None:
                return played
            time.sleep(0.1)
        return f"canary pod {name} still unplayed: {(reply or {}).get('status')}"
    finally:
        kube("DELETE", f"{pods}/{name}?gracePeriodSeconds=0")


def _played(pod: Mapping[str, Any]) -> str | None:
    """How kwok played a canary pod so far: "ready", "failed" or None (not yet)."""
    status = pod.get("status", {})
    if status.get("phase") == "Failed":
        return "failed"
    ready = [c.get("status") for c in status.get("conditions", []) if c.get("type") == "Ready"]
    if not status.get("containerStatuses"):
        return None  # every Stage kwok plays on a pod sets its container statuses
    return "ready" if ready == ["True"] else "failed"
