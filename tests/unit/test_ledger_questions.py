"""A ledger read that asks a question fetches only the entries whose keys answer it, and answers as the whole read
does (issue 29: every command read every entry ever recorded, one GET each). Against tests/unit/fakes.py's
versioned S3, which counts nothing itself: the GETs are counted by wrapping it."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from deployctl.ledger import labels
from deployctl.ledger.entry import Entry, open_intents
from deployctl.ledger.store import HISTORY_PREFIX, Ledger
from deployctl.promotion.evidence import evidence_of, failed
from tests.unit.fakes import VersionedS3

BUCKET = "acme-tfstate"
PREFIX = f"{HISTORY_PREFIX}/dev/"
APPS = ("api", "web", "worker")
DIGESTS = tuple("sha256:" + c * 64 for c in "abcdef")


class CountingS3(VersionedS3):
    """The fake S3, counting the entries fetched (the GETs a read pays)."""

    def __init__(self) -> None:
        super().__init__()
        self.fetched: list[str] = []

    def get_object(self, *, Bucket: str, Key: str, VersionId: str | None = None) -> dict[str, Any]:  # noqa: N803
        self.fetched.append(Key)
        return super().get_object(Bucket=Bucket, Key=Key, VersionId=VersionId)


class History:
    """One environment's ledger, written entry by entry with S3's clock one second further each time."""

    def __init__(self) -> None:
        self.s3 = CountingS3()
        self.now = datetime(2026, 12, 1, tzinfo=UTC)
        self.s3.clock = lambda: self.now
        self.ledger = Ledger("dev", BUCKET, self.s3, warn=lambda _: None)

    def write(self, entry: Entry, *, before_labels: bool = False) -> Entry:
        """``entry`` stamped now; ``before_labels``: under the plain key a deployctl before labels wrote."""
        self.now += timedelta(seconds=1)
        entry = replace(entry, time=self.now.isoformat(timespec="microseconds"))
        if before_labels:
            data = json.dumps(entry.to_dict(), sort_keys=True).encode()
            stamp = entry.time.replace(":", "").replace("-", "")
            self.s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}{stamp}-{entry.id}.json", Body=data, IfNoneMatch="*")
        else:
            self.ledger.append(entry)
        return entry

    def fresh(self) -> Ledger:
        """A reader in a new process (nothing memoised), its GETs counted from zero."""
        self.s3.fetched.clear()
        return Ledger("dev", BUCKET, self.s3, warn=lambda _: None)


def rollout(app: str, digest: str, outcome: str, *, action: str = "deploy", intent: str | None = None) -> Entry:
    verdict = {"succeeded": "healthy", "failed": "failed", "unchanged": "healthy"}.get(outcome)
    return Entry("dev", app, action, outcome, digest=digest, verdict=verdict, intent=intent)  # type: ignore[arg-type]


def random_history(seed: int, size: int = 120) -> History:
    """Rollouts of three apps as runs make them: an intent, then (mostly) its completion; some runs die (the intent
    stays open), some are judged unchanged or failed; a few early ones under keys from before labels."""
    rng = random.Random(seed)  # noqa: S311 (a reproducible history, not a secret)
    history = History()
    for n in range(size):
        app, digest = rng.choice(APPS), rng.choice(DIGESTS)
        action = rng.choice(("deploy", "deploy", "promote", "verify"))
        old = n < size // 5 and rng.random() < 0.5
        intent = history.write(rollout(app, digest, "started", action=action), before_labels=old)
        if rng.random() < 0.1:
            continue  # the run died: its intent stays open
        outcome = rng.choice(("succeeded", "succeeded", "failed", "unchanged", "interrupted"))
        later = n < size // 5 and rng.random() < 0.5  # a completion from before labels, of an intent from after
        history.write(rollout(app, digest, outcome, action=action, intent=intent.id), before_labels=later)
    return history


def test_an_entry_is_written_under_a_key_that_names_it_and_read_back_unchanged() -> None:
    history = History()
    written = history.write(rollout("api", DIGESTS[0], "failed", intent="0123456789ab"))
    (key,) = (k for _, k in history.s3.objects)
    assert key.endswith(f"-{written.id}.api.deploy.failed.{'a' * 12}.0123456789ab.json")
    label = labels.label_of(key)
    assert label == labels.Label(written.id, "api", "deploy", "failed", "a" * 12, "0123456789ab")
    (read,) = history.fresh().read().entries
    assert (read.id, read.app, read.outcome, read.digest, read.intent) == (
        written.id,
        "api",
        "failed",
        DIGESTS[0],
        "0123456789ab",
    )
    assert labels.mismatch(label, read) is None


@pytest.mark.parametrize(
    "key",
    [
        f"{PREFIX}20261129T120000.000000+0000-c0ffee.json",  # before labels
        f"{PREFIX}20261129T120000.000000+0000-c0ffee.API.deploy.failed.-.-.json",  # not a name deployctl writes
        f"{PREFIX}20261129T120000.000000+0000-c0ffee.api.deploy.failed.abc.-.json",  # not 12 hex digits
        f"{PREFIX}ahead.json",
    ],
)
def test_a_key_that_names_nothing_has_no_label(key: str) -> None:
    assert labels.label_of(key) is None


def test_an_entry_a_key_cannot_name_is_written_under_the_plain_key() -> None:
    """A digest that is not one (a hand-made entry) is not shortened into a key: the plain key is read by all."""
    stamp = "20261207T000000.000000+0000"
    entry = rollout("api", "not-a-digest", "failed")
    assert labels.name_of(entry, stamp) == f"{stamp}-{entry.id}.json"


@pytest.mark.parametrize("seed", range(6))
def test_every_question_answers_as_the_whole_history_does_and_fetches_less(seed: int) -> None:
    history = random_history(seed)
    whole = history.fresh().read()
    assert whole.problems == ()
    fetched_all = len(history.s3.fetched)
    now = whole.now
    for app in APPS:
        for digest in DIGESTS:
            read = history.fresh().read(question=labels.since_digest(app, digest))
            kwargs: dict[str, Any] = {"env": "dev", "app": app, "digest": digest, "now": now}
            assert evidence_of(read.entries, **kwargs) == evidence_of(whole.entries, **kwargs), (app, digest)
            assert len(history.s3.fetched) < fetched_all

            asked = labels.of_apps([app], actions=["promote"], digest=digest)
            mine = history.fresh().read(question=asked).entries
            promotions = [e for e in whole.entries if (e.app, e.action, e.digest) == (app, "promote", digest)]
            assert [e for e in mine if (e.app, e.action, e.digest) == (app, "promote", digest)] == promotions

        read = history.fresh().read(question=labels.open_intents(app))
        assert open_intents(read.entries, app) == open_intents(whole.entries, app)
        fails = history.fresh().read(question=labels.failures([app])).entries
        assert [e for e in fails if e.app == app and failed(e)] == [
            e for e in whole.entries if e.app == app and failed(e)
        ]


def test_open_intents_fetch_only_the_open_ones_and_the_old_keys() -> None:
    history = History()
    for n in range(30):
        intent = history.write(rollout("api", DIGESTS[n % 3], "started"))
        history.write(rollout("api", DIGESTS[n % 3], "succeeded", intent=intent.id))
    died = history.write(rollout("api", DIGESTS[4], "started"))
    old = history.write(rollout("web", DIGESTS[4], "started"), before_labels=True)
    closing = history.write(rollout("web", DIGESTS[4], "succeeded", intent=old.id))

    read = history.fresh().read(question=labels.open_intents("api"))
    assert [e.id for e in open_intents(read.entries, "api")] == [died.id]
    fetched = {k.rpartition("/")[2].split(".")[1].rpartition("-")[2] for k in history.s3.fetched}
    assert fetched == {died.id, old.id, closing.id}, "63 entries, 3 fetched: the open one, the old key, its closing"
    assert open_intents(history.fresh().read(question=labels.open_intents("web")).entries, "web") == []


def test_the_evidence_of_a_digest_fetches_its_entries_from_its_first_one_on() -> None:
    history = History()
    for n in range(40):  # a long history of other digests and apps
        history.write(rollout(APPS[n % 3], DIGESTS[n % 4], "succeeded"))
    intent = history.write(rollout("api", DIGESTS[5], "started"))
    history.write(rollout("api", DIGESTS[5], "succeeded", intent=intent.id))
    history.write(rollout("web", DIGESTS[0], "succeeded"))
    history.write(rollout("api", DIGESTS[0], "failed"))  # ends its period

    read = history.fresh().read(question=labels.since_digest("api", DIGESTS[5]))
    assert len(history.s3.fetched) == 3, "the intent, its completion, and the api rollout after it"
    proof = evidence_of(read.entries, env="dev", app="api", digest=DIGESTS[5], now=read.now)
    assert proof.verified is not None and not proof.running


def test_a_body_its_key_does_not_name_is_corrupt_and_refuses() -> None:
    """Someone with write access plants a failure of api under a key that says it is a success: read by the question
    its key answers, it is a problem that refuses a promotion, never a healthy rollout."""
    history = History()
    history.write(rollout("api", DIGESTS[0], "succeeded"))
    planted = rollout("api", DIGESTS[0], "failed")
    stamp = "20261201T000100.000000+0000"
    key = PREFIX + labels.name_of(rollout("api", DIGESTS[0], "succeeded"), stamp)
    history.s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(planted.to_dict()).encode(), IfNoneMatch="*")

    read = history.fresh().read(question=labels.since_digest("api", DIGESTS[0]))
    (problem,) = read.problems
    assert (problem.kind, problem.key, problem.refuses) == ("corrupt", key, True)
    assert "outcome 'succeeded' but its body 'failed'" in problem.detail
    assert [e.outcome for e in read.entries] == ["succeeded"], "the planted body is not taken as an entry"


def test_tampering_anywhere_in_the_listing_is_found_whatever_the_question() -> None:
    history = History()
    other = history.write(rollout("web", DIGESTS[1], "failed"))
    history.write(rollout("api", DIGESTS[0], "succeeded"))
    (key,) = (k for _, k in history.s3.objects if other.id in k)
    history.s3.delete_object(Bucket=BUCKET, Key=key)

    read = history.fresh().read(question=labels.since_digest("api", DIGESTS[0]))
    assert [(p.kind, p.key) for p in read.tampering] == [("deleted", key)]
    assert all(other.id not in k for k in history.s3.fetched), "web's entry is not fetched to find it deleted"


QUESTIONS: dict[str, Callable[[], labels.Question]] = {
    "since_digest": lambda: labels.since_digest("api", DIGESTS[0]),
    "open_intents": lambda: labels.open_intents("api"),
    "failures": lambda: labels.failures(["api"]),
}


@pytest.mark.parametrize("name", QUESTIONS)
def test_a_question_asked_of_an_empty_history_fetches_nothing(name: str) -> None:
    history = History()
    read = history.fresh().read(question=QUESTIONS[name]())
    assert (read.entries, history.s3.fetched) == ([], [])


def prod_history(seed: int, clusters: tuple[str, ...], size: int = 240) -> History:
    """A target's rollouts and promotions, as releases make them: promoted and rolled out (in each cluster), moved
    only (``--no-deploy``), failed, or judged and recorded without a verdict; some early ones before labels."""
    rng = random.Random(seed)  # noqa: S311 (a reproducible history, not a secret)
    history = History()
    for n in range(size):
        app, digest = rng.choice(APPS), rng.choice(DIGESTS)
        action = rng.choice(("promote", "promote", "deploy"))
        outcome = rng.choice(("succeeded", "succeeded", "moved", "failed"))
        verdict = {"succeeded": rng.choice(("healthy", "healthy", None)), "failed": "failed"}.get(outcome)
        entry = Entry("prod", app, action, outcome, digest=digest, verdict=verdict, commit=rng.choice(("c1", None)))  # type: ignore[arg-type]
        entry = replace(entry, tag=f"release-1.{n}.0", cluster=rng.choice(clusters) if clusters else None)
        history.write(entry, before_labels=n < size // 4 and rng.random() < 0.5)  # the first under plain keys
    return history


@pytest.mark.parametrize(("seed", "clusters"), [(s, c) for s in range(4) for c in ((), ("eu", "us"))])
def test_a_promotions_target_read_newest_first_until_settled_answers_as_the_whole_read(
    seed: int, clusters: tuple[str, ...]
) -> None:
    from deployctl.config import Environment
    from deployctl.promotion.target import ASKED_ACTIONS, ASKED_OUTCOMES, recorded_state, settled, target_state

    env = Environment.model_validate(
        {
            "aws": {"region": "us-east-1"},
            "cluster": {"eks": "acme-prod"},
            "namespace": "api",
            "values": "v.yaml",
            "promote_from": "dev",
        }
    )
    history = prod_history(seed, clusters)
    whole = history.fresh().read()
    total = len(history.s3.fetched)
    for apps in (list(APPS), ["api"]):
        asked = labels.of_apps(apps, actions=ASKED_ACTIONS, outcomes=ASKED_OUTCOMES)
        read = history.fresh().read(question=asked, answered=lambda found: settled(found, apps, clusters))  # noqa: B023
        assert len(history.s3.fetched) < total / 2, "the newest few, not the history"
        for app in apps:
            assert target_state(read.entries, env, app, clusters) == target_state(whole.entries, env, app, clusters)
            assert recorded_state(read.entries, env, app) == recorded_state(whole.entries, env, app)
        base = [e for e in whole.entries if e.app in apps and e.action == "promote" and e.outcome == "succeeded"]
        based = [e for e in read.entries if e.app in apps and e.action == "promote" and e.outcome == "succeeded"]
        assert next(e for e in based if e.commit) == next(e for e in base if e.commit), "the changelog's base"
