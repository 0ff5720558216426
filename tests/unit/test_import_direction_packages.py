"""A leaf that is a package (``config``) is one leaf: its modules import each other, nothing else of deployctl;
relative imports count as the modules they name."""

from __future__ import annotations

from pathlib import Path

from tests.import_direction import violations
from tests.unit.test_import_direction import plant


def test_a_leaf_package_may_import_itself_only(tmp_path: Path) -> None:
    package = plant(
        tmp_path,
        {
            "config/__init__.py": "from deployctl.config.models import App\nfrom .loading import load\n",
            "config/models.py": "from deployctl.config import base\nfrom . import base as b\n",
            "config/loading.py": "from deployctl.config.models import App\nfrom deployctl.core.refs import ImageRef\n",
            "config/order.py": "from ..core import refs\n",
            "config/base.py": "from ..core.errors import DeployctlError\nfrom ..core import errors\n",
            "core/refs.py": "",
            "core/errors.py": "",
        },
    )
    found = violations(package)
    assert len(found) == 2, found
    assert any("config/loading.py:2" in v and "imports deployctl.core.refs" in v for v in found)
    assert any("config/order.py:1" in v and "imports deployctl.core.refs" in v for v in found)
    assert not any("config/base.py" in v for v in found), "errors is the bottom: every leaf may raise its errors"
    assert all("deployctl.config must not import" in v for v in found)


def test_a_relative_import_of_the_cli_is_caught(tmp_path: Path) -> None:
    package = plant(tmp_path, {"cli/__init__.py": "", "kube.py": "from .cli import main\nfrom . import cli\n"})
    found = violations(package)
    assert len(found) == 2, found
    assert all("nothing below the CLI" in v for v in found)
