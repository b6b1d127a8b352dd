#!/usr/bin/env bash
# Validates deploy/kubernetes/ against the Kubernetes API schemas (strict: unknown fields fail).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v kubernetes-validate >/dev/null || pip install --quiet "kubernetes-validate==1.37.0"
files=()
for f in deploy/kubernetes/*.yaml; do
  [ "$(basename "$f")" = kustomization.yaml ] || files+=("$f")
done
kubernetes-validate --strict --kubernetes-version 1.33 "${files[@]}"
