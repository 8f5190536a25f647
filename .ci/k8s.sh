#!/usr/bin/env bash
# The Kubernetes manifests' checks (deploy/k8s): kubeconform (every object
# valid against the schemas of the pinned Kubernetes API, unknown fields
# refused) and kube-score (security context, probes, resources, network
# policies, disruption budget). Both are Go modules, run at pinned versions
# through the Go module proxy; nothing else is downloaded. kubeconform's
# schemas would come from GitHub, so .ci/k8sschema generates them from
# k8s.io/api's types (see its comment for what they check); a deliberately
# broken manifest must fail, so a schema directory that validates nothing
# cannot pass for a clean run. First run: a few minutes of compiling.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "k8s: $*" >&2; }
KUBECONFORM=github.com/yannh/kubeconform/cmd/kubeconform@v0.8.0
KUBE_SCORE=github.com/zegl/kube-score/cmd/kube-score@v1.20.0

# The objects kustomize applies (kustomization.yaml's resources).
mapfile -t manifests < <(sed -n '/^resources:/,/^[^ ]/s/^  - \(.*\.yaml\)$/deploy\/k8s\/\1/p' deploy/k8s/kustomization.yaml)
[ "${#manifests[@]}" -gt 0 ] || { say "no resources found in deploy/k8s/kustomization.yaml"; exit 1; }

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
bin=$tmp/bin; mkdir -p "$bin"
GOBIN=$bin go install "$KUBECONFORM"
GOBIN=$bin go install "$KUBE_SCORE"
(cd .ci/k8sschema && go run . "$tmp/schemas")
conform() { "$bin/kubeconform" -strict -summary -schema-location "$tmp/schemas/{{.ResourceKind}}{{.KindSuffix}}.json" "$@"; }

conform "${manifests[@]}"; echo >&2
# The control: a misspelt field and a bad quantity must be refused.
cat >"$tmp/broken.yaml" <<'YAML'
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: broken}
spec:
  replicass: 3
  template:
    spec:
      containers:
        - name: x
          image: x:1
          resources: {limits: {memory: 1GB}}
YAML
if conform "$tmp/broken.yaml" >/dev/null 2>&1; then
  say "kubeconform accepted a broken manifest: the schemas check nothing"; exit 1
fi

"$bin/kube-score" score --output-format ci "${manifests[@]}" | grep -vE '^\[(OK|SKIPPED)\]' || true
"$bin/kube-score" score "${manifests[@]}" >/dev/null || { say "kube-score found problems (above)"; exit 1; }
say "${#manifests[@]} manifests valid (kubeconform) and clean (kube-score)"
