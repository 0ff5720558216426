"""The deploy ledger: an append-only history per environment, beside the terraform state.

One S3 object per entry, ``deployctl/history/<env>/<UTC time>-<id>.<label>.json``, written
with ``If-None-Match: *`` so an entry is never overwritten, into a bucket whose Object Lock
(COMPLIANCE, a default retention: ``state_bucket``) keeps every version. Each entry carries a
schema version. Reading lists every version: a deleted, rewritten or unreadable entry is a
problem named by its key (``ledger_audit``), never skipped. Entries are ordered and timed by
S3's clock (``LastModified``: ``Entry.recorded_at``), not by the writer's (``Entry.time``). A key's label names
what its entry is about (``labels``), so a read that asks a question fetches only the entries that answer it.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from deployctl.adapters.aws_errors import errors, is_error, translate
from deployctl.ledger import labels
from deployctl.ledger.audit import (
    CLOCK_BOUND,
    LedgerProblem,
    LedgerRead,
    ObjectVersion,
    audit,
    clock_offset,
    server_time,
    skew_problem,
)
from deployctl.ledger.entry import Entry, parse

if TYPE_CHECKING:
    from concurrent.futures import Executor

log = logging.getLogger(__name__)

HISTORY_PREFIX = "deployctl/history"
# GETs of entries in flight at once: under botocore's connection pool (10), leaving room for the lock's heartbeat
READERS = 8

Read = tuple[Entry | None, LedgerProblem | None]  # an entry as read, or the problem that stands for it


class Ledger:
    """Append and read the history of one environment. ``warn``: where its warnings go (stderr), each said once."""

    def __init__(self, env_name: str, bucket: str, s3: Any, warn: Callable[[str], None] | None = None) -> None:
        self.env_name = env_name
        self.bucket = bucket
        self.prefix = f"{HISTORY_PREFIX}/{env_name}/"
        self._s3 = s3
        self._warn = warn or (lambda message: log.warning("%s", message))
        self._checked = False
        # (key, version id, read by version) -> the parsed entry: a version's bytes never change, and every rollout of
        # a release reads the whole ledger again (issue 29: one GET per entry per read, each app, grew with history)
        self._parsed: dict[tuple[str, str, bool], Read] = {}
        self._pool: Executor | None = None
        self._pool_guard = threading.Lock()

    def append(self, entry: Entry) -> str:
        stamp = entry.time.replace(":", "").replace("-", "")
        key = self.prefix + labels.name_of(entry, stamp)
        if not self._checked:
            self._checked = True
            self._check_bucket()
        data = entry.to_dict()
        data.pop("recorded_at", None)  # S3's clock says when it was written
        try:
            self._s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=json.dumps(data, sort_keys=True).encode(),
                ContentType="application/json",
                IfNoneMatch="*",
                ChecksumAlgorithm="SHA256",  # S3 requires a checksum for a write under Object Lock retention
            )
        except errors() as exc:
            raise translate(
                exc, f"record {entry.action} in the history of {self.env_name} (s3://{self.bucket})"
            ) from None
        return key

    def _check_bucket(self) -> None:
        """Before the first write, warn (never fail): when the bucket keeps no Object Lock retention, anyone allowed
        to delete there can erase an entry; when this machine's clock is off S3's, its entries will not count."""
        sent = datetime.now(UTC)
        where = f"the ledger of {self.env_name} (s3://{self.bucket})"
        fix = f"whoever may delete there can erase its entries; `deployctl bootstrap {self.env_name}` locks it"
        missing: str | None = None
        try:
            response = self._s3.get_object_lock_configuration(Bucket=self.bucket)
            config = response.get("ObjectLockConfiguration", {})
            if config.get("ObjectLockEnabled") != "Enabled":
                missing = f"has no Object Lock: {fix}"
            elif "DefaultRetention" not in config.get("Rule", {}):
                missing = f"has Object Lock but no default retention: {fix}"
        except errors() as exc:
            response = getattr(exc, "response", None) or {}
            if is_error(exc, "ObjectLockConfigurationNotFoundError"):
                missing = f"has no Object Lock: {fix}"
            else:  # e.g. a role without s3:GetBucketObjectLockConfiguration
                missing = f"could not be checked for Object Lock: {str(exc).splitlines()[0]} (terraform/README.md)"
        received = datetime.now(UTC)
        if missing is not None:
            self._warn(f"{where} {missing} (README: the ledger)")
        headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}) if isinstance(response, dict) else {}
        offset = clock_offset(headers.get("date"), sent, received)
        if offset is not None and abs(offset) > CLOCK_BOUND:
            side = "ahead of" if offset > timedelta() else "behind"
            self._warn(
                f"this machine's clock is {int(abs(offset).total_seconds())}s {side} S3's (its Date header): "
                f"the entries it writes to {where} are flagged clock_skew and never count as evidence; sync its clock"
            )

    def read(
        self,
        limit: int | None = None,
        question: labels.Question | None = None,
        answered: Callable[[list[Entry]], bool] | None = None,
    ) -> LedgerRead:
        """Every entry newest first by S3's clock (``limit``: the newest ones; ``question``: only the entries whose
        keys answer it, and those whose keys name nothing; ``answered``: those read newest first, ``READERS`` at a
        time, until what was read answers), and every problem found (by key): the listing audits every version
        whatever the question, and the bodies read are checked against their keys."""
        doing = f"read the history of {self.env_name} (s3://{self.bucket}/{self.prefix})"
        try:
            versions, read_at, skipped = self._versions()
            chosen, problems = audit(versions)
            tampered = {p.key for p in problems}
            known: dict[str, Read] = {}
            if question is not None:
                chosen, known = self._answering(chosen, tampered, question, read_plain=answered is None)
            entries: list[Entry] = []
            by_key: dict[str, Entry] = {}
            wanted = chosen if limit is None else chosen[:limit]
            if answered is None:
                unread = [v for v in wanted if v.key not in known]
                known.update(zip((v.key for v in unread), self._entries(unread, tampered), strict=True))
            else:
                wanted = self._read_until(wanted, known, tampered, answered)
            for version in wanted:
                entry, found = known[version.key]
                problem = found
                if problem is None and entry is not None:
                    problem = skew_problem(version.key, entry)
                    entries.append(entry)
                    by_key[version.key] = entry
                if problem is not None:
                    problems.append(problem)
        except errors() as exc:
            raise translate(exc, doing) from None
        problems = [replace(p, entry=p.entry or by_key.get(p.key)) for p in problems]
        return LedgerRead(_newest_first(entries), tuple(problems), read_at, skipped)

    def _answering(
        self, versions: list[ObjectVersion], tampered: set[str], question: labels.Question, *, read_plain: bool
    ) -> tuple[list[ObjectVersion], dict[str, Read]]:
        """``versions`` (newest first) that answer ``question``, and the entries read to know: a key that names
        nothing (written before labels) is read first, and its body labels it, so the question sees every entry
        (``read_plain`` False: a read until answered keeps it unread in its place, where it answers or not).
        An intent and its completion are never read apart: either one read brings the other."""
        named = {v.key: labels.label_of(v.key) for v in versions}
        plain = [v for v in versions if named[v.key] is None]
        known = dict(zip((v.key for v in plain), self._entries(plain, tampered), strict=True)) if read_plain else {}
        for key, (entry, _) in known.items():
            named[key] = labels.label_from(entry) if entry is not None else None
        found = [(v.key, label) for v in versions if (label := named[v.key]) is not None]
        wanted = question(found) | {v.key for v in plain}
        ids = {label.id for key, label in found if key in wanted}
        intents = {label.intent for key, label in found if key in wanted and label.intent}
        wanted |= {key for key, label in found if label.intent in ids or label.id in intents}
        return [v for v in versions if v.key in wanted], known

    def _read_until(
        self,
        versions: list[ObjectVersion],
        known: dict[str, Read],
        tampered: set[str],
        answered: Callable[[list[Entry]], bool],
    ) -> list[ObjectVersion]:
        """The newest of ``versions`` (newest first), read ``READERS`` at a time until ``answered`` says what was
        read answers: always a prefix of them (entries read before, from keys that name nothing, included only in
        their place), so nothing unread is newer than what answered, and a second's versions are read together
        (S3's clock has seconds; the writer's orders within one)."""
        end = 0
        while end < len(versions):
            stop = min(end + READERS, len(versions))
            while stop < len(versions) and versions[stop].modified == versions[stop - 1].modified:
                stop += 1
            unread = [v for v in versions[end:stop] if v.key not in known]
            known.update(zip((v.key for v in unread), self._entries(unread, tampered), strict=True))
            end = stop
            if answered(_newest_first(known[v.key][0] for v in versions[:end])):
                break
        return versions[:end]

    def _versions(self) -> tuple[list[ObjectVersion], datetime | None, tuple[str, ...]]:
        """Every version and delete marker under the prefix, and S3's clock at the listing. A role that may not
        list versions (s3:ListBucketVersions) gets the current objects, and the read says what it could not check."""
        found: list[ObjectVersion] = []
        read_at = None
        try:
            for page in self._pages("list_object_versions"):
                read_at = read_at or _server_time(page)
                found.extend(
                    ObjectVersion(v["Key"], v.get("VersionId"), v["LastModified"]) for v in page.get("Versions", ())
                )
                found.extend(
                    ObjectVersion(m["Key"], m.get("VersionId"), m["LastModified"], delete_marker=True)
                    for m in page.get("DeleteMarkers", ())
                )
        except errors() as exc:
            if not is_error(exc, "AccessDenied", "403"):
                raise
        else:
            return found, read_at, ()
        for page in self._pages("list_objects_v2"):
            read_at = read_at or _server_time(page)
            found.extend(ObjectVersion(o["Key"], None, o["LastModified"]) for o in page.get("Contents", ()))
        why = "s3:ListBucketVersions denied: a deleted or rewritten entry cannot be detected (see terraform/README.md)"
        return found, read_at, (why,)

    def _pages(self, operation: str) -> Iterator[dict[str, Any]]:
        paginator = self._s3.get_paginator(operation)
        yield from paginator.paginate(Bucket=self.bucket, Prefix=self.prefix)

    def _entries(self, versions: list[ObjectVersion], tampered: set[str]) -> list[Read]:
        """The entry of each of ``versions``, in their order: a tampered key's is read by its version id (the first
        one written); a version read before in this process is not read again (listed without a version id: always
        read). The rest are fetched ``READERS`` at a time: each entry is one GET, and a history read one GET after the
        other waits one S3 round trip per entry it ever recorded (issue 29: bench/ledger.py)."""
        memos = [(v.key, str(v.version_id), v.key in tampered) for v in versions]
        missing = [i for i, (v, memo) in enumerate(zip(versions, memos, strict=True)) if memo not in self._parsed]
        fetched = dict(zip(missing, self._fetch([versions[i] for i in missing], tampered), strict=True))
        found: list[Read] = []
        for i, (version, memo) in enumerate(zip(versions, memos, strict=True)):
            read = fetched[i] if i in fetched else self._parsed[memo]
            if version.version_id not in (None, "null") and read[0] is not None:
                self._parsed[memo] = read
            found.append(read)
        return found

    def _fetch(self, versions: list[ObjectVersion], tampered: set[str]) -> list[Read]:
        """One pool per ledger, shared by the threads that read it at once (the apps of a level): at most
        ``READERS`` GETs in flight in all, within the S3 client's connection pool."""

        def one(version: ObjectVersion) -> Read:
            return self._read_entry(version, by_version=version.key in tampered)

        if len(versions) <= 1 or READERS <= 1:
            return [one(v) for v in versions]
        with self._pool_guard:
            if self._pool is None:
                from concurrent.futures import ThreadPoolExecutor  # boto3's clients are thread-safe

                self._pool = ThreadPoolExecutor(max_workers=READERS, thread_name_prefix="ledger-read")
            pool = self._pool
        return list(pool.map(one, versions))  # the first error is raised here, as a serial read raises it

    def _read_entry(self, version: ObjectVersion, *, by_version: bool) -> Read:
        ask = {"VersionId": version.version_id} if by_version and version.version_id not in (None, "null") else {}
        try:
            body = self._s3.get_object(Bucket=self.bucket, Key=version.key, **ask)["Body"].read()
        except errors() as exc:
            if is_error(exc, "NoSuchKey", "404"):
                return None, LedgerProblem("deleted", version.key, "it was deleted while it was read")
            if ask and is_error(exc, "AccessDenied", "403"):  # no s3:GetObjectVersion: the key is named all the same
                return None, None
            raise
        entry, problem = parse(version.key, body, version.modified)
        label = labels.label_of(version.key)
        why = labels.mismatch(label, entry) if label is not None and entry is not None else None
        if why is not None:
            return None, LedgerProblem("corrupt", version.key, why, entry)
        return entry, problem


def _newest_first(found: Iterable[Entry | None]) -> list[Entry]:
    return sorted((e for e in found if e is not None), key=lambda e: e.order, reverse=True)


def _server_time(response: Mapping[str, Any]) -> datetime | None:
    return server_time(response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date"))
