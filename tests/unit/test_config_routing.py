"""``config.routing``: the keys ``ci steps`` routes by, read without pydantic, are what the validated models
say (defaults included); anything not in its plain form is left to the full validation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from deployctl.config import DeployctlConfig, load
from deployctl.config.routing import Routing, read_routing
from deployctl.release.pipeline import steps_for

REPO = Path(__file__).resolve().parents[2]
REFERENCE = (REPO / "pyproject.toml").read_text(encoding="utf-8")
ROUTES = [
    ("pull_request", "refs/pull/7/merge"),
    ("push", "refs/heads/main"),
    ("push", "refs/heads/trunk"),
    ("push", "refs/tags/release-1.4.0"),
    ("push", "refs/tags/v2.0.0-rc.1"),
    ("push", "refs/heads/shared-terraform"),
    ("push", "refs/heads/infra"),
    ("workflow_dispatch", "refs/heads/feature/x"),
]

# Variants of the reference configuration: (what to replace, with what).
VARIANTS = {
    "reference": [],
    "main-branch-and-bump": [('main_branch = "main"', 'main_branch = "trunk"\nrelease_on_version_bump = true')],
    "shared-branch": [('main_branch = "main"', 'main_branch = "main"\nshared_branch = "infra"')],
    "defaults-omitted": [('release_tag_pattern = "release-<semver>"\n', ""), ('main_branch = "main"\n', "")],
    "prerelease-pattern": [
        ('release_tag_pattern = "release-<semver>"', 'release_tag_pattern = "v<semver>"\nallow_prerelease = true')
    ],
    "clusters": [
        (
            'cluster = { eks = "deployctl-prod" }',
            'clusters = { east = { eks = "api-prod-east" }, west = { eks = "api-prod-west", wave = 2 } }',
        )
    ],
}


def _write(tmp_path: Path, replacements: list[tuple[str, str]]) -> Path:
    text = REFERENCE
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new, 1)
    path = tmp_path / "pyproject.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _view(settings: DeployctlConfig) -> Routing:
    from deployctl.config.routing import EnvironmentRouting

    environments = {
        name: EnvironmentRouting(env.deployable, env.promote_from, env.release_tag_pattern, env.allow_prerelease)
        for name, env in settings.environments.items()
    }
    return Routing(environments, settings.main_branch, settings.shared_branch, settings.release_on_version_bump)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_the_view_is_what_the_models_say(tmp_path: Path, variant: str) -> None:
    path = _write(tmp_path, VARIANTS[variant])
    settings = load(path).settings
    view = read_routing(path)
    assert view == _view(settings)
    for event, ref in ROUTES:
        assert steps_for(view, event, ref) == steps_for(settings, event, ref), (event, ref)


@pytest.mark.parametrize(
    "replacements",
    [
        [('main_branch = "main"', 'main_branch = "main"\nrelease_on_version_bump = "true"')],  # pydantic's lax bool
        [('promote_from = "dev"', 'promote_from = "staging"')],  # unknown environment
        [('promote_from = "dev"', 'promote_from = "prod"')],  # itself
        [('release_tag_pattern = "release-<semver>"', 'release_tag_pattern = "release"')],
        [('cluster = { eks = "deployctl-prod" }', 'cluster = "deployctl-prod"')],
        [('values = "values-prod.yaml"\n', "")],  # deployable without values
        [("[tool.deployctl.environments.shared]\n", "[tool.deployctl.environments.Shared]\n")],  # not a name
        [('main_branch = "main"', "main_branch = [")],  # TOML syntax
    ],
    ids=["lax-bool", "unknown-source", "self-source", "pattern", "cluster-string", "no-values", "name", "toml"],
)
def test_anything_not_plain_is_left_to_the_full_validation(tmp_path: Path, replacements: list[tuple[str, str]]) -> None:
    assert read_routing(_write(tmp_path, replacements)) is None


def _ci_steps(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    code = f"from deployctl.cli.main import main; raise SystemExit(main({['-o', 'json', 'ci', 'steps', *args]!r}))"
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=project,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
        check=False,
    )


def test_ci_steps_reports_a_routing_key_as_the_full_validation_does(tmp_path: Path) -> None:
    _write(tmp_path, [('promote_from = "dev"', 'promote_from = "staging"')])
    result = _ci_steps(tmp_path, "--event", "push", "--ref", "refs/heads/main")
    assert result.returncode == 2
    assert "environments.prod.promote_from: unknown environment 'staging'" in result.stderr
    assert json.loads(result.stdout)["ok"] is False


def test_ci_steps_accepts_a_lax_value_as_the_full_validation_does(tmp_path: Path) -> None:
    _write(tmp_path, [('main_branch = "main"', 'main_branch = "main"\nrelease_on_version_bump = "true"')])
    result = _ci_steps(tmp_path, "--event", "push", "--ref", "refs/heads/main")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["steps"][-1]["id"] == "release-tag"


def test_ci_steps_defers_a_key_it_does_not_route_by(tmp_path: Path) -> None:
    """The trade-off: ``ci steps`` routes; the first step that loads the whole file reports the typo."""
    _write(tmp_path, [('namespace = "api"', 'namspace = "api"\nnamespace = "api"')])
    assert _ci_steps(tmp_path, "--event", "push", "--ref", "refs/heads/main").returncode == 0
    code = "from deployctl.cli.main import main; raise SystemExit(main(['config', 'show']))"
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    shown = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env, check=False
    )
    assert shown.returncode == 2
    assert "namspace: unknown key (did you mean 'namespace'?)" in shown.stderr
