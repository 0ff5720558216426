#!/usr/bin/env bash
# Workflow gate for `make check`: actionlint on every workflow.
set -euo pipefail
cd "$(dirname "$0")/.."
actionlint .github/workflows/*.yml
echo "workflows: ok (actionlint)"
