"""Import-direction check (run by `make check`): layers only depend downward.

- the ``cli`` package is the only one that imports click;
- ``config``, ``model`` and ``errors`` import no other deployctl module but ``errors`` (the bottom: the
  exceptions every layer raises); a leaf that is a package, such as ``config``, is one leaf: its modules may
  import each other;
- ``runner`` is the only module that imports subprocess;
- nothing but ``cli`` imports ``deployctl.cli``; ``app`` never imports ``cli``;
- use cases (``app/*``) never import each other: only the shared ``app.context`` and ``app.steps``;
- the layer table (``LAYERS``, top down: cli -> app -> domain packages -> adapters -> runner -> core and config):
  a module imports its own package and the layers below it, never one above (``adapters`` never imports
  ``rollout``), nor another package of its own layer, but for a domain package the pure modules another one
  publishes (``PUBLISHED``: promotion reads ``ledger.entry``, never ``ledger.store``). Every module of deployctl
  is in the table (``unlisted``).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "deployctl"
LEAVES = {"deployctl.config", "deployctl.core.refs", "deployctl.core.errors"}
ONLY_IMPORTER = {"click": "deployctl.cli", "subprocess": "deployctl.runner"}
APP = "deployctl.app"
APP_SHARED = {"deployctl.app.context", "deployctl.app.steps"}
DOMAIN = tuple(
    f"deployctl.{name}"
    for name in ("promotion", "rollout", "ledger", "terraform", "board", "notify", "release", "verification")
)
LAYERS: tuple[tuple[str, ...], ...] = (
    ("deployctl.__main__",),
    ("deployctl.cli",),
    ("deployctl.app", "deployctl.sandbox"),  # the use cases; the lab (``deployctl sandbox``)
    DOMAIN,
    ("deployctl.adapters",),
    ("deployctl.runner", "deployctl.console"),
    ("deployctl.background", "deployctl.redact"),
    ("deployctl", "deployctl.config"),  # leaves (``deployctl``: its version; ``config`` raises core's errors)
    ("deployctl.core",),
)
# The pure modules of a domain package that another domain package may import (values, no I/O).
PUBLISHED = {
    "deployctl.ledger.entry",
    "deployctl.promotion.evidence",
    "deployctl.release.changelog",
    "deployctl.release.drift",
    "deployctl.rollout.states",
    "deployctl.verification.model",
    "deployctl.verification.plan",
    "deployctl.promotion.plan",  # what a promotion event says (notify.events)
}


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, package: Path = PACKAGE) -> Iterator[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(node, module_name(path, package), path.name == "__init__.py")
            if module is None:
                continue
            # `from deployctl.core import refs` (or `from ..core import refs`) imports the module core.refs, not the
            # package core: a name that is a submodule counts as that module; the package counts only for the rest
            # (`from deployctl import x`, `from deployctl.app import x` and `from .. import x` always name modules)
            always = module in (APP, "deployctl") or (node.level and not node.module)
            submodules = [a.name for a in node.names if always or _is_module(f"{module}.{a.name}", package)]
            if len(submodules) < len(node.names):
                yield node.lineno, module
            for submodule in submodules:
                yield node.lineno, f"{module}.{submodule}"


def _is_module(name: str, package: Path) -> bool:
    if not _within(name, "deployctl"):
        return False
    path = package.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _absolute(node: ast.ImportFrom, importer: str, is_package: bool) -> str | None:
    """The absolute module of ``from X import ...``; a relative import counts as what it names."""
    if node.level == 0:
        return node.module
    parts = importer.split(".") if is_package else importer.split(".")[:-1]
    base = parts[: len(parts) - (node.level - 1)] if node.level > 1 else parts
    if not base:
        return None
    return ".".join([*base, node.module]) if node.module else ".".join(base)


def violations(package: Path = PACKAGE) -> list[str]:
    found = []
    for path in sorted(package.rglob("*.py")):
        name = module_name(path, package)
        for line, imported in imports(path, package):
            top = imported.split(".")[0]
            where = f"{path.relative_to(package.parent)}:{line}"
            allowed = ONLY_IMPORTER.get(top)
            if allowed is not None and not _within(name, allowed):
                found.append(f"{where}: {name} imports {top} (only {allowed} may)")
            leaf = next((leaf for leaf in LEAVES if _within(name, leaf)), None)
            lower = (
                _within(imported, leaf or "") or _within(imported, "deployctl.core.errors") or imported == "deployctl"
            )
            if leaf is not None and top == "deployctl" and not lower:
                found.append(f"{where}: {name} imports {imported} ({leaf} must not import other deployctl modules)")
            if (
                _within(imported, "deployctl.cli")
                and not _within(name, "deployctl.cli")
                and name != "deployctl.__main__"
            ):
                found.append(f"{where}: {name} imports {imported} (nothing below the CLI may import it)")
            shared_or_self = imported == APP or any(_within(imported, m) for m in (*APP_SHARED, name))
            if _within(name, APP) and _within(imported, APP) and not shared_or_self:
                shared = " or ".join(sorted(APP_SHARED))
                found.append(f"{where}: {name} imports {imported} (use cases import only {shared})")
            problem = _layer_problem(name, imported)
            if problem:
                found.append(f"{where}: {name} imports {imported} ({problem})")
    return found


def unit_of(module: str) -> tuple[int, str] | None:
    """The layer (0: top) and the package of the table ``module`` belongs to (the longest that holds it)."""
    found = [(len(unit), index, unit) for index, layer in enumerate(LAYERS) for unit in layer if _holds(unit, module)]
    if not found:
        return None
    _, index, unit = max(found)
    return index, unit


def _layer_problem(name: str, imported: str) -> str | None:
    importer, target = unit_of(name), unit_of(imported)
    if importer is None or target is None or importer[1] == target[1]:
        return None
    if target[0] > importer[0]:
        return None  # downward
    if target[0] < importer[0]:
        return f"{importer[1]} is below {target[1]}: layers import only downward"
    if importer[1] in DOMAIN and any(_within(imported, m) for m in PUBLISHED):
        return None
    published = ", ".join(sorted(m for m in PUBLISHED if _within(m, target[1]))) or "none"
    return f"{importer[1]} and {target[1]} are one layer: only a domain package's pure modules ({published})"


def _holds(unit: str, module: str) -> bool:
    # ``deployctl`` itself is its ``__init__`` (its version) only: a new top-level module must be put in a layer
    return module in ("deployctl", "deployctl.__version__") if unit == "deployctl" else _within(module, unit)


def unlisted(package: Path = PACKAGE) -> list[str]:
    """The modules of ``package`` that belong to no layer of the table."""
    names = (module_name(path, package) for path in sorted(package.rglob("*.py")))
    return [f"{name}: in no layer of tests/import_direction.py's LAYERS" for name in names if unit_of(name) is None]


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def main() -> int:
    problems = violations() + unlisted()
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"import direction: {len(problems)} violation(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
