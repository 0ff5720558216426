"""Git, through the runner: the checked-out commit, which commit a release tag names, whether main
contains it, and the commits between two releases.

Read-only except ``commit``, which the promote use case calls only with ``--commit``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from deployctl.core.errors import CommandFailedError, UsageError
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


def commit(runner: Runner, repo: Path, paths: Sequence[Path], message: str) -> str:
    """Commit exactly ``paths`` with ``message``; returns the new commit."""
    names = [str(p) for p in paths]
    try:
        _git(runner, repo, "add", "--", *names)
        _git(runner, repo, "commit", "-m", message, "--", *names)
    except CommandFailedError as exc:
        raise CommandFailedError(exc.argv, exc.returncode, exc.stderr_tail, "commit the file by hand") from None
    return _git(runner, repo, "rev-parse", "HEAD")[1]


def head(runner: Runner, repo: Path) -> str:
    """The commit checked out in ``repo``."""
    code, out = _git(runner, repo, "rev-parse", "--verify", "--quiet", "HEAD^{commit}", ok_codes=(0, 1, 128))
    if code != 0 or not SHA_RE.match(out):
        raise UsageError(
            f"cannot read the current git commit in {repo}",
            "run deployctl from a git checkout with at least one commit",
        )
    return out


def commit_of(runner: Runner, repo: Path, ref: str) -> str:
    """The full sha of the commit ``ref`` (a sha, a short sha, a branch, a tag, ``HEAD~1``) names in ``repo``."""
    code, out = (
        (1, "")
        if ref.startswith("-")
        else _git(runner, repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", ok_codes=(0, 1, 128))
    )
    if code != 0 or not SHA_RE.match(out):
        raise UsageError(
            f"{ref!r} is not a commit in {repo}",
            "pass a commit, branch or tag of this repository (`git log --oneline` lists them)",
        )
    return out


def tags(runner: Runner, repo: Path, prefix: str) -> list[str]:
    """The tags whose names start with ``prefix`` (e.g. every ``release-*``)."""
    return _git(runner, repo, "tag", "--list", f"{prefix}*")[1].split()


def create_tag(runner: Runner, repo: Path, tag: str, commit: str, message: str) -> None:
    """An annotated tag ``tag`` on ``commit`` (fails when it exists: tags never move)."""
    _git(runner, repo, "tag", "--annotate", "--message", message, tag, commit)


def push_tag(runner: Runner, repo: Path, tag: str, remote: str = "origin") -> None:
    """Push ``tag`` alone to ``remote``; an existing remote tag is never overwritten (no --force)."""
    _git(runner, repo, "push", remote, f"refs/tags/{tag}:refs/tags/{tag}")


FIELD = "\x1f"  # unit separator: cannot appear in a subject line
LOG_FORMAT = FIELD.join(("%H", "%an", "%s"))


def log(
    runner: Runner, repo: Path, *, base: str | None, head: str, limit: int
) -> tuple[list[tuple[str, str, str]], int]:
    """``(sha, author, subject)`` of the commits in ``head`` but not in ``base`` (all of ``head``'s history
    when ``base`` is None), newest first, at most ``limit``; plus how many there are in all."""
    span = f"{base}..{head}" if base else head
    _, count = _git(runner, repo, "rev-list", "--count", span)
    _, out = _git(runner, repo, "log", f"--max-count={limit}", f"--format={LOG_FORMAT}", span)
    commits = []
    for line in out.splitlines():
        sha, author, subject = [*line.split(FIELD), "", ""][:3]
        commits.append((sha, author, subject))
    return commits, int(count or 0)


def contains(runner: Runner, repo: Path, commit: str) -> bool:
    """Whether ``commit`` exists in ``repo`` (a commit recorded elsewhere may not have been fetched)."""
    code, _ = _git(runner, repo, "cat-file", "-e", f"{commit}^{{commit}}", ok_codes=(0, 1, 128))
    return code == 0


def push(runner: Runner, repo: Path, *, remote: str, branch: str, attempts: int = 3) -> str:
    """Push HEAD to ``remote``'s ``branch``; when the branch moved meanwhile, rebase onto it and push again
    (never a force push). Returns the commit pushed."""
    for attempt in range(1, attempts + 1):
        code, out = _git(runner, repo, "push", "--porcelain", remote, f"HEAD:refs/heads/{branch}", ok_codes=(0, 1))
        if code == 0:
            return _git(runner, repo, "rev-parse", "HEAD")[1]
        if attempt == attempts:
            break
        _git(runner, repo, "pull", "--rebase", "--quiet", remote, branch)
    raise CommandFailedError(
        ["git", "push", remote, f"HEAD:{branch}"],
        1,
        out,
        f"{branch} kept moving or refused the push: push the commit by hand (git pull --rebase && git push)",
    )


def tag_on_remote(runner: Runner, repo: Path, tag: str, commit: str, remote: str = "origin") -> tuple[bool, str]:
    """Whether ``remote`` has ``tag`` naming ``commit`` (``git ls-remote``, annotated tags peeled): ``(True, what)``
    or ``(False, why not)``. A release only this clone knows is one nobody else can see or reproduce. A repository
    without ``remote`` has nothing to publish to: not checked, and said so."""
    code, _ = _git(runner, repo, "remote", "get-url", remote, ok_codes=(0, 2))
    if code != 0:
        return True, f"not checked: the repository has no remote {remote!r}"
    refs = [f"refs/tags/{tag}", f"refs/tags/{tag}^{{}}"]
    try:
        listed = runner.run(["git", "-C", str(repo), "ls-remote", "--tags", remote, *refs], timeout=30).stdout
    except CommandFailedError as exc:
        reason = (exc.stderr_tail.strip().splitlines() or [f"exit {exc.returncode}"])[0]
        return False, f"cannot check that {tag} is on {remote}: {reason}"
    named = {ref: sha for sha, _, ref in (line.partition("\t") for line in listed.splitlines())}
    remote_commit = named.get(refs[1]) or named.get(refs[0])
    if remote_commit is None:
        return False, f"{tag} is only in this clone, not on {remote}: push it first (git push {remote} {tag})"
    if remote_commit != commit:
        return False, (
            f"{tag} names {commit[:12]} here but {remote_commit[:12]} on {remote}: "
            "release tags never move; fetch the remote's tags (git fetch --tags --force)"
        )
    return True, f"{tag} is on {remote}"
