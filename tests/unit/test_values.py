"""values.py: round-trip edits of image.tag / image.digest keep everything else."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployctl import values
from deployctl.errors import UsageError

ROOT = Path(__file__).resolve().parents[2]
DIGEST = "sha256:" + "ab" * 32
OTHER = "sha256:" + "cd" * 32


def test_prod_values_edit_changes_only_the_two_lines() -> None:
    before = (ROOT / "values-prod.yaml").read_text()
    after = values.set_image(before, tag="release-1.4.0", digest=DIGEST)
    changed = [(a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=True) if a != b]
    assert changed == [('  tag: ""', '  tag: "release-1.4.0"'), ('  digest: ""', f'  digest: "{DIGEST}"')]
    assert values.read_image(after) == values.ImageValues("release-1.4.0", DIGEST)


def test_comments_order_and_quoting_survive() -> None:
    text = (
        "# top comment\n"
        "zeta: 1   # trailing\n"
        "image:\n"
        "  repository: example/api  # keep me\n"
        "  tag: 'release-1.0.0'\n"
        "  digest: " + OTHER + "\n"
        "alpha:\n"
        "  - a\n"
        "  - b\n"
        'quoted: "yes"\n'
    )
    after = values.set_image(text, tag="release-1.1.0", digest=DIGEST)
    assert after == text.replace("'release-1.0.0'", "'release-1.1.0'").replace(OTHER, DIGEST)


def test_missing_image_block_is_added_at_the_end() -> None:
    after = values.set_image("replicaCount: 1\n", tag="release-1.0.0", digest=DIGEST)
    assert after == f"replicaCount: 1\nimage:\n  tag: release-1.0.0\n  digest: {DIGEST}\n"


def test_unchanged_edit_has_no_diff(tmp_path: Path) -> None:
    path = tmp_path / "values-prod.yaml"
    path.write_text(f'image:\n  tag: "release-1.0.0"\n  digest: "{DIGEST}"\n')
    edit = values.ValuesFile(path).edit_image(tag="release-1.0.0", digest=DIGEST)
    assert not edit.changed
    assert edit.diff == ""


def test_edit_diff_then_write(tmp_path: Path) -> None:
    path = tmp_path / "values-prod.yaml"
    path.write_text('# c\nimage:\n  tag: ""\n  digest: ""\n')
    edit = values.ValuesFile(path).edit_image(tag="release-2.0.0", digest=DIGEST)
    assert edit.changed
    assert '-  tag: ""\n' in edit.diff
    assert '+  tag: "release-2.0.0"\n' in edit.diff
    assert path.read_text() == edit.before  # nothing written yet
    edit.write()
    assert path.read_text() == edit.after
    assert not list(tmp_path.glob(".*tmp"))


@pytest.mark.parametrize(
    ("text", "match"),
    [("image: [1, 2]\n", "image must be a mapping"), ("- a\n", "top level must be a mapping"), ("a: [\n", "YAML")],
)
def test_bad_files_are_usage_errors(text: str, match: str) -> None:
    with pytest.raises(UsageError, match=match):
        values.set_image(text, tag="release-1.0.0", digest=DIGEST)


def test_invalid_digest_is_rejected() -> None:
    with pytest.raises(ValueError, match="invalid digest"):
        values.set_image("a: 1\n", tag="release-1.0.0", digest="latest")
