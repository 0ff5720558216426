"""deployctl: one command per step of a trunk-based Terraform + Helm flow on EKS."""

from __future__ import annotations

# Kept equal to pyproject's version by tests/unit/test_version.py; a literal keeps
# `deployctl --version` free of importlib.metadata's start-up cost.
__version__ = "0.1.0"
