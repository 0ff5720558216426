"""A namespace's snapshot as the API listed it: kind -> name -> object (pure: what the verdicts read)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

View = Mapping[str, Mapping[str, Mapping[str, Any]]]  # kind -> name -> object
