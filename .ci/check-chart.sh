#!/usr/bin/env bash
# Chart gates for `make check`: helm lint --strict with both helm majors, the values
# schema rejecting bad input, rendered manifests valid for the pinned Kubernetes,
# and checkov on digest-pinned renders (what deployctl deploys).
# Expects helm, helm3, kubernetes-validate and checkov on PATH (make puts the tools bin dir first).
set -euo pipefail
cd "$(dirname "$0")/.."
K8S_VERSION=${K8S_VERSION:-1.33.0}
DIGEST=sha256:0000000000000000000000000000000000000000000000000000000000000000
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

must_fail() { # a render that must be rejected
  if "$@" >/dev/null 2>&1; then echo "chart check: accepted but must fail: $*" >&2; exit 1; fi
}

for HELM in helm helm3; do
  "$HELM" lint --strict charts/api -f values-dev.yaml --set-string image.tag=abc >/dev/null
  "$HELM" lint --strict charts/api -f values-prod.yaml --set image.digest=$DIGEST --set-string image.tag=release-0.0.0 >/dev/null
  must_fail "$HELM" template x charts/api --set image.tagg=1
  must_fail "$HELM" template x charts/api --set-string image.tag=abc --set replicaCount=abc
  must_fail "$HELM" template x charts/api -f values-prod.yaml
done
helm template api charts/api -n api -f values-dev.yaml --set image.digest=$DIGEST \
  --set-string image.tag=abc --set-string build.gitSha=0123abc > "$OUT/dev.yaml"
helm template api charts/api -n api -f values-prod.yaml --set image.digest=$DIGEST \
  --set-string image.tag=release-0.0.0 --set-string build.gitSha=0123abc \
  --set serviceAccount.irsaRoleArn=arn:aws:iam::123456789012:role/api \
  --set ingress.certificateArn=arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000 \
  > "$OUT/prod.yaml"
kubernetes-validate -k "$K8S_VERSION" --strict "$OUT/dev.yaml" "$OUT/prod.yaml" >/dev/null
BC_SKIP_MAPPING=TRUE checkov -d "$OUT" --framework kubernetes --quiet --compact
echo "chart: ok (helm lint x2, schema, kubernetes-validate $K8S_VERSION, checkov)"
