"""Verification after rollout (issue 27), against the lab: real helm (``helm test``), a real control plane with kwok
(the test Job's pod completes or fails through the lab's image marks), HTTP checks through the real API server's
service proxy, and metric queries against a real VictoriaMetrics.

kwok's pods have addresses nothing listens on, so the lab runs an HTTP stand-in (``sandbox/http_standin.py``) as
every Service's endpoint, on this host's non-loopback address (the API server refuses loopback endpoints and only
dials an address a Pod of the namespace has): it answers as the Service's ready pods would, ``200 ok`` unless
their image is marked ``http-500``. The answers the checks judge come through the real proxy from that server.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from deployctl.adapters.helm_argv import Kube
from deployctl.config import HttpCheck
from deployctl.sandbox import http_standin, metrics_server
from deployctl.sandbox.lab import Lab
from deployctl.verification import http
from deployctl.verification.judge import Answer
from deployctl.verification.proxy import ServiceProxy
from tests.lab.promotion_world import PromotionWorld, make_world
from tests.lab.world import git

pytestmark = pytest.mark.lab


@pytest.fixture
def world(
    tmp_path: Path,
    lab: Lab,
    registry: str,
    aws_reset: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> PromotionWorld:
    found = make_world(tmp_path, lab, registry, aws_reset, monkeypatch, capsys)
    # the sandbox serves the namespaces of the configurations pointed at it; a lab test names its own
    http_standin.serve(lab.state_dir, [f"{found.namespace}-dev", f"{found.namespace}-prod"])
    return found


def verify_with(world: PromotionWorld, table: str, *, dev: str = "") -> None:
    """Give the app ``table`` (TOML under [tool.deployctl.apps.api.verify]) and dev the lines ``dev``."""
    path = world.repo / "pyproject.toml"
    text = path.read_text().replace("[tool.deployctl.environments.dev]", f"{table}\n[tool.deployctl.environments.dev]")
    path.write_text(text.replace('values = "values-dev.yaml"\n', f'values = "values-dev.yaml"\n{dev}\n'))


def entry(world: PromotionWorld, env: str = "dev") -> dict[str, Any]:
    """The newest judged entry of ``env``'s ledger."""
    code, out, _ = world.run("history", env)
    assert code == 0
    return next(e for e in out["entries"] if e["outcome"] != "started")


def test_a_failing_helm_test_is_caught_in_dev_and_its_promote_refused_naming_the_check(world: PromotionWorld) -> None:
    verify_with(world, "[tool.deployctl.apps.api.verify]\nhelm_test = { timeout_seconds = 120 }")
    smoke = f"{world.registry}/{world.namespace}/smoke-broken:1"
    values = world.repo / "values-dev.yaml"
    values.write_text(values.read_text().replace("api:\n", f"api:\n  tests:\n    image: {smoke}\n", 1))
    world.lab.mark_image(
        f"{world.namespace}/smoke-broken", "fail"
    )  # the test's pod exits 1 (the release's pods are fine)
    sha, digest = world.commit("feat: D", seed=501)
    started = time.monotonic()
    code, out, err = world.run("deploy", "dev", "--image-tag", sha)
    took = time.monotonic() - started
    assert code == 1, err
    message = out["error"]["message"]
    assert message.startswith("verification of api in dev failed: check helm-test (helm-test): helm test of api:")
    assert "hook Job/api-smoke: job api-smoke: BackoffLimitExceeded" in message and "Error (code 1)" in message
    assert took < 90, f"caught in {took:.0f}s, not after helm's own timeout (120 s)"
    assert world.run("status", "dev")[0] == 0, "the release's pods are ready: only its test fails"
    recorded = entry(world)
    assert (recorded["outcome"], recorded["verdict"], recorded["verified"]) == ("failed", "failed", "failed")
    assert recorded["checks"][0]["name"] == "helm-test" and recorded["checks"][0]["outcome"] == "failed"
    git(world.repo, "tag", "-a", "release-1.0.0", "-m", "release-1.0.0")
    code, out, err = world.run("promote", "release-1.0.0")
    assert code == 4, err
    assert f"{digest} failed in dev" in out["error"]["message"]
    assert "verification failed: helm-test (helm-test): helm test of api" in out["error"]["message"]
    assert world.tag_digest("release-1.0.0") is None, "nothing moved"

    values.write_text(values.read_text().replace(smoke, f"{world.registry}/{world.namespace}/smoke:1"))
    sha, _ = world.commit("fix: the test passes", seed=502)
    code, out, err = world.run("deploy", "dev", "--image-tag", sha)
    assert code == 0, err
    (app,) = out["apps"]
    assert app["verification"]["outcome"] == "passed"
    assert app["verification"]["checks"][0]["line"] == "1 test hook(s) succeeded: Job/api-smoke"
    jobs = world.kubectl_json("dev", "get", "jobs")["items"]
    assert "api-smoke" not in {j["metadata"]["name"] for j in jobs}, "hook-succeeded: helm removed the passed test"


def test_an_http_check_through_the_service_proxy(world: PromotionWorld) -> None:
    check = 'http = [{ name = "readyz", service = "api", port = "http", path = "/readyz", successes = 2, interval_seconds = 0.5 }]'
    verify_with(world, f"[tool.deployctl.apps.api.verify]\n{check}")
    sha, good = world.commit("feat: A", seed=511)
    code, out, err = world.run("deploy", "dev", "--image-tag", sha)
    assert code == 0, err
    (app,) = out["apps"]
    line = app["verification"]["checks"][0]["line"]
    assert line == "GET api:http/readyz answered 200 2 time(s) in a row", line
    assert (entry(world)["verified"], entry(world)["outcome"]) == ("passed", "succeeded")

    sha, broken = world.commit("feat: B answers 500", seed=512)
    world.lab.mark_image(broken, "http-500")  # its pods are ready; the stand-in answers for them with 500
    code, out, err = world.run("deploy", "dev", "--image-tag", sha)
    assert code == 1, err
    message = out["error"]["message"]
    assert "check readyz (http): GET api:http/readyz answered 500, expected 200: HTTP 500 from" in message
    recorded = entry(world)
    assert (recorded["digest"], recorded["outcome"], recorded["verified"]) == (broken, "failed", "failed")
    code, out, err = world.run("deploy", "dev", "--image-tag", sha)  # CI retries: nothing changes, no helm run
    assert code == 1, "a retry of B runs its checks too, and fails again"
    assert (entry(world)["action"], entry(world)["outcome"]) == ("verify", "failed")

    # a Service that does not exist is the configuration's mistake: exit 2, naming the check, nothing passed
    path = world.repo / "pyproject.toml"
    path.write_text(path.read_text().replace('service = "api"', 'service = "api-typo"'))
    code, out, err = world.run("deploy", "dev", "--image-tag", sha)
    assert code == 2, err
    assert "could not run check readyz (http): Service api-typo does not exist in" in out["error"]["message"]
    assert (entry(world)["outcome"], entry(world)["verified"]) == ("unknown", "error")
    assert good not in (broken, None)


def metric_check(condition: str = "< 0.01", query: str = "") -> str:
    query = query or 'max(errors_ratio{namespace="{{namespace}}",digest="{{digest}}"})'
    return (
        "[[tool.deployctl.apps.api.verify.metrics]]\n"
        f'name = "errors"\nquery = \'{query}\'\ncondition = "{condition}"\ncount = 2\ninterval_seconds = 1\n'
    )


def test_a_metric_above_its_threshold_fails_and_one_below_passes(world: PromotionWorld) -> None:
    url = world.lab.services[metrics_server.NAME].endpoint
    verify_with(world, metric_check(), dev=f'metrics = {{ url = "{url}" }}')
    path = world.repo / "pyproject.toml"
    path.write_text(
        path.read_text().replace('promote_from = "dev"', f'promote_from = "dev"\nmetrics = {{ url = "{url}" }}')
    )
    namespace = f"{world.namespace}-dev"
    sha_a, good = world.commit("feat: A", seed=521)
    sha_b, bad = world.commit("feat: B", seed=522)
    metrics_server.push(url, [
        metrics_server.sample("errors_ratio", {"namespace": namespace, "digest": good}, 0.001),
        metrics_server.sample("errors_ratio", {"namespace": namespace, "digest": bad}, 0.25),
    ])  # fmt: skip
    code, out, err = world.run("deploy", "dev", "--image-tag", sha_b)
    assert code == 1, err
    assert (
        "check errors (metric): 0.25 is not < 0.01 (evaluation 1 of 2; 1 failed, 0 tolerated)"
        in out["error"]["message"]
    )
    code, out, err = world.run("deploy", "dev", "--image-tag", sha_a)
    assert code == 0, err
    assert out["apps"][0]["verification"]["checks"][0]["line"] == "< 0.01 in 2 of 2 evaluation(s)"

    text = path.read_text()
    path.write_text(text.replace("max(errors_ratio{", "max(rate(errors_ratio{"))  # a PromQL syntax error
    code, out, err = world.run("deploy", "dev", "--image-tag", sha_a)
    assert code == 2, err
    assert (
        "could not run check errors (metric): the metrics API rejected the query (HTTP 400" in out["error"]["message"]
    )
    path.write_text(text.replace(url, "http://127.0.0.1:9"))  # nothing listens there: the dependency is down
    code, out, err = world.run("deploy", "dev", "--image-tag", sha_a)
    assert code == 1, err
    assert (
        "could not run check errors (metric): the metrics API http://127.0.0.1:9 cannot be reached"
        in out["error"]["message"]
    )
    assert (entry(world)["outcome"], entry(world)["verified"]) == ("unknown", "error"), "never recorded as passed"


def test_checks_never_run_are_refused_and_deployctl_verify_records_what_the_gate_uses(world: PromotionWorld) -> None:
    sha, digest = world.commit("feat: D", seed=531)
    assert world.run("deploy", "dev", "--image-tag", sha)[0] == 0  # before the app had checks
    verify_with(
        world, '[tool.deployctl.apps.api.verify]\nhttp = [{ name = "readyz", path = "/readyz", successes = 1 }]'
    )
    git(world.repo, "tag", "-a", "release-1.0.0", "-m", "release-1.0.0")
    code, out, err = world.run("promote", "release-1.0.0")
    assert code == 4, err
    assert (
        "but the checks configured for api in dev never passed on it (its rollout recorded: no checks configured)"
        in out["error"]["message"]
    )
    assert "`deployctl verify dev --app api`" in out["error"]["message"]

    code, out, err = world.run("verify", "dev")
    assert code == 0, err
    (app,) = out["apps"]
    assert (app["digest"], app["outcome"]) == (digest, "passed")
    recorded = entry(world)
    assert (recorded["action"], recorded["verified"], recorded["digest"]) == ("verify", "passed", digest)
    code, out, err = world.run("promote", "release-1.0.0")
    assert code == 0, err
    gate = next(g for g in out["plan"]["gates"] if g["name"] == "verified-in-source")
    assert "verified (deployctl verify) in dev" in gate["message"] and "checks passed (readyz)" in gate["message"]
    assert entry(world, "prod")["verified"] == "passed", "prod's rollout ran its checks too"


def test_a_verification_killed_halfway_is_settled_unknown_never_passed(world: PromotionWorld) -> None:
    slow = 'http = [{ name = "readyz", path = "/readyz", successes = 30, interval_seconds = 1, timeout_seconds = 120 }]'
    verify_with(world, f"[tool.deployctl.apps.api.verify]\n{slow}")
    sha, _ = world.commit("feat: D", seed=541)
    argv = [sys.executable, "-m", "deployctl", "--config", str(world.repo / "pyproject.toml"), "deploy", "dev",
            "--image-tag", sha]  # fmt: skip
    proc = subprocess.Popen(argv, env=dict(os.environ), stderr=subprocess.PIPE, text=True, start_new_session=True)
    assert proc.stderr is not None
    deadline = time.monotonic() + 120
    for line in proc.stderr:
        if "verifying api in dev: readyz" in line:
            break
        assert time.monotonic() < deadline, "the deploy never reached its verification"
    time.sleep(2)
    os.killpg(proc.pid, signal.SIGKILL)  # the runner is lost halfway through the checks
    proc.wait(timeout=30)
    code, out, err = world.run("history", "dev")
    assert [e["outcome"] for e in out["entries"]] == ["started"], "only the intent: nothing judged"

    path = world.repo / "pyproject.toml"
    path.write_text(path.read_text().replace("successes = 30", "successes = 1"))
    code, out, err = world.run("verify", "dev")  # the next run settles it (its lock: the dead run's, taken over)
    assert code == 0, err
    assert "did not finish" in err and "its rollout was never judged" in err
    outcomes = [(e["action"], e["outcome"]) for e in world.run("history", "dev")[1]["entries"]]
    assert ("deploy", "unknown") in outcomes and ("deploy", "succeeded") not in outcomes


def _ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def test_an_http_check_waits_for_the_services_endpoints_instead_of_failing(lab: Lab) -> None:
    """The race behind a false "verification failed" (a make test run, twice): the rollout was complete, the
        Service existed, and its Endpoints were not written yet, so the API server's proxy answered 404 itself. Here a
        Service's namespace is served by the lab's stand-in only after a moment (its Endpoints come late, as an
        Endpoints controller's do after the pods' readiness): the check asks again and passes once they exist. The
    app's own 500 is still a failure at once."""
    namespace = f"late-{uuid.uuid4().hex[:8]}"
    assert lab.kube("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})[0] == 201
    service = {
        "metadata": {"name": "api"},
        "spec": {"selector": {"app": "api"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    }
    assert lab.kube("POST", f"/api/v1/namespaces/{namespace}/services", service)[0] == 201
    pod = {
        "metadata": {"name": "api-0", "labels": {"app": "api"}},
        "spec": {"containers": [{"name": "api", "image": f"{lab.registry_hosts[0]}/late/api:1"}]},
    }
    deadline = time.monotonic() + 60
    while lab.kube("POST", f"/api/v1/namespaces/{namespace}/pods", pod)[0] != 201:  # its ServiceAccount comes late
        assert time.monotonic() < deadline, "the pod was never created"
        time.sleep(0.2)
    while not _ready(lab.kube("GET", f"/api/v1/namespaces/{namespace}/pods/api-0")[1]):  # kwok: ready at once
        assert time.monotonic() < deadline, "the pod never got ready"
        time.sleep(0.2)
    proxy = ServiceProxy(Kube(lab.kubeconfig, lab.context), namespace)
    target = proxy.port("api", "http")
    before = proxy.request("GET", target, "/readyz", 5)
    assert before.status in (404, 503) and not before.served, before  # the API server's own answer: no endpoint

    check = HttpCheck(path="/readyz", successes=2, interval_seconds=0.5, timeout_seconds=60)
    later = threading.Timer(2.0, http_standin.serve, (lab.state_dir, [namespace]))
    later.start()
    try:
        result = http.probe(check, target, lambda seconds: proxy.request("GET", target, "/readyz", seconds))
    finally:
        later.cancel()
    assert result.outcome == "passed", result
    assert result.seconds >= 2.0, "it passed only once the Endpoints existed"

    app_answer = Answer(500, "Internal Server Error")  # what the release says is judged at once, as before
    failed = http.probe(HttpCheck(path="/readyz"), target, lambda _: app_answer)
    assert failed.outcome == "failed" and failed.seconds < 1.0
