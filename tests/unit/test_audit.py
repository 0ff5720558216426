"""The dependency audit's offline matcher (.ci/audit.py) on a small OSV-format advisory database."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]

# PyPA's layout (vulns/<package>/<id>.yaml); events out of order on purpose, as in PYSEC-2023-192.
ADVISORY = """\
id: PYSEC-2023-192
aliases: [CVE-2023-43804]
affected:
- package: {ecosystem: PyPI, name: urllib3}
  ranges:
  - type: GIT
    events: [{introduced: "0"}, {fixed: 644124ecd0b6e417c527191f866daa05a5a2056d}]
  - type: ECOSYSTEM
    events: [{introduced: 2.0.0}, {fixed: 2.0.6}, {introduced: "0"}, {fixed: 1.26.17}]
  versions: ["0.2"]
"""
LAST_AFFECTED = """\
id: PYSEC-2099-1
affected:
- package: {ecosystem: PyPI, name: Ruamel.Yaml}
  ranges:
  - type: ECOSYSTEM
    events: [{introduced: "0.17"}, {last_affected: "0.18.5"}]
"""
WITHDRAWN = """\
id: PYSEC-2099-2
withdrawn: "2024-01-01T00:00:00Z"
affected:
- package: {ecosystem: PyPI, name: click}
  ranges:
  - type: ECOSYSTEM
    events: [{introduced: "0"}]
"""


@pytest.fixture(scope="module")
def audit() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ci_audit", REPO / ".ci" / "audit.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def db(tmp_path: Path) -> Path:
    for package, name, text in (
        ("urllib3", "PYSEC-2023-192.yaml", ADVISORY),
        ("ruamel-yaml", "PYSEC-2099-1.yaml", LAST_AFFECTED),
        ("click", "PYSEC-2099-2.yaml", WITHDRAWN),
        ("boto3", "PYSEC-2099-3.yaml", ":: not yaml a package we do not lock must not be read"),
    ):
        (tmp_path / package).mkdir()
        (tmp_path / package / name).write_text(text)
    return tmp_path


@pytest.mark.parametrize(
    ("package", "version", "vulnerable"),
    [
        ("urllib3", "2.0.5", True),
        ("urllib3", "2.0.6", False),
        ("urllib3", "1.26.16", True),
        ("urllib3", "1.26.17", False),
        ("urllib3", "0.2", True),  # listed
        ("urllib3", "2.8.0", False),
        ("ruamel.yaml", "0.18.5", True),  # last_affected is inclusive; names compared normalized
        ("ruamel.yaml", "0.18.6", False),
        ("ruamel.yaml", "0.16.0", False),
        ("click", "8.1.0", False),  # withdrawn
    ],
)
def test_offline_audit(
    audit: ModuleType, db: Path, package: str, version: str, vulnerable: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    code = audit.audit_offline(db, {audit.normalize(package): (version, [])})
    out = capsys.readouterr().out
    assert code == (1 if vulnerable else 0), out
    assert ("PYSEC-" in out) is vulnerable


def test_an_empty_database_fails_rather_than_passing(audit: ModuleType, tmp_path: Path) -> None:
    assert audit.audit_offline(tmp_path, {"urllib3": ("2.0.5", [])}) == 1


def test_the_lock_is_read_with_hashes(audit: ModuleType) -> None:
    packages = audit.locked()
    version, hashes = packages["urllib3"]
    assert version and all(h.startswith("sha256:") for h in hashes) and hashes
    assert "pip-audit" in packages and "deptry" in packages
