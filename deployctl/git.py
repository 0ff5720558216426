"""Git, through the runner: which commit a release tag names, and whether main contains it.

Read-only except ``commit``, which the promote use case calls only with ``--commit``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from deployctl.errors import CommandFailedError, PolicyError, UsageError
from deployctl.runner import Runner

SHA_RE = re.compile(r"^[0-9a-f]{40}$")
TIMEOUT = 60.0


def _git(runner: Runner, repo: Path, *args: str, ok_codes: Sequence[int] = (0,)) -> tuple[int, str]:
    result = runner.run(["git", "-C", str(repo), *args], timeout=TIMEOUT, ok_codes=ok_codes)
    return result.exit_code, result.stdout.strip()


def tag_commit(runner: Runner, repo: Path, tag: str) -> str:
    """The commit ``tag`` names; annotated tags are dereferenced to their commit."""
    code, out = _git(runner, repo, "rev-parse", "--verify", "--quiet", f"refs/tags/{tag}^{{commit}}", ok_codes=(0, 1))
    if code != 0 or not SHA_RE.match(out):
        raise UsageError(
            f"git tag {tag!r} does not exist in {repo}",
            "create and push the tag on a commit of main (git tag -a TAG COMMIT && git push origin TAG), "
            "or fetch tags (git fetch --tags)",
        )
    return out


def main_ref(runner: Runner, repo: Path, branch: str) -> str:
    """The ref of the main branch to check against: ``origin/<branch>`` when fetched, else ``<branch>``."""
    for ref in (f"refs/remotes/origin/{branch}", f"refs/heads/{branch}"):
        code, _ = _git(runner, repo, "rev-parse", "--verify", "--quiet", ref, ok_codes=(0, 1))
        if code == 0:
            return ref.removeprefix("refs/remotes/").removeprefix("refs/heads/")
    raise UsageError(
        f"neither origin/{branch} nor {branch} exists in {repo}",
        f"fetch the main branch (git fetch origin {branch}), or set main_branch in [tool.deployctl]",
    )


def is_ancestor(runner: Runner, repo: Path, commit: str, ref: str) -> bool:
    """Whether ``commit`` is reachable from ``ref`` (``git merge-base --is-ancestor``: 0 yes, 1 no)."""
    code, _ = _git(runner, repo, "merge-base", "--is-ancestor", commit, ref, ok_codes=(0, 1))
    return code == 0


def require_on_main(runner: Runner, repo: Path, tag: str, commit: str, branch: str) -> str:
    """Refuse a release whose commit is not on main (it was never built and tested there)."""
    ref = main_ref(runner, repo, branch)
    if not is_ancestor(runner, repo, commit, ref):
        raise PolicyError(
            f"{tag} points at {commit[:12]}, which is not on {ref}: only commits built on main can be released",
            f"merge the change to {branch}, then tag a commit of {branch}",
        )
    return ref


def commit(runner: Runner, repo: Path, paths: Sequence[Path], message: str) -> str:
    """Commit exactly ``paths`` with ``message``; returns the new commit."""
    names = [str(p) for p in paths]
    try:
        _git(runner, repo, "add", "--", *names)
        _git(runner, repo, "commit", "-m", message, "--", *names)
    except CommandFailedError as exc:
        raise CommandFailedError(exc.argv, exc.returncode, exc.stderr_tail, "commit the file by hand") from None
    return _git(runner, repo, "rev-parse", "HEAD")[1]


def toplevel(runner: Runner, start: Path) -> Path:
    code, out = _git(runner, start, "rev-parse", "--show-toplevel", ok_codes=(0, 128))
    if code != 0:
        raise UsageError(f"{start} is not inside a git repository", "run deployctl from the repository's checkout")
    return Path(out)
