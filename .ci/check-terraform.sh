#!/usr/bin/env bash
# Terraform gates for `make check`: fmt, validate per root (offline, from the provider
# mirror), native `terraform test` for the modules, and checkov with in-place justified skips.
# Expects terraform, checkov on PATH and TF_CLI_CONFIG_FILE pointing at a mirror config (make sets it).
set -euo pipefail
cd "$(dirname "$0")/.."
terraform fmt -check -recursive terraform
for root in terraform/shared terraform/env; do
  terraform -chdir="$root" init -backend=false -input=false >/dev/null
  terraform -chdir="$root" validate -no-color >/dev/null
done
for module in terraform/modules/*/; do
  if compgen -G "$module/tests/*.tftest.hcl" >/dev/null; then
    terraform -chdir="$module" init -backend=false -input=false >/dev/null
    terraform -chdir="$module" test -no-color >/dev/null
  fi
done
BC_SKIP_MAPPING=TRUE checkov -d terraform --framework terraform --quiet --compact
echo "terraform: ok (fmt, validate x2, terraform test, checkov)"
