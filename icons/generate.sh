#!/usr/bin/env bash
# Regenerates the Tauri desktop icon set in icons/ from icons/master.svg.
#
# Needs:
#   - rsvg-convert (Debian: apt-get install -y librsvg2-bin) to rasterise the SVG;
#   - ImageMagick `convert` is NOT needed (rsvg-convert already writes RGBA PNG);
#   - node + npm, and `npm ci` done in ui/ so the pinned @tauri-apps/cli
#     (ui/package-lock.json) is installed; it ships its own binary, works offline.
#
# Output (desktop only): 32x32.png 64x64.png 128x128.png 128x128@2x.png icon.png
# icon.icns icon.ico Square*Logo.png StoreLogo.png. The android/ and ios/ folders
# that `tauri icon` also writes are deleted: Tokenkeep is a desktop app.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
master="$here/master.svg"

command -v rsvg-convert >/dev/null || { echo "generate.sh: rsvg-convert missing (apt-get install -y librsvg2-bin)" >&2; exit 1; }
[ -x "$root/ui/node_modules/.bin/tauri" ] || { echo "generate.sh: run 'npm ci' in ui/ first" >&2; exit 1; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
png="$tmp/master-1024.png"

# --background-color none keeps the alpha channel; rsvg-convert writes 8-bit RGBA.
rsvg-convert --width 1024 --height 1024 --keep-aspect-ratio --background-color none \
  --format png --output "$png" "$master"

# Tauri panics at build time on PNGs that are not RGBA: check the colour type
# byte of the IHDR chunk (offset 25; 6 = truecolour with alpha).
colour_type="$(od -An -tu1 -j25 -N1 "$png" | tr -d ' ')"
[ "$colour_type" = 6 ] || { echo "generate.sh: master PNG is not RGBA (colour type $colour_type)" >&2; exit 1; }

(cd "$root" && npx --prefix ui --no-install tauri icon "$png" -o "$here")

rm -rf "$here/android" "$here/ios"

for f in "$here"/*.png; do
  ct="$(od -An -tu1 -j25 -N1 "$f" | tr -d ' ')"
  [ "$ct" = 6 ] || { echo "generate.sh: $f is not RGBA (colour type $ct)" >&2; exit 1; }
done
echo "generate.sh: icons written to $here"
