"""``ClusterClient.live`` asks helm once for a release's latest revision (issue 29: ``helm status``, not ``helm list`` then
``helm status``), and still tells a release that is not installed from a helm that fails. helm's answers are canned
(their JSON as helm 4 prints it); the cluster snapshot is stubbed: the lab tests run both for real."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from deployctl.adapters.helm import Helm
from deployctl.adapters.helm_argv import Kube
from deployctl.core.errors import CommandFailedError
from deployctl.redact import Redactor
from deployctl.rollout import cluster as cluster_module
from deployctl.rollout import watch
from deployctl.rollout.cluster import ClusterClient
from deployctl.runner import CommandResult

STATUS = json.dumps(
    {
        "name": "api",
        "namespace": "dev",
        "version": 3,
        "info": {"status": "deployed", "last_deployed": "2026-12-07T10:00:00Z"},
        "config": {},
        "manifest": "kind: Deployment\nmetadata:\n  name: api\n",
    }
)


@dataclass
class HelmAnswers:
    """helm by subcommand: (exit code, stdout, stderr); records each argv."""

    answers: Mapping[str, tuple[int, str, str]]
    redactor: Redactor = field(default_factory=Redactor)
    calls: list[str] = field(default_factory=list)

    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        ok_codes: Collection[int] = (0,),
        stream: bool = False,
        hint: str | None = None,
    ) -> CommandResult:
        del cwd, env, timeout, stream, hint
        self.calls.append(argv[1])
        if argv[1] == "upgrade":
            time.sleep(0.3)  # the hook watch is waiting by then
        code, out, err = self.answers[argv[1]]
        if code not in ok_codes:
            raise CommandFailedError(list(argv), code, err)
        return CommandResult(argv=list(argv), exit_code=code, stdout=out, stderr=err, duration=0.01)


def live_of(answers: Mapping[str, tuple[int, str, str]], monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list[str]]:
    runner = HelmAnswers(answers)
    kube = Kube(Path("/nonexistent"))
    monkeypatch.setattr(cluster_module, "live_release", lambda _kube, _ns, release: release)  # the snapshot: stubbed
    live = ClusterClient(kube, Helm(runner=runner, kube=kube, major=4), "dev").live("api")
    return live, runner.calls


def test_an_installed_release_is_one_helm_status(monkeypatch: pytest.MonkeyPatch) -> None:
    live, calls = live_of({"status": (0, STATUS, "")}, monkeypatch)
    assert calls == ["status"]
    assert (live.name, live.revision, live.status) == ("api", 3, "deployed")
    assert "name: api" in live.manifest


def test_a_release_not_installed_is_none_and_a_failing_helm_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    missing = {"status": (1, "", "Error: release: not found")}
    live, calls = live_of(missing, monkeypatch)
    assert live is None and calls == ["status"]
    failing = {"status": (1, "", "Error: Kubernetes cluster unreachable")}
    with pytest.raises(CommandFailedError, match="unreachable"):
        live_of(failing, monkeypatch)


def test_the_kept_history_of_an_uninstall_is_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    gone = json.loads(STATUS)
    gone["info"]["status"] = "uninstalled"
    live, calls = live_of({"status": (0, json.dumps(gone), "")}, monkeypatch)
    assert live is None and calls == ["status"]


class WokenHooks:
    """A hook watch that sees no hook: ``failure`` waits its whole timeout unless woken."""

    def __init__(self, *_: object, **__: object) -> None:
        self.watch = self
        self._woken = threading.Event()

    def wake(self) -> None:
        self._woken.set()

    def failure(self, timeout: float) -> None:
        self._woken.wait(timeout)
        self._woken.clear()

    def stop(self) -> None:
        pass


def test_the_upgrade_returns_when_helm_does_not_at_the_hook_watchs_next_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    """The verdict lag (issue 29): after helm, the rollout watch starts at once."""
    monkeypatch.setattr(watch, "HookWatch", WokenHooks)
    monkeypatch.setattr(cluster_module, "HOOK_POLL", 30.0)
    runner = HelmAnswers({"upgrade": (0, STATUS, "")})
    kube = Kube(Path("/nonexistent"))
    cluster = ClusterClient(kube, Helm(runner=runner, kube=kube, major=4), "dev")
    started = time.monotonic()
    release = cluster.upgrade(release="api", chart="charts/api", values_files=(), set_string={}, description="d")
    assert release.revision == 3
    assert time.monotonic() - started < 5, "waited for the hook watch's poll"
