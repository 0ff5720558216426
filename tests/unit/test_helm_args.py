"""helm argv per major version (a table), helm's JSON output, and the cluster-access helpers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deployctl.adapters import helm, helm_argv
from deployctl.core.errors import CommandFailedError, DeployctlError, ExitCode, OperationError, UsageError

KUBE = helm_argv.Kube(Path("/k/config"), "lab")
DIGEST = "sha256:" + "a" * 64
SETS = {"image.repository": "r.example/api", "image.digest": DIGEST, "build.gitSha": "1234567"}
COMMON = [
    "-f", "values-dev.yaml",
    "--set-string", "image.repository=r.example/api",
    "--set-string", f"image.digest={DIGEST}",
    "--set-string", "build.gitSha=1234567",
]  # fmt: skip
KUBE_FLAGS = ["--kubeconfig", "/k/config", "--kube-context", "lab"]


@pytest.mark.parametrize(
    ("major", "expected_tail"),
    [
        # helm 3: no --wait (deployctl watches), three-way merge needs nothing more; no client-side OpenAPI
        # validation (the API server checks the objects; it cost 60% of helm's CPU per upgrade: issue 29).
        (3, ["--disable-openapi-validation", "--output", "json", *KUBE_FLAGS]),
        # helm 4: server-side apply by default; a deploy wins over hand edits (kubectl scale).
        (4, ["--disable-openapi-validation", "--force-conflicts", "--output", "json", *KUBE_FLAGS]),
    ],
)
def test_upgrade_argv_per_major(major: int, expected_tail: list[str]) -> None:
    argv = helm_argv.upgrade_argv(
        major=major,
        release="api",
        chart=Path("charts/api"),
        namespace="dev-api",
        kube=KUBE,
        values_files=[Path("values-dev.yaml")],
        set_string=SETS,
    )
    head = ["helm", "upgrade", "api", "charts/api", "--install", "--namespace", "dev-api", "--create-namespace"]
    assert argv == [*head, *COMMON, *expected_tail]
    assert "--wait" not in argv
    assert "--atomic" not in argv
    assert "--set" not in argv  # only --set-string: a numeric sha must stay a string


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (
            lambda: helm_argv.template_argv(
                release="api", chart=Path("c"), namespace="ns", values_files=[Path("v.yaml")], set_string={"a.b": "1"}
            ),
            ["helm", "template", "api", "c", "--namespace", "ns", "-f", "v.yaml", "--set-string", "a.b=1"],
        ),
        (
            lambda: helm_argv.template_argv(
                release="web", chart="oci://r.example/charts/web", namespace="ns", version="1.2.3", set_string={}
            ),
            ["helm", "template", "web", "oci://r.example/charts/web", "--namespace", "ns", "--version", "1.2.3"],
        ),
        (
            lambda: helm_argv.template_argv(
                release="web", chart="oci://127.0.0.1:5000/charts/web", namespace="ns", version="1.2.3"
            ),
            [
                "helm",
                "template",
                "web",
                "oci://127.0.0.1:5000/charts/web",
                "--namespace",
                "ns",
                "--version",
                "1.2.3",
                "--plain-http",
            ],
        ),  # fmt: skip
        (
            lambda: helm_argv.upgrade_argv(
                major=3, release="web", chart="oci://r.example/charts/web", namespace="ns", kube=KUBE, version="2.0.0"
            ),
            [
                "helm",
                "upgrade",
                "web",
                "oci://r.example/charts/web",
                "--install",
                "--namespace",
                "ns",
                "--create-namespace",
                "--version",
                "2.0.0",
                "--disable-openapi-validation",
                "--output",
                "json",
                *KUBE_FLAGS,
            ],
        ),  # fmt: skip
        (
            lambda: helm_argv.status_argv(release="api", namespace="ns", kube=KUBE, binary="helm3"),
            ["helm3", "status", "api", "--namespace", "ns", "--output", "json", *KUBE_FLAGS],
        ),
        (
            lambda: helm_argv.history_argv(release="api", namespace="ns", kube=KUBE),
            ["helm", "history", "api", "--namespace", "ns", "--max", "20", "--output", "json", *KUBE_FLAGS],
        ),
        (
            lambda: helm_argv.get_values_argv(release="api", namespace="ns", kube=KUBE),
            ["helm", "get", "values", "api", "--namespace", "ns", "--output", "json", *KUBE_FLAGS],
        ),
        (lambda: helm_argv.version_argv(), ["helm", "version", "--template", "{{.Version}}"]),
    ],
)
def test_argv_table(build: object, expected: list[str]) -> None:
    assert callable(build)
    assert build() == expected


def test_set_string_refuses_values_helm_would_split() -> None:
    with pytest.raises(UsageError, match="cannot carry"):
        helm_argv.template_argv(release="a", chart=Path("c"), namespace="n", set_string={"k": "a,b"})


@pytest.mark.parametrize(
    ("text", "major"),
    [("v4.3.1", 4), ("v3.19.0", 3), ("v3.14.4+g81c902a", 3), ("4.0.0-rc.1", 4)],
)
def test_parse_major(text: str, major: int) -> None:
    assert helm_argv.parse_major(text) == major


@pytest.mark.parametrize("text", ["v2.17.0", "garbage", ""])
def test_parse_major_refuses(text: str) -> None:
    with pytest.raises(OperationError):
        helm_argv.parse_major(text)


def test_parse_history() -> None:
    history = json.dumps([{"revision": 1, "status": "superseded"}, {"revision": 2, "status": "deployed"}])
    assert [r.status for r in helm.parse_history(history)] == ["superseded", "deployed"]
    row = {"revision": 3, "status": "pending-upgrade", "chart": "api-0.1.0", "app_version": "0.1.0"}
    [pending] = helm.parse_history(json.dumps([row]))
    assert (pending.revision, pending.status, pending.chart, pending.app_version) == (
        3,
        "pending-upgrade",
        "api-0.1.0",
        "0.1.0",
    )


def test_parse_release_json() -> None:
    doc = {
        "name": "api",
        "namespace": "dev-api",
        "version": 2,
        "info": {"status": "deployed", "last_deployed": "t"},
        "chart": {"metadata": {"name": "api", "version": "0.1.0", "appVersion": "0.1.0"}},
        "manifest": "---\nkind: Deployment\n",
    }
    release = helm.parse_release_json(json.dumps(doc))
    assert (release.name, release.revision, release.status, release.chart) == ("api", 2, "deployed", "api-0.1.0")
    assert "Deployment" in release.manifest


@pytest.mark.parametrize(
    ("stderr", "kind", "code"),
    [
        (
            "Error: values don't meet the specifications of the schema(s) in the following chart(s):\napi:\n"
            "- at '/replicaCount': got string, want integer",
            UsageError,
            ExitCode.USAGE,
        ),
        ("Error: execution error at (api/templates/deployment.yaml:1:14): image: neither", UsageError, ExitCode.USAGE),
        (
            "Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress",
            OperationError,
            ExitCode.FAILED,
        ),
        ("Error: Kubernetes cluster unreachable", CommandFailedError, ExitCode.FAILED),
    ],
)
def test_chart_error_classification(stderr: str, kind: type[DeployctlError], code: ExitCode) -> None:
    error = helm.chart_error(CommandFailedError(["helm", "upgrade"], 1, stderr))
    assert type(error) is kind
    assert error.exit_code == code


def test_machine_output_survives_redaction() -> None:
    """helm's JSON carries `"automountServiceAccountToken": false`: the redactor must not corrupt it."""
    from deployctl.redact import Redactor

    text = json.dumps({"values": {"automountServiceAccountToken": False, "token": None}, "password": "hunter2-x"})
    redacted = Redactor()(text)
    assert json.loads(redacted)["values"] == {"automountServiceAccountToken": False, "token": None}
    assert "hunter2-x" not in redacted


def test_release_json_after_helm_4_pull_lines() -> None:
    text = 'Pulled: 127.0.0.1:5000/charts/web:1.2.3\nDigest: sha256:abc\n{"name": "web", "version": 2, "info": {"status": "deployed"}}'
    release = helm.parse_release_json(text)
    assert (release.name, release.revision, release.status) == ("web", 2, "deployed")
