"""A saved plan's JSON (`terraform show -json`) as a summary: the resource changes, counted and listed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ResourceChange:
    address: str
    actions: tuple[str, ...]

    @property
    def replace(self) -> bool:
        return "create" in self.actions and "delete" in self.actions

    @property
    def kind(self) -> str:
        """One of add, change, destroy, replace."""
        if self.replace:
            return "replace"
        if "create" in self.actions:
            return "add"
        if "delete" in self.actions:
            return "destroy"
        return "change"

    def to_dict(self) -> dict[str, Any]:
        return {"address": self.address, "actions": list(self.actions), "replace": self.replace, "kind": self.kind}


@dataclass(frozen=True)
class PlanSummary:
    """What a plan changes, from ``show -json``; no-op and read actions are left out."""

    changes: tuple[ResourceChange, ...] = ()
    output_changes: tuple[str, ...] = ()

    def count(self, kind: str) -> int:
        return sum(1 for change in self.changes if change.kind == kind)

    @property
    def add(self) -> int:
        return self.count("add")

    @property
    def change(self) -> int:
        return self.count("change")

    @property
    def destroy(self) -> int:
        return self.count("destroy")

    @property
    def replace(self) -> int:
        return self.count("replace")

    @property
    def has_changes(self) -> bool:
        return bool(self.changes or self.output_changes)

    @property
    def destructive(self) -> tuple[ResourceChange, ...]:
        return tuple(c for c in self.changes if c.kind in ("destroy", "replace"))

    def counts(self) -> dict[str, int]:
        return {"add": self.add, "change": self.change, "destroy": self.destroy, "replace": self.replace}

    def headline(self) -> str:
        if not self.changes:
            return "no changes" if not self.output_changes else f"outputs only: {', '.join(self.output_changes)}"
        return f"{self.add} to add, {self.change} to change, {self.destroy} to destroy, {self.replace} to replace"


def summarize(document: Mapping[str, Any]) -> PlanSummary:
    """Read ``terraform show -json PLAN``: ``resource_changes[].change.actions`` and ``output_changes``."""
    changes = []
    for item in document.get("resource_changes") or ():
        actions = tuple(str(a) for a in item.get("change", {}).get("actions", ()))
        if not actions or set(actions) <= {"no-op", "read"}:
            continue
        changes.append(ResourceChange(address=str(item["address"]), actions=actions))
    outputs = tuple(
        sorted(
            name
            for name, change in (document.get("output_changes") or {}).items()
            if set(change.get("actions", ())) - {"no-op"}
        )
    )
    return PlanSummary(changes=tuple(changes), output_changes=outputs)
