"""Fixtures of the lab: real binaries and local services, started once per session.

``lab_tools``  the installed tools (installs them on first use: see ``make setup``)
``lab``        one ``Lab`` with moto + two registries + a control plane with kwok nodes
``lab_env``    os.environ with the lab's variables (PATH, TF_CLI_CONFIG_FILE, AWS_*, KUBECONFIG)
``moto_url``, ``aws_reset`` (function scope: empties moto), ``registry``, ``registry2``, ``kubeconfig``
``kube_run``   run kubectl/helm/terraform against the lab (argv in, CommandResult out)

When a test that uses the lab fails, the paths of the service logs are printed with it.
"""

from __future__ import annotations

import http.client
import os
import sys
import urllib.parse
from collections.abc import Callable, Generator, Iterator, Sequence
from pathlib import Path

import pytest

from deployctl.runner import CommandResult, ProcessRunner
from deployctl.sandbox import tools
from deployctl.sandbox.lab import Lab
from tests.lab.deploy_world import deploy_world  # noqa: F401 (a fixture: the deploy lab tests' world)
from tests.lab.promotion_world import promotion_world  # noqa: F401 (a fixture: the promotion lab tests' world)

RunInLab = Callable[..., CommandResult]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    setattr(item, f"lab_report_{report.when}", report)
    return report


def _progress(line: str) -> None:
    sys.stderr.write(line + "\n")


@pytest.fixture(autouse=True)
def _lab_logs_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    report = getattr(request.node, "lab_report_call", None)
    if report is None or not report.failed or "lab" not in request.fixturenames:
        return
    lab: Lab = request.getfixturevalue("lab")
    lines = [f"  {name}: {path}" for name, path in lab.logs().items()]
    sys.stderr.write("\nlab service logs:\n" + "\n".join(lines) + "\n")
    report.sections.append(("lab service logs", "\n".join(lines)))


@pytest.fixture(scope="session")
def lab_tools() -> tools.Tools:
    """Every lab tool, installed into ~/.cache/deployctl/tools (a no-op when already there)."""
    return tools.ensure(progress=_progress)


@pytest.fixture(scope="session")
def lab(lab_tools: tools.Tools, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """One lab for the session; stopping it checks that no process is left and every port is closed."""
    started = Lab(state_dir=tmp_path_factory.mktemp("lab"), tools=lab_tools, registries=2)
    started.start(progress=_progress)
    try:
        yield started
    finally:
        started.stop()  # raises LabError when a process or a port is left behind


@pytest.fixture(scope="session")
def lab_env(lab: Lab) -> dict[str, str]:
    return {**os.environ, **lab.env()}


@pytest.fixture(scope="session")
def moto_url(lab: Lab) -> str:
    return lab.moto_url


@pytest.fixture
def aws_reset(moto_url: str) -> str:
    """A moto with no resources (POST /moto-api/reset); returns its URL. The reset drops every backend of every
    region in one request: on a loaded machine that took over 10 s (a setup error, not a test failure)."""
    parts = urllib.parse.urlsplit(moto_url)
    conn = http.client.HTTPConnection(parts.netloc, timeout=60)
    try:
        conn.request("POST", "/moto-api/reset")
        status = conn.getresponse().status
    finally:
        conn.close()
    assert status == 200, f"moto reset failed: HTTP {status}"
    return moto_url


@pytest.fixture(scope="session")
def registry(lab: Lab) -> str:
    """``host:port`` of the first lab registry (the one config overrides point apps at)."""
    return lab.registry_hosts[0]


@pytest.fixture(scope="session")
def registry2(lab: Lab) -> str:
    """``host:port`` of a second, independent registry (cross-registry copies)."""
    return lab.registry_hosts[1]


@pytest.fixture(scope="session")
def kubeconfig(lab: Lab) -> Path:
    return lab.kubeconfig


@pytest.fixture(scope="session")
def kube_run(lab_env: dict[str, str]) -> RunInLab:
    """Run a tool (kubectl, helm, helm3, terraform...) with the lab's environment."""
    runner = ProcessRunner(base_env=lab_env)

    def run(
        argv: Sequence[str], *, cwd: Path | None = None, timeout: float = 180, ok_codes: Sequence[int] = (0,)
    ) -> CommandResult:
        return runner.run(list(argv), cwd=cwd, timeout=timeout, ok_codes=ok_codes)

    return run
