"""Scalar edits that change only the characters of the values: CRLF, `---`, 4-space indentation,
comments and quoting survive byte for byte outside the edited lines."""

from __future__ import annotations

import pytest

from deployctl.core.errors import UsageError
from deployctl.release.yamledit import set_values

DIGEST = "sha256:" + "ab" * 32


def test_crlf_document_start_and_four_spaces_are_kept_outside_the_edited_lines() -> None:
    text = (
        "---\r\n"
        "# worker values\r\n"
        "api:\r\n"
        "    image:\r\n"
        '        tag: ""   # set by promote\r\n'
        "        digest: ''\r\n"
        "    replicas: 2\r\n"
        "worker:\r\n"
        "    image: registry.example/worker:old  # one string\r\n"
    )
    after = set_values(
        text,
        {
            ("api", "image", "tag"): "release-1.0.0",
            ("api", "image", "digest"): DIGEST,
            ("worker", "image"): f"registry.example/worker@{DIGEST}",
        },
    )
    before_lines, after_lines = text.split("\r\n"), after.split("\r\n")
    assert len(before_lines) == len(after_lines) and "\n" not in after.replace("\r\n", "")
    changed = [(a, b) for a, b in zip(before_lines, after_lines, strict=True) if a != b]
    assert changed == [
        ('        tag: ""   # set by promote', '        tag: "release-1.0.0"   # set by promote'),
        ("        digest: ''", f"        digest: '{DIGEST}'"),
        (
            "    image: registry.example/worker:old  # one string",
            f"    image: registry.example/worker@{DIGEST}  # one string",
        ),
    ]


@pytest.mark.parametrize(
    ("old", "new", "written"),
    [
        ("v1", "007", '"007"'),  # would read back as a number: quoted
        ("v1", "yes", '"yes"'),  # would read back as a boolean: quoted
        ("'a''b'", "it's", "'it''s'"),  # single quotes escape by doubling
        ('"x"', 'say "hi"', '"say \\"hi\\""'),
    ],
)
def test_new_values_read_back_as_the_same_string(old: str, new: str, written: str) -> None:
    assert set_values(f"k: {old}\n", {("k",): new}) == f"k: {written}\n"


def test_a_missing_key_is_added_and_the_document_start_kept() -> None:
    after = set_values("---\nreplicaCount: 1\n", {("image", "digest"): DIGEST})
    assert after == f'---\nreplicaCount: 1\nimage:\n  digest: "{DIGEST}"\n'


def test_not_a_mapping_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match=r"values: image must be a mapping"):
        set_values("image: just-a-string\n", {("image", "digest"): DIGEST})
    with pytest.raises(UsageError, match=r"^values:2:1: invalid YAML: "):
        set_values("a: [\n", {("a",): "x"})
