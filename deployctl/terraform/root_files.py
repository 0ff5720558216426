"""A terraform root's files: its declared variables, local modules, configuration files and their fingerprint."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

_VARIABLE_RE = re.compile(r'^\s*variable\s+"([A-Za-z_][A-Za-z0-9_-]*)"', re.MULTILINE)


_LOCAL_SOURCE_RE = re.compile(r'^\s*source\s*=\s*"(\.{1,2}/[^"]*)"', re.MULTILINE)


_CONFIG_SUFFIXES = (".tf", ".tf.json")


def declared_variables(root: Path) -> set[str]:
    """Variable names declared in the root module's ``*.tf`` files."""
    names: set[str] = set()
    for path in sorted(root.glob("*.tf")):
        names.update(_VARIABLE_RE.findall(path.read_text(encoding="utf-8", errors="replace")))
    return names


def module_dirs(root: Path) -> list[Path]:
    """The root and every local module it uses (``source = "./..."`` or ``"../..."``), transitively."""
    seen: list[Path] = []
    pending = [root.resolve()]
    while pending:
        directory = pending.pop()
        if directory in seen or not directory.is_dir():
            continue
        seen.append(directory)
        for path in sorted(directory.glob("*.tf")):
            for source in _LOCAL_SOURCE_RE.findall(path.read_text(encoding="utf-8", errors="replace")):
                pending.append((directory / source).resolve())
    return seen


def config_files(root: Path) -> list[Path]:
    """Files whose content decides what a plan does: ``*.tf`` and the auto-loaded ``*.tfvars`` of the root
    and its local modules, and the root's dependency lock file (the caller adds a ``-var-file``)."""
    files: list[Path] = []
    for directory in module_dirs(root):
        files += sorted(
            p for p in directory.iterdir() if p.is_file() and p.name.endswith(_CONFIG_SUFFIXES + _AUTO_VARS)
        )
    lock = root / ".terraform.lock.hcl"
    if lock.is_file():
        files.append(lock)
    return files


def fingerprint(files: Iterable[Path], *, base: Path, extra: Sequence[str] = ()) -> str:
    """sha256 over file paths (relative to ``base``) and contents, plus ``extra`` strings."""
    digest = hashlib.sha256()
    for text in extra:
        digest.update(text.encode())
        digest.update(b"\0")
    for path in files:
        try:
            name = str(path.resolve().relative_to(base.resolve()))
        except ValueError:
            name = str(path.resolve())
        digest.update(name.encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# Variables files terraform loads by itself; any other (an environment's -var-file) counts only when passed.
_AUTO_VARS = ("terraform.tfvars", "terraform.tfvars.json", ".auto.tfvars", ".auto.tfvars.json")
