#!/usr/bin/env bash
# Renders a report.html in headless Chromium (Debian's 'chromium', installed when missing and apt
# is usable) and writes a PNG screenshot, to look at a report as a reader would.
#   scripts/screenshot-report.sh runs/sweep-demo/report.html [out.png]
set -euo pipefail
html=${1:?usage: screenshot-report.sh REPORT.html [OUT.png]}
png=${2:-${html%.html}.png}
if ! command -v chromium >/dev/null; then
    if [[ "$(id -u)" == 0 ]]; then sudo=(); else sudo=(sudo -n); fi
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1350,1100 \
    --screenshot="$(realpath -m "$png")" "file://$(realpath "$html")" 2>/dev/null
echo "screenshot: $png"
