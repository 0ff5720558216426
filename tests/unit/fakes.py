"""Fakes for use-case tests: an environment context whose S3 (lock, ledger), cluster and registry live in
memory. The real EnvironmentLock and Ledger run on top of the fake S3; everything the use case decides
is real. Lab tests run the same use cases against the real services."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from deployctl.adapters.aws import AwsSession
from deployctl.adapters.helm import Release, Revision
from deployctl.adapters.helm_argv import Kube
from deployctl.adapters.kube.release_records import ReleaseRecord
from deployctl.app.context import EnvContext
from deployctl.config import LoadedConfig
from deployctl.core.refs import ImageRef
from deployctl.ledger.entry import Entry
from deployctl.ledger.lock_record import lock_key
from deployctl.rollout.live import LiveRelease, LiveWorkload
from deployctl.rollout.states import Verdict, WorkloadHealth
from deployctl.runner import Runner


def _error(code: str, status: int, operation: str) -> ClientError:
    response: Any = {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, operation)


LOCKED = {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 90}}}


@dataclass
class FakeS3:
    """Objects by (bucket, key), with S3's ETags (the MD5 of the bytes, quoted), LastModified (by ``clock``: S3's
    clock, which a test may set apart from the runner's) and conditional writes: If-None-Match: * on put, If-Match:
    <ETag> on put and delete (404 when the object is gone, 412 when it changed), as S3 and moto answer them. A
    versioned bucket, as the state bucket is: every put is a version and a plain delete a delete marker
    (``list_object_versions``), under Object Lock with a COMPLIANCE default retention (``object_lock``;
    ``VersionedS3`` refuses to erase a version). Responses carry S3's ``Date`` header, by ``clock``."""

    objects: dict[tuple[str, str], bytes] = field(default_factory=dict)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    modified: dict[tuple[str, str], datetime] = field(default_factory=dict)  # absent: planted by a test, "now"
    # (bucket, key) -> versions, newest first: (version id, bytes or None for a delete marker, LastModified)
    versions: dict[tuple[str, str], list[tuple[str, bytes | None, datetime]]] = field(default_factory=dict)
    # every bucket's Object Lock configuration, as `deployctl bootstrap` sets it ({}: a bucket without Object Lock)
    object_lock: dict[str, Any] = field(default_factory=lambda: dict(LOCKED))

    @staticmethod
    def etag(body: bytes) -> str:
        return f'"{hashlib.md5(body).hexdigest()}"'  # noqa: S324 (S3's ETag of a single-part object)

    def _meta(self) -> dict[str, Any]:
        return {"HTTPHeaders": {"date": format_datetime(self.clock().astimezone(UTC), usegmt=True)}}

    def _check_if_match(self, Bucket: str, Key: str, IfMatch: str | None, operation: str) -> None:  # noqa: N803
        if IfMatch is None:
            return
        if (Bucket, Key) not in self.objects:
            raise _error("NoSuchKey", 404, operation)
        if IfMatch.strip('"') != self.etag(self.objects[(Bucket, Key)]).strip('"'):
            raise _error("PreconditionFailed", 412, operation)

    def put_object(
        self,
        *,
        Bucket: str,  # noqa: N803 (boto3's names)
        Key: str,  # noqa: N803
        Body: bytes,  # noqa: N803
        IfNoneMatch: str | None = None,  # noqa: N803
        IfMatch: str | None = None,  # noqa: N803
        **_: Any,
    ) -> dict[str, Any]:
        if IfNoneMatch == "*" and (Bucket, Key) in self.objects:
            raise _error("PreconditionFailed", 412, "PutObject")
        self._check_if_match(Bucket, Key, IfMatch, "PutObject")
        versions = self._versions(Bucket, Key)
        self.objects[(Bucket, Key)] = Body
        self.modified[(Bucket, Key)] = self.clock()
        versions.insert(0, (uuid.uuid4().hex, Body, self.modified[(Bucket, Key)]))
        return {"ETag": self.etag(Body), "ResponseMetadata": self._meta()}

    def get_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803
        if (Bucket, Key) not in self.objects:
            raise _error("NoSuchKey", 404, "GetObject")
        return {**_object(self.objects[(Bucket, Key)], self._modified(Bucket, Key)), "ResponseMetadata": self._meta()}

    def _modified(self, bucket: str, key: str) -> datetime:
        return self.modified.get((bucket, key)) or self.clock()

    def _versions(self, bucket: str, key: str) -> list[tuple[str, bytes | None, datetime]]:
        """The versions of a key; an object a test planted in ``objects`` is its one version."""
        if (bucket, key) not in self.versions:
            planted = self.objects.get((bucket, key))
            self.versions[(bucket, key)] = [] if planted is None else [("null", planted, self._modified(bucket, key))]
        return self.versions[(bucket, key)]

    def delete_object(self, *, Bucket: str, Key: str, IfMatch: str | None = None) -> None:  # noqa: N803
        self._check_if_match(Bucket, Key, IfMatch, "DeleteObject")
        if (Bucket, Key) in self.objects:
            self._versions(Bucket, Key).insert(0, (uuid.uuid4().hex, None, self.clock()))  # a delete marker
        self.objects.pop((Bucket, Key), None)
        self.modified.pop((Bucket, Key), None)

    def get_object_lock_configuration(self, *, Bucket: str) -> dict[str, Any]:  # noqa: N803, ARG002 (one bucket)
        if not self.object_lock:
            error = _error("ObjectLockConfigurationNotFoundError", 404, "GetObjectLockConfiguration")
            error.response["ResponseMetadata"]["HTTPHeaders"] = self._meta()["HTTPHeaders"]
            raise error
        return {"ObjectLockConfiguration": self.object_lock, "ResponseMetadata": self._meta()}

    def get_paginator(self, name: str) -> Any:
        assert name in ("list_objects_v2", "list_object_versions")
        s3 = self

        class _Pages:
            def paginate(self, *, Bucket: str, Prefix: str) -> list[dict[str, Any]]:  # noqa: N803
                if name == "list_object_versions":
                    return [s3._version_page(Bucket, Prefix)]
                keys = sorted(k for b, k in s3.objects if b == Bucket and k.startswith(Prefix))
                contents = [
                    {"Key": k, "ETag": s3.etag(s3.objects[(Bucket, k)]), "LastModified": s3._modified(Bucket, k)}
                    for k in keys
                ]
                page: dict[str, Any] = {"ResponseMetadata": s3._meta()}
                return [{"Contents": contents, **page}] if contents else [page]

        return _Pages()

    def _version_page(self, bucket: str, prefix: str) -> dict[str, Any]:
        keys = {k for b, k in (*self.objects, *self.versions) if b == bucket and k.startswith(prefix)}
        found: dict[str, list[dict[str, Any]]] = {"Versions": [], "DeleteMarkers": []}
        for key in sorted(keys):
            for version, body, modified in self._versions(bucket, key):
                part = "Versions" if body is not None else "DeleteMarkers"
                found[part].append({"Key": key, "VersionId": version, "LastModified": modified})
        return {**{k: v for k, v in found.items() if v}, "ResponseMetadata": self._meta()}

    def held_lock(self, env: str) -> dict[str, Any] | None:
        for (_, key), body in self.objects.items():
            if key == lock_key(env):
                loaded: dict[str, Any] = json.loads(body)
                return loaded
        return None


def _object(body: bytes, modified: datetime) -> dict[str, Any]:
    class _Body:
        def read(self) -> bytes:
            return body

    return {"Body": _Body(), "ETag": FakeS3.etag(body), "LastModified": modified}


@dataclass
class VersionedS3(FakeS3):
    """``FakeS3`` whose versions can be read and erased one by one (``VersionId``), as a tamperer would try."""

    def get_object(self, *, Bucket: str, Key: str, VersionId: str | None = None) -> dict[str, Any]:  # noqa: N803
        if VersionId is None:
            return super().get_object(Bucket=Bucket, Key=Key)
        found = [(b, m) for v, b, m in self._versions(Bucket, Key) if v == VersionId and b is not None]
        if not found:
            raise _error("NoSuchVersion", 404, "GetObject")
        return _object(*found[0])

    def delete_object(
        self,
        *,
        Bucket: str,  # noqa: N803
        Key: str,  # noqa: N803
        IfMatch: str | None = None,  # noqa: N803
        VersionId: str | None = None,  # noqa: N803
    ) -> None:
        if VersionId is None:
            super().delete_object(Bucket=Bucket, Key=Key, IfMatch=IfMatch)
            return
        versions = self._versions(Bucket, Key)
        if self.object_lock and any(v == VersionId and b is not None for v, b, _ in versions):
            raise _error("AccessDenied", 403, "DeleteObject")  # COMPLIANCE retention: no one may erase a version
        versions[:] = [v for v in versions if v[0] != VersionId]
        if versions and versions[0][1] is not None:
            self.objects[(Bucket, Key)], self.modified[(Bucket, Key)] = versions[0][1], versions[0][2]
        else:
            self.objects.pop((Bucket, Key), None)


class FakeAws(AwsSession):
    """Every AWS client of the environment is the fake S3 (only S3 is reached through the context here)."""

    def __init__(self, s3: FakeS3) -> None:
        self.s3 = s3

    def client(self, service: str) -> Any:
        assert service == "s3", f"unexpected AWS client {service}"
        return self.s3

    def credentials_env(self) -> dict[str, str]:
        return {}

    def secrets(self) -> list[str]:
        return []


def _pinned_digest(values_files: Sequence[Path]) -> str:
    """The digest the last values file (the image deployctl pins) gives the chart's default keys."""
    import yaml

    pins = yaml.safe_load(values_files[-1].read_text()) or {}
    return str(pins["image"]["digest"])


@dataclass
class FakeCluster:
    """helm and the API in memory. ``verdict`` is what the rollout watch sees; after a complete rollout the
    new digest serves unless ``old_pods_keep_serving``."""

    namespace: str
    s3: FakeS3
    env_name: str
    verdict: Verdict = field(default_factory=lambda: Verdict("complete", "1 of 1 replicas updated and available"))
    old_pods_keep_serving: bool = False
    rejects_values: bool = False
    calls: list[str] = field(default_factory=list)
    lock_at_upgrade: dict[str, Any] | None = None
    releases: dict[str, Release] = field(default_factory=dict)
    serving: dict[str, str] = field(default_factory=dict)  # release -> digest its pods run
    desired: dict[str, str] = field(default_factory=dict)  # release -> digest its spec names
    revisions: dict[str, list[Revision]] = field(default_factory=dict)  # release -> helm history, oldest first
    interrupt_upgrade: bool = False  # the run is stopped (SIGINT/SIGTERM) while helm runs
    verdicts: dict[str, Verdict] = field(default_factory=dict)  # release -> its own verdict (default: ``verdict``)
    lookups: list[str] = field(default_factory=list)  # the releases looked up (each one a `helm history`)

    helm_major: int = 4
    kube: Kube = field(default_factory=lambda: Kube(Path("/nonexistent")))

    def release(self, name: str) -> Release | None:
        self.lookups.append(name)
        return self.releases.get(name)

    def history(self, name: str) -> list[Revision]:
        return list(reversed(self.revisions.get(name, [])))

    def template(
        self,
        *,
        release: str,
        chart: str | Path,
        values_files: Sequence[Path],
        set_string: Mapping[str, str],
        version: str | None = None,
    ) -> str:
        del chart, set_string, version
        self.calls.append(f"template {release} {_pinned_digest(values_files)}")
        if self.rejects_values:
            from deployctl.core.errors import UsageError

            raise UsageError("the chart rejected the values: image.digest: does not match pattern")
        return ""

    def upgrade(
        self,
        *,
        release: str,
        chart: str | Path,
        values_files: Sequence[Path],
        set_string: Mapping[str, str],
        description: str,
        version: str | None = None,
    ) -> Release:
        del chart, set_string, version
        digest = _pinned_digest(values_files)
        self.calls.append(f"upgrade {release} {digest}")
        self.lock_at_upgrade = self.s3.held_lock(self.env_name)
        revision = (self.releases[release].revision + 1) if release in self.releases else 1
        self.revisions.setdefault(release, []).append(Revision(revision, "deployed", description=description))
        if self.interrupt_upgrade:
            raise KeyboardInterrupt
        manifest = f"kind: Deployment\nmetadata:\n  name: {release}\n"
        self.releases[release] = Release(release, self.namespace, revision, "deployed", manifest=manifest)
        self.desired[release] = digest
        if not self.old_pods_keep_serving:
            self.serving[release] = digest
        return self.releases[release]

    def release_manifest(self, name: str) -> str:
        return self.releases[name].manifest

    def watch_release(self, manifest: str, *, timeout: float, on_progress: Callable[[str], None]) -> Verdict:
        del timeout, on_progress
        name = manifest.split("name: ")[1].strip()
        self.calls.append(f"watch {name}")
        return self.verdicts.get(name, self.verdict)

    def live(self, name: str, release: Release | None = None) -> LiveRelease | None:
        current = release or self.releases.get(name)
        if current is None:
            return None
        desired = self.desired.get(name)
        serving = self.serving.get(name)
        verdict = self.verdicts.get(name, self.verdict)
        health = WorkloadHealth("Deployment", name, desired, 1, verdict, ((serving, 1),) if serving else ())
        return LiveRelease(current, (LiveWorkload(health, f"r/api@{desired}", None, None),))

    def pending_records(self, release: str) -> list[ReleaseRecord]:
        del release
        return []

    def delete_record(self, record: ReleaseRecord) -> None:
        raise AssertionError(f"nothing is pending here: {record}")


@dataclass
class Events:
    lines: list[str] = field(default_factory=list)

    def progress(self, message: str) -> None:
        self.lines.append(message)

    def warn(self, message: str) -> None:
        self.lines.append(f"warning: {message}")

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self.lines.append(f"{name} ...")
        yield


class FakeContext(EnvContext):
    """The real context with its outside world in memory: S3, the cluster, the registry's digests."""

    def __init__(
        self,
        config: LoadedConfig,
        name: str,
        runner: Runner,
        *,
        s3: FakeS3,
        digests: Mapping[str, str] | None = None,
        events: Events | None = None,
    ) -> None:
        super().__init__(config, name, runner, events or Events(), aws=FakeAws(s3))
        self.s3 = s3
        self.digests = dict(digests or {})  # tag -> digest in the registry
        self.fake_cluster = FakeCluster(f"{name}-ns", s3, name)

    @property
    def events(self) -> Events:
        assert isinstance(self.reporter, Events)
        return self.reporter

    @contextmanager
    def cluster(self, target: Any = None) -> Iterator[Any]:
        del target  # one cluster (tests/unit/test_waves.py has a context with several)
        yield self.fake_cluster

    def resolve_image(self, image: ImageRef) -> ImageRef:
        if image.digest is not None:
            return image
        found = self.digests.get(str(image.tag))
        if found is None:
            from deployctl.core.errors import UsageError

            raise UsageError(f"image tag {image.tag!r} not found in {image.name}")
        return ImageRef(image.registry, image.repository, tag=image.tag, digest=found)

    def entries(self) -> list[Entry]:
        return self.ledger.read().entries
