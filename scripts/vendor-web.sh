#!/bin/sh
# Re-fetch the page's vendored map library from the npm registry, pinned by version and by the
# tarball's SHA-256, into dronectl/transports/web/static/vendor/maplibre-gl/ (see VERSIONS there).
# Run it to check the vendored copy or to move to another version (change both pins together).
# Needs npm (only its registry client: `npm pack`), tar and sha256sum. Nothing is loaded from the
# internet when the service runs: the page serves these files itself.
set -eu
VERSION=6.20.0
SHA256=6e38bea528895e64b5c9fd14971233bb863566a627b97073c0e18c567c277451
FILES="dist/maplibre-gl.mjs dist/maplibre-gl-worker.mjs dist/maplibre-gl.css LICENSE.txt"

here=$(cd "$(dirname "$0")/.." && pwd)
dest="$here/dronectl/transports/web/static/vendor/maplibre-gl"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "maplibre-gl@$VERSION" >/dev/null)
tarball="$work/maplibre-gl-$VERSION.tgz"
echo "$SHA256  $tarball" | sha256sum -c --quiet -
tar -xzf "$tarball" -C "$work"
mkdir -p "$dest"
for f in $FILES; do cp "$work/package/$f" "$dest/$(basename "$f")"; done
echo "maplibre-gl $VERSION -> $dest"
