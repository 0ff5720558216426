from __future__ import annotations

import json
from pathlib import Path

import pytest

from deployctl.docker import build_argv, pushed_digest
from deployctl.errors import OperationError

META = Path("out/meta.json")


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (
            {"tags": ["r/api:abc", "r/api:latest"], "push": True},
            [
                "docker",
                "buildx",
                "build",
                "--tag",
                "r/api:abc",
                "--tag",
                "r/api:latest",
                "--label",
                "org.opencontainers.image.revision=abc",
                "--provenance=mode=max",
                "--metadata-file",
                "out/meta.json",
                "--push",
                "ctx",
            ],
        ),
        (
            {
                "tags": ["r/api:abc"],
                "push": False,
                "platforms": ["linux/amd64", "linux/arm64"],
                "dockerfile": Path("D"),
            },
            [
                "docker",
                "buildx",
                "build",
                "--tag",
                "r/api:abc",
                "--label",
                "org.opencontainers.image.revision=abc",
                "--provenance=mode=max",
                "--metadata-file",
                "out/meta.json",
                "--platform",
                "linux/amd64,linux/arm64",
                "--file",
                "D",
                "--load",
                "ctx",
            ],
        ),
    ],
)
def test_build_argv(kwargs: dict[str, object], expected: list[str]) -> None:
    assert build_argv(context=Path("ctx"), revision="abc", metadata_file=META, **kwargs) == expected  # type: ignore[arg-type]


def test_pushed_digest_reads_buildx_metadata(tmp_path: Path) -> None:
    meta = tmp_path / "m.json"
    meta.write_text(json.dumps({"containerimage.digest": "sha256:" + "b" * 64}))
    assert pushed_digest(meta) == "sha256:" + "b" * 64
    meta.write_text("{}")
    with pytest.raises(OperationError, match="did not report a pushed digest"):
        pushed_digest(meta)
