"""Configuration shared by tests: the api app and a prod environment reached through a kubeconfig, its state in
``acme-tfstate``; a test appends the keys its case needs to the prod table."""

from __future__ import annotations

API_AND_PROD = """
[tool.deployctl.apps.api]
chart = "charts/api"
release = "api"
image = { registry = "registry.example:5000", repository = "api" }

[tool.deployctl.environments.prod]
aws = { region = "us-east-1" }
terraform = { root = "tf", backend = { bucket = "acme-tfstate", key = "prod/terraform.tfstate", region = "us-east-1" } }
cluster = { kubeconfig = "kubeconfig" }
namespace = "api"
values = "values-prod.yaml"
"""
