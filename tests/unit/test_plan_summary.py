"""Plan summaries read from ``terraform show -json`` (a captured document); the adapter's decisions (with a
recording runner) are in test_plan_adapter.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deployctl.app import plan as plan_app
from deployctl.terraform import plan_summary

DATA = Path(__file__).parent / "data"
C0FFEE = "c0ffee" + "0" * 34  # a commit sha

# Captured from Terraform 1.11 (terraform_data resources, local state): one of each action.
SHOW = json.loads((DATA / "terraform_show_plan.json").read_text())

# Captured from Terraform 1.11 against moto (S3 lockfile held by another apply).
LOCKED_STDERR = """
Error: Error acquiring the state lock

Error message: operation error S3: PutObject, https response error StatusCode:
412, RequestID: 2f4c, HostID: , api error PreconditionFailed: At least one of
the pre-conditions you specified did not hold
Lock Info:
  ID:        6c0bf6f8-56b5-9a0f-8d3f-1a4d3f9c2c11
  Path:      acme-api-tfstate/dev/terraform.tfstate
  Operation: OperationTypeApply
  Who:       runner@ci-host-7
  Version:   1.11.4
  Created:   2025-11-22 16:05:42.123456789 +0000 UTC
  Info:


Terraform acquires a state lock to protect the state from being written
by multiple users at the same time. Please resolve the issue above and try
again. For most commands, you can disable locking with the "-lock=false"
flag, but this is not recommended.
"""


def test_summary_of_captured_plan() -> None:
    summary = plan_summary.summarize(SHOW)
    kinds = {c.address: c.kind for c in summary.changes}
    assert kinds == {
        "terraform_data.added": "add",
        "terraform_data.removed": "destroy",
        "terraform_data.replaced": "replace",
        "terraform_data.updated": "change",
    }, "no-op resources are left out"
    assert summary.counts() == {"add": 1, "change": 1, "destroy": 1, "replace": 1}
    assert summary.headline() == "1 to add, 1 to change, 1 to destroy, 1 to replace"
    assert summary.output_changes == ("version",)
    assert [c.address for c in summary.destructive] == ["terraform_data.removed", "terraform_data.replaced"]
    replaced = next(c for c in summary.changes if c.replace)
    assert replaced.to_dict() == {
        "address": "terraform_data.replaced",
        "actions": ["delete", "create"],
        "replace": True,
        "kind": "replace",
    }


@pytest.mark.parametrize(
    ("actions", "kind"),
    [
        (["create", "delete"], "replace"),  # create_before_destroy
        (["delete", "create"], "replace"),
        (["create"], "add"),
        (["update"], "change"),
        (["delete"], "destroy"),
    ],
)
def test_action_kinds(actions: list[str], kind: str) -> None:
    summary = plan_summary.summarize({"resource_changes": [{"address": "a.b", "change": {"actions": actions}}]})
    assert [c.kind for c in summary.changes] == [kind]


def test_no_changes_reads_and_no_ops() -> None:
    document = {
        "resource_changes": [
            {"address": "data.aws_caller_identity.current", "change": {"actions": ["read"]}},
            {"address": "aws_vpc.this", "change": {"actions": ["no-op"]}},
        ],
        "output_changes": {"vpc_id": {"actions": ["no-op"]}},
    }
    summary = plan_summary.summarize(document)
    assert not summary.has_changes
    assert summary.headline() == "no changes"
    assert plan_summary.summarize({}).changes == ()


def test_destroys_and_replacements_are_called_out_loudly() -> None:
    result = plan_app.PlanResult(
        env="dev",
        terraform=plan_app.TerraformPlan(root="r", plan_file="p", summary=plan_summary.summarize(SHOW), metadata=None),
    )
    text = "\n".join(result.text())
    assert "terraform_data.replaced   <-- REPLACE" in text
    assert "terraform_data.removed   <-- DESTROY" in text
    assert "!! 2 resource(s) will be DESTROYED or REPLACED" in text
    data = result.data()
    assert data["changes"] is True
    assert data["helm"] is None
    assert {c["address"] for c in data["terraform"]["resource_changes"]} == {
        "terraform_data.added",
        "terraform_data.removed",
        "terraform_data.replaced",
        "terraform_data.updated",
    }
