"""Static checks of .github/workflows (issue 16) and the scripts their steps run (.ci/summary.sh, .ci/route.py).

actionlint (make check) checks the syntax and the expressions; these check the rules a security review asks for:
pinned actions, timeouts, what pull requests may reach, plan artifacts, concurrency, job summaries.
"""

from __future__ import annotations

import fnmatch
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
    checkout = job["steps"][1]
    assert checkout["with"]["fetch-depth"] == 0, "the ancestry check needs origin/main"
    assert (
        "'.github/workflows/pipeline.yml\\tpush\\tmain\\t%s' \"$SHA\"" in job["steps"][2]["run"]
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


def test_dependabot_keeps_actions_python_and_terraform_current_after_a_cooldown() -> None:
    config = _load(REPO / ".github" / "dependabot.yml")
    assert {u["package-ecosystem"] for u in config["updates"]} == {"github-actions", "pip", "terraform"}
    for update in config["updates"]:
        days = (update.get("cooldown") or {}).get("default-days", 0)
        assert days >= 7, f"{update['package-ecosystem']}: a new version waits a week (most bad releases are yanked)"
    terraform = next(u for u in config["updates"] if u["package-ecosystem"] == "terraform")
    patterns = terraform.get("directories") or [terraform["directory"]]
    locked = sorted("/" + str(p.parent.relative_to(REPO)) for p in (REPO / "terraform").rglob(".terraform.lock.hcl"))
    assert locked, "the provider lock files"
    uncovered = [d for d in locked if not any(fnmatch.fnmatchcase(d, pattern) for pattern in patterns)]
    assert not uncovered, f"dependabot does not update the providers locked in {uncovered}"


# --------------------------------------------------------------------------- credentialed jobs (issue 26)
# A job that can assume an AWS role runs only code it built from the lock file: no restored cache, poetry from a
# hash-pinned requirements file, and no token left in .git/config unless the job pushes.

# The jobs that push (with the deploy key of an environment that only main or a release tag may use).
PUSHERS = {"release-tag": "release", "promote": "prod"}
CACHING = ("actions/cache@", "actions/cache/restore@")


def _credentialed(job: Mapping[str, Any]) -> bool:
    return (job.get("permissions") or {}).get("id-token") == "write"


def _restores_a_cache(step: Mapping[str, Any]) -> bool:
    uses = str(step.get("uses", ""))
    if uses.startswith(CACHING):
        return True
    cache = (step.get("with") or {}).get("cache")
    return uses.startswith("actions/setup-") and cache not in (None, False, "false", "")


def test_no_job_that_holds_cloud_credentials_restores_a_cache() -> None:
    credentialed = [(w, n, j) for w, n, j in _jobs() if _credentialed(j)]
    assert len(credentialed) >= 7, "plan-pr, plan, build-image, deploy-develop, promote, shared-terraform, apply"
    for workflow, name, job in credentialed:
        restoring = [s.get("uses") for s in job.get("steps", []) if _restores_a_cache(s)]
        assert not restoring, f"{workflow}: {name} holds an OIDC token and restores a cache: {restoring}"
    caching = {n for _, n, j in _jobs() if any(_restores_a_cache(s) for s in j.get("steps", []))}
    assert caching == {"api-check"}, "only the checks (no credentials, no environment) may restore caches"
    job = _pipeline()["jobs"]["api-check"]
    assert "permissions" not in job and "environment" not in job, "api-check runs with the read-only default token"


def test_every_checkout_that_does_not_push_leaves_no_credentials() -> None:
    checkouts = [
        (workflow, name, job, step)
        for workflow, name, job in _jobs()
        for step in job.get("steps", [])
        if str(step.get("uses", "")).startswith("actions/checkout@")
    ]
    assert len(checkouts) == 10
    for workflow, name, job, step in checkouts:
        options = step.get("with") or {}
        if name in PUSHERS:
            assert job.get("environment") == PUSHERS[name], f"{name}: the push key is a secret of {PUSHERS[name]}"
            assert options.get("ssh-key") == "${{ secrets.DEPLOYCTL_PUSH_KEY }}", f"{name} pushes with the deploy key"
            assert options.get("persist-credentials") is True
        else:
            assert options.get("persist-credentials") is False, f"{workflow}: {name} keeps a token in .git/config"
    promote = _pipeline()["jobs"]["promote"]
    assert promote["permissions"]["contents"] == "read", "promote pushes with the key, not with the job's token"


def test_poetry_is_installed_from_a_hash_pinned_requirements_file() -> None:
    makefile = (REPO / "Makefile").read_text()
    assert "POETRY_REQUIREMENTS := .ci/poetry-requirements.txt" in makefile
    recipe = makefile.split("$(POETRY_STAMP):", 1)[1].split("\n\n", 1)[0]
    installs = [line.strip() for line in recipe.splitlines() if "pip install" in line]
    assert installs, "the POETRY_STAMP rule installs poetry"
    for line in installs:
        assert "--require-hashes -r $(POETRY_REQUIREMENTS)" in line, line
    text = (REPO / ".ci" / "poetry-requirements.txt").read_text()
    requirements = re.split(
        r"\n(?=[A-Za-z])", "\n".join(x for x in text.splitlines() if not x.lstrip().startswith("#"))
    )
    pinned = {}
    for requirement in filter(str.strip, requirements):
        name, _, rest = requirement.partition("==")
        version = rest.split()[0]
        hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})", requirement)
        assert hashes, f"{name} has no hash"
        pinned[name.strip()] = version
    assert pinned.get("poetry"), "poetry itself is pinned"
    assert len(pinned) > 20, "and every package it needs (pip --require-hashes refuses an unpinned one)"


def test_prod_promotes_only_in_a_release_tag_s_own_run() -> None:
    """The prod role trusts pipeline.yml at refs/tags/release-* (and apply-prod.yml at main), nothing else
    (terraform/README.md, "CI roles"): the version-bump route pushes the tag, whose own run promotes it."""
    jobs = _pipeline()["jobs"]
    assert (jobs["promote"]["needs"], jobs["promote"]["if"]) == ("route", "needs.route.outputs.kind == 'release'")
    assert "id-token" not in (jobs["release-tag"].get("permissions") or {}), "release-tag assumes no AWS role"
    triggers = yaml.safe_load((REPO / ".github" / "workflows" / "pipeline.yml").read_text())[True]  # YAML 1.1: on
    assert "values-prod.yaml" in triggers["push"]["paths-ignore"], "the values record starts no run"


def _input_check(**env: str) -> int:
    """Runs apply-prod's first step (the input check) as the runner would, with ``env`` as its inputs."""
    job = _load(REPO / ".github" / "workflows" / "apply-prod.yml")["jobs"]["apply"]
    step = job["steps"][0]
    assert set(step["env"]) == {"RUN_ID", "SHA"} and "uses" not in step
    done = subprocess.run(
        ["bash", "-e", "-c", step["run"]],
        env={"PATH": os.environ["PATH"], "GITHUB_STEP_SUMMARY": os.devnull, **env},
        capture_output=True,
        timeout=30,
        check=False,
    )
    return done.returncode


SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize(
    ("run_id", "sha", "ok"),
    [
        ("1234567890", SHA, True),
        ("123 --jq .", SHA, False),
        ("123/../../../orgs/x", SHA, False),
        ("12\n34", SHA, False),
        ("", SHA, False),
        ("abc", SHA, False),
        ("123", "main", False),
        ("123", SHA[:12], False),
        ("123", SHA + "\nx", False),
    ],
)
def test_apply_prod_takes_only_a_run_id_and_a_commit_sha(run_id: str, sha: str, ok: bool) -> None:
    code = _input_check(RUN_ID=run_id, SHA=sha)
    assert (code == 0) is ok, (run_id, sha, code)


def test_apply_prod_checks_its_inputs_before_anything_uses_them() -> None:
    steps = _load(REPO / ".github" / "workflows" / "apply-prod.yml")["jobs"]["apply"]["steps"]
    uses_inputs = [i for i, step in enumerate(steps) if "inputs." in json.dumps(step)]
    assert uses_inputs[0] == 0 and steps[0]["name"].startswith("the inputs are")


def test_zizmor_finds_nothing_at_its_default_persona() -> None:
    zizmor = Path(sys.executable).parent / "zizmor"
    assert zizmor.exists(), "zizmor is a dev dependency (make setup)"
    done = subprocess.run(
        [str(zizmor), "--offline", "--no-progress", "."],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:]


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
