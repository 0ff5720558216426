"""The image `deployctl sandbox image` pushes: an OCI image whose one layer holds a program that runs (a healthy
build keeps running, a broken one exits), one digest per app, commit and behaviour, the same one every time."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import platform
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from deployctl.adapters.registry.manifest import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST
from deployctl.sandbox import runnable_image
from deployctl.sandbox.images import SyntheticImage

A = "7477cec513c0a1b2c3d4e5f60718293a4b5c6d7e"
B = "2159ac3f5698a1b2c3d4e5f60718293a4b5c6d7e"


def _parts(image: SyntheticImage) -> tuple[dict[str, Any], dict[str, Any], bytes]:
    manifest = json.loads(image.data)
    blobs = {blob.digest: blob for blob in image.blobs}
    config = blobs[manifest["config"]["digest"]]
    layer = blobs[manifest["layers"][0]["digest"]]
    assert (manifest["mediaType"], config.media_type, layer.media_type) == (OCI_MANIFEST, OCI_CONFIG, OCI_LAYER)
    return manifest, json.loads(config.data), gzip.decompress(layer.data)


def test_one_digest_per_app_commit_and_behaviour_and_the_same_one_every_time() -> None:
    digests = {
        (app, commit, behaviour): runnable_image.build(app, commit, behaviour).digest
        for app in ("api", "worker")
        for commit in (A, B)
        for behaviour in (None, "crashloop", "not-ready")
    }
    assert len(set(digests.values())) == len(digests)
    assert runnable_image.build("api", A).digest == digests[("api", A, None)], "built again: the same bytes"


def test_the_config_runs_the_program_and_names_the_app_and_commit() -> None:
    manifest, config, tar = _parts(runnable_image.build("api", A, "crashloop"))
    assert config["config"] == {
        "Entrypoint": ["/app"],
        "Labels": {
            "org.opencontainers.image.title": "api",
            "org.opencontainers.image.revision": A,
            "dev.deployctl.sandbox.behaviour": "crashloop",
        },
    }
    assert (config["os"], config["architecture"]) == ("linux", "amd64")
    assert config["rootfs"] == {"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(tar).hexdigest()}"]}
    assert manifest["annotations"] == {"org.opencontainers.image.revision": A}
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        (member,) = archive.getmembers()
        assert (member.name, member.mode, member.isfile()) == ("app", 0o755, True)
        program = archive.extractfile(member)
        assert program is not None and program.read(4) == b"\x7fELF"


@pytest.mark.skipif(sys.platform != "linux" or platform.machine() != "x86_64", reason="the program is linux/amd64 code")
@pytest.mark.parametrize(("behaviour", "status"), [("crashloop", 1), ("fail", 1), ("oom", 137), (None, None)])
def test_the_program_runs_as_a_healthy_or_broken_build_does(
    tmp_path: Path, behaviour: str | None, status: int | None
) -> None:
    _, _, tar = _parts(runnable_image.build("api", A, behaviour))
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        archive.extractall(tmp_path, filter="data")
    program = tmp_path / "app"
    if status is None:  # a server: it runs until it is stopped
        with pytest.raises(subprocess.TimeoutExpired):
            subprocess.run([program], timeout=0.5, check=False)
    else:
        assert subprocess.run([program], timeout=10, check=False).returncode == status
