from __future__ import annotations

import pytest

from deployctl.core.refs import SHOWN_CHARS, ImageRef, InvalidValueError, ReleaseTag, Version, shown

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("tag", "version"),
    [
        ("release-1.4.0", "1.4.0"),
        ("release-0.1.10", "0.1.10"),
        ("release-10.0.0", "10.0.0"),
    ],
)
def test_release_tag_parses(tag: str, version: str) -> None:
    assert str(ReleaseTag.parse(tag).version) == version


@pytest.mark.parametrize("tag", ["release-1.4", "release-v1.4.0", "1.4.0", "release-", "release-01.2.3", "rel-1.0.0"])
def test_malformed_release_tag_names_expected_form(tag: str) -> None:
    with pytest.raises(InvalidValueError, match=r"expected release-X\.Y\.Z"):
        ReleaseTag.parse(tag)


def test_prerelease_only_when_allowed() -> None:
    with pytest.raises(InvalidValueError, match="pre-release"):
        ReleaseTag.parse("release-1.0.0-rc.1")
    assert ReleaseTag.parse("release-1.0.0-rc.1", allow_prerelease=True).version.pre == ("rc", "1")


def test_custom_pattern() -> None:
    assert str(ReleaseTag.parse("v2.0.1", "v<semver>").version) == "2.0.1"


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        ("1.0.0", "1.0.1"),
        ("1.9.0", "1.10.0"),
        ("1.0.0-rc.1", "1.0.0"),
        ("1.0.0-rc.2", "1.0.0-rc.10"),
        ("1.0.0-alpha", "1.0.0-beta"),
        ("0.9.9", "1.0.0"),
    ],
)
def test_version_order(lower: str, higher: str) -> None:
    assert Version.parse(lower) < Version.parse(higher)
    assert not Version.parse(higher) < Version.parse(lower)


def test_image_ref_pins_by_digest() -> None:
    ref = ImageRef("r.example", "api", tag="abc", digest=DIGEST)
    assert ref.pinned == f"r.example/api@{DIGEST}"
    assert str(ref) == f"r.example/api:abc@{DIGEST}"
    assert ImageRef("r.example", "api", tag="abc").pinned == "r.example/api:abc"


@pytest.mark.parametrize(
    ("tag", "digest"),
    [
        ("bad tag", None),
        (None, "sha256:xyz"),
        ("-lead", None),
        ("abc\n", None),  # "$" would accept a trailing newline; the patterns end in \Z
        (None, DIGEST + "\n"),
        ("x" * 129, None),
    ],
    ids=["space", "short-digest", "leading-dash", "tag-newline", "digest-newline", "tag-129"],
)
def test_image_ref_rejects_bad_values(tag: str | None, digest: str | None) -> None:
    with pytest.raises(InvalidValueError):
        ImageRef("r.example", "api", tag=tag, digest=digest)


def test_release_tag_with_a_trailing_newline_is_malformed() -> None:
    with pytest.raises(InvalidValueError, match="malformed release tag"):
        ReleaseTag.parse("release-1.2.3\n")


def test_shown_quotes_short_values_and_cuts_long_ones() -> None:
    assert shown("abc") == "'abc'"
    assert shown("a\nb") == "'a\\nb'", "control characters are escaped, never printed raw"
    long = "x" * 5000
    assert shown(long) == f"{'x' * SHOWN_CHARS!r}… (5000 characters)"


@pytest.mark.parametrize(
    "make",
    [
        lambda value: ImageRef("r.example", "api", tag=value),
        lambda value: ImageRef("r.example", "api", digest=value),
        lambda value: ReleaseTag.parse(value),
        lambda value: ReleaseTag.parse("release-" + value),
        lambda value: Version.parse(value),
    ],
    ids=["tag", "digest", "release-tag", "release-version", "version"],
)
def test_a_5000_character_value_is_not_echoed_in_full(make: object) -> None:
    assert callable(make)
    with pytest.raises(InvalidValueError) as caught:
        make("x" * 4991 + "!!bad!!!!")
    message = str(caught.value)
    assert len(message) < 300, message
    assert "… (" in message and "characters)" in message
