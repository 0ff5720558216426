"""Import-direction check (run by `make check`): layers only depend downward.

- the ``cli`` package is the only one that imports click;
- ``config``, ``model`` and ``errors`` import no other deployctl module;
- ``runner`` is the only module that imports subprocess;
- nothing but ``cli`` imports ``deployctl.cli``; ``app`` never imports ``cli``;
- use cases (``app/*``) never import each other: only the shared ``app.context`` and ``app.base``.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "deployctl"
LEAVES = {"deployctl.config", "deployctl.model", "deployctl.errors"}
ONLY_IMPORTER = {"click": "deployctl.cli", "subprocess": "deployctl.runner"}
APP = "deployctl.app"
APP_SHARED = {"deployctl.app.context", "deployctl.app.base"}


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> Iterator[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
            if node.module == APP:  # `from deployctl.app import deploy` imports a use case module
                for alias in node.names:
                    yield node.lineno, f"{APP}.{alias.name}"


def violations(package: Path = PACKAGE) -> list[str]:
    found = []
    for path in sorted(package.rglob("*.py")):
        name = module_name(path, package)
        for line, imported in imports(path):
            top = imported.split(".")[0]
            where = f"{path.relative_to(package.parent)}:{line}"
            allowed = ONLY_IMPORTER.get(top)
            if allowed is not None and not _within(name, allowed):
                found.append(f"{where}: {name} imports {top} (only {allowed} may)")
            if name in LEAVES and top == "deployctl":
                found.append(f"{where}: {name} imports {imported} ({name} must not import other deployctl modules)")
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
    return found


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def main() -> int:
    problems = violations()
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"import direction: {len(problems)} violation(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
