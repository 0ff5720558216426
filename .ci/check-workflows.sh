#!/usr/bin/env bash
# Workflow gate for `make check`: actionlint (syntax, expressions, shell) on every workflow, and zizmor (security:
# cache poisoning, persisted credentials, template injection, permissions, pins, dependabot cooldowns) on the
# workflows, dependabot.yml and the pre-commit config, at its default persona, offline. Zero findings; the few
# suppressions are inline `# zizmor: ignore[rule]` comments that say why.
set -euo pipefail
cd "$(dirname "$0")/.."
actionlint .github/workflows/*.yml
.venv/bin/zizmor --offline --no-progress --quiet .
echo "workflows: ok (actionlint, zizmor)"
