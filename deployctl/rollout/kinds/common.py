"""What every workload kind's verdict reads: integers and the metadata, spec and status of an API object."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

WAITING_FOR_CONTROLLER = "waiting for the controller to observe the new spec"


def int_of(value: object, default: int = 0) -> int:
    """An API integer field (an int, or a string of digits), ``default`` when it is neither."""
    return int(value) if isinstance(value, int | str) and str(value).lstrip("-").isdigit() else default


def parts_of(obj: Mapping[str, Any]) -> tuple[Mapping[str, Any], Mapping[str, Any], Mapping[str, Any]]:
    """An API object's metadata, spec and status (each empty when absent)."""
    return obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
