"""IAM enforced in the lab, not only reviewed (issue 26): terraform/shared applied into three moto accounts (shared,
dev, prod) with IAM enforced, each CI role assumed from a GitHub token of a pull request, main, a release tag or
another ref, and then asked to do what it must not. What moto cannot evaluate is said in tests/lab/iam_world.py and
checked on the rendered policies (terraform/modules/ci-roles/tests)."""

from __future__ import annotations

import json
import shutil
import tomllib
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.lab.iam_world import LEDGER_KEY, SECRET, Credentials, IamWorld, account_of, build, start
from tests.lab.test_terraform import MIRROR
from tests.lab.trust import github_token

pytestmark = pytest.mark.lab

PIPELINE = "pipeline.yml"
PULL_REQUEST = github_token("pull_request", PIPELINE, "refs/pull/7/merge")
MAIN = github_token("ref:refs/heads/main", PIPELINE, "refs/heads/main")
DEV_DEPLOY = github_token("environment:dev", PIPELINE, "refs/heads/main")
RELEASE = github_token("environment:prod", PIPELINE, "refs/tags/release-1.4.0")
APPLY_PROD = github_token("environment:prod", "apply-prod.yml", "refs/heads/main")
SHARED = github_token("environment:shared", PIPELINE, "refs/heads/shared-terraform")
ROLES = ("dev-plan-pr", "dev-plan", "dev-deploy", "prod-plan-pr", "prod-plan", "prod-deploy", "shared-deploy", "build")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IamWorld]:
    if shutil.which("terraform") is None or not MIRROR.is_dir():
        pytest.skip("needs terraform on PATH and the AWS provider mirror in /opt/tf-plugins")
    base = tmp_path_factory.mktemp("iam")
    moto, url = start(base)
    try:
        yield build(url, base)
    finally:
        moto.terminate()
        moto.wait(timeout=10)


def denied(call: Callable[[], Any]) -> bool:
    try:
        call()
    except ClientError as exc:
        return exc.response["Error"]["Code"] in ("AccessDenied", "AccessDeniedException", "403")
    return False


def test_only_release_tags_and_main_get_a_deploy_role(world: IamWorld) -> None:
    """Each token against every role's trust policy as moto's IAM holds it (moto's STS checks no trust)."""
    tokens = {
        "pull request": (PULL_REQUEST, {"dev-plan-pr", "prod-plan-pr"}),
        "push to main": (MAIN, {"dev-plan", "prod-plan", "build"}),
        "dev job from main": (DEV_DEPLOY, {"dev-deploy"}),
        "prod job of a release-* tag": (RELEASE, {"prod-deploy"}),
        "apply-prod from main": (APPLY_PROD, {"prod-deploy"}),
        "shared job from shared-terraform": (SHARED, {"shared-deploy"}),
        "prod job of a tag that is not release-*": (
            github_token("environment:prod", PIPELINE, "refs/tags/v1.4.0"),
            set(),
        ),
        "prod job of another branch": (github_token("environment:prod", PIPELINE, "refs/heads/feature"), set()),
        "dev job of another branch": (github_token("environment:dev", PIPELINE, "refs/heads/feature"), set()),
        "prod job of main's pipeline": (github_token("environment:prod", PIPELINE, "refs/heads/main"), set()),
        "apply-prod from another branch": (github_token("environment:prod", "apply-prod.yml", "refs/heads/x"), set()),
        "prod job of another workflow file": (
            github_token("environment:prod", "evil.yml", "refs/tags/release-1"),
            set(),
        ),
        "shared job from main": (github_token("environment:shared", PIPELINE, "refs/heads/main"), set()),
        "push to another branch": (github_token("ref:refs/heads/feature", PIPELINE, "refs/heads/feature"), set()),
        "another repository's release": (
            github_token("environment:prod", PIPELINE, "refs/tags/release-1", "evil/api"),
            set(),
        ),
        "the default subject": ({"aud": "sts.amazonaws.com", "sub": "repo:acme/api:environment:prod"}, set()),
        "another audience": ({**RELEASE, "aud": "sigstore"}, set()),
    }
    for what, (claims, expected) in tokens.items():
        got = {key for key in ROLES if world.trusts(key, claims)}
        assert got == expected, what
    with pytest.raises(PermissionError):
        world.assume("prod-deploy", github_token("environment:prod", PIPELINE, "refs/tags/v1.4.0"))


def test_the_pull_request_role_reads_no_prod_state_writes_no_lock_reads_no_ledger(world: IamWorld) -> None:
    prod_pr = world.client("s3", world.assume("prod-plan-pr", PULL_REQUEST))
    bucket = world.accounts["prod"].bucket
    assert denied(lambda: prod_pr.get_object(Bucket=bucket, Key="prod/terraform.tfstate")), "prod's state (secrets)"
    assert denied(lambda: prod_pr.get_object(Bucket=bucket, Key=LEDGER_KEY.format(env="prod")))
    assert denied(lambda: prod_pr.get_object(Bucket=bucket, Key="deployctl/locks/prod"))
    for key in ("prod/terraform.tfstate.tflock", "pull-requests/prod/terraform.tfstate.tflock"):
        assert denied(partial(prod_pr.put_object, Bucket=bucket, Key=key, Body=b"{}")), key
        assert denied(partial(prod_pr.delete_object, Bucket=bucket, Key=key)), key
    missing = prod_pr.list_objects_v2(Bucket=bucket, Prefix="pull-requests/")
    assert missing.get("KeyCount", 0) == 0, "the empty state it plans against"

    dev_pr = world.client("s3", world.assume("dev-plan-pr", PULL_REQUEST))
    dev_bucket = world.accounts["dev"].bucket
    assert b"db_password" in dev_pr.get_object(Bucket=dev_bucket, Key="dev/terraform.tfstate")["Body"].read()
    assert denied(lambda: dev_pr.put_object(Bucket=dev_bucket, Key="dev/terraform.tfstate.tflock", Body=b"{}"))
    assert denied(lambda: dev_pr.delete_object(Bucket=dev_bucket, Key="dev/terraform.tfstate.tflock"))
    assert denied(lambda: dev_pr.get_object(Bucket=dev_bucket, Key=LEDGER_KEY.format(env="dev")))
    assert denied(lambda: dev_pr.get_object(Bucket=bucket, Key="prod/terraform.tfstate")), "another account's"

    main_plan = world.client("s3", world.assume("prod-plan", MAIN))
    assert SECRET.encode() in main_plan.get_object(Bucket=bucket, Key="prod/terraform.tfstate")["Body"].read()


def test_dev_deploy_cannot_touch_prods_account(world: IamWorld) -> None:
    dev = world.assume("dev-deploy", DEV_DEPLOY)
    s3 = world.client("s3", dev)
    prod_bucket = world.accounts["prod"].bucket
    assert denied(lambda: s3.get_object(Bucket=prod_bucket, Key="prod/terraform.tfstate"))
    assert denied(lambda: s3.put_object(Bucket=prod_bucket, Key="prod/terraform.tfstate", Body=b"{}"))
    assert denied(lambda: s3.put_object(Bucket=prod_bucket, Key=LEDGER_KEY.format(env="prod") + "x", Body=b"{}"))
    assert denied(lambda: s3.list_objects_v2(Bucket=prod_bucket))
    prod = world.accounts["prod"].id
    for role in ("deployctl-ci/deployctl-prod-deploy", "deployctl-ci/deployctl-prod-plan", "deployctl-ci-admin"):
        assert denied(partial(world.chain, dev, f"arn:aws:iam::{prod}:role/{role}")), role
    # nor chain into its own account's other roles (the reader is prod's way in, never dev's way up)
    assert denied(lambda: world.chain(dev, world.role("dev-reader")["Arn"]))
    # what it may do: its own state and lock, its ledger
    dev_bucket = world.accounts["dev"].bucket
    s3.put_object(Bucket=dev_bucket, Key="dev/terraform.tfstate.tflock", Body=b"{}")
    s3.put_object(Bucket=dev_bucket, Key=LEDGER_KEY.format(env="dev").replace("0001", "0002"), Body=b"{}")


def test_prod_reads_devs_evidence_through_the_reader_and_nothing_else(world: IamWorld) -> None:
    prod = world.assume("prod-deploy", RELEASE)
    reader = world.chain(prod, world.role("dev-reader")["Arn"])
    s3 = world.client("s3", reader)
    dev_bucket = world.accounts["dev"].bucket
    assert s3.get_object(Bucket=dev_bucket, Key=LEDGER_KEY.format(env="dev"))["Body"].read() == b'{"entry": 1}'
    assert denied(lambda: s3.get_object(Bucket=dev_bucket, Key="dev/terraform.tfstate")), "not dev's state"
    assert denied(lambda: s3.put_object(Bucket=dev_bucket, Key=LEDGER_KEY.format(env="dev") + "x", Body=b"{}"))
    assert denied(lambda: world.chain(prod, world.role("dev-deploy")["Arn"])), "the reader only"


def test_no_role_deletes_a_ledger_entry(world: IamWorld) -> None:
    sessions: dict[str, Credentials] = {
        "dev-plan-pr": world.assume("dev-plan-pr", PULL_REQUEST),
        "prod-plan-pr": world.assume("prod-plan-pr", PULL_REQUEST),
        "dev-plan": world.assume("dev-plan", MAIN),
        "prod-plan": world.assume("prod-plan", MAIN),
        "build": world.assume("build", MAIN),
        "dev-deploy": world.assume("dev-deploy", DEV_DEPLOY),
        "prod-deploy": world.assume("prod-deploy", APPLY_PROD),
        "shared-deploy": world.assume("shared-deploy", SHARED),
    }
    sessions["dev-reader"] = world.chain(sessions["prod-deploy"], world.role("dev-reader")["Arn"])
    for key, credentials in sessions.items():
        account = world.accounts[account_of(key)]
        s3 = world.client("s3", credentials)
        entry = LEDGER_KEY.format(env=account.env)
        version = world.client("s3", world.admin[account.env]).head_object(Bucket=account.bucket, Key=entry)
        assert denied(partial(s3.delete_object, Bucket=account.bucket, Key=entry)), key
        assert denied(partial(s3.delete_object, Bucket=account.bucket, Key=entry, VersionId=version["VersionId"])), key
        assert world.role(key)["PermissionsBoundary"]["PermissionsBoundaryArn"].endswith(
            ":policy/deployctl-ci/deployctl-boundary"
        ), f"{key} carries its account's boundary"


def test_a_full_plan_of_prod_from_a_pull_request(world: IamWorld) -> None:
    """deployctl plan prod, as the pull request's role: prod's root planned against no state (-refresh=false), no
    lock; the same plan without --pr (prod's state, its lock) is refused by IAM."""
    pull_request = world.assume("prod-plan-pr", PULL_REQUEST)
    planned = world.deployctl("-o", "json", "plan", "prod", "--pr", "--detailed-exitcode", credentials=pull_request)
    assert planned.returncode == 3, planned.stderr[-3000:]
    document = json.loads(planned.stdout)
    terraform = document["terraform"]
    assert terraform["pull_request"] is True and terraform["state_read"] is False and terraform["plan_file"] is None
    assert terraform["summary"]["add"] > 20 and terraform["summary"]["destroy"] == 0
    assert SECRET not in planned.stdout + planned.stderr
    assert not (world.workdir / ".deployctl/plans/prod/plan.json").exists(), "nothing saved for apply"
    # moto matches eks:DescribeCluster against "*", not the cluster's ARN the role names: the helm diff part is
    # advisory (a warning), and the module's terraform test checks the role may describe prod's cluster.

    full = world.deployctl("plan", "prod", "--no-pr", credentials=pull_request)
    assert full.returncode == 1, full.stderr[-3000:]
    assert 'Unable to access object "prod/terraform.tfstate"' in full.stderr and "StatusCode: 403" in full.stderr


def test_the_reference_config_names_the_accounts_buckets_and_roles_terraform_makes(world: IamWorld) -> None:
    config = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    environments = config["tool"]["deployctl"]["environments"]
    outputs = world.outputs
    role_arns = outputs["ci_role_arns"]
    assert set(environments) == set(outputs["accounts"])
    for name, env in environments.items():
        assert env["aws"]["account_id"] == outputs["accounts"][name]["id"], name
        assert env["terraform"]["backend"]["bucket"] == outputs["accounts"][name]["state_bucket"], name
        role = env["aws"].get("role_arn")
        assert role is None or role in role_arns.values(), f"{name}: role_arn {role} is no role terraform creates"
        assert all(
            arn.split(":")[4] == outputs["accounts"][name]["id"]
            for key, arn in role_arns.items()
            if account_of(key) == name
        )
    assert environments["dev"]["aws"]["role_arn"] == role_arns["dev-reader"], "prod's way into dev's evidence"
    assert (
        "role_arn" not in environments["prod"]["aws"] and "role_arn" not in environments["shared"]["aws"]
    ), "CI assumes each job's role with OIDC: no role to chain into"
    for name in ("dev", "prod"):
        cluster = environments[name]["cluster"]["eks"]
        assert cluster == f"deployctl-{name}", "the cluster name the env root makes (and the roles may describe)"
