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
# The values files hold one section per app; each chart gets only its own (as deployctl gives it).
section() { .venv/bin/python -c 'import sys, yaml; print(yaml.safe_dump(yaml.safe_load(open(sys.argv[1]))[sys.argv[2]]))' "$@"; }
for ENV in dev prod; do
  for APP in api worker; do section "values-$ENV.yaml" "$APP" > "$OUT/$APP-$ENV.values"; done
done

must_fail() { # a render that must be rejected
  if "$@" >/dev/null 2>&1; then echo "chart check: accepted but must fail: $*" >&2; exit 1; fi
}

WORKER_IMAGE=123456789012.dkr.ecr.us-east-1.amazonaws.com/worker@$DIGEST
for HELM in helm helm3; do
  "$HELM" lint --strict charts/api -f "$OUT/api-dev.values" --set-string image.tag=abc >/dev/null
  "$HELM" lint --strict charts/api -f "$OUT/api-prod.values" --set image.digest=$DIGEST --set-string image.tag=release-0.0.0 >/dev/null
  must_fail "$HELM" template x charts/api --set image.tagg=1
  must_fail "$HELM" template x charts/api --set-string image.tag=abc --set replicaCount=abc
  must_fail "$HELM" template x charts/api -f "$OUT/api-prod.values"
  "$HELM" lint --strict charts/worker -f "$OUT/worker-prod.values" --set-string image="$WORKER_IMAGE" >/dev/null
  must_fail "$HELM" template x charts/worker -f "$OUT/worker-prod.values"  # unpromoted: no image
  must_fail "$HELM" template x charts/worker --set-string image=registry.example/worker:latest  # not pinned
done
helm template worker charts/worker -n api -f "$OUT/worker-prod.values" --set-string image="$WORKER_IMAGE" > "$OUT/worker.yaml"
helm template api charts/api -n api -f "$OUT/api-dev.values" --set image.digest=$DIGEST \
  --set-string image.tag=abc --set-string build.gitSha=0123abc > "$OUT/dev.yaml"
helm template api charts/api -n api -f "$OUT/api-prod.values" --set image.digest=$DIGEST \
  --set-string image.tag=release-0.0.0 --set-string build.gitSha=0123abc \
  --set serviceAccount.irsaRoleArn=arn:aws:iam::123456789012:role/api \
  --set ingress.certificateArn=arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000 \
  > "$OUT/prod.yaml"
kubernetes-validate -k "$K8S_VERSION" --strict "$OUT/dev.yaml" "$OUT/prod.yaml" "$OUT/worker.yaml" >/dev/null
rm "$OUT"/*.values
BC_SKIP_MAPPING=TRUE checkov -d "$OUT" --framework kubernetes --quiet --compact
echo "chart: ok (api and worker: helm lint x2, schema, kubernetes-validate $K8S_VERSION, checkov)"
