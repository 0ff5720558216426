"""The few keys ``deployctl ci steps`` routes by, read without pydantic.

``ci steps`` runs first in every pipeline and decides nothing but which steps follow; importing pydantic and
building the models would be most of its run time. It reads the table with tomllib and takes these keys only
when they are in their plain form (the right type, the references resolved); anything else returns None, and
the caller validates the whole file with ``load``, which reports every problem as usual. A mistake in a key
routing does not read is reported by the first step that loads the configuration (plan, deploy, promote...).
The defaults are the models' (a unit test keeps them equal).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from deployctl.config.locate import TABLE

_NAME = re.compile(r"^[a-z][a-z0-9-]{0,39}$")  # base.Name


# NamedTuples, not dataclasses: `ci steps` runs on every pipeline run, and importing dataclasses (inspect, ast)
# would be a third of its start-up.
class EnvironmentRouting(NamedTuple):
    deployable: bool
    promote_from: str | None
    release_tag_pattern: str
    allow_prerelease: bool


class Routing(NamedTuple):
    environments: Mapping[str, EnvironmentRouting]
    main_branch: str
    shared_branch: str
    release_on_version_bump: bool


def read_routing(path: Path) -> Routing | None:
    """The routing keys of ``path``'s ``[tool.deployctl]``, or None when only a full validation can tell."""
    try:
        data: Any = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    for key in TABLE:
        data = data.get(key) if isinstance(data, dict) else None
    if not isinstance(data, dict):
        return None
    environments, apps = data.get("environments"), data.get("apps", {})
    if not isinstance(environments, dict) or not environments or not isinstance(apps, dict):
        return None
    main_branch = data.get("main_branch", "main")
    shared_branch = data.get("shared_branch", "shared-terraform")
    bump = data.get("release_on_version_bump", False)
    if not (isinstance(main_branch, str) and isinstance(shared_branch, str) and isinstance(bump, bool)):
        return None
    read = {name: _environment(name, env, environments, bool(apps)) for name, env in environments.items()}
    found = {name: env for name, env in read.items() if env is not None}
    if len(found) != len(read):
        return None
    return Routing(found, main_branch, shared_branch, bump)


def _environment(name: str, env: Any, environments: Mapping[str, Any], has_apps: bool) -> EnvironmentRouting | None:
    if not isinstance(name, str) or not _NAME.match(name) or not isinstance(env, dict):
        return None
    cluster, clusters = env.get("cluster"), env.get("clusters", {})
    if (cluster is not None and not isinstance(cluster, dict)) or not isinstance(clusters, dict):
        return None
    if cluster is not None and clusters:
        return None
    deployable = cluster is not None or bool(clusters)
    if deployable and ("namespace" not in env or "values" not in env or not has_apps):
        return None
    if not deployable and "terraform" not in env:
        return None
    promote_from = env.get("promote_from")
    if promote_from is not None and (not isinstance(promote_from, str) or promote_from not in environments):
        return None
    if promote_from == name:
        return None
    pattern = env.get("release_tag_pattern", "release-<semver>")
    prerelease = env.get("allow_prerelease", False)
    if not isinstance(pattern, str) or "<semver>" not in pattern or not isinstance(prerelease, bool):
        return None
    return EnvironmentRouting(deployable, promote_from, pattern, prerelease)
