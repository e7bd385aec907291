#!/usr/bin/env bash
# Refreshes the Swagger UI assets /docs serves from the daemon itself (so the page
# works on machines without internet access). They come from the npm package
# swagger-ui-dist at the version pinned here, checked against its registry
# integrity hash; SHA256SUMS records what was committed.
#   scripts/vendor_swagger_ui.sh            # re-vendor the pinned version
#   scripts/vendor_swagger_ui.sh --check    # verify the committed files
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=5.35.0
INTEGRITY="sha512-U06rpMtW9V3XPGOBeamTUSr0Z09jMX4IJuANpE/EZbAhw0G8CgwrzU4YmXkn/h0wCDNsXdGarTNNHC3sU8yVUQ=="
DEST=src/ops/swagger-ui
FILES="swagger-ui-bundle.js swagger-ui.css favicon-32x32.png LICENSE NOTICE swagger-ui-bundle.js.LICENSE.txt"

if [ "${1:-}" = "--check" ]; then
    (cd "$DEST" && sha256sum --quiet -c SHA256SUMS)
    exit
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "swagger-ui-dist@$VERSION" >/dev/null)
tarball="$work/swagger-ui-dist-$VERSION.tgz"
got="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
if [ "$got" != "$INTEGRITY" ]; then
    echo "swagger-ui-dist@$VERSION: integrity $got, expected $INTEGRITY" >&2
    exit 1
fi
tar -xzf "$tarball" -C "$work"
mkdir -p "$DEST"
for f in $FILES; do cp "$work/package/$f" "$DEST/$f"; done
# The bundle and the stylesheet end by naming source maps, which are not vendored.
sed -i '/sourceMappingURL=/d' "$DEST/swagger-ui-bundle.js" "$DEST/swagger-ui.css"
(cd "$DEST" && sha256sum $FILES > SHA256SUMS)
echo "vendored swagger-ui-dist@$VERSION into $DEST"
