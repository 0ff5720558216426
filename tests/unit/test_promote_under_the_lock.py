"""A promotion judged again once it holds the target's lock, and never saying more than what runs (issue 25 §4,
§5): ``--no-deploy`` records ``moved`` (a later promotion deploys it), the change windows are checked again under
the lock, and the values file records only what rolled out. In-memory fakes (tests/unit/fakes.py); the lab tests
of the same sequences are in tests/lab/test_promote_over_time.py."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from deployctl.app import promote as promote_app
from deployctl.app.deploy import deploy
from deployctl.core.errors import ExitCode, OperationError, PolicyError
from deployctl.ledger.entry import Entry
from deployctl.promotion.request import PromoteRequest
from deployctl.rollout.states import Verdict
from tests.unit.fakes import FakeContext
from tests.unit.test_use_cases import DIGEST, promote_world, repo  # noqa: F401 (repo: a fixture)


def test_no_deploy_records_moved_and_the_next_promotion_deploys_it(
    repo: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    contexts, _, endpoints = promote_world(repo, monkeypatch)
    prod = contexts["prod"]
    assert isinstance(prod, FakeContext)
    moved = promote_app.promote(contexts, PromoteRequest("release-1.0.0", deploy=False))
    assert moved.outcome == "moved"
    [entry] = prod.entries()
    assert (entry.outcome, entry.verdict) == ("moved", None)
    assert f'digest: "{DIGEST}"' in (repo / "values-prod.yaml").read_text(), "recorded"
    assert not [c for c in prod.fake_cluster.calls if c.startswith("upgrade")], "not deployed"
    again = promote_app.promote(contexts, PromoteRequest("release-1.0.0"))
    assert again.outcome == "succeeded", "never 'already runs there' for what never ran"
    assert prod.fake_cluster.calls[-2:] == [f"upgrade api {DIGEST}", "watch api"]
    assert len(endpoints.transfers) == 1 or all(t[0] == DIGEST for t in endpoints.transfers)
    assert promote_app.promote(contexts, PromoteRequest("release-1.0.0")).outcome == "noop", "now it runs there"


def test_already_runs_there_is_said_only_when_the_target_shows_it(
    repo: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    contexts, _, _ = promote_world(repo, monkeypatch)
    assert promote_app.promote(contexts, PromoteRequest("release-1.0.0")).outcome == "succeeded"
    prod = contexts["prod"]
    assert isinstance(prod, FakeContext)
    prod.fake_cluster.desired["api"] = "sha256:" + "f" * 64  # someone changed prod by hand since
    result = promote_app.promote(contexts, PromoteRequest("release-1.0.0"))
    assert result.outcome == "succeeded", "rolled out again: prod did not run it"
    assert prod.fake_cluster.calls[-2:] == [f"upgrade api {DIGEST}", "watch api"]


def test_a_freeze_that_began_while_waiting_for_the_lock_refuses(
    repo: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A real dated window of the configuration begins while this run waits: the wait is arranged by sleeping in
    the lock's hold until the window opens (the lab test waits behind a real holder)."""
    opens = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    window = f"{opens:%Y-%m-%dT%H:%M:%S} - {opens + timedelta(hours=1):%Y-%m-%dT%H:%M:%S}: v2 launch"
    config = repo / "pyproject.toml"
    config.write_text(
        config.read_text() + f'\n[tool.deployctl.environments.prod.freeze]\ndated = {{ launch = "{window}" }}\n'
    )
    contexts, s3, endpoints = promote_world(repo, monkeypatch)
    prod = contexts["prod"]
    held = prod.locked

    @contextmanager
    def locked(command: str, timeout: float | None = None) -> Iterator[Any]:
        with held(command, timeout) as info:
            time.sleep(max(0.0, (opens - datetime.now(UTC)).total_seconds()) + 0.1)  # the wait for the lock
            yield info

    monkeypatch.setattr(prod, "locked", locked)
    with pytest.raises(PolicyError) as caught:
        promote_app.promote(contexts, PromoteRequest("release-1.0.0"))
    assert caught.value.exit_code == ExitCode.REFUSED and "v2 launch" in caught.value.message
    assert endpoints.transfers == [] and s3.held_lock("prod") is None
    assert 'digest: ""' in (repo / "values-prod.yaml").read_text()


def test_a_deploy_queued_behind_a_promotion_never_rolls_the_target_back(
    repo: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``deploy prod`` chose release-1.0.0's digest, then waited for the lock while another run promoted a newer
    release: it stops (exit 4) naming what changed, and deploys nothing. (The other run is faked by writing its
    ledger entry while this one waits; the lab test runs both for real.)"""
    contexts, _, _ = promote_world(repo, monkeypatch)
    assert promote_app.promote(contexts, PromoteRequest("release-1.0.0")).outcome == "succeeded"
    prod = contexts["prod"]
    assert isinstance(prod, FakeContext)
    newer = "sha256:" + "e" * 64
    held = prod.locked

    @contextmanager
    def locked(command: str, timeout: float | None = None) -> Iterator[Any]:
        with held(command, timeout) as info:
            promoted = Entry("prod", "api", "promote", "succeeded", digest=newer, tag="release-1.1.0",
                             release="release-1.1.0", verdict="healthy")  # fmt: skip
            prod.ledger.append(promoted)
            yield info

    monkeypatch.setattr(prod, "locked", locked)
    upgrades = len([c for c in prod.fake_cluster.calls if c.startswith("upgrade")])
    with pytest.raises(PolicyError) as caught:
        deploy(prod)
    assert caught.value.exit_code == ExitCode.REFUSED
    assert "prod changed while this run waited for its lock" in caught.value.message
    assert f"api: {DIGEST} -> {newer}" in caught.value.message
    assert len([c for c in prod.fake_cluster.calls if c.startswith("upgrade")]) == upgrades, "nothing deployed"


def test_a_digest_whose_promotion_failed_is_not_deployed_by_a_plain_deploy(
    repo: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    contexts, _, _ = promote_world(repo, monkeypatch, verdict=Verdict("failed", "crash", reason="CrashLoopBackOff"))
    with pytest.raises(OperationError):
        promote_app.promote(contexts, PromoteRequest("release-1.0.0"))
    prod = contexts["prod"]
    assert isinstance(prod, FakeContext)
    values = repo / "values-prod.yaml"  # as a hand edit (or an old promotion) would leave it
    values.write_text(values.read_text().replace('  digest: ""', f'  digest: "{DIGEST}"', 1))
    with pytest.raises(PolicyError) as caught:
        deploy(prod)
    assert "its promotion failed there" in caught.value.message
    assert caught.value.hint is not None and "--allow-unpromoted --reason" in caught.value.hint
