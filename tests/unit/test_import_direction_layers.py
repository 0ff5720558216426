"""The layer table (tests/import_direction.py's LAYERS): an upward import fails, and so does a sideways one between
domain packages unless it reads a module the other publishes as pure (promotion may read ledger.entry, never
ledger.store)."""

from __future__ import annotations

from pathlib import Path

from tests.import_direction import unlisted, violations
from tests.unit.test_import_direction import plant


def test_upward_and_sideways_imports_fail_downward_and_published_ones_pass(tmp_path: Path) -> None:
    package = plant(
        tmp_path,
        {
            "ledger/entry.py": "",
            "ledger/store.py": "from deployctl.adapters.aws_errors import translate\n",  # downward
            "promotion/gates.py": "from deployctl.ledger.entry import Entry\nfrom deployctl.ledger.store import Ledger\n",
            "rollout/tracking.py": "from deployctl.core.errors import OperationError\n",
            "adapters/aws_errors.py": "",
            "adapters/kube.py": "from deployctl.rollout.tracking import health_of\n",
            "app/deploy.py": "from deployctl.rollout.tracking import judge\nfrom deployctl.ledger.store import Ledger\n",
            "app/context.py": "",
            "sandbox/lab.py": "from deployctl.app.context import EnvContext\n",
            "core/errors.py": "",
        },
    )
    found = violations(package)
    assert sorted(v.split(": ")[0] for v in found) == [
        "deployctl/adapters/kube.py:1",
        "deployctl/promotion/gates.py:2",
        "deployctl/sandbox/lab.py:1",
    ], found
    assert any("deployctl.adapters is below deployctl.rollout" in v for v in found)
    sideways = next(v for v in found if "promotion/gates.py" in v)
    assert "imports deployctl.ledger.store" in sideways and "deployctl.ledger.entry" in sideways, "names what to use"
    assert any("deployctl.sandbox and deployctl.app are one layer" in v for v in found)


def test_every_module_is_in_a_layer(tmp_path: Path) -> None:
    package = plant(tmp_path, {"core/errors.py": "", "helpers.py": ""})
    assert unlisted(package) == ["deployctl.helpers: in no layer of tests/import_direction.py's LAYERS"]
    assert unlisted() == []
