"""The import-direction check catches what it is there to catch (a planted package, each rule broken once)."""

from __future__ import annotations

from pathlib import Path

from tests.import_direction import violations


def plant(root: Path, files: dict[str, str]) -> Path:
    package = root / "deployctl"
    for name, text in {"__init__.py": "", **files}.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.parent / "__init__.py").touch()
        path.write_text(text)
    return package


def test_the_real_package_is_clean() -> None:
    assert violations() == []


def test_each_rule_is_enforced(tmp_path: Path) -> None:
    package = plant(
        tmp_path,
        {
            "app/context.py": "import deployctl.config\n",
            "app/base.py": "from deployctl.app.context import EnvContext\n",
            "app/deploy.py": "from deployctl.app.steps.rollout import roll_out\nfrom deployctl.app import promote\n",
            "app/status.py": "from deployctl.app.deploy import deploy\n",
            "cli/root.py": "import click\nfrom deployctl.cli.session import Session\n",
            "helm.py": "import click\nimport subprocess\n",
            "config.py": "from deployctl import model\n",
            "kube.py": "from deployctl.cli.main import main\n",
        },
    )
    found = violations(package)
    assert len(found) == 6, found
    assert any("app/deploy.py" in v and "imports deployctl.app.promote" in v for v in found)
    assert any("app/status.py" in v and "imports deployctl.app.deploy" in v for v in found)
    assert any("helm.py" in v and "imports click" in v for v in found)
    assert any("helm.py" in v and "imports subprocess" in v for v in found)
    assert any("config.py" in v for v in found)
    assert any("kube.py" in v and "nothing below the CLI" in v for v in found)
