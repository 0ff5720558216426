"""plan / apply / destroy against real terraform + the AWS provider (offline mirror) and moto.

One moto server and one applied state (shared, then dev) serve the whole module; the tests
after the first only read it or refuse before changing anything, so the module stays at a
few minutes. The CLI runs as a subprocess (``python -m deployctl``), as in a pipeline.

Uses its own minimal moto fixture: moto must load AWS managed IAM policies
(``MOTO_IAM_LOAD_MANAGED_POLICIES``) for the cluster module's policy attachments.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.lab.world import moto_server, toml

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
MIRROR = Path("/opt/tf-plugins")
# One state bucket per environment (one AWS account each in the reference; here all in moto's default account).
BUCKETS = {env: f"acme-api-tfstate-{env}" for env in ("shared", "dev", "prod")}


@dataclass
class TfLab:
    moto_url: str
    env: dict[str, str]
    workdir: Path

    def write_config(self, name: str = "deployctl.toml", **env_overrides: dict[str, Any]) -> Path:
        """The repo's [tool.deployctl] pointed at moto, in one account (no role_arn: dev's reader role is the way
        into dev's account from prod's, tests/lab/test_iam.py); ``env_overrides`` per environment."""
        table = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["deployctl"]
        for env_name, env in table["environments"].items():
            env["aws"] = {**env["aws"], "endpoint_url": self.moto_url, "role_arn": None}
            env.update(env_overrides.get(env_name, {}))
        lines = ["[tool.deployctl]"] + [f"{key} = {toml(value)}" for key, value in table.items()]
        path = self.workdir / name
        path.write_text("\n".join(lines) + "\n")
        return path

    def deployctl(
        self, *args: str, config: str = "deployctl.toml", env: Mapping[str, str] | None = None, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "deployctl", "--config", str(self.workdir / config), *args],
            cwd=self.workdir,
            env=dict(env if env is not None else self.env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def spawn(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "deployctl", "--config", str(self.workdir / "deployctl.toml"), *args],
            cwd=self.workdir,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def aws(self, service: str) -> Any:
        factory: Any = boto3.client  # one helper for several services: skip the per-service overloads
        return factory(
            service,
            endpoint_url=self.moto_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


@pytest.fixture(scope="module")
def tflab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TfLab]:
    if shutil.which("terraform") is None or not MIRROR.is_dir():
        pytest.skip("needs terraform on PATH and the AWS provider mirror in /opt/tf-plugins")
    base = tmp_path_factory.mktemp("tf")
    moto_env = {**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true", "MOTO_ALLOW_NONEXISTENT_REGION": "true"}
    with moto_server(base / "moto.log", moto_env) as url:
        rc = base / "terraformrc"
        rc.write_text(f'provider_installation {{\n  filesystem_mirror {{\n    path = "{MIRROR}"\n  }}\n}}\n')
        workdir = base / "repo"
        shutil.copytree(REPO / "terraform", workdir / "terraform", ignore=shutil.ignore_patterns(".terraform"))
        env = {
            **os.environ,
            "TF_CLI_CONFIG_FILE": str(rc),
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",  # moto's documented fake credentials
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": url,
            "NO_COLOR": "1",
        }
        for name in ("AWS_PROFILE", "CI", "TF_DATA_DIR"):
            env.pop(name, None)
        lab = TfLab(moto_url=url, env=env, workdir=workdir)
        lab.write_config()
        s3 = lab.aws("s3")
        for bucket in BUCKETS.values():
            s3.create_bucket(Bucket=bucket)
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        yield lab


@pytest.fixture(scope="module")
def applied(tflab: TfLab) -> TfLab:
    """shared applied in one step (--auto-approve), dev through plan then apply of the saved plan."""
    shared = tflab.deployctl("apply", "shared", "--auto-approve")
    assert shared.returncode == 0, shared.stderr
    planned = tflab.deployctl("-o", "json", "plan", "dev", "--detailed-exitcode")
    assert planned.returncode == 3, planned.stderr
    assert json.loads(planned.stdout)["terraform"]["summary"]["add"] > 20
    dev = tflab.deployctl("apply", "dev")
    assert dev.returncode == 0, dev.stderr
    assert "dev: applied saved plan" in dev.stdout
    assert not (tflab.workdir / ".deployctl/plans/dev/plan.tfplan").exists(), "a plan applies once"
    return tflab


def test_apply_creates_the_environment(applied: TfLab) -> None:
    repos = [r["repositoryName"] for r in applied.aws("ecr").describe_repositories()["repositories"]]
    assert "api" in repos
    vpcs = applied.aws("ec2").describe_vpcs(Filters=[{"Name": "cidr", "Values": ["10.10.0.0/16"]}])["Vpcs"]
    assert len(vpcs) == 1
    cluster = applied.aws("eks").describe_cluster(name="deployctl-dev")["cluster"]
    assert cluster["status"] == "ACTIVE"
    roles = {r["RoleName"] for r in applied.aws("iam").list_roles()["Roles"]}
    assert {"deployctl-dev-cluster", "deployctl-dev-node"} <= roles


# moto invents ``remote_access { ec2_ssh_key = "eksKeypair" }`` for a node group created without one,
# so terraform wants to replace the node group on every plan after the first apply (a moto quirk,
# not a deployctl or module bug; real EKS returns no remote_access).
MOTO_NODE_GROUP_DRIFT = "module.cluster.aws_eks_node_group.default"


def test_second_plan_has_no_changes(applied: TfLab) -> None:
    result = applied.deployctl("plan", "shared", "--detailed-exitcode")
    assert result.returncode == 0, result.stderr
    assert "shared: terraform: no changes" in result.stdout
    assert "shared: terraform init: up to date" in result.stderr, "an unchanged init is skipped"
    assert "shared: terraform plan done" in result.stderr

    dev = applied.deployctl("-o", "json", "plan", "dev", "--detailed-exitcode")
    assert dev.returncode in (0, 3), dev.stderr
    changed = {c["address"] for c in json.loads(dev.stdout)["terraform"]["resource_changes"]}
    assert changed <= {MOTO_NODE_GROUP_DRIFT}, "nothing but moto's node-group drift changes"


def test_variable_change_and_replacement_are_reported(applied: TfLab) -> None:
    tfvars = applied.workdir / "terraform/env/dev.tfvars"
    original = tfvars.read_text()
    try:
        tfvars.write_text(
            original.replace("cluster_log_retention_days   = 30", "cluster_log_retention_days   = 60").replace(
                'vpc_cidr                 = "10.10.0.0/16"', 'vpc_cidr                 = "10.20.0.0/16"'
            )
        )
        result = applied.deployctl("-o", "json", "plan", "dev", "--detailed-exitcode")
        assert result.returncode == 3, result.stderr
        document = json.loads(result.stdout)
        assert document["schema"] == "deployctl/v1"
        assert document["helm"] is None
        changes = {c["address"]: c for c in document["terraform"]["resource_changes"]}
        assert changes["module.cluster.aws_cloudwatch_log_group.cluster"]["kind"] == "change"
        assert changes["module.network.aws_vpc.this"]["replace"] is True
        assert document["terraform"]["summary"]["replace"] >= 1
        assert "module.network.aws_vpc.this will be REPLACED" in result.stderr, "replacements are called out"
    finally:
        tfvars.write_text(original)


def test_mismatched_and_stale_plans_are_refused(applied: TfLab) -> None:
    """On the small shared root (fast to plan); the checks are the same for every root."""
    planned = applied.deployctl("plan", "shared")
    assert planned.returncode == 0, planned.stderr
    main_tf = applied.workdir / "terraform/shared/main.tf"
    original = main_tf.read_text()
    try:
        main_tf.write_text(original + "\n# edited after planning\n")
        result = applied.deployctl("apply", "shared")
        assert result.returncode == 4, result.stderr
        assert "the configuration or terraform files changed" in result.stderr
        assert "hint: re-plan with `deployctl plan shared`" in result.stderr
    finally:
        main_tf.write_text(original)

    meta_file = applied.workdir / ".deployctl/plans/shared/plan.json"
    meta = json.loads(meta_file.read_text())
    meta["created_at"] = (datetime.now(UTC) - timedelta(hours=3)).isoformat(timespec="seconds")
    meta_file.write_text(json.dumps(meta))
    result = applied.deployctl("apply", "shared")
    assert result.returncode == 4, result.stderr
    assert "180 minutes old (plan_max_age_minutes = 120)" in result.stderr


def test_protected_env_needs_a_saved_plan_and_refuses_auto_approve(applied: TfLab) -> None:
    auto = applied.deployctl("apply", "prod", "--auto-approve")
    assert auto.returncode == 4, auto.stderr
    assert "--auto-approve is refused for protected environment 'prod'" in auto.stderr
    unplanned = applied.deployctl("apply", "prod")
    assert unplanned.returncode == 4, unplanned.stderr
    assert "no saved plan for protected environment 'prod'" in unplanned.stderr
    destroy = applied.deployctl("destroy", "prod", "--auto-approve", "--allow-prod-destroy")
    assert destroy.returncode == 4, destroy.stderr
    assert "stdin is not a terminal" in destroy.stderr


def test_concurrent_applies_one_is_locked_out(applied: TfLab) -> None:
    """Two applies of one environment at once (shared: the fastest root): one holds the environment
    lock, the other fails at once with exit 5 naming the holder; the state is intact afterwards."""
    before = applied.aws("s3").get_object(Bucket=BUCKETS["shared"], Key="shared/terraform.tfstate")["Body"].read()
    s3 = applied.aws("s3")
    first = applied.spawn("apply", "shared", "--auto-approve", "--lock-timeout", "0")
    deadline = time.monotonic() + 120
    while "Contents" not in s3.list_objects_v2(Bucket=BUCKETS["shared"], Prefix="deployctl/locks/shared.json"):
        assert first.poll() is None and time.monotonic() < deadline, "the first apply never held shared's lock"
        time.sleep(0.05)
    # The holder is held still (well within its lease) while the second apply tries: on a loaded machine the second
    # could otherwise start after the first had finished and find no lock at all.
    first.send_signal(signal.SIGSTOP)
    try:
        second = applied.spawn("apply", "shared", "--auto-approve", "--lock-timeout", "0")
        second_out, second_err = second.communicate(timeout=120)
    finally:
        first.send_signal(signal.SIGCONT)
    outcomes = [(second.returncode, second_out, second_err)]
    out, err = first.communicate(timeout=600)
    outcomes.append((first.returncode, out, err))
    codes = sorted(code for code, _, _ in outcomes)
    assert codes == [0, 5], outcomes
    _, _, locked_err = next(o for o in outcomes if o[0] == 5)
    assert "environment 'shared' is locked by" in locked_err
    assert "running `deployctl apply shared`" in locked_err, "the holder is named"
    after = applied.aws("s3").get_object(Bucket=BUCKETS["shared"], Key="shared/terraform.tfstate")["Body"].read()
    assert json.loads(after)["resources"] == json.loads(before)["resources"], "the state is intact"
    released = applied.deployctl("lock", "break", "shared")
    assert released.stdout.strip() == "shared: not locked", "the winner released the lock"


def test_held_state_lock_is_exit_5_and_can_be_broken(applied: TfLab) -> None:
    s3 = applied.aws("s3")
    lock_id = "6c0bf6f8-56b5-9a0f-8d3f-1a4d3f9c2c11"
    held = {
        "ID": lock_id,
        "Operation": "OperationTypeApply",
        "Info": "",
        "Who": "someone@elsewhere",
        "Version": "1.11.4",
        "Created": "2025-11-22T16:05:42.123456789Z",
        "Path": f"{BUCKETS['dev']}/dev/terraform.tfstate",
    }
    s3.put_object(Bucket=BUCKETS["dev"], Key="dev/terraform.tfstate.tflock", Body=json.dumps(held).encode())
    result = applied.deployctl("plan", "dev")
    assert result.returncode == 5, result.stderr
    assert "terraform state is locked by someone@elsewhere running apply since 2025-11-22" in result.stderr
    assert f"(lock id {lock_id})" in result.stderr
    assert f"deployctl lock break dev --state --id {lock_id}" in result.stderr

    broken = applied.deployctl("lock", "break", "dev", "--state", "--id", lock_id)
    assert broken.returncode == 0, broken.stderr
    assert "warning: dev: force-unlocking terraform state lock" in broken.stderr
    listed = s3.list_objects_v2(Bucket=BUCKETS["dev"], Prefix="dev/terraform.tfstate.tflock")
    assert listed.get("KeyCount", 0) == 0


def test_missing_root_and_missing_terraform_are_clear_errors(tflab: TfLab) -> None:
    tflab.write_config("missing-root.toml", dev={"terraform": {"root": "terraform/nope", "backend": {
        "bucket": BUCKETS["dev"], "key": "dev/terraform.tfstate", "region": "us-east-1"}}})  # fmt: skip
    missing = tflab.deployctl("plan", "dev", config="missing-root.toml")
    assert missing.returncode == 2, missing.stderr
    assert "terraform/nope does not exist (tool.deployctl.environments.dev.terraform.root)" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 2, "one line of error, one of hint"

    empty = tflab.workdir / "empty-bin"
    empty.mkdir(exist_ok=True)
    # XDG_CACHE_HOME too: deployctl also looks in the tools cache `make setup` filled
    no_tf = tflab.deployctl("plan", "shared", env={**tflab.env, "PATH": str(empty), "XDG_CACHE_HOME": str(empty)})
    assert no_tf.returncode == 2, no_tf.stderr
    assert "error: terraform is not installed or not on PATH" in no_tf.stderr


def test_destroy_dev_removes_the_environment(applied: TfLab) -> None:
    """Last in this module on purpose: teams delete the dev stack and recreate it later."""
    destroyed = applied.deployctl("destroy", "dev", "--auto-approve")
    assert destroyed.returncode == 0, destroyed.stderr
    assert "module.network.aws_vpc.this will be DESTROYED" in destroyed.stderr
    vpcs = applied.aws("ec2").describe_vpcs(Filters=[{"Name": "cidr", "Values": ["10.10.0.0/16"]}])["Vpcs"]
    assert vpcs == []
    clusters = applied.aws("eks").list_clusters()["clusters"]
    assert "deployctl-dev" not in clusters
    replan = applied.deployctl("-o", "json", "plan", "dev", "--detailed-exitcode")
    assert replan.returncode == 3, replan.stderr
    assert json.loads(replan.stdout)["terraform"]["summary"]["destroy"] == 0
