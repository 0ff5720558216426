"""``docker buildx build`` argv and the digest it pushed (read from --metadata-file)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from deployctl.core.errors import OperationError

REVISION_LABEL = "org.opencontainers.image.revision"


def build_argv(
    *,
    context: Path,
    tags: Sequence[str],
    revision: str,
    metadata_file: Path,
    push: bool,
    platforms: Sequence[str] = (),
    dockerfile: Path | None = None,
    provenance: str = "mode=max",
) -> list[str]:
    """One build, every tag of it pushed together (so all tags name the same bytes)."""
    argv = ["docker", "buildx", "build"]
    for tag in tags:
        argv += ["--tag", tag]
    argv += ["--label", f"{REVISION_LABEL}={revision}"]
    # Provenance attestations stay attached (OCI index); promote copies the whole index.
    argv += [f"--provenance={provenance}", "--metadata-file", str(metadata_file)]
    if platforms:
        argv += ["--platform", ",".join(platforms)]
    if dockerfile is not None:
        argv += ["--file", str(dockerfile)]
    argv.append("--push" if push else "--load")
    argv.append(str(context))
    return argv


def pushed_digest(metadata_file: Path) -> str:
    """The digest buildx reports for what it pushed (``containerimage.digest``)."""
    try:
        metadata = json.loads(metadata_file.read_text(encoding="utf-8"))
        digest = metadata["containerimage.digest"]
    except (OSError, ValueError, KeyError) as exc:
        raise OperationError(
            f"docker buildx did not report a pushed digest in {metadata_file}: {exc}",
            "check the build output above; the image was not recorded",
        ) from None
    return str(digest)
