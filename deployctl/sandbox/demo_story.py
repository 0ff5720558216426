"""The demo's story teller: every step a real deployctl command in a child process of a throwaway clone, timed,
narrated and recorded."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deployctl.config import load
from deployctl.core.errors import ExitCode, OperationError
from deployctl.runner import CommandResult, ProcessRunner
from deployctl.sandbox import image_push, session_marks

REPO = Path(__file__).resolve().parents[2]


GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "deployctl demo",
    "GIT_AUTHOR_EMAIL": "demo@deployctl.invalid",
    "GIT_COMMITTER_NAME": "deployctl demo",
    "GIT_COMMITTER_EMAIL": "demo@deployctl.invalid",
}


@dataclass
class StoryStep:
    title: str
    seconds: float
    outcome: str


@dataclass
class DemoResult:
    """What the story produced; the demo test asserts on it."""

    digests: dict[str, str] = field(default_factory=dict)  # commit letter -> the api image's digest
    worker_digests: dict[str, str] = field(default_factory=dict)  # commit letter -> the worker image's digest
    commits: dict[str, str] = field(default_factory=dict)
    prod_digest: str | None = None  # what prod's api runs
    prod_worker_digest: str | None = None
    broken_detected_seconds: float | None = None
    unverified_refusal: str = ""  # why promote refused the release of D (pods ready, its HTTP check failed in dev)
    dev_history: list[dict[str, Any]] = field(default_factory=list)
    prod_history: list[dict[str, Any]] = field(default_factory=list)
    steps: list[StoryStep] = field(default_factory=list)
    documents: dict[str, Any] = field(default_factory=dict)  # command -> last JSON document it printed
    commands: list[dict[str, Any]] = field(default_factory=list)  # every command run: argv, exit code, output
    board: Path | None = None  # the release board of the end state (``deployctl board``), kept in the work dir


class Story:
    def __init__(self, workdir: Path, *, out: Any = sys.stdout) -> None:
        self.workdir = workdir
        self.origin = workdir / "origin.git"
        self.clone = workdir / "work"
        self.out = out
        self.runner = ProcessRunner()
        self.env: dict[str, str] = {**os.environ, **GIT_IDENTITY}
        self.env.pop("DEPLOYCTL_SANDBOX", None)
        self.env.pop("DEPLOYCTL_CONFIG", None)
        self.result = DemoResult()
        self.registry = ""

    # ------------------------------------------------------------------ plumbing

    def say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def step(self, title: str, outcome: str, started: float) -> None:
        seconds = time.monotonic() - started
        self.result.steps.append(StoryStep(title, seconds, outcome))
        self.say(f"  {title:<54} {seconds:6.1f}s  {outcome}")

    def git(self, *args: str) -> str:
        return self.runner.run(["git", *args], cwd=self.clone, env=self.env).stdout.strip()

    def deployctl(self, *args: str, ok_codes: Sequence[int] = (0,)) -> CommandResult:
        # The installed console script, not `python -m deployctl`: with cwd in the clone, -m would import
        # the clone's (committed) copy of the package instead of the code under test.
        argv = [str(Path(sys.executable).with_name("deployctl")), *args]
        result = self.runner.run(argv, cwd=self.clone, env=self.env, ok_codes=ok_codes, timeout=900)
        self.result.commands.append(
            {"args": list(args), "exit_code": result.exit_code, "stdout": result.stdout, "stderr": result.stderr}
        )
        return result

    def deployctl_json(self, *args: str, ok_codes: Sequence[int] = (0,)) -> tuple[int, Any]:
        result = self.deployctl("-o", "json", *args, ok_codes=ok_codes)
        document = json.loads(result.stdout)
        failed = "" if document.get("ok", True) else " (failed)"  # a refusal keeps the last success's document
        self.result.documents[(document.get("command") or args[0]) + failed] = document
        return result.exit_code, document

    # ------------------------------------------------------------------ the story

    def prepare(self) -> None:
        started = time.monotonic()
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.workdir.mkdir(parents=True)
        self.runner.run(["git", "clone", "--quiet", "--bare", str(REPO), str(self.origin)], env=self.env)
        self.runner.run(["git", "clone", "--quiet", str(self.origin), str(self.clone)], env=self.env)
        self.git("checkout", "--quiet", "-B", "main")
        # The demo promotes right after dev: it sets prod's soak to 0 on purpose (the default, 10 minutes, would
        # have it wait), as a team that wants no soak would.
        config = self.clone / "pyproject.toml"
        config.write_text(
            config.read_text().replace('promote_from = "dev"\n', 'promote_from = "dev"\npromote_soak_minutes = 0\n', 1)
        )
        self.git("commit", "--quiet", "-am", "demo: no soak before prod (the demo promotes right after dev)")
        # The throwaway origin's main becomes the commit under test: a branch that is not a descendant of
        # the repository's main (a feature branch behind it) must not fail the demo's first push.
        self.git("push", "--quiet", "--force", "origin", "main")
        self.step("clone the repository (throwaway)", str(self.clone), started)

    def sandbox_up(self) -> None:
        started = time.monotonic()
        _, status = self.deployctl_json("sandbox", "up")
        _, env = self.deployctl_json("sandbox", "env")
        self.env.update(env["env"])
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            self.env.pop(key, None)  # the sandbox's credentials file must win
        self.registry = status["registries"][0]
        components = ", ".join(c["name"] for c in status["components"])
        self.step("deployctl sandbox up", components, started)

    def apply(self, env: str) -> None:
        started = time.monotonic()
        _, result = self.deployctl_json("apply", env, "--auto-approve")
        self.step(f"deployctl apply {env} --auto-approve", _apply_summary(result), started)

    def commit(self, letter: str, code: str, *, crashes: bool = False, answers_500: bool = False) -> str:
        started = time.monotonic()
        app = self.clone / "app"
        app.mkdir(exist_ok=True)
        (app / "main.py").write_text(code, encoding="utf-8")
        self.git("add", "app/main.py")
        self.git("commit", "--quiet", "-m", f"app: commit {letter}")
        self.git("push", "--quiet", "origin", "main")
        sha = self.git("rev-parse", "HEAD")
        # build-image on main: one image per app per commit, tagged with the full sha.
        pushed = image_push.push_image(self.registry, "api", tag=sha, layer_size=256 * 1024, seed=ord(letter))
        worker = image_push.push_image(self.registry, "worker", tag=sha, layer_size=128 * 1024, seed=1000 + ord(letter))
        if crashes or answers_500:
            behaviour = "crashloop" if crashes else "http-500"  # http-500: ready pods, answering 500 (http_standin)
            session_marks.mark_image(load(self.clone / "pyproject.toml"), pushed.digest, behaviour)
        self.result.commits[letter] = sha
        self.result.digests[letter] = pushed.digest
        self.result.worker_digests[letter] = worker.digest
        behaviour = " (this api build crashes on start)" if crashes else ""
        behaviour = " (this api build runs, but answers 500)" if answers_500 else behaviour
        detail = f"api {pushed.digest[:19]}{behaviour}, worker {worker.digest[:19]}"
        self.step(f"commit {letter}, build images :{sha[:12]}", detail, started)
        return sha

    def deploy_dev(self, letter: str, *, expect_failure: bool = False) -> None:
        started = time.monotonic()
        codes = (int(ExitCode.FAILED),) if expect_failure else (0,)
        code, document = self.deployctl_json("deploy", "dev", ok_codes=codes)
        seconds = time.monotonic() - started
        if expect_failure and self.result.broken_detected_seconds is None:  # B's, the crash
            self.result.broken_detected_seconds = seconds
        if expect_failure:
            message = document["error"]["message"].splitlines()[0]
            self.step(f"deployctl deploy dev (commit {letter})", f"FAILED fast, exit {code}: {message}", started)
        else:
            self.step(
                f"deployctl deploy dev (commit {letter})",
                ", ".join(
                    f"{a['app']} rolled out {a['image']['digest'][:19]} revision {a['revision']}"
                    for a in document["apps"]
                ),
                started,
            )

    def plan(self, env: str) -> None:
        """The pull-request view: terraform and the helm diff against the live cluster, in one plan."""
        started = time.monotonic()
        code, document = self.deployctl_json("plan", env, "--detailed-exitcode", ok_codes=(0, int(ExitCode.CHANGES)))
        terraform = document["terraform"]["summary"] if document["terraform"] else {}
        helm = "helm diff: " + ("changes" if (document["helm"] or {}).get("changed") else "no changes")
        if document["helm"] is None:
            helm = f"helm diff unavailable: {document['helm_error']}"
        counts = ", ".join(f"{v} {k}" for k, v in terraform.items() if isinstance(v, int) and v) or "no changes"
        self.step(f"deployctl plan {env} --detailed-exitcode", f"exit {code}: terraform {counts}; {helm}", started)

    def release(self, tag: str) -> None:
        started = time.monotonic()
        self.git("tag", "-a", tag, "-m", tag)
        self.git("push", "--quiet", "origin", tag)
        _, document = self.deployctl_json("promote", tag)
        self.step(
            f"git tag {tag}; deployctl promote {tag}",
            f"{document['outcome']}: prod now runs "
            + ", ".join(f"{a['app']} {(a['digest'] or '')[:19]}" for a in document["plan"]["apps"]),
            started,
        )

    def refused(self, tag: str) -> None:
        """A release whose image failed its checks in dev: promote refuses it (exit 4), naming the check."""
        started = time.monotonic()
        self.git("tag", "-a", tag, "-m", tag)
        self.git("push", "--quiet", "origin", tag)
        _, document = self.deployctl_json("promote", tag, ok_codes=(int(ExitCode.REFUSED),))
        self.result.unverified_refusal = document["error"]["message"]
        self.step(f"git tag {tag}; deployctl promote {tag}", "REFUSED, exit 4: " + _refusal(document), started)

    def finish(self) -> None:
        started = time.monotonic()
        _, status = self.deployctl_json("status", "prod")
        _, prod = self.deployctl_json("history", "prod")
        _, dev = self.deployctl_json("history", "dev")
        running = {a["app"]: a["digest"] for a in status["apps"]}
        self.result.prod_digest = running.get("api")
        self.result.prod_worker_digest = running.get("worker")
        self.result.prod_history = prod["entries"]
        self.result.dev_history = dev["entries"]
        self.step("deployctl status prod; history dev/prod", f"prod runs {self.result.prod_digest}", started)
        self.say("")
        self.say("$ deployctl history prod")
        self.say(self.deployctl("history", "prod").stdout.rstrip())
        self.say("")
        self.say("$ deployctl status prod")
        self.say(self.deployctl("status", "prod").stdout.rstrip())
        self.result.board = self.workdir / "board.html"
        self.deployctl("board", "--out", str(self.result.board))

    def verify(self) -> None:
        """The story's claims, checked: prod ends on C, dev saw B fail, prod never ran B."""
        r = self.result
        problems = []
        if r.prod_digest != r.digests["C"]:
            problems.append(f"prod's api runs {r.prod_digest}, expected C's digest {r.digests['C']}")
        if r.prod_worker_digest != r.worker_digests["C"]:
            problems.append(f"prod's worker runs {r.prod_worker_digest}, expected C's {r.worker_digests['C']}")
        if not any(e["digest"] == r.digests["B"] and e["outcome"] == "failed" for e in r.dev_history):
            problems.append("dev history has no failed deploy of B")
        if any(e["digest"] == r.digests["B"] for e in r.prod_history):
            problems.append("prod history mentions B: the broken build reached prod")
        if any(e["digest"] == r.digests["D"] for e in r.prod_history) or "readyz" not in r.unverified_refusal:
            problems.append("D (its HTTP check failed in dev) reached prod, or its refusal does not name the check")
        if problems:
            raise OperationError("demo: " + "; ".join(problems))

    def teardown(self) -> None:
        self.deployctl("sandbox", "down")  # fails when a process or port is left behind


def _refusal(document: Mapping[str, Any]) -> str:
    lines = str(document["error"]["message"]).splitlines()
    return next((line.strip() for line in lines if "verification failed" in line), lines[0] if lines else "")


def _apply_summary(result: Mapping[str, Any]) -> str:
    summary = result.get("summary") or result.get("terraform", {}).get("summary") or {}
    if isinstance(summary, Mapping) and summary:
        return ", ".join(f"{v} {k}" for k, v in summary.items() if isinstance(v, int))
    return "applied"
