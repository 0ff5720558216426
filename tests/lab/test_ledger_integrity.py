"""The ledger is append-only in fact, end to end in the lab (issue 25 §7, §2): dev's ledger in a state bucket that
`deployctl bootstrap` put under S3 Object Lock (moto enforces COMPLIANCE retention on a versioned delete), real helm
and kube-apiserver with kwok, a real registry. What a tamperer, a broken writer or a runner with a wrong clock
leaves in dev's ledger never lets a digest into prod, and never breaks an unrelated deploy."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from deployctl.ledger.entry import Entry
from deployctl.ledger.store import HISTORY_PREFIX
from tests.lab.promotion_world import BUCKET, PromotionWorld
from tests.lab.world import git

pytestmark = pytest.mark.lab

PREFIX = f"{HISTORY_PREFIX}/dev/"


@pytest.fixture
def world(promotion_world: PromotionWorld) -> PromotionWorld:
    return promotion_world


def s3(world: PromotionWorld) -> Any:
    return boto3.client("s3", endpoint_url=world.lab.moto_url, region_name="us-east-1")


def dev_entries(world: PromotionWorld) -> dict[str, dict[str, Any]]:
    """dev's ledger objects as stored: key -> JSON."""
    client = s3(world)
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX).get("Contents", [])]
    return {k: json.loads(client.get_object(Bucket=BUCKET, Key=k)["Body"].read()) for k in keys}


def write_entry(world: PromotionWorld, entry: Entry, body: bytes | None = None) -> str:
    """An entry as another writer puts it, straight to S3 (boto3, not deployctl)."""
    key = f"{PREFIX}{entry.time.replace(':', '').replace('-', '')}-{entry.id}.json"
    data = body if body is not None else json.dumps(entry.to_dict()).encode()
    s3(world).put_object(Bucket=BUCKET, Key=key, Body=data, IfNoneMatch="*")
    return key


def test_a_failure_cannot_be_erased_and_hiding_it_is_reported_as_tampering(world: PromotionWorld) -> None:
    code, out, err = world.run("bootstrap", "dev")
    assert code == 0, err
    assert "object lock enabled (COMPLIANCE, 90 days default retention)" in out["changed"]

    sha_d, digest_d = world.commit("feat: D", seed=501)
    assert world.run("deploy", "dev", "--image-tag", sha_d)[0] == 0
    sha_e, _ = world.commit("feat: E", seed=502)
    assert world.run("deploy", "dev", "--image-tag", sha_e)[0] == 0
    world.lab.mark_image(digest_d, "crashloop")
    code, _, err = world.run("deploy", "dev", "--image-tag", sha_d)  # D again: its pods crash now
    assert code == 1, err
    git(world.repo, "tag", "-a", "release-1.0.0", "-m", "release-1.0.0", sha_d)
    code, _, err = world.run("promote", "release-1.0.0", "--dry-run")
    assert code == 4 and "failed in dev after its healthy rollout" in err

    # A holder of dev's deploy identity tries to erase the failure that keeps D out of prod.
    (failure,) = [k for k, e in dev_entries(world).items() if e["outcome"] == "failed" and e["digest"] == digest_d]
    client = s3(world)
    (version,) = client.list_object_versions(Bucket=BUCKET, Prefix=failure)["Versions"]
    with pytest.raises(ClientError) as refused:
        client.delete_object(Bucket=BUCKET, Key=failure, VersionId=version["VersionId"])
    assert refused.value.response["Error"]["Code"] == "AccessDenied", "COMPLIANCE retention: no one erases it"
    client.delete_object(Bucket=BUCKET, Key=failure)  # a plain delete: a delete marker hides it
    assert failure not in dev_entries(world)

    code, out, err = world.run("history", "dev", "--limit", "50")
    assert code == 0, err
    assert [(p["kind"], p["key"]) for p in out["problems"]] == [("deleted", failure)]
    assert f"warning: the ledger of dev: {failure}: deleted" in err
    assert any(e["outcome"] == "failed" and e["digest"] == digest_d for e in out["entries"]), "still shown"
    code, out, err = world.run("status", "dev")
    assert [p["key"] for p in out["ledger_problems"]] == [failure] and failure in err

    code, _, err = world.run("promote", "release-1.0.0")
    assert code == 4, err
    assert "failed in dev after its healthy rollout" in err, "the hidden failure is still read"
    assert "the ledger of dev was tampered with" in err and f"{failure}: deleted" in err
    assert world.tag_digest("release-1.0.0") is None, "nothing reached prod's registry"
    assert world.kubectl_json("prod", "get", "deployments")["items"] == [], "nothing deployed to prod"


def test_an_entry_dated_two_hours_ahead_is_not_counted_by_the_gate(world: PromotionWorld) -> None:
    sha, digest = world.commit("feat: F, never deployed", seed=511)
    ahead = (datetime.now(UTC) + timedelta(hours=2)).isoformat(timespec="microseconds")
    forged = Entry("dev", "api", "deploy", "succeeded", digest=digest, commit=sha, verdict="healthy", time=ahead)
    key = write_entry(world, forged)  # a runner whose clock is 2 h ahead (or a writer that claims so)
    git(world.repo, "tag", "-a", "release-1.0.0", "-m", "release-1.0.0", sha)

    code, _, err = world.run("promote", "release-1.0.0")
    assert code == 4, err
    assert f"{digest} has no healthy rollout in dev" in err
    assert f"not counted: {key}: clock_skew" in err and "2 h 0 min ahead of S3's clock" in err
    assert world.tag_digest("release-1.0.0") is None
    code, out, _ = world.run("history", "dev")
    assert [(p["kind"], p["key"]) for p in out["problems"]] == [("clock_skew", key)]
    (shown,) = out["entries"]
    assert shown["time"] == ahead and abs(datetime.fromisoformat(shown["recorded_at"]) - datetime.now(UTC)) < (
        timedelta(minutes=1)
    ), "the writer's claim and S3's clock, side by side"


def test_a_corrupt_entry_refuses_the_promotion_and_a_deploy_to_dev_goes_on(world: PromotionWorld) -> None:
    sha_g, digest_g = world.commit("feat: G", seed=521)
    assert world.run("deploy", "dev", "--image-tag", sha_g)[0] == 0
    git(world.repo, "tag", "-a", "release-1.0.0", "-m", "release-1.0.0", sha_g)
    half = json.dumps(Entry("dev", "api", "deploy", "failed", digest=digest_g).to_dict()).encode()[:40]
    key = write_entry(world, Entry("dev", "api", "deploy", "failed"), body=half)  # a writer killed mid-way

    code, _, err = world.run("promote", "release-1.0.0")
    assert code == 4, err
    assert f"{key}: corrupt: not JSON" in err and "Traceback" not in err
    assert world.tag_digest("release-1.0.0") is None

    sha_h, digest_h = world.commit("feat: H", seed=522)
    code, out, err = world.run("deploy", "dev", "--image-tag", sha_h)
    assert code == 0, err
    assert err.count(f"warning: the ledger of dev: {key}: corrupt") == 1 and "Traceback" not in err
    assert set(world.pod_digests("dev")) == {digest_h}


def test_a_ledger_without_object_lock_is_warned_about_and_bootstrap_says_how_to_lock_it(world: PromotionWorld) -> None:
    """The world's bucket was made without Object Lock, as a bucket from before it was required."""
    sha, _ = world.commit("feat: I", seed=531)
    code, _, err = world.run("deploy", "dev", "--image-tag", sha)
    assert code == 0, err
    assert err.count(f"warning: the ledger of dev (s3://{BUCKET}) has no Object Lock") == 1, "once, never a failure"

    # S3 enables Object Lock on a versioned bucket in use; moto (like credentials that may not) refuses it
    code, _, err = world.run("bootstrap", "dev")
    assert code == 1, err
    assert f"s3://{BUCKET} is ready but its ledger is not protected: Object Lock could not be enabled" in err
    assert f"aws s3api put-object-lock-configuration --bucket {BUCKET}" in err and '"Mode":"COMPLIANCE"' in err


def test_labelled_keys_against_moto_a_lying_key_refuses_and_a_question_fetches_only_its_entries(
    world: PromotionWorld,
) -> None:
    """deployctl's own entries (written by the CLI to moto) name their app, outcome and digest in their keys; a
    promotion's evidence fetches only the digest's entries (GETs counted by botocore's own events on a real
    client); a failure of the digest planted under a key that says it succeeded refuses the promotion, named."""
    from deployctl.ledger import labels
    from deployctl.ledger.store import Ledger
    from deployctl.promotion.evidence import evidence_of

    sha_a, digest_a = world.commit("feat: A", seed=541)
    assert world.run("deploy", "dev", "--image-tag", sha_a)[0] == 0
    sha_l, digest_l = world.commit("feat: L", seed=542)
    assert world.run("deploy", "dev", "--image-tag", sha_l)[0] == 0
    named = [labels.label_of(k) for k in dev_entries(world)]
    assert [(n.app, n.digest) for n in named if n is not None] == [("api", labels.short(digest_a))] * 2 + [
        ("api", labels.short(digest_l))
    ] * 2, "each intent and completion names its app and digest (keys sort by time)"

    client = s3(world)
    fetched: list[str] = []
    client.meta.events.register(
        "before-parameter-build.s3.GetObject", lambda params, **_: fetched.append(params["Key"])
    )
    whole = Ledger("dev", BUCKET, client).read()
    fetched.clear()
    read = Ledger("dev", BUCKET, client).read(question=labels.since_digest("api", digest_l))
    assert len(fetched) == 2 and all(labels.short(digest_l) in k for k in fetched), "L's intent and completion"
    now = whole.now
    assert evidence_of(read.entries, env="dev", app="api", digest=digest_l, now=now) == evidence_of(
        whole.entries, env="dev", app="api", digest=digest_l, now=now
    )

    planted = Entry("dev", "api", "deploy", "failed", digest=digest_l, verdict="failed", message="planted")
    stamp = planted.time.replace(":", "").replace("-", "")
    lying = PREFIX + labels.name_of(Entry(**{**planted.to_dict(), "outcome": "succeeded"}), stamp)
    client.put_object(Bucket=BUCKET, Key=lying, Body=json.dumps(planted.to_dict()).encode(), IfNoneMatch="*")
    git(world.repo, "tag", "-a", "release-1.0.0", "-m", "release-1.0.0", sha_l)
    code, _, err = world.run("promote", "release-1.0.0")
    assert code == 4, err
    assert f"{lying}: corrupt: its key names outcome 'succeeded' but its body 'failed'" in err
    assert world.tag_digest("release-1.0.0") is None, "nothing reached prod's registry"
