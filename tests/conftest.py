"""Shared by every test: each test starts with deployctl's logger as Python leaves it."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _fresh_deployctl_logger() -> Iterator[None]:
    """`deployctl` (the CLI's main) points its logger at a console of its own and stops propagation; a test
    that ran it must not hide later tests' log records from pytest's caplog."""
    yield
    logger = logging.getLogger("deployctl")
    logger.handlers.clear()
    logger.propagate = True
    logger.setLevel(logging.NOTSET)
