"""A terraform plan's changes as text: one line per resource change, destroys and replacements shouted."""

from __future__ import annotations

from deployctl.terraform.plan_summary import PlanSummary, ResourceChange

_SYMBOL = {"add": "+", "change": "~", "destroy": "-", "replace": "-/+"}


def change_lines(summary: PlanSummary) -> list[str]:
    """One line per resource change; destroys and replacements are shouted (upper case, marked)."""
    lines = [f"  {_SYMBOL[c.kind]:>3} {c.address}{_loud(c)}" for c in summary.changes]
    destructive = summary.destructive
    if destructive:
        lines.append(
            f"!! {len(destructive)} resource(s) will be DESTROYED or REPLACED: "
            + ", ".join(c.address for c in destructive)
        )
    return lines


def _loud(change: ResourceChange) -> str:
    if change.kind == "destroy":
        return "   <-- DESTROY"
    if change.kind == "replace":
        return "   <-- REPLACE (destroy and re-create)"
    return ""
