"""Tag writes check first, and a registry's TAG_INVALID becomes the immutable-tag refusal (exit 4).

The registry here is INJECTED: a few lines of http.server that answer like ECR's registry API does
when another push lands between our check and our PUT (HEAD says "no such tag", the PUT is refused
with TAG_INVALID, and the tag then names whatever the other push put there). A real registry cannot
be made to lose that race on demand; the lab tests cover the rest against real registries.
"""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from deployctl.adapters import registry
from deployctl.core.errors import ExitCode, PolicyError

MANIFEST = registry.ManifestBytes(
    b'{"schemaVersion":2,"mediaType":"' + registry.OCI_MANIFEST.encode() + b'"}', registry.OCI_MANIFEST
)
OTHER = "sha256:" + "9" * 64
TAG_INVALID = {
    "errors": [
        {
            "code": "TAG_INVALID",
            "message": "The image tag 'release-1.0.0' already exists in the 'api' repository and cannot be "
            "overwritten because the repository is immutable.",
        }
    ]
}


@dataclass
class RacingRegistry:
    """INJECTED: the tag appears (at ``after``) the moment our PUT arrives, and the PUT is refused."""

    after: str | None = None  # what the tag names once someone else pushed it
    requests: list[str] = field(default_factory=list)
    pushed: bool = False
    host: str = ""


@pytest.fixture
def racing() -> Iterator[RacingRegistry]:
    state = RacingRegistry()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002, ARG002 - the base signature
            return

        def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
            state.requests.append(f"HEAD {self.path}")
            if state.pushed and state.after is not None:
                self._send(200, headers={"Docker-Content-Digest": state.after})
            else:
                self._send(404)

        def do_PUT(self) -> None:  # noqa: N802
            state.requests.append(f"PUT {self.path}")
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            state.pushed = True
            self._send(400, json.dumps(TAG_INVALID).encode(), {"Content-Type": "application/json"})

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.host = f"127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def _oci(host: str) -> registry.OciRegistry:
    return registry.OciRegistry(host, policy=registry.RetryPolicy(attempts=2, base_delay=0))


def test_tag_invalid_after_our_check_is_the_immutable_refusal_naming_both_digests(racing: RacingRegistry) -> None:
    racing.after = OTHER
    with pytest.raises(PolicyError) as caught:
        _oci(racing.host).put_tag("api", "release-1.0.0", MANIFEST)
    error = caught.value
    assert error.exit_code == ExitCode.REFUSED
    assert OTHER in error.message and MANIFEST.digest in error.message
    assert "immutable" in error.message and "release tags are immutable" in (error.hint or "")
    # checked, PUT once (TAG_INVALID is never retried), checked again
    assert [r.split(" ")[0] for r in racing.requests] == ["HEAD", "PUT", "HEAD"]


def test_tag_invalid_when_the_racer_pushed_the_same_digest_is_done(racing: RacingRegistry) -> None:
    racing.after = MANIFEST.digest
    assert _oci(racing.host).put_tag("api", "release-1.0.0", MANIFEST) is False


def test_a_tag_already_at_the_digest_is_not_put_again(racing: RacingRegistry) -> None:
    racing.after, racing.pushed = MANIFEST.digest, True
    assert _oci(racing.host).put_tag("api", "release-1.0.0", MANIFEST) is False
    assert [r.split(" ")[0] for r in racing.requests] == ["HEAD"]


def test_a_tag_at_another_digest_is_refused_without_a_put(racing: RacingRegistry) -> None:
    racing.after, racing.pushed = OTHER, True
    with pytest.raises(PolicyError, match=f"already points at {OTHER}, not {MANIFEST.digest}"):
        _oci(racing.host).put_tag("api", "release-1.0.0", MANIFEST)
    assert [r.split(" ")[0] for r in racing.requests] == ["HEAD"]


def test_tag_invalid_on_a_plain_put_is_its_own_error(racing: RacingRegistry) -> None:
    with pytest.raises(registry.TagInvalidError, match="TAG_INVALID"):
        _oci(racing.host).put_manifest("api", "release-1.0.0", MANIFEST)


@pytest.mark.parametrize(
    ("body", "codes"),
    [
        (json.dumps(TAG_INVALID).encode(), ["TAG_INVALID"]),
        (b'{"errors": [{"code": "MANIFEST_INVALID"}, {"code": "TAG_INVALID"}]}', ["MANIFEST_INVALID", "TAG_INVALID"]),
        (b"<html>bad request</html>", []),
        (b'{"errors": "nope"}', []),
        (b"[1, 2]", []),
    ],
)
def test_error_codes(body: bytes, codes: list[str]) -> None:
    assert registry.oci_http.error_codes(body) == codes


def test_referrer_tags_cover_the_fallback_index_and_cosign_suffixes() -> None:
    digest = "sha256:" + "ab" * 32
    assert registry.referrer_tags(digest) == {
        "sha256-" + "ab" * 32: digest,
        "sha256-" + "ab" * 32 + ".sig": digest,
        "sha256-" + "ab" * 32 + ".att": digest,
        "sha256-" + "ab" * 32 + ".sbom": digest,
    }


def test_manifest_subject() -> None:
    subject = "sha256:" + "cd" * 32
    doc = {"schemaVersion": 2, "mediaType": registry.OCI_MANIFEST, "subject": {"digest": subject, "size": 1}}
    assert registry.ManifestBytes(json.dumps(doc).encode(), registry.OCI_MANIFEST).subject == subject
    assert MANIFEST.subject is None


def test_transfer_report_data_carries_the_referrers() -> None:
    report = registry.TransferReport(
        "copy", "sha256:x", "h/r:t", referrers=("sha256-x.sig@sha256:y",), referrers_copied=1, referrers_api=False
    )
    data = report.data()
    assert (data["referrers"], data["referrers_copied"], data["referrers_api"]) == (["sha256-x.sig@sha256:y"], 1, False)


def test_importing_the_package_stays_cheap() -> None:
    """``deployctl --help`` must not pay for boto3 or urllib3: the registry package imports neither."""
    code = "import sys, deployctl.adapters.registry; print(sorted(m for m in ('boto3', 'botocore', 'urllib3') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ---- the OCI 1.1 referrers API: INJECTED server (the lab's registry, distribution 2.8, does not serve it) ----


@pytest.fixture
def referrers_server() -> Iterator[tuple[str, list[str]]]:
    """Serves two pages of ``GET /v2/api/referrers/<digest>`` the way the OCI 1.1 spec words them."""
    seen: list[str] = []
    pages = {
        "/v2/api/referrers/" + OTHER: (
            [{"mediaType": registry.OCI_MANIFEST, "digest": "sha256:" + "1" * 64, "size": 10, "artifactType": "sig"}],
            f'</v2/api/referrers/{OTHER}?last=1>; rel="next"',
        ),
        f"/v2/api/referrers/{OTHER}?last=1": (
            [{"mediaType": registry.OCI_MANIFEST, "digest": "sha256:" + "2" * 64, "size": 11, "artifactType": "sbom"}],
            None,
        ),
    }

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002, ARG002 - the base signature
            return

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            seen.append(self.path)
            page = pages.get(self.path)
            if page is None:
                body = b"404 page not found"
                self.send_response(404)
            else:
                body = json.dumps({"schemaVersion": 2, "mediaType": registry.OCI_INDEX, "manifests": page[0]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", registry.OCI_INDEX)
                if page[1]:
                    self.send_header("Link", page[1])
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_referrers_api_pages_are_followed(referrers_server: tuple[str, list[str]]) -> None:
    host, seen = referrers_server
    found = _oci(host).referrers("api", OTHER)
    assert found is not None
    assert [(d.digest[-4:], d.artifact_type) for d in found] == [("1111", "sig"), ("2222", "sbom")]
    assert len(seen) == 2


def test_a_registry_without_the_referrers_api_is_told_apart_from_no_referrers(
    referrers_server: tuple[str, list[str]],
) -> None:
    host, _ = referrers_server
    assert _oci(host).referrers("api", MANIFEST.digest) is None  # 404: not served
