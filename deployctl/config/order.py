"""Derived from the apps: the rollout order their ``needs`` give, and the cycle that would forbid one.

Pure functions over names (no pydantic): they only read each app's ``needs``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from deployctl.config.apps import App


def needs_cycle(needs: Mapping[str, list[str]]) -> list[str]:
    """A cycle in ``needs`` (as a path that returns to its start), or [] when there is none."""
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(node: str, path: list[str]) -> list[str]:
        state[node] = 1
        for nxt in needs.get(node, []):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt] if nxt in path else [node, nxt]
            if state.get(nxt) is None:
                found = visit(nxt, [*path, nxt])
                if found:
                    return found
        state[node] = 2
        return []

    for start in sorted(needs):
        if start not in state:
            found = visit(start, [start])
            if found:
                return found
    return []


def deploy_order(apps: Mapping[str, App], only: list[str] | None = None) -> list[str]:
    """App names in the order they roll out: every app after the apps it ``needs`` (then by name)."""
    wanted = set(only if only is not None else apps)
    order: list[str] = []

    def add(name: str) -> None:
        if name in order:
            return
        for dependency in sorted(apps[name].needs):
            if dependency in wanted:
                add(dependency)
        order.append(name)

    for name in sorted(wanted):
        add(name)
    return order
