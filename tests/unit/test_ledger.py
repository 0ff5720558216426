"""The ledger read against every version of its objects (tests/unit/fakes.py's S3 keeps versions and delete markers,
with S3's LastModified and Date by its clock): tampering and corrupt entries are problems named by key, never
skipped; S3's clock orders entries and times the soak; an entry whose writer's clock was off is flagged and never
counted as evidence; the writer warns when the bucket keeps no Object Lock or its own clock is off."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from deployctl.core.errors import DeployctlError
from deployctl.ledger import store
from deployctl.ledger.audit import CLOCK_BOUND
from deployctl.ledger.entry import Entry, Outcome
from deployctl.ledger.store import HISTORY_PREFIX, Ledger
from deployctl.promotion.evidence import evidence_of
from tests.unit.fakes import FakeS3, VersionedS3

BUCKET = "acme-tfstate"
D = "sha256:" + "d" * 64
E = "sha256:" + "e" * 64


class Clock:
    """S3's clock, moved by the test (it starts at this machine's: the writer's clock check stays quiet)."""

    def __init__(self) -> None:
        self.start = self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now


def world(s3: FakeS3 | None = None) -> tuple[VersionedS3 | FakeS3, Clock, Ledger, list[str]]:
    clock = Clock()
    s3 = s3 or VersionedS3()
    s3.clock = clock
    warnings: list[str] = []
    return s3, clock, Ledger("dev", BUCKET, s3, warn=warnings.append), warnings


def rollout(digest: str, outcome: Outcome = "succeeded", *, written: datetime) -> Entry:
    """A rollout's entry as its writer stamps it (``written``: the writer's clock)."""
    verdict = "healthy" if outcome == "succeeded" else "failed"
    time = written.isoformat(timespec="microseconds")
    return Entry("dev", "api", "deploy", outcome, verdict=verdict, digest=digest, time=time)


def test_each_entry_is_read_with_s3s_time_and_no_problem() -> None:
    s3, clock, ledger, warnings = world()
    ledger.append(rollout(D, written=clock.now))
    clock.now += timedelta(minutes=5)
    ledger.append(rollout(E, written=clock.now))
    read = ledger.read()
    assert [e.digest for e in read.entries] == [E, D], "newest first"
    assert [e.recorded_at for e in read.entries] == [
        (clock.start + timedelta(minutes=5)).isoformat(timespec="microseconds"),
        clock.start.isoformat(timespec="microseconds"),
    ]
    assert read.problems == () and warnings == []
    assert read.read_at == clock.now, "S3's clock at the read (its Date header)"


def test_a_delete_marker_is_tampering_named_by_key_and_the_retained_entry_is_still_read() -> None:
    s3, clock, ledger, _ = world()
    key = ledger.append(rollout(D, "failed", written=clock.now))
    clock.now += timedelta(seconds=1)
    ledger.append(rollout(D, written=clock.now))
    s3.delete_object(Bucket=BUCKET, Key=key)  # a plain delete: a delete marker hides the failure

    read = ledger.read()
    (problem,) = read.problems
    assert (problem.kind, problem.key, problem.refuses) == ("deleted", key, True)
    assert "the entry is retained and still read" in problem.detail
    assert [e.outcome for e in read.entries] == ["succeeded", "failed"], "the failure is not erased"
    assert problem.entry is not None and problem.entry.outcome == "failed"


def test_object_lock_refuses_to_erase_a_version() -> None:
    s3, clock, ledger, _ = world()
    key = ledger.append(rollout(D, "failed", written=clock.now))
    assert isinstance(s3, VersionedS3)
    (version, _, _) = s3.versions[(BUCKET, key)][0]
    with pytest.raises(ClientError, match="AccessDenied"):
        s3.delete_object(Bucket=BUCKET, Key=key, VersionId=version)
    assert ledger.read().entries[0].outcome == "failed"


def test_a_rewritten_entry_is_tampering_and_its_first_version_is_read() -> None:
    s3, clock, ledger, _ = world()
    key = ledger.append(rollout(D, "failed", written=clock.now))
    clock.now += timedelta(minutes=1)
    forged = {**rollout(D, written=clock.now).to_dict(), "time": clock.now.isoformat()}
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(forged).encode())  # no If-None-Match: a new version

    read = ledger.read()
    (problem,) = read.problems
    assert (problem.kind, problem.key) == ("rewritten", key) and "2 versions" in problem.detail
    (entry,) = read.entries
    assert entry.outcome == "failed", "the entry is what was first written, not the rewrite"


def test_an_entry_whose_versions_are_all_gone_is_still_named() -> None:
    """A bucket without Object Lock: the versions can be erased, the delete marker stays and names the key."""
    s3, clock, ledger, _ = world()
    s3.object_lock = {}
    key = ledger.append(rollout(D, "failed", written=clock.now))
    assert isinstance(s3, VersionedS3)
    (version, _, _) = s3.versions[(BUCKET, key)][0]
    s3.delete_object(Bucket=BUCKET, Key=key)
    s3.delete_object(Bucket=BUCKET, Key=key, VersionId=version)
    (problem,) = ledger.read().problems
    assert (problem.kind, problem.key) == ("deleted", key) and "the entry is gone" in problem.detail


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "a JSON list, not an object"),
        (
            json.dumps({"schema": "deployctl/history/v9", "env": "dev"}).encode(),
            "schema 'deployctl/history/v9'",
        ),
        (json.dumps({"schema": "deployctl/history/v1", "env": "dev"}).encode(), "missing"),
        (json.dumps({**rollout(D, written=datetime.now(UTC)).to_dict(), "time": "yesterday"}).encode(), "yesterday"),
        (json.dumps({**rollout(D, written=datetime.now(UTC)).to_dict(), "app": 7}).encode(), "app not a string"),
    ],
    ids=["not-json", "a-list", "unknown-schema", "missing-fields", "bad-time", "app-not-a-string"],  # stable for xdist
)
def test_a_corrupt_entry_is_a_problem_named_by_key_and_the_others_are_read(body: bytes, why: str) -> None:
    s3, clock, ledger, _ = world()
    ledger.append(rollout(D, written=clock.now))
    key = f"{HISTORY_PREFIX}/dev/20261129T120000.000000+0000-bad.json"
    s3.put_object(Bucket=BUCKET, Key=key, Body=body, IfNoneMatch="*")
    read = ledger.read()
    (problem,) = read.problems
    assert (problem.kind, problem.key, problem.refuses) == ("corrupt", key, True)
    assert why in problem.detail
    assert [e.digest for e in read.entries] == [D]


def test_a_writer_whose_clock_is_off_is_flagged_and_never_counted_as_evidence() -> None:
    s3, clock, ledger, _ = world()
    key = ledger.append(rollout(D, written=clock.now + timedelta(hours=2)))  # a runner 2 h in the future
    read = ledger.read()
    (problem,) = read.problems
    assert (problem.kind, problem.key, problem.refuses) == ("clock_skew", key, False)
    assert "2 h 0 min ahead of S3's clock" in problem.detail
    (entry,) = read.entries
    assert entry.skewed and entry.skew == timedelta(hours=2)

    evidence = evidence_of(read.entries, env="dev", app="api", digest=D, now=clock.now + timedelta(hours=3))
    assert evidence.verified is None and evidence.ran_for == timedelta(), "its healthy verdict proves nothing"


def test_a_clock_within_the_bound_is_trusted_and_s3s_clock_orders_and_times() -> None:
    s3, clock, ledger, _ = world()
    ledger.append(rollout(D, written=clock.now + CLOCK_BOUND - timedelta(seconds=1)))  # ahead, within the bound
    clock.now += timedelta(seconds=30)
    ledger.append(rollout(E, written=clock.now))  # written later by S3's clock, earlier by the first writer's
    read = ledger.read()
    assert read.problems == ()
    assert [e.digest for e in read.entries] == [E, D], "S3's clock orders them, not the writers'"
    evidence = evidence_of(read.entries, env="dev", app="api", digest=D, now=clock.now)
    assert evidence.ran_for == timedelta(seconds=30) and not evidence.running


def test_a_skewed_failure_still_refuses() -> None:
    """Only proof is discounted: a failure recorded by a skewed writer still ends the evidence."""
    s3, clock, ledger, _ = world()
    ledger.append(rollout(D, written=clock.now))
    clock.now += timedelta(minutes=1)
    ledger.append(rollout(D, "failed", written=clock.now - timedelta(hours=1)))
    read = ledger.read()
    evidence = evidence_of(read.entries, env="dev", app="api", digest=D, now=clock.now)
    assert evidence.verified is not None and evidence.failed_after is not None and not evidence.proven


def test_writing_warns_once_when_the_bucket_has_no_object_lock() -> None:
    s3, clock, ledger, warnings = world()
    s3.object_lock = {}
    ledger.append(rollout(D, written=clock.now))
    ledger.append(rollout(E, written=clock.now))
    (warning,) = warnings
    assert "the ledger of dev (s3://acme-tfstate) has no Object Lock" in warning
    assert "deployctl bootstrap dev" in warning
    assert len(ledger.read().entries) == 2, "never fails the write"


def test_writing_warns_when_this_machines_clock_is_off_s3s() -> None:
    s3, clock, ledger, warnings = world()
    clock.now = datetime.now(UTC) - timedelta(minutes=10)  # S3's Date: 10 minutes before this machine's clock
    ledger.append(rollout(D, written=clock.now))
    (warning,) = warnings
    assert "this machine's clock is 600s ahead of S3's" in warning and "clock_skew" in warning


def test_no_warning_when_the_bucket_is_locked_and_the_clocks_agree() -> None:
    s3 = VersionedS3()
    warnings: list[str] = []
    ledger = Ledger("dev", BUCKET, s3, warn=warnings.append)  # S3's clock: now
    ledger.append(rollout(D, written=datetime.now(UTC)))
    assert warnings == []


class NoVersions(VersionedS3):
    """A role without s3:ListBucketVersions (a CI role from before the ledger needed it)."""

    def get_paginator(self, name: str) -> Any:
        if name == "list_object_versions":
            response: Any = {"Error": {"Code": "AccessDenied"}, "ResponseMetadata": {"HTTPStatusCode": 403}}
            raise ClientError(response, "ListObjectVersions")
        return super().get_paginator(name)


def test_a_role_that_may_not_list_versions_still_reads_and_says_what_it_cannot_check() -> None:
    s3, clock, ledger, _ = world(NoVersions())
    ledger.append(rollout(D, written=clock.now))
    read = ledger.read()
    assert [e.digest for e in read.entries] == [D]
    (why,) = read.skipped
    assert "s3:ListBucketVersions denied" in why


def test_a_version_read_once_is_not_read_again_and_a_rewrite_after_it_is_still_caught() -> None:
    """Every rollout of a release reads the ledger (issue 29): a version's bytes never change, so a read in the same
    process fetches only the entries written since; a key rewritten after a read is read by its first version."""
    s3, clock, ledger, _ = world()
    first = ledger.append(rollout(D, "failed", written=clock.now))
    ledger.append(rollout(E, written=clock.now))
    gets: list[str] = []
    fetch = s3.get_object

    def counted(**kwargs: Any) -> dict[str, Any]:
        gets.append(kwargs["Key"])
        return fetch(**kwargs)

    s3.get_object = counted  # type: ignore[method-assign]
    assert len(ledger.read().entries) == 2 and len(gets) == 2
    assert len(ledger.read().entries) == 2 and len(gets) == 2, "nothing fetched again"
    third = ledger.append(rollout(E, written=clock.now))
    assert len(ledger.read().entries) == 3 and gets[2:] == [third], "only the new entry"

    clock.now += timedelta(minutes=1)
    forged = {**rollout(D, written=clock.now).to_dict(), "time": clock.now.isoformat()}
    s3.put_object(Bucket=BUCKET, Key=first, Body=json.dumps(forged).encode())
    read = ledger.read()
    assert [(p.kind, p.key) for p in read.problems] == [("rewritten", first)]
    assert [e.outcome for e in read.entries if e.digest == D] == ["failed"], "the first version, not the rewrite"


class BarrierS3(VersionedS3):
    """A fake S3 (the real one cannot show how many GETs a client has in flight) whose every GET of an entry waits
    until ``parties`` GETs are in flight together: a read that fetched one entry after the other would break the
    barrier (BrokenBarrierError after 5 s) instead of answering."""

    def __init__(self, parties: int) -> None:
        super().__init__()
        self.barrier = threading.Barrier(parties, timeout=5)

    def get_object(self, **kwargs: Any) -> dict[str, Any]:
        self.barrier.wait()
        return super().get_object(**kwargs)


def test_a_long_history_is_fetched_several_entries_at_a_time_in_its_order() -> None:
    """Each entry is one GET, so a serial read waits one round trip per entry ever recorded (issue 29): the read
    keeps ``READERS`` in flight, and its answer (order, problems) is what a serial read gives."""
    s3, clock, ledger, _ = world(BarrierS3(store.READERS))
    keys = []
    for n in range(store.READERS * 3):
        clock.now += timedelta(seconds=1)
        keys.append(ledger.append(rollout(D if n % 2 else E, "failed" if n == 5 else "succeeded", written=clock.now)))
    s3.put_object(Bucket=BUCKET, Key=keys[3], Body=b"not json")  # tampering: its first version is read by id
    read = ledger.read()
    assert [e.digest for e in read.entries] == [D if n % 2 else E for n in reversed(range(len(keys)))], "newest first"
    assert [e.outcome for e in read.entries].count("failed") == 1
    assert [(p.kind, p.key) for p in read.problems] == [("rewritten", keys[3])]


def test_an_error_of_one_fetch_fails_the_read_as_it_would_serially() -> None:
    s3, clock, ledger, _ = world()
    keys = [ledger.append(rollout(D, written=clock.now)) for _ in range(store.READERS * 2)]
    fetch = s3.get_object

    def denied(**kwargs: Any) -> dict[str, Any]:
        if kwargs["Key"] == keys[7]:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "GetObject")
        return fetch(**kwargs)

    s3.get_object = denied  # type: ignore[method-assign]
    with pytest.raises(DeployctlError, match="read the history of dev"):
        ledger.read()


class CountingS3(VersionedS3):
    """A fake S3 that counts the GETs in flight (the real one cannot say): each is held 20 ms so reads overlap."""

    def __init__(self) -> None:
        super().__init__()
        self.in_flight = self.most = 0
        self.guard = threading.Lock()

    def get_object(self, **kwargs: Any) -> dict[str, Any]:
        with self.guard:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
        try:
            time.sleep(0.02)
            return super().get_object(**kwargs)
        finally:
            with self.guard:
                self.in_flight -= 1


def test_threads_reading_one_ledger_at_once_share_its_readers() -> None:
    """The apps of a level read the ledger together: their GETs share one pool, within the S3 client's connections
    (botocore keeps 10), not ``READERS`` per thread."""
    counting = CountingS3()
    _, clock, ledger, _ = world(counting)
    for _ in range(store.READERS * 4):
        ledger.append(rollout(D, written=clock.now))
    reads: list[int] = []
    threads = [threading.Thread(target=lambda: reads.append(len(ledger.read().entries))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert reads == [store.READERS * 4] * 4
    assert 1 < counting.most <= store.READERS


def test_a_read_that_fails_starts_no_more_gets() -> None:
    """A failed GET (or Ctrl-C while the read waits) ends the read: the GETs queued behind it are cancelled (as
    ``Executor.map`` does when its results stop being read), not left running in the shared pool (an interrupted run
    would wait for every one of them before it exits)."""
    counting = CountingS3()
    _, clock, ledger, _ = world(counting)
    keys = []
    for _ in range(store.READERS * 10):
        clock.now += timedelta(seconds=1)
        keys.append(ledger.append(rollout(D, written=clock.now)))
    fetch, started = counting.get_object, []

    def denied(**kwargs: Any) -> dict[str, Any]:
        started.append(kwargs["Key"])
        if kwargs["Key"] == keys[-3]:  # listed newest first: among the first GETs
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "GetObject")
        return fetch(**kwargs)

    counting.get_object = denied  # type: ignore[method-assign]
    with pytest.raises(DeployctlError, match="read the history of dev"):
        ledger.read()
    time.sleep(0.5)  # what was left running would have fetched every entry by now (80 GETs of 20 ms, 8 at a time)
    assert len(started) < len(keys) // 2, f"{len(started)} of {len(keys)} GETs started"
