"""The use cases on a ledger that was tampered with, holds a corrupt entry, or was written by a clock off S3's
(the fake context of tests/unit/fakes.py; the lab runs the same sequences against moto with Object Lock in
tests/lab/test_ledger_integrity.py): the promotion gate refuses naming the key, a deploy warns and goes on,
``history`` and ``status`` show each problem once on stderr and in their JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from deployctl.app import promote as promote_app
from deployctl.app.deploy import deploy
from deployctl.app.history import history
from deployctl.app.status import status
from deployctl.core.errors import ExitCode, PolicyError
from deployctl.ledger.entry import Entry
from deployctl.ledger.store import HISTORY_PREFIX
from deployctl.promotion.request import PromoteRequest
from tests import values_files
from tests.unit.fakes import Events, FakeContext, VersionedS3
from tests.unit.test_use_cases import BUCKET, CONFIG, DIGEST, SHA, dev_context, promote_world

CORRUPT = f"{HISTORY_PREFIX}/dev/20261129T120000.000000+0000-c0ffee.json"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text(CONFIG)
    for name in ("values-dev.yaml", "values-prod.yaml"):
        (tmp_path / name).write_text(values_files.reference(name))
    return tmp_path


def dev_keys(s3: VersionedS3) -> list[str]:
    return sorted(k for b, k in s3.objects if b == BUCKET and k.startswith(f"{HISTORY_PREFIX}/dev/"))


def test_promote_refuses_when_an_entry_of_the_sources_ledger_was_deleted(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3 = VersionedS3()
    contexts, _, endpoints = promote_world(repo, monkeypatch, s3=s3)
    deleted = dev_keys(s3)[0]
    s3.delete_object(Bucket=BUCKET, Key=deleted)  # the dev role's old power: hide an entry behind a delete marker

    with pytest.raises(PolicyError) as caught:
        promote_app.promote(contexts, PromoteRequest("release-1.0.0"))
    assert caught.value.exit_code == ExitCode.REFUSED
    assert "verified-in-source: the ledger of dev was tampered with" in caught.value.message
    assert f"{deleted}: deleted: a delete marker hides it" in caught.value.message
    assert endpoints.transfers == [], "nothing changed"


def test_promote_refuses_on_a_corrupt_entry_while_deploy_warns_and_goes_on(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3 = VersionedS3()
    contexts, _, endpoints = promote_world(repo, monkeypatch, s3=s3)
    s3.put_object(
        Bucket=BUCKET, Key=CORRUPT, Body=b'{"schema": "deployctl/history/v1", "env": "dev", "ap', IfNoneMatch="*"
    )

    with pytest.raises(PolicyError) as caught:
        promote_app.promote(contexts, PromoteRequest("release-1.0.0"))
    assert f"{CORRUPT}: corrupt: not JSON" in caught.value.message
    assert endpoints.transfers == []

    events = Events()
    dev = FakeContext(contexts.config, "dev", contexts.runner, s3=s3, digests={SHA: DIGEST}, events=events)
    result = deploy(dev, image_tag=SHA)  # an unrelated deploy: no traceback, no refusal
    assert result.apps[0].image.digest == DIGEST
    said = [line for line in events.lines if CORRUPT in line]
    assert len(said) == 1 and said[0].startswith("warning: the ledger of dev: ") and "corrupt" in said[0]


def test_an_entry_dated_two_hours_ahead_is_not_counted_and_the_gate_says_why(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3 = VersionedS3()
    contexts, _, endpoints = promote_world(repo, monkeypatch, s3=s3)
    for key in dev_keys(s3):  # dev's one rollout, as a writer whose clock ran 2 h ahead would have written it
        data = json.loads(s3.objects[(BUCKET, key)])
        data["time"] = (datetime.fromisoformat(data["time"]) + timedelta(hours=2)).isoformat()
        s3.objects[(BUCKET, key)] = json.dumps(data).encode()
        s3.versions.pop((BUCKET, key))

    with pytest.raises(PolicyError) as caught:
        promote_app.promote(contexts, PromoteRequest("release-1.0.0"))
    message = caught.value.message
    assert f"{DIGEST} has no healthy rollout in dev" in message
    assert "not counted:" in message and "clock_skew" in message and "2 h 0 min ahead of S3's clock" in message
    assert endpoints.transfers == []


def test_history_and_status_show_each_problem_on_stderr_and_in_json(repo: Path) -> None:
    s3 = VersionedS3()
    events = Events()
    ctx = FakeContext(dev_context(repo, s3).config, "dev", dev_context(repo, s3).runner, s3=s3, events=events)
    ctx.digests = {SHA: DIGEST}
    deploy(ctx, image_tag=SHA)
    key = sorted(k for b, k in s3.objects if k.startswith(f"{HISTORY_PREFIX}/dev/"))[-1]
    s3.delete_object(Bucket=BUCKET, Key=key)
    ahead = Entry("dev", "api", "deploy", "succeeded", time=(datetime.now(UTC) + timedelta(hours=2)).isoformat())
    s3.put_object(Bucket=BUCKET, Key=f"{HISTORY_PREFIX}/dev/ahead.json", Body=json.dumps(ahead.to_dict()).encode())
    events.lines.clear()

    found = history(ctx).data()
    assert {(p["kind"], p["key"]) for p in found["problems"]} == {
        ("deleted", key),
        ("clock_skew", f"{HISTORY_PREFIX}/dev/ahead.json"),
    }
    assert len(found["entries"]) == 3, "the deleted entry is retained and shown, the skewed one too"
    shown = status(ctx).data()
    assert [p["key"] for p in shown["ledger_problems"]] == [p["key"] for p in found["problems"]]
    warned = [line for line in events.lines if line.startswith("warning: the ledger of dev: ")]
    assert len(warned) == 2, "each problem said once per command, however often the ledger is read"


def test_history_of_one_app_fetches_its_newest_until_the_limit_and_shows_what_the_whole_read_shows(
    repo: Path,
) -> None:
    from tests.unit.test_ledger_questions import DIGESTS, History, rollout

    written = History()
    for n in range(40):  # the first ones by a deployctl before labels, all older than the rest
        app = ("api", "web", "web", "worker")[n % 4]
        written.write(rollout(app, DIGESTS[n % 6], "succeeded"), before_labels=n < 8)
    base = dev_context(repo, written.s3)
    whole = [e.id for e in written.fresh().read().entries if e.app == "api"]
    assert len(whole) == 10
    # api's 8 labelled entries first (newest), then the 8 old keys (whose app only their bodies say) when not enough
    for limit, fetched in ((3, 8), (9, 16), (12, 16)):
        written.s3.fetched.clear()
        ctx = FakeContext(base.config, "dev", base.runner, s3=written.s3, events=Events())  # a new process
        shown = [e["id"] for e in history(ctx, app="api", limit=limit).data()["entries"]]
        assert shown == whole[:limit], limit
        assert len(written.s3.fetched) == fetched, "never web's or worker's labelled entries"
