"""Static checks of .github/workflows (issue 16) and the scripts their steps run (.ci/summary.sh, .ci/route.py).

actionlint (make check) checks the syntax and the expressions; these check the rules a security review asks for:
pinned actions, timeouts, what pull requests may reach, plan artifacts, concurrency, job summaries.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
PINNED = re.compile(r"^\s*(?:-\s+)?uses:\s+[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+(?:\.\d+)*\s*$")
# Roles a pull request must never assume (terraform/modules/ci-roles gives it only *_PLAN_PR_*).
NOT_FOR_PULL_REQUESTS = ("AWS_PLAN_ROLE_ARN_", "AWS_DEPLOY_ROLE_ARN_", "AWS_BUILD_ROLE_ARN")


def _load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return document


def _jobs() -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    for path in WORKFLOWS:
        for name, job in _load(path)["jobs"].items():
            yield path.name, name, job


def _pipeline() -> dict[str, Any]:
    return _load(REPO / ".github" / "workflows" / "pipeline.yml")


def test_the_workflows_are_there() -> None:
    assert {p.name for p in WORKFLOWS} == {"pipeline.yml", "apply-prod.yml"}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_action_is_pinned_to_a_commit_with_its_version(path: Path) -> None:
    lines = [line for line in path.read_text().splitlines() if re.match(r"^\s*(-\s+)?uses:", line)]
    unpinned = [line.strip() for line in lines if not PINNED.match(line)]
    assert not unpinned, f"not pinned to a full commit SHA with '# vX.Y.Z': {unpinned}"
    parsed = [step["uses"] for job in _load(path)["jobs"].values() for step in job.get("steps", []) if "uses" in step]
    assert len(parsed) == len(lines), "every uses: of a step is on its own line"


def test_every_job_has_a_timeout() -> None:
    for workflow, name, job in _jobs():
        timeout = job.get("timeout-minutes")
        assert isinstance(timeout, int) and 0 < timeout <= 120, f"{workflow}: job {name} needs timeout-minutes"


def test_pull_requests_cancel_their_superseded_runs_and_nothing_else_does() -> None:
    concurrency = _pipeline()["concurrency"]
    assert concurrency["cancel-in-progress"] == "${{ github.event_name == 'pull_request' }}"
    group = concurrency["group"]
    assert (
        "github.event.pull_request.number" in group and "github.run_id" in group
    ), "a run that is not a pull request's has a group of its own, so no queued run of main or a tag is cancelled"


def test_no_prod_job_can_be_cancelled_by_a_concurrency_group() -> None:
    """GitHub cancels a queued job when another joins its group: prod jobs queue on deployctl's lock instead."""
    prod = [(w, n, j) for w, n, j in _jobs() if j.get("environment") == "prod"]
    assert {n for _, n, _ in prod} == {"promote", "apply"}
    for workflow, name, job in prod:
        assert "concurrency" not in job, f"{workflow}: {name}"
    for workflow, name, job in _jobs():
        concurrency = job.get("concurrency") or {}
        assert concurrency.get("cancel-in-progress", False) is False, f"{workflow}: {name} cancels an environment job"


def _runs_on_pull_requests(job: Mapping[str, Any]) -> bool:
    condition = str(job.get("if", ""))
    return "'pull-request'" in condition or not condition


def test_pull_requests_plan_with_read_only_roles_and_keep_no_plan() -> None:
    jobs = _pipeline()["jobs"]
    for name, job in jobs.items():
        if not _runs_on_pull_requests(job):
            continue
        text = yaml.safe_dump(job)
        reached = [role for role in NOT_FOR_PULL_REQUESTS if role in text]
        assert not reached, f"job {name} runs on pull requests and may assume {reached}"
        assert "upload-artifact" not in text, f"job {name} runs on pull requests and uploads an artifact"
    assert "AWS_PLAN_PR_ROLE_ARN_PROD" in yaml.safe_dump(jobs["plan-pr"])
    assert jobs["plan"]["if"] == "needs.route.outputs.kind == 'main'"


def test_plan_artifacts_come_only_from_main_and_live_one_day() -> None:
    uploads = [
        (name, step)
        for _, name, job in _jobs()
        for step in job.get("steps", [])
        if "actions/upload-artifact@" in step.get("uses", "")
    ]
    assert [name for name, _ in uploads] == ["plan"]
    for _, step in uploads:
        assert step["with"]["retention-days"] == 1
        assert "github.ref == 'refs/heads/main'" in step["if"] and "github.event_name == 'push'" in step["if"]


def test_apply_prod_runs_only_main_s_definition_on_a_main_plan() -> None:
    job = _load(REPO / ".github" / "workflows" / "apply-prod.yml")["jobs"]["apply"]
    assert job["if"] == "github.ref == 'refs/heads/main'"
    checkout = job["steps"][0]
    assert checkout["with"]["fetch-depth"] == 0, "the ancestry check needs origin/main"
    assert (
        "'.github/workflows/pipeline.yml\\tpush\\tmain\\t%s' \"$SHA\"" in job["steps"][1]["run"]
    ), "the plan's run is the pipeline's push to main at the commit"


def test_every_step_writes_its_result_to_the_job_summary() -> None:
    for workflow, name, job in _jobs():
        for step in job.get("steps", []):
            run = step.get("run", "")
            if "deployctl " not in run and "make " not in run and "gh " not in run:
                continue
            if run.strip() == "make install":
                continue  # setup, not a result
            assert ".ci/summary.sh" in run or "GITHUB_STEP_SUMMARY" in run, f"{workflow}: {name}: {run!r}"


def test_every_pipe_fails_with_its_first_command() -> None:
    for workflow, name, job in _jobs():
        for step in job.get("steps", []):
            run = step.get("run", "")
            if re.search(r"[^|]\|[^|]", run.replace("||", "")) and "| @tsv" not in run.replace("'", ""):
                assert "set -o pipefail" in run, f"{workflow}: {name}: a pipe without pipefail: {run!r}"


def test_dependabot_keeps_actions_and_python_current() -> None:
    config = _load(REPO / ".github" / "dependabot.yml")
    assert {u["package-ecosystem"] for u in config["updates"]} == {"github-actions", "pip"}


# --------------------------------------------------------------------------- the scripts the steps run


def _summary(tmp_path: Path, *argv: str) -> tuple[int, str, str]:
    summary = tmp_path / "summary.md"
    done = subprocess.run(
        [str(REPO / ".ci" / "summary.sh"), *argv],
        env={**os.environ, "GITHUB_STEP_SUMMARY": str(summary)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return done.returncode, done.stdout, summary.read_text() if summary.exists() else ""


def test_summary_records_the_result_and_keeps_the_exit_code(tmp_path: Path) -> None:
    code, out, summary = _summary(tmp_path, "plan prod", "--", "sh", "-c", "echo '+ 3 to add'; echo progress >&2")
    assert code == 0 and out == "+ 3 to add\n", "stdout still reaches the log"
    assert summary.startswith("### plan prod: ok (exit 0)\n```\n+ 3 to add\n```\n")
    assert "progress" not in summary, "progress stays in the log when the step succeeds"

    code, _, summary = _summary(tmp_path, "--ok", "0,3", "plan dev", "--", "sh", "-c", "echo changes; exit 3")
    assert code == 0 and "### plan dev: ok (exit 3)" in summary

    code, _, summary = _summary(
        tmp_path, "promote", "--", "sh", "-c", "echo plan; echo 'error: gate refused' >&2; exit 4"
    )
    assert code == 4, "a refusal keeps its exit code"
    assert "### promote: failed (exit 4)" in summary and "error: gate refused" in summary


def test_summary_usage(tmp_path: Path) -> None:
    assert _summary(tmp_path, "no command")[0] == 2


@pytest.mark.parametrize(
    ("steps", "release", "release_tag"),
    [([{"id": "deploy-dev"}, {"id": "release-tag"}], None, "true"), ([{"id": "promote"}], "release-1.4.0", "false")],
)
def test_route_outputs(tmp_path: Path, steps: list[dict[str, str]], release: str | None, release_tag: str) -> None:
    document = tmp_path / "steps.json"
    document.write_text(json.dumps({"kind": "main", "release": release, "steps": steps}))
    done = subprocess.run(
        [sys.executable, str(REPO / ".ci" / "route.py"), str(document)], capture_output=True, text=True, check=True
    )
    assert done.stdout.splitlines() == ["kind=main", f"release={release or ''}", f"release_tag={release_tag}"]
