"""The IAM lab: a moto server of its own with IAM enforced, three accounts (shared, dev, prod: the reference's, from
terraform/shared/ci.auto.tfvars), each with its state bucket and a ci-admin role, and terraform/shared applied into
them by `deployctl apply shared`, so the CI roles are the ones the terraform creates.

What moto enforces once auth is on (``/moto-api/reset-auth 0``): every request is signed by known credentials, and
an assumed role's identity policies (inline and attached) decide: explicit Deny first, S3 actions against the
object's or bucket's ARN, IAM and STS actions against the role's ARN, every other service against "*" (so an
ARN-scoped EKS or ECR statement is denied there: tests/unit and the module's terraform test check those on the JSON).
What it does not: permissions boundaries, resource policies, Condition blocks of identity policies (taken as met),
the trust policy of a role assumed with a web identity token (and the token itself: never verified), a session's
trust across accounts. So the token exchange here evaluates the role's trust policy, read back from moto's IAM, with
``trust.allows``; and it runs with enforcement paused, because moto cannot take the unsigned
AssumeRoleWithWebIdentity call while it enforces (it reads an Authorization header), as AWS takes it unsigned.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore import UNSIGNED
from botocore.config import Config

from deployctl.terraform import state_bucket
from tests.lab import trust
from tests.lab.test_terraform import MIRROR, _free_port, _toml

REPO = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
CI_PATH = "/deployctl-ci/"
ADMIN_ROLE = "deployctl-ci-admin"
SECRET = "prod-db-password-do-not-leak"  # planted in prod's state: no pull request may ever read it
LEDGER_KEY = "deployctl/history/{env}/20260101T000000Z-0001.json"

Credentials = dict[str, str]


@dataclass(frozen=True)
class Account:
    env: str
    id: str
    bucket: str


def reference_accounts() -> dict[str, Account]:
    """terraform/shared/ci.auto.tfvars' accounts (the reference architecture's)."""
    text = (REPO / "terraform/shared/ci.auto.tfvars").read_text()
    found = re.findall(r'^\s*(\w+)\s*=\s*\{\s*id\s*=\s*"(\d{12})",\s*state_bucket\s*=\s*"([^"]+)"', text, re.M)
    return {env: Account(env, account, bucket) for env, account, bucket in found}


def account_of(role_key: str) -> str:
    """The environment whose account holds the role ``role_key`` (``prod-deploy``, ``build``...)."""
    return "shared" if role_key == "build" else role_key.split("-")[0]


@dataclass
class IamWorld:
    url: str
    workdir: Path
    accounts: dict[str, Account]
    admin: dict[str, Credentials]  # each account's ci-admin session (the administrator's, not a CI role)
    env: dict[str, str]
    outputs: dict[str, Any] = field(default_factory=dict)

    # ---------------------------------------------------------------- moto

    def enforce(self, on: bool) -> None:
        request = urllib.request.Request(  # noqa: S310 (the local moto server)
            f"{self.url}/moto-api/reset-auth",
            data=b"0" if on else b"inf",
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        urllib.request.urlopen(request, timeout=10).close()  # noqa: S310

    @contextmanager
    def paused(self) -> Iterator[None]:
        self.enforce(False)
        try:
            yield
        finally:
            self.enforce(True)

    def client(self, service: str, credentials: Credentials | None, **kwargs: Any) -> Any:
        factory: Any = boto3.client
        keys = {f"aws_{k}": v for k, v in (credentials or {}).items()}
        return factory(service, endpoint_url=self.url, region_name=REGION, **keys, **kwargs)

    # ---------------------------------------------------------------- roles

    def role(self, key: str) -> dict[str, Any]:
        """The role ``key`` as moto's IAM has it (read by its account's administrator)."""
        iam = self.client("iam", self.admin[account_of(key)])
        found: dict[str, Any] = iam.get_role(RoleName=f"deployctl-{key}")["Role"]
        return found

    def trusts(self, key: str, claims: Mapping[str, str]) -> bool:
        account = self.accounts[account_of(key)].id
        provider = f"arn:aws:iam::{account}:oidc-provider/token.actions.githubusercontent.com"
        return trust.allows(self.role(key)["AssumeRolePolicyDocument"], claims=claims, federated=provider)

    def assume(self, key: str, claims: Mapping[str, str]) -> Credentials:
        """AssumeRoleWithWebIdentity of the role ``key`` with a GitHub token of ``claims``; PermissionError when its
        trust policy refuses them (what AWS's STS would answer: AccessDenied)."""
        role = self.role(key)
        if not self.trusts(key, claims):
            raise PermissionError(f"{key} does not trust {claims['sub']}")
        with self.paused():
            sts = self.client("sts", None, config=Config(signature_version=UNSIGNED))
            answer = sts.assume_role_with_web_identity(
                RoleArn=role["Arn"], RoleSessionName="github-actions", WebIdentityToken="moto-verifies-no-token"
            )
        return _keys(answer["Credentials"])

    def chain(self, credentials: Credentials, role_arn: str) -> Credentials:
        """sts:AssumeRole from ``credentials`` (moto checks the caller's identity policy)."""
        sts = self.client("sts", credentials)
        return _keys(sts.assume_role(RoleArn=role_arn, RoleSessionName="deployctl")["Credentials"])

    # ---------------------------------------------------------------- deployctl

    def deployctl(self, *args: str, credentials: Credentials, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        env = {**self.env, **{f"AWS_{k.upper()}": v for k, v in credentials.items()}}
        return subprocess.run(
            [sys.executable, "-m", "deployctl", "--config", str(self.workdir / "deployctl.toml"), *args],
            cwd=self.workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def _keys(credentials: Mapping[str, Any]) -> Credentials:
    return {
        "access_key_id": str(credentials["AccessKeyId"]),
        "secret_access_key": str(credentials["SecretAccessKey"]),
        "session_token": str(credentials["SessionToken"]),
    }


def start(base: Path) -> tuple[subprocess.Popen[bytes], str]:
    """moto on a free port, IAM not yet enforced (the accounts are set up first)."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "INITIAL_NO_AUTH_ACTION_COUNT"}
    with (base / "moto.log").open("wb") as log:
        moto = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()  # noqa: S310 (local http)
        except OSError:
            if time.monotonic() > deadline:
                moto.terminate()
                raise
            time.sleep(0.1)
        else:
            return moto, url


def build(url: str, base: Path) -> IamWorld:
    """The accounts, their buckets and what the tests look for in them; then IAM enforced, shared applied."""
    accounts = reference_accounts()
    assert set(accounts) == {"shared", "dev", "prod"}, accounts
    world = IamWorld(url, base / "repo", accounts, {}, {})
    anyone = {"access_key_id": "testing", "secret_access_key": "testing"}
    for account in accounts.values():
        # The account's administrator: the ci-admin role (made once by hand in real AWS: terraform/README.md). moto
        # matches a trust principal against a session's ARN literally, so here it trusts any principal.
        arn = f"arn:aws:iam::{account.id}:role/{ADMIN_ROLE}"
        admin = world.chain(anyone, arn)
        world.admin[account.env] = admin
        iam = world.client("iam", admin)
        anybody = {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}
        iam.create_role(RoleName=ADMIN_ROLE, AssumeRolePolicyDocument=json.dumps(_doc(anybody)))
        admin_policy = {"Effect": "Allow", "Action": "*", "Resource": "*"}
        iam.put_role_policy(RoleName=ADMIN_ROLE, PolicyName="admin", PolicyDocument=json.dumps(_doc(admin_policy)))
        s3 = world.client("s3", admin)
        state_bucket.ensure(s3, account.bucket, REGION)
        env = account.env
        if env != "shared":  # shared's state is the one `apply shared` writes below
            s3.put_object(Bucket=account.bucket, Key=f"{env}/terraform.tfstate", Body=json.dumps(_state_with_secret()))
            s3.put_object(Bucket=account.bucket, Key=f"{env}/terraform.tfstate.tflock", Body=b"{}")
        s3.put_object(Bucket=account.bucket, Key=LEDGER_KEY.format(env=env), Body=b'{"entry": 1}')
        s3.put_object(Bucket=account.bucket, Key=f"deployctl/locks/{env}", Body=b"{}")
    _workdir(world)
    world.enforce(True)
    applied = world.deployctl("apply", "shared", "--auto-approve", credentials=world.admin["shared"])
    assert applied.returncode == 0, applied.stderr[-3000:]
    world.outputs = _outputs(world)
    return world


def _state_with_secret() -> dict[str, Any]:
    """A terraform state whose output holds a secret (what a real environment's state holds: passwords, keys)."""
    output = {"value": SECRET, "type": "string", "sensitive": True}
    return {
        "version": 4,
        "terraform_version": "1.11.4",
        "serial": 1,
        "lineage": "iam-lab",
        "outputs": {"db_password": output},
        "resources": [],
    }


def _doc(*statements: Mapping[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _workdir(world: IamWorld) -> None:
    """The repository's terraform and its [tool.deployctl] pointed at this moto (accounts and roles as they are)."""
    workdir = world.workdir
    shutil.copytree(REPO / "terraform", workdir / "terraform", ignore=shutil.ignore_patterns(".terraform"))
    for name in ("values-dev.yaml", "values-prod.yaml"):
        shutil.copy(REPO / name, workdir / name)
    shutil.copytree(REPO / "charts", workdir / "charts")
    table = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["deployctl"]
    for env in table["environments"].values():
        env["aws"] = {**env["aws"], "endpoint_url": world.url}
    lines = ["[tool.deployctl]"] + [f"{key} = {_toml(value)}" for key, value in table.items()]
    (workdir / "deployctl.toml").write_text("\n".join(lines) + "\n")
    rc = workdir.parent / "terraformrc"
    rc.write_text(f'provider_installation {{\n  filesystem_mirror {{\n    path = "{MIRROR}"\n  }}\n}}\n')
    world.env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k not in ("CI", "TF_DATA_DIR")},
        "TF_CLI_CONFIG_FILE": str(rc),
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "NO_COLOR": "1",
    }


def _outputs(world: IamWorld) -> dict[str, Any]:
    """terraform/shared's outputs, read from the state deployctl applied."""
    env = {**world.env, "TF_DATA_DIR": str(world.workdir / ".deployctl/terraform/shared")}
    env.update({f"AWS_{k.upper()}": v for k, v in world.admin["shared"].items()})
    result = subprocess.run(
        ["terraform", "output", "-json"],
        cwd=world.workdir / "terraform/shared",
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return {name: value["value"] for name, value in json.loads(result.stdout).items()}
