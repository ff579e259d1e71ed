#!/usr/bin/env bash
# Re-fetch the vendored 3Dmol.js build (npm package `3dmol`) used by the explorer's offline 3D view.
set -euo pipefail
VERSION="${1:-2.5.5}"
DEST="$(cd "$(dirname "$0")/.." && pwd)/explorer/views/static/3dmol"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
(cd "$TMP" && npm pack "3dmol@${VERSION}" >/dev/null && tar xzf "3dmol-${VERSION}.tgz" package/LICENSE package/build/3Dmol-min.js)
mkdir -p "$DEST"
cp "$TMP/package/build/3Dmol-min.js" "$TMP/package/LICENSE" "$DEST/"
echo "3Dmol.js ${VERSION} -> $DEST"
