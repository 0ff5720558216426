"""``[tool.deployctl]`` in pyproject.toml -> frozen, validated models.

Unknown keys are rejected with a suggestion; every problem is reported at once with the file, the dotted key
path, the rule and the fix. This package imports no other deployctl package: it raises ``ConfigProblemsError``,
which the caller turns into ``errors.ConfigError`` (exit 2).

Modules by concern: ``base`` (what every model shares), ``environments`` and ``apps`` (the models),
``settings`` (the whole table and the loaded configuration), ``order`` (deploy order from ``needs``),
``locate`` (finding the file; no pydantic) and ``loading`` (parse, validate, describe the problems).
"""

from __future__ import annotations

from deployctl.config.apps import DEFAULT_IMAGE_VALUES, IMAGE_PLACEHOLDERS, App, Image
from deployctl.config.base import Name
from deployctl.config.environments import Aws, Backend, Cluster, ClusterSpec, Environment, Freeze, Notify, Terraform
from deployctl.config.loading import load
from deployctl.config.locate import CONFIG_ENV_VAR, TABLE, ConfigProblemsError, find_config
from deployctl.config.order import deploy_order
from deployctl.config.settings import DeployctlConfig, LoadedConfig

__all__ = [
    "CONFIG_ENV_VAR",
    "DEFAULT_IMAGE_VALUES",
    "IMAGE_PLACEHOLDERS",
    "TABLE",
    "App",
    "Aws",
    "Backend",
    "Cluster",
    "ClusterSpec",
    "ConfigProblemsError",
    "DeployctlConfig",
    "Environment",
    "Freeze",
    "Image",
    "LoadedConfig",
    "Name",
    "Notify",
    "Terraform",
    "deploy_order",
    "find_config",
    "load",
]
