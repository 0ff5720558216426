"""``[tool.deployctl]`` in pyproject.toml -> frozen, validated models.

Unknown keys are rejected with a suggestion; every problem is reported at once with the file, the dotted key
path, the rule and the fix. This package imports no other deployctl package: it raises ``ConfigProblemsError``,
which the caller turns into ``errors.ConfigError`` (exit 2).

Modules by concern: ``base`` (what every model shares), ``environments`` and ``apps`` (the models),
``settings`` (the whole table and the loaded configuration), ``order`` (deploy order from ``needs``),
``locate`` (finding the file), ``loading`` (parse, validate, describe the problems) and ``routing`` (the few
keys ``ci steps`` reads, without pydantic).

The names below are imported on first use: pydantic and the models' construction are most of deployctl's
start-up, and ``locate`` and ``routing`` need neither.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from deployctl.config.apps import DEFAULT_IMAGE_VALUES, IMAGE_PLACEHOLDERS, App, Image
    from deployctl.config.base import Name
    from deployctl.config.environments import (
        Aws,
        Backend,
        Cluster,
        ClusterSpec,
        Environment,
        Freeze,
        Notify,
        Terraform,
    )
    from deployctl.config.loading import load
    from deployctl.config.locate import CONFIG_ENV_VAR, TABLE, ConfigProblemsError, find_config
    from deployctl.config.order import deploy_order
    from deployctl.config.settings import DeployctlConfig, LoadedConfig
    from deployctl.config.verify import Checks, HelmTest, HttpCheck, MetricCheck, Metrics, Verify

# name -> the module of this package that defines it
_MODULES = {
    "DEFAULT_IMAGE_VALUES": "apps",
    "IMAGE_PLACEHOLDERS": "apps",
    "App": "apps",
    "Image": "apps",
    "Name": "base",
    "Aws": "environments",
    "Backend": "environments",
    "Cluster": "environments",
    "ClusterSpec": "environments",
    "Environment": "environments",
    "Freeze": "environments",
    "Notify": "environments",
    "Terraform": "environments",
    "load": "loading",
    "CONFIG_ENV_VAR": "locate",
    "TABLE": "locate",
    "ConfigProblemsError": "locate",
    "find_config": "locate",
    "deploy_order": "order",
    "DeployctlConfig": "settings",
    "LoadedConfig": "settings",
    "Checks": "verify",
    "HelmTest": "verify",
    "HttpCheck": "verify",
    "MetricCheck": "verify",
    "Metrics": "verify",
    "Verify": "verify",
}

__all__ = [
    "CONFIG_ENV_VAR",
    "DEFAULT_IMAGE_VALUES",
    "IMAGE_PLACEHOLDERS",
    "TABLE",
    "App",
    "Aws",
    "Backend",
    "Checks",
    "Cluster",
    "ClusterSpec",
    "ConfigProblemsError",
    "DeployctlConfig",
    "Environment",
    "Freeze",
    "HelmTest",
    "HttpCheck",
    "Image",
    "LoadedConfig",
    "MetricCheck",
    "Metrics",
    "Name",
    "Notify",
    "Terraform",
    "Verify",
    "deploy_order",
    "find_config",
    "load",
]


def __getattr__(name: str) -> object:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # once: later lookups are plain attribute reads
    return value
