"""``make demo``: rehearse the whole trunk-based flow in the sandbox, with the real tools, and narrate it.

The story: apply shared and dev; commit A's image deployed to dev; ``release-0.1.0`` promoted to prod;
commit B's image crashes in dev and deployctl says so in seconds; commit C fixes it, goes to dev, is
tagged ``release-0.1.1`` and promoted (rolled forward); commit D's pods are ready but it answers 500: its HTTP
check fails in dev, and ``release-0.1.2`` is refused at promote. Then prod's history and status.

Everything happens in a throwaway clone (``<repo>/.deployctl/demo/work``, pushing to a bare
``origin.git`` beside it), so the repository itself gets no commits, tags or edits. Every step is a real
``deployctl`` command in a child process; images are synthetic OCI images pushed to the sandbox
registry (no docker needed), and "B crashes" is the sandbox marking B's digest as crashing.
``KEEP=1`` leaves the sandbox and the clone up for exploring. ``DEPLOYCTL_DEMO_RECORD=FILE`` writes every
command the story ran (argv, exit code, stdout, stderr) to FILE as JSON, to compare two runs (a refactoring
must leave them unchanged but for digests, times and ports).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from deployctl.core.errors import DeployctlError
from deployctl.sandbox.demo_story import REPO, DemoResult, Story
from deployctl.sandbox.where import command_name


def run(workdir: Path, *, keep: bool = False, out: Any = sys.stdout) -> DemoResult:
    story = Story(workdir, out=out)
    story.say("deployctl demo: the trunk-based flow, rehearsed in the local sandbox\n")
    started = time.monotonic()
    told = False
    try:
        story.prepare()
        story.sandbox_up()
        story.apply("shared")
        story.apply("dev")
        story.commit("A", 'print("hello")\n')
        story.deploy_dev("A")
        story.plan("dev")
        story.release("release-0.1.0")
        story.commit("B", 'raise SystemExit("boom")  # the bug\n', crashes=True)
        story.deploy_dev("B", expect_failure=True)
        story.commit("C", 'print("hello, fixed")\n')
        story.deploy_dev("C")
        story.release("release-0.1.1")
        story.commit("D", 'print("hello")  # answers 500\n', answers_500=True)
        story.deploy_dev("D", expect_failure=True)
        story.refused("release-0.1.2")
        story.finish()
        story.verify()
        told = True
    finally:
        if not keep:
            try:
                story.teardown()
            except DeployctlError:
                if told:  # don't mask the failure that stopped the story
                    raise
            kept = None if told else _keep_sandbox_logs(story.clone, workdir)
            for child in workdir.iterdir() if workdir.is_dir() else ():  # all but the board (and a failure's logs)
                if child == kept:
                    continue
                if child.is_dir():
                    shutil.rmtree(child, ignore_errors=True)
                elif child != story.result.board:
                    child.unlink(missing_ok=True)
            if kept is not None:
                story.say(f"the sandbox's logs of this failed run (moto, the registries, the cluster): {kept}")
    total = time.monotonic() - started
    story.say("")
    story.say(
        f"rolled forward: prod went release-0.1.0 (A) -> release-0.1.1 (C); B failed in dev after "
        f"{story.result.broken_detected_seconds:.1f}s and never reached prod; D's pods were ready but its HTTP check "
        f"failed, so release-0.1.2 was refused. Total {total:.0f}s."
    )
    if story.result.board is not None:
        story.say(f"release board of the end state: {story.result.board}")
    if keep:
        story.say(f'sandbox left up: cd {story.clone} && eval "$({command_name()} sandbox env)"')
    return story.result


def _keep_sandbox_logs(clone: Path, workdir: Path) -> Path | None:
    """A failed story's sandbox logs, moved out of the clone that is removed: a failure seen once (an emulator's
    answer, a component's crash) can then be explained from what each component wrote."""
    logs = clone / ".deployctl" / "sandbox" / "logs"
    if not logs.is_dir():
        return None
    kept = workdir / "failed-run-logs"
    shutil.rmtree(kept, ignore_errors=True)
    shutil.move(str(logs), kept)
    return kept


def main() -> int:
    keep = os.environ.get("KEEP", "") not in ("", "0")
    record = os.environ.get("DEPLOYCTL_DEMO_RECORD", "")
    try:
        result = run(REPO / ".deployctl" / "demo", keep=keep)
        if record:
            Path(record).write_text(json.dumps(result.commands, indent=1) + "\n", encoding="utf-8")
    except DeployctlError as exc:
        sys.stderr.write(f"error: {exc.message}\n")
        if exc.hint:
            sys.stderr.write(f"hint: {exc.hint}\n")
        return int(exc.exit_code)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
