from __future__ import annotations

import io
import logging

import pytest

from deployctl.redact import MASK, RedactingFilter, Redactor


def test_registered_secret_is_masked_everywhere_it_appears() -> None:
    redactor = Redactor(["s3cr3t-value"])
    assert redactor("a s3cr3t-value b s3cr3t-value") == f"a {MASK} b {MASK}"


def test_longer_secret_masked_whole_before_shorter_one() -> None:
    redactor = Redactor(["abcd", "abcdefgh"])
    assert redactor("x abcdefgh y") == f"x {MASK} y"


def test_short_values_are_not_registered() -> None:
    redactor = Redactor(["ab"])
    assert redactor("ab cab") == "ab cab"


@pytest.mark.parametrize(
    ("text", "hidden", "kept"),
    [
        ("https://user:hunter2pass@registry.example/v2/", "hunter2pass", "https://user:***@registry.example"),
        ("Authorization: Basic QVdTOnRva2VudG9rZW4=", "QVdTOnRva2VudG9rZW4=", "Authorization: Basic ***"),
        ("Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.x.y", "eyJhbGciOiJSUzI1NiJ9", "Bearer ***"),
        ("token: k8s-aws-v1.aHR0cHM6Ly9zdHMuYW1hem9u", "aHR0cHM6Ly9zdHMuYW1hem9u", "token: ***"),
        ("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG", "wJalrXUtnFEMI", "AWS_SECRET_ACCESS_KEY=***"),
        ('{"password": "pa55word!"}', "pa55word!", '"password": "***"'),
        ("--set db.password=opensesame", "opensesame", "db.password=***"),
    ],
)
def test_secret_shaped_text_is_masked(text: str, hidden: str, kept: str) -> None:
    out = Redactor()(text)
    assert hidden not in out
    assert kept in out


def test_plain_text_is_untouched() -> None:
    text = "terraform plan -out /tmp/plan -input=false -var environment=dev"
    assert Redactor()(text) == text


def test_logging_filter_redacts_formatted_message() -> None:
    # Our own handler, not caplog: the CLI turns off propagation of the "deployctl" logger.
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter(Redactor(["tok-123456"])))
    logger = logging.getLogger("redact-test")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logger.info("using %s", "tok-123456")
    finally:
        logger.removeHandler(handler)
    assert "tok-123456" not in stream.getvalue()
    assert MASK in stream.getvalue()
