#!/usr/bin/env bash
# Regenerates docs/matrix.png, the README's picture of the demo's HTML report:
#   bash docs/screenshot.sh
# Needs Debian's chromium (apt-get install -y chromium). "Now" is pinned so deployment ages
# do not change between runs.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The demo exits 1 on purpose (denied findings): that is not a failure here.
PRODIFF_NOW=2026-11-22T12:00:00Z bash "$here/../fixtures/demo/run.sh" status --format html >"$work/demo.html" || [ $? -eq 1 ]
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$work/profile" \
  --window-size=1240,1120 --screenshot="$here/matrix.png" "file://$work/demo.html" 2>/dev/null
echo "wrote $here/matrix.png"
