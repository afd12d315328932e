#!/bin/sh
# deploy/k8s against the Kubernetes API's OpenAPI schemas, read by an
# independent implementation (npm kubernetes-models, versions pinned in
# k8s_schemas/package-lock.json, installed with `npm ci` into the build
# directory).
#     k8s_schemas.sh SOURCE_DIR BUILD_DIR
# Exit 77 (skipped) without node and npm, or when the npm registry cannot
# be reached; 1 if a manifest does not validate.
set -eu
src=$1
work=$2/k8s_schemas
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "node or npm not installed (apt-get install nodejs npm); skipped"
    exit 77
fi
mkdir -p "$work"
cp "$here/k8s_schemas/package.json" "$here/k8s_schemas/package-lock.json" "$here/k8s_schemas/validate.mjs" "$work/"
if ! cmp -s "$work/package-lock.json" "$work/node_modules/.ocps-lock" 2>/dev/null; then
    if ! (cd "$work" && npm ci --no-audit --no-fund --loglevel=error); then
        echo "npm ci failed (is the npm registry reachable?); skipped"
        exit 77
    fi
    cp "$work/package-lock.json" "$work/node_modules/.ocps-lock"
fi
cd "$work"
node validate.mjs "$src/deploy/k8s"
