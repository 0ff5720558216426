"""A small runnable OCI image for an app and a commit: what ``deployctl sandbox image`` pushes in place of a build.

One layer (a gzipped tar, built byte for byte the same every time) holds ``/app``, a static x86-64 Linux
program of a few hundred bytes written here: the build of a healthy app sleeps until it is stopped (a
server), a broken one exits 1 at once (or 137, as the kernel's OOM killer leaves it). The config runs it and
carries the app, the commit and the behaviour as OCI labels, so each (app, commit, behaviour) has its own
digest, and the same inputs always give the same digest (pushing again is a no-op). In the sandbox, kwok runs
no container: what a pod does there comes from ``sandbox mark`` on the digest; the bytes behave the same way
on a real node.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import struct
import tarfile
from collections.abc import Mapping
from typing import Any

from deployctl.adapters.registry.manifest import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, ManifestBytes
from deployctl.sandbox.images import Blob, SyntheticImage

ENTRYPOINT = "/app"
BASE = 0x400000  # where the program is loaded (the usual static executable address)
ELF_HEADER = struct.Struct("<16sHHIQQQIHHHHHH")
PROGRAM_HEADER = struct.Struct("<IIQQQQQQ")
# The exit status of each behaviour's program; the others (not-ready, pull-error, a healthy build) keep running.
EXIT_STATUS = {"crashloop": 1, "fail": 1, "oom": 137}


def program(exit_status: int | None) -> bytes:
    """A static ELF64 x86-64 executable: ``pause()`` in a loop (until a signal ends it), or ``exit(status)``."""
    if exit_status is None:
        code = bytes.fromhex("b822000000" "0f05" "ebf7")  # mov eax, 34 (pause); syscall; jmp back to mov
    else:  # mov edi, status; mov eax, 60 (exit); syscall
        code = b"\xbf" + struct.pack("<I", exit_status) + bytes.fromhex("b83c000000" "0f05")
    entry = ELF_HEADER.size + PROGRAM_HEADER.size
    size = entry + len(code)
    ident = b"\x7fELF\x02\x01\x01" + bytes(9)  # 64-bit, little-endian, ELF version 1, System V ABI
    header = ELF_HEADER.pack(ident, 2, 0x3E, 1, BASE + entry, ELF_HEADER.size, 0, 0, ELF_HEADER.size,
                             PROGRAM_HEADER.size, 1, 0, 0, 0)  # fmt: skip
    segment = PROGRAM_HEADER.pack(1, 5, 0, BASE, BASE, size, size, 0x1000)  # PT_LOAD, read + execute
    return header + segment + code


def _layer_tar(files: Mapping[str, tuple[bytes, int]]) -> bytes:
    """A tar of ``files`` (name -> (bytes, mode)) with fixed owners and times: the same bytes every time."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, (data, mode) in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime, info.uid, info.gid = len(data), mode, 0, 0, 0
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def build(app: str, commit: str, behaviour: str | None = None) -> SyntheticImage:
    """The image of ``app`` built from ``commit``; ``behaviour`` (a ``sandbox mark`` one): a broken build."""
    tar = _layer_tar({ENTRYPOINT.lstrip("/"): (program(EXIT_STATUS.get(behaviour or "")), 0o755)})
    layer = Blob(OCI_LAYER, gzip.compress(tar, mtime=0))
    labels = {
        "org.opencontainers.image.title": app,
        "org.opencontainers.image.revision": commit,
        "dev.deployctl.sandbox.behaviour": behaviour or "healthy",
    }
    config: dict[str, Any] = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": [ENTRYPOINT], "Labels": labels},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(tar).hexdigest()}"]},
        "history": [{"created_by": "deployctl sandbox image", "comment": f"{app} at {commit}"}],
    }
    config_blob = Blob(OCI_CONFIG, json.dumps(config, sort_keys=True).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config_blob.descriptor(),
        "layers": [layer.descriptor()],
        "annotations": {"org.opencontainers.image.revision": commit},
    }
    data = json.dumps(manifest, indent=2).encode()
    return SyntheticImage(ManifestBytes(data, OCI_MANIFEST), (config_blob, layer))
