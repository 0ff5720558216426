"""deployctl: one command per step of a trunk-based Terraform + Helm flow on EKS."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("deployctl")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+source"
