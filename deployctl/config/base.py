"""What every configuration model shares: strict (unknown keys rejected), frozen, and the name form."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

_NAME = r"^[a-z][a-z0-9-]{0,39}$"
Name = Annotated[str, Field(pattern=_NAME)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
