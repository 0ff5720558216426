"""The sandbox's state file (services, ports, buckets): read, and written atomically."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from deployctl.core.errors import OperationError


def read_state(path: Path) -> dict[str, Any] | None:
    """The state a running sandbox left at ``path``, None when there is none."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise OperationError(f"{path}: unreadable sandbox state: {exc}", "run `deployctl sandbox down`") from None
    return data if isinstance(data, dict) else None


def write_state(path: Path, data: Mapping[str, Any]) -> None:
    """Replace the state file at once (a reader never sees half of it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps(data, indent=2) + "\n")
    temporary.replace(path)
