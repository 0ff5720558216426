"""Dependency audit for `make check`: every package pinned in poetry.lock (both groups) against known advisories.

Sources, in order:
1. ``DEPLOYCTL_ADVISORY_DB``: a local copy of an OSV-format advisory database (a checkout of
   github.com/pypa/advisory-database, ``vulns/<package>/*.yaml``, or OSV's ``*.json``): works offline.
2. pip-audit against PyPI's advisory data (its JSON API), with the lock's hashes (``--require-hashes``) and
   ``--strict`` (a package that cannot be audited fails the audit).
3. Neither reachable: the audit is SKIPPED with a warning, or fails when ``DEPLOYCTL_AUDIT_REQUIRED`` is set
   (the GitHub workflow sets it: a green CI there has always audited).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import tomllib
import urllib.error
import urllib.request
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from packaging.version import InvalidVersion, Version

ROOT = Path(__file__).resolve().parents[1]
# The per-version JSON API is what pip-audit reads (a mirror that serves only the project pages is not enough).
PROBE = "https://pypi.org/pypi/pip/24.0/json"


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked() -> dict[str, tuple[str, list[str]]]:
    """name -> (version, sha256 hashes of its files) from poetry.lock."""
    lock = tomllib.loads((ROOT / "poetry.lock").read_text())
    return {normalize(p["name"]): (p["version"], [f["hash"] for f in p.get("files", [])]) for p in lock["package"]}


def _advisories(db: Path, names: Collection[str]) -> Iterator[Mapping[str, Any]]:
    """Every advisory file; in a per-package layout (vulns/<package>/...) only the locked packages' ones."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    for path in sorted(db.rglob("*")):
        if path.parent != db and normalize(path.parent.name) not in names:
            continue
        if path.suffix in (".yaml", ".yml"):
            yield yaml.load(path.read_text(), Loader=loader)  # noqa: S506 (a safe loader)
        elif path.suffix == ".json":
            yield json.loads(path.read_text())


def _affects(affected: Mapping[str, Any], version: Version) -> bool:
    """OSV semantics: listed ``versions``, or inside an ECOSYSTEM range whose events, sorted by version, open at
    ``introduced`` and close at ``fixed`` (exclusive) or after ``last_affected``."""
    if str(version) in {str(v) for v in affected.get("versions") or []}:
        return True
    for span in affected.get("ranges") or []:
        if span.get("type") != "ECOSYSTEM":
            continue
        events = []
        for event in span.get("events") or []:
            for kind, value in event.items():
                try:
                    events.append((Version(str(value)), kind))
                except InvalidVersion:
                    continue
        inside = False
        for at, kind in sorted(events, key=lambda e: (e[0], e[1] != "introduced")):
            if kind == "introduced" and version >= at:
                inside = True
            elif (kind == "fixed" and version >= at) or (kind == "last_affected" and version > at):
                inside = False
        if inside:
            return True
    return False


def audit_offline(db: Path, packages: Mapping[str, tuple[str, list[str]]]) -> int:
    found = []
    count = 0
    for advisory in _advisories(db, packages):
        count += 1
        if not isinstance(advisory, Mapping) or advisory.get("withdrawn"):
            continue
        for affected in advisory.get("affected") or []:
            package = affected.get("package") or {}
            name = normalize(str(package.get("name", "")))
            if package.get("ecosystem") != "PyPI" or name not in packages:
                continue
            version = packages[name][0]
            if _affects(affected, Version(version)):
                aliases = ", ".join(advisory.get("aliases") or [])
                found.append(f"{name} {version}: {advisory.get('id')} ({aliases})")
    if count == 0:
        print(f"dependency audit: no advisories under {db}", file=sys.stderr)
        return 1
    for line in sorted(set(found)):
        print(line)
    print(f"dependency audit: {len(packages)} locked packages against {count} advisories in {db}: {len(found)} found")
    return 1 if found else 0


def reachable() -> bool:
    try:
        urllib.request.urlopen(PROBE, timeout=10).close()  # noqa: S310 (a fixed https URL)
    except (urllib.error.URLError, OSError):
        return False
    return True


def audit_online(packages: Mapping[str, tuple[str, list[str]]]) -> int:
    with tempfile.NamedTemporaryFile("w", suffix=".txt", prefix="lock-requirements-") as requirements:
        for name, (version, hashes) in sorted(packages.items()):
            requirements.write(f"{name}=={version}" + "".join(f" --hash={h}" for h in hashes) + "\n")
        requirements.flush()
        argv = [
            str(Path(sys.executable).with_name("pip-audit")),
            *("--requirement", requirements.name, "--require-hashes", "--disable-pip", "--strict"),
            *("--vulnerability-service", "pypi", "--progress-spinner", "off"),
        ]
        return subprocess.run(argv, check=False).returncode


def main() -> int:
    packages = locked()
    db = os.environ.get("DEPLOYCTL_ADVISORY_DB")
    if db:
        return audit_offline(Path(db), packages)
    if reachable():
        return audit_online(packages)
    reason = f"PyPI's advisory data ({PROBE}) is not reachable and DEPLOYCTL_ADVISORY_DB is not set"
    if os.environ.get("DEPLOYCTL_AUDIT_REQUIRED"):
        print(f"dependency audit: FAILED: {reason}", file=sys.stderr)
        return 1
    print(
        f"WARNING: dependency audit SKIPPED: {reason}; to audit offline, point DEPLOYCTL_ADVISORY_DB at a copy of "
        "github.com/pypa/advisory-database (its vulns/ directory)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
