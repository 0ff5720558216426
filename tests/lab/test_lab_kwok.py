"""kwok in the lab (issue 24): a mark changes kwok's Stages in the API server while kwok keeps running, and a
component that dies while it starts (kwok once panicked in ``initCEL``) is started again."""

from __future__ import annotations

import hashlib
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from deployctl.sandbox import kwok_stages, versions
from deployctl.sandbox.lab import Lab, LabError
from deployctl.sandbox.processes import START_ATTEMPTS
from deployctl.sandbox.procfs import groups_with_cwd
from deployctl.sandbox.tools import Tools

pytestmark = pytest.mark.lab

Pod = Mapping[str, Any]


def _waiting(pod: Pod) -> set[str]:
    return {
        c.get("state", {}).get("waiting", {}).get("reason", "")
        for c in pod.get("status", {}).get("containerStatuses", [])
    }


def _ready(pod: Pod) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", []))


def _oom(pod: Pod) -> bool:
    last = [c.get("lastState", {}).get("terminated", {}) for c in pod["status"].get("containerStatuses", [])]
    return "CrashLoopBackOff" in _waiting(pod) and any(t.get("reason") == "OOMKilled" for t in last)


def _exited_1(pod: Pod) -> bool:
    ends = [c.get("state", {}).get("terminated", {}) for c in pod["status"].get("containerStatuses", [])]
    return pod["status"].get("phase") == "Failed" and any(t.get("exitCode") == 1 for t in ends)


def _running_never_ready(pod: Pod) -> bool:
    statuses = pod["status"].get("containerStatuses", [])
    return pod["status"].get("phase") == "Running" and bool(statuses) and not any(c["ready"] for c in statuses)


# behaviour -> what a new pod of a marked image shows once kwok played it
FAILED: dict[str, Callable[[Pod], bool]] = {
    "crashloop": lambda pod: "CrashLoopBackOff" in _waiting(pod) and not _oom(pod),
    "oom": _oom,
    "pull-error": lambda pod: bool(_waiting(pod) & {"ErrImagePull", "ImagePullBackOff"}),
    "not-ready": _running_never_ready,
    "fail": _exited_1,
}


def _pod(lab: Lab, namespace: str, image: str) -> str:
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"generateName": "marked-"},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "app", "image": image}]},
    }
    deadline = time.monotonic() + 10
    while True:  # a new namespace's default ServiceAccount comes a moment later (the controller-manager)
        code, reply = lab.kube("POST", f"/api/v1/namespaces/{namespace}/pods", body)
        if code == 201 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert code == 201, reply
    return str(reply["metadata"]["name"])


def _wait_for(lab: Lab, namespace: str, name: str, done: Callable[[Pod], bool], timeout: float = 20) -> Pod:
    deadline = time.monotonic() + timeout
    pod: Pod = {}
    while time.monotonic() < deadline:
        code, pod = lab.kube("GET", f"/api/v1/namespaces/{namespace}/pods/{name}")
        if code == 200 and done(pod):
            return pod
        time.sleep(0.1)
    raise AssertionError(f"pod {name} not as expected after {timeout}s: {pod.get('status')}")


@pytest.mark.parametrize("behaviour", list(FAILED))
def test_a_mark_changes_new_pods_within_seconds_and_kwok_keeps_running(lab: Lab, behaviour: str) -> None:
    namespace = f"kwok-{behaviour}"
    assert lab.kube("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})[0] in (201, 409)
    digest = "sha256:" + hashlib.sha256(uuid.uuid4().bytes).hexdigest()
    image = f"{lab.registry_hosts[0]}/marked@{digest}"  # a repository name that is no default marker
    before = _wait_for(lab, namespace, _pod(lab, namespace, image), _ready)  # unmarked: a healthy pod
    kwok = lab.services["kwok"]
    log_size = Path(kwok.log).stat().st_size

    started = time.monotonic()
    lab.mark_image(digest, behaviour)
    marked_in = time.monotonic() - started
    name = _pod(lab, namespace, image)  # right away: mark_image returns once kwok plays the mark
    pod = _wait_for(lab, namespace, name, FAILED[behaviour], timeout=15)

    assert marked_in < 10
    if behaviour == "not-ready":
        time.sleep(2)  # and it stays so
        assert not _ready(_wait_for(lab, namespace, name, FAILED[behaviour]))
    assert not _ready(pod)
    assert lab.services["kwok"] == kwok and kwok.is_running()  # the same process: never restarted
    assert "start attempt" not in Path(kwok.log).read_text(errors="replace")[log_size:]
    assert _ready(lab.kube("GET", f"/api/v1/namespaces/{namespace}/pods/{before['metadata']['name']}")[1])


def test_the_stage_crd_is_kwoks_own(lab_tools: Tools) -> None:
    """The CRD shipped with the lab is the one in kwok's module at the version the lab builds."""
    go = lab_tools.paths.get("go")
    if go is None:
        pytest.skip("no go on PATH: the module cache cannot be read")
    cache = subprocess.run([go, "env", "GOMODCACHE"], capture_output=True, text=True, check=True).stdout.strip()
    upstream = Path(cache) / f"sigs.k8s.io/kwok@v{versions.KWOK}/kustomize/crd/bases/kwok.x-k8s.io_stages.yaml"
    if not upstream.is_file():
        pytest.skip(f"kwok's module is not in the Go module cache: {upstream}")
    shipped = kwok_stages.STAGE_CRD.read_text(encoding="utf-8")
    assert kwok_stages.documents(shipped) == kwok_stages.documents(upstream.read_text(encoding="utf-8"))


def _kwok_that_dies(tmp_path: Path, real: Path, times: int) -> Path:
    """A stand-in kwok that panics at its first ``times`` starts, then runs the real one (injected: the real
    kwok panics during start-up only rarely, issue 24)."""
    counter = tmp_path / "kwok-starts"
    script = tmp_path / "kwok"
    script.write_text(
        "#!/bin/sh\n"
        f'n=$(cat "{counter}" 2>/dev/null || echo 0); echo $((n + 1)) > "{counter}"\n'
        f'if [ "$n" -lt {times} ]; then echo "panic: runtime error (injected start $((n + 1)))"; exit 2; fi\n'
        f'exec "{real}" "$@"\n'
    )
    script.chmod(0o755)
    return script


def _tools_with(lab_tools: Tools, kwok: Path) -> Tools:
    return Tools(
        bin_dir=lab_tools.bin_dir,
        paths={**lab_tools.paths, "kwok": kwok},
        provider_mirror=lab_tools.provider_mirror,
        terraformrc=lab_tools.terraformrc,
    )


def test_a_component_that_dies_while_it_starts_is_started_again(lab_tools: Tools, tmp_path: Path) -> None:
    said: list[str] = []
    lab = Lab(state_dir=tmp_path / "lab", tools=_tools_with(lab_tools, _kwok_that_dies(tmp_path, lab_tools["kwok"], 1)))
    lab.start(["cluster"], progress=said.append)
    try:
        kwok = lab.services["kwok"]
        assert kwok.attempts == 2
        (line,) = lab.processes.retries
        assert line.startswith("kwok exited during start-up ('panic: runtime error (injected start 1)')")
        assert line.endswith(f"starting it again (attempt 2/{START_ATTEMPTS})")
        assert line in said
        assert f"start attempt 2/{START_ATTEMPTS}" in Path(kwok.log).read_text()
        assert all(lab.status().values())
    finally:
        lab.stop()


def test_a_component_that_always_dies_fails_after_the_retries_with_its_log_tail(
    lab_tools: Tools, tmp_path: Path
) -> None:
    lab = Lab(
        state_dir=tmp_path / "lab", tools=_tools_with(lab_tools, _kwok_that_dies(tmp_path, lab_tools["kwok"], 99))
    )
    with pytest.raises(LabError) as caught:
        lab.start(["cluster"])

    log_path = tmp_path / "lab" / "logs" / "kwok.log"
    lines = caught.value.message.splitlines()
    assert lines[0] == f"lab component kwok exited during start-up after {START_ATTEMPTS - 1} retries; log: {log_path}"
    assert f"panic: runtime error (injected start {START_ATTEMPTS})" in lines[1:]
    assert log_path.read_text().count("start attempt") == START_ATTEMPTS
    assert groups_with_cwd(tmp_path / "lab") == []


def test_a_restarted_kwok_plays_the_marks_made_before(lab: Lab) -> None:
    """The marks live in the API server, not in kwok: ``sandbox restart kwok`` keeps them."""
    namespace = "kwok-restarted"
    assert lab.kube("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})[0] in (201, 409)
    digest = "sha256:" + hashlib.sha256(uuid.uuid4().bytes).hexdigest()
    lab.mark_image(digest, "pull-error")
    old = lab.services["kwok"]

    new = lab.restart("kwok")

    assert new.pid != old.pid and new.ports == old.ports
    name = _pod(lab, namespace, f"{lab.registry_hosts[0]}/marked@{digest}")
    _wait_for(lab, namespace, name, FAILED["pull-error"])
    healthy = _pod(lab, namespace, f"{lab.registry_hosts[0]}/marked@sha256:{'0' * 64}")
    _wait_for(lab, namespace, healthy, _ready)
