"""What a promotion target runs (issue 25 §5): its newest rollout deployctl judged healthy there, from its ledger;
never a promotion that was only recorded (``--no-deploy``: ``moved``) or that failed, never the values file."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployctl.ledger.entry import Entry, Outcome
from deployctl.promotion.target import target_state
from tests.unit.test_waves import CONFIG, env_of

OLD, NEW = "sha256:" + "1" * 64, "sha256:" + "2" * 64


def promoted(digest: str, release: str, outcome: Outcome = "succeeded", verdict: str | None = "healthy") -> Entry:
    return Entry("prod", "api", "promote", outcome, digest=digest, release=release, tag=release, verdict=verdict)


@pytest.mark.parametrize(
    ("case", "newest_first", "expected"),
    [
        ("nothing ran: not the values file either", [], (None, None, "none")),
        ("a healthy promotion", [promoted(OLD, "release-1.0.0")], ("1.0.0", OLD, "ledger")),
        ("moved, not deployed", [promoted(NEW, "release-1.1.0", "moved", None), promoted(OLD, "release-1.0.0")],
         ("1.0.0", OLD, "ledger")),
        ("a failed promotion", [promoted(NEW, "release-1.1.0", "failed", "failed"), promoted(OLD, "release-1.0.0")],
         ("1.0.0", OLD, "ledger")),
        ("an old --no-deploy entry (succeeded, no verdict)", [promoted(NEW, "release-1.1.0", verdict=None)],
         (None, None, "none")),
        ("deploy prod --allow-unpromoted of a release's digest",
         [Entry("prod", "api", "deploy", "succeeded", digest=NEW, tag="release-1.1.0", release="api@4",
                verdict="healthy"), promoted(OLD, "release-1.0.0")], ("1.1.0", NEW, "ledger")),
        ("... of a digest no release names", [Entry("prod", "api", "deploy", "succeeded", digest=NEW, tag="hotfix",
                                                    release="api@4", verdict="healthy")], (None, NEW, "ledger")),
    ],
)  # fmt: skip
def test_target_state(tmp_path: Path, case: str, newest_first: list[Entry], expected: tuple[object, ...]) -> None:
    env = env_of(CONFIG, tmp_path)
    version, digest, source, _ = target_state(newest_first, env, "api")
    assert (str(version) if version else None, digest, source) == expected, case
