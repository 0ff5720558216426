"""A release is many apps, in any chart (issue 14), end to end in the lab: two apps, one the repository's
own `charts/api`, one a chart not written for deployctl (its image is one string value) served from the
lab's OCI registry at a pinned version. One tag promotes both byte-exact and deploys them in `needs`
order; one app failing a gate refuses the whole release; the values edit keeps CRLF, `---` and
4-space indentation byte-identical outside the edited lines."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tarfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from deployctl.cli.main import main
from deployctl.sandbox import image_push
from deployctl.sandbox.lab import Lab

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "many-apps-tfstate"
CHART_VERSION = "1.2.3"
WEB_CHART = {
    "Chart.yaml": f"apiVersion: v2\nname: web\nversion: {CHART_VERSION}\n",
    "values.yaml": 'image: ""\nreplicas: 1\n',
    "values.schema.json": json.dumps(
        {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "image": {"type": "string", "pattern": "^.+@sha256:[0-9a-f]{64}$"},
                "replicas": {"type": "integer"},
            },
        }
    ),
    "templates/deployment.yaml": """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
  labels: {app.kubernetes.io/instance: {{ .Release.Name }}}
spec:
  replicas: {{ .Values.replicas }}
  selector: {matchLabels: {app: {{ .Release.Name }}}}
  template:
    metadata: {labels: {app: {{ .Release.Name }}, app.kubernetes.io/instance: {{ .Release.Name }}}}
    spec:
      containers:
        - name: web
          image: {{ .Values.image | quote }}
""",
}
VALUES_PROD = (
    "---\r\n"
    "# prod, one section per app\r\n"
    "api:\r\n"
    "    image:\r\n"
    '        tag: ""      # set by promote\r\n'
    '        digest: ""\r\n'
    "    replicaCount: 1\r\n"
    "    autoscaling:\r\n"
    "        enabled: false\r\n"
    "    podDisruptionBudget:\r\n"
    "        enabled: false\r\n"
    "web:\r\n"
    '    image: ""        # one string: registry/repository@digest\r\n'
    "    replicas: 1\r\n"
)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


@dataclass
class World:
    repo: Path
    lab: Lab
    registry: str
    prefix: str
    namespace: str
    capsys: pytest.CaptureFixture[str]

    def run(self, *args: str) -> tuple[int, Any, str]:
        self.capsys.readouterr()
        code = main(["--config", str(self.repo / "pyproject.toml"), "-o", "json", *args])
        captured = self.capsys.readouterr()
        return code, json.loads(captured.out) if captured.out.strip() else None, captured.err

    def build(self, subject: str, seed: int) -> tuple[str, dict[str, str]]:
        """A commit and both apps' images for it (CI builds each app once per commit)."""
        git(self.repo, "commit", "-q", "--allow-empty", "-m", subject)
        sha = git(self.repo, "rev-parse", "HEAD")
        pushed = {
            app: image_push.push_image(self.registry, f"{self.prefix}/{app}", sha, seed=seed + n).digest
            for n, app in enumerate(("api", "web"))
        }
        return sha, pushed

    def tag_digest(self, app: str, tag: str) -> str | None:
        try:
            data, _, _ = image_push.get_manifest(self.registry, f"{self.prefix}/{app}", tag)
        except image_push.RegistryHTTPError:
            return None
        return "sha256:" + hashlib.sha256(data).hexdigest()

    def pods(self, env: str, app: str) -> list[str]:
        out = subprocess.run(
            ["kubectl", "--kubeconfig", str(self.lab.kubeconfig), "-n", f"{self.namespace}-{env}", "get", "pods",
             "-l", f"app.kubernetes.io/instance={app}", "-o", "json"],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        return [p["spec"]["containers"][0]["image"].partition("@")[2] for p in json.loads(out)["items"]]

    def helm_history(self, env: str, app: str) -> list[dict[str, Any]]:
        result = subprocess.run(
            ["helm", "--kubeconfig", str(self.lab.kubeconfig), "-n", f"{self.namespace}-{env}", "history", app, "-o", "json"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        return list(json.loads(result.stdout)) if result.returncode == 0 else []


def push_chart(lab: Lab, registry: str, prefix: str, workdir: Path) -> str:
    """`helm push` the web chart to the lab registry; returns its oci:// reference."""
    chart = workdir / "web"
    for name, text in WEB_CHART.items():
        (chart / name).parent.mkdir(parents=True, exist_ok=True)
        (chart / name).write_text(text)
    package = workdir / f"web-{CHART_VERSION}.tgz"
    with tarfile.open(package, "w:gz") as tar:
        tar.add(chart, arcname="web")
    reference = f"oci://{registry}/{prefix}/charts"
    env = {**os.environ, **lab.env(), "HOME": str(workdir)}
    subprocess.run(["helm", "push", str(package), reference, "--plain-http"], check=True, capture_output=True, env=env)
    return f"{reference}/web"


@pytest.fixture
def world(
    tmp_path: Path,
    lab: Lab,
    registry: str,
    aws_reset: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> World:
    for key, value in {
        **lab.env(),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",  # moto's documented fake credentials
        "AWS_DEFAULT_REGION": "us-east-1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
        "HELM_CONFIG_HOME": str(tmp_path / "helm-config"),
        "HELM_CACHE_HOME": str(tmp_path / "helm-cache"),
    }.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "DEPLOYCTL_CONFIG", "DEPLOYCTL_SANDBOX"):
        monkeypatch.delenv(key, raising=False)
    boto3.client("s3", endpoint_url=aws_reset, region_name="us-east-1").create_bucket(Bucket=BUCKET)
    suffix = uuid.uuid4().hex[:8]
    prefix, namespace = f"m{suffix}", f"m{suffix}"
    web_chart = push_chart(lab, registry, prefix, tmp_path)
    repo = tmp_path / "repo"
    repo.mkdir()
    aws = f'aws = {{ region = "us-east-1", endpoint_url = "{aws_reset}" }}'
    cluster = f'cluster = {{ kubeconfig = "{lab.kubeconfig}", context = "{lab.context}" }}'

    def env(name: str) -> str:
        backend = f'backend = {{ bucket = "{BUCKET}", key = "{name}/terraform.tfstate", region = "us-east-1" }}'
        extra = 'promote_from = "dev"\npromote_soak_minutes = 0\n' if name == "prod" else ""
        return f"""[tool.deployctl.environments.{name}]
{aws}
terraform = {{ root = "tf", {backend} }}
{cluster}
namespace = "{namespace}-{name}"
values = "values-{name}.yaml"
{extra}"""

    (repo / "pyproject.toml").write_text(
        f"""[tool.deployctl]
[tool.deployctl.apps.web]
chart = "{web_chart}"
chart_version = "{CHART_VERSION}"
release = "web"
image = {{ registry = "{registry}", repository = "{prefix}/web" }}
image_values = {{ image = "{{registry}}/{{repository}}@{{digest}}" }}
needs = ["api"]

[tool.deployctl.apps.api]
chart = "{ROOT / "charts" / "api"}"
release = "api"
image = {{ registry = "{registry}", repository = "{prefix}/api" }}

{env("dev")}
{env("prod")}"""
    )
    (repo / "values-dev.yaml").write_text("api:\n  replicaCount: 1\nweb:\n  replicas: 1\n")
    (repo / "values-prod.yaml").write_bytes(VALUES_PROD.encode())
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "init")
    return World(repo, lab, registry, prefix, namespace, capsys)


def test_one_tag_promotes_every_app_byte_exact_and_deploys_them_in_order(world: World) -> None:
    sha, pushed = world.build("feat: both apps", seed=501)
    code, out, err = world.run("deploy", "dev")
    assert code == 0, err
    assert [a["app"] for a in out["apps"]] == ["api", "web"], "api first: web needs it"
    assert world.pods("dev", "web") == [pushed["web"]], "the one-string image key pinned the digest"
    git(world.repo, "tag", "-a", "release-1.0.0", "-m", "release-1.0.0", sha)

    code, out, err = world.run("promote", "release-1.0.0")
    assert code == 0, err
    assert [(a["app"], a["digest"]) for a in out["plan"]["apps"]] == [("api", pushed["api"]), ("web", pushed["web"])]
    for app in ("api", "web"):
        assert world.tag_digest(app, "release-1.0.0") == pushed[app], "the same bytes under the release tag"
        assert world.pods("prod", app) == [pushed[app]]
    first_api, first_web = world.helm_history("prod", "api")[0], world.helm_history("prod", "web")[0]
    assert first_api["updated"] <= first_web["updated"], "api rolled out before web"
    assert "intent" in first_web["description"]

    after = (world.repo / "values-prod.yaml").read_bytes().decode()
    before_lines, after_lines = VALUES_PROD.split("\r\n"), after.split("\r\n")
    assert len(before_lines) == len(after_lines) and "\n" not in after.replace("\r\n", "")
    changed = [(a, b) for a, b in zip(before_lines, after_lines, strict=True) if a != b]
    assert changed == [
        ('        tag: ""      # set by promote', '        tag: "release-1.0.0"      # set by promote'),
        ('        digest: ""', f'        digest: "{pushed["api"]}"'),
        (
            '    image: ""        # one string: registry/repository@digest',
            f'    image: "{world.registry}/{world.prefix}/web@{pushed["web"]}"        # one string: registry/repository@digest',
        ),
    ]
    code, status, _ = world.run("status", "prod")
    assert code == 0 and {a["app"]: a["healthy"] for a in status["apps"]} == {"api": True, "web": True}


def test_one_app_failing_a_gate_refuses_the_whole_release_and_changes_nothing(world: World) -> None:
    sha, pushed = world.build("feat: only api verified", seed=511)
    assert world.run("deploy", "dev", "--app", "api")[0] == 0  # web never rolled out in dev
    git(world.repo, "tag", "-a", "release-1.0.0", "-m", "release-1.0.0", sha)
    code, out, err = world.run("promote", "release-1.0.0")
    assert code == 4, err
    assert "web: verified-in-source" in err
    assert out["error"]["gates"]
    for app in ("api", "web"):
        assert world.tag_digest(app, "release-1.0.0") is None, f"{app}: no registry change"
        assert world.helm_history("prod", app) == [], f"{app}: no release in prod"
    assert (world.repo / "values-prod.yaml").read_bytes().decode() == VALUES_PROD
    code, history, _ = world.run("history", "prod")
    assert history["entries"] == []
