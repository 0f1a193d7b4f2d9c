#!/usr/bin/env bash
# Headless Chromium screenshot of the interactive docs, for a person to look at.
#
#   bash scripts/docs-screenshot.sh [URL] [OUT.png]
#       URL  default http://127.0.0.1:8080/docs (a running server); OUT default docs.png
#
# With --serve instead of a URL, starts the server from source (port DOCS_PORT, default 18481) on a
# scratch data folder, takes the screenshot and stops it:
#   bash scripts/docs-screenshot.sh --serve [OUT.png]
#
# Chromium gets no network but loopback: every other request goes to a proxy address where
# nothing listens (127.0.0.1:9), and background networking, component updates, sync and
# first-run fetches are off. A page that needed a CDN would show blank.
# Needs Debian's `chromium` (apt-get install -y chromium).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
URL=${1:-http://127.0.0.1:8080/docs}
OUT=${2:-docs.png}
[[ "$OUT" == /* ]] || OUT="$PWD/$OUT"
CHROME=$(command -v chromium || command -v chromium-browser || true)
[[ -n "$CHROME" ]] || { echo 'chromium is not installed (apt-get install -y chromium)' >&2; exit 1; }

PROFILE=$(mktemp -d "${TMPDIR:-/tmp}/taskapi-chromium.XXXXXX")
DATA=''
PID=''
cleanup() {
  if [[ -n "$PID" ]]; then kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  rm -rf "$PROFILE" ${DATA:+"$DATA"}
}
trap cleanup EXIT

if [[ "$URL" == --serve ]]; then
  PORT=${DOCS_PORT:-18481}
  DATA=$(mktemp -d "${TMPDIR:-/tmp}/taskapi-docs-data.XXXXXX")
  (cd "$ROOT" && exec env PORT="$PORT" METRICS_PORT=0 HOST=127.0.0.1 DATA_DIR="$DATA" LOG_LEVEL=warn bun src/index.ts) &
  PID=$!
  for _ in $(seq 1 600); do
    curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/health" && break
    kill -0 "$PID" 2>/dev/null || { echo 'the server exited' >&2; exit 1; }
    sleep 0.1
  done
  URL="http://127.0.0.1:$PORT/docs"
fi

# --virtual-time-budget lets the page's scripts run (and render) before the picture is taken.
timeout 90 "$CHROME" --headless --no-sandbox --disable-gpu --disable-background-networking \
  --disable-component-update --no-first-run --disable-sync --disable-default-apps \
  --no-pings --disable-domain-reliability --disable-client-side-phishing-detection \
  --proxy-server=127.0.0.1:9 --proxy-bypass-list='127.0.0.1;localhost;[::1]' \
  --user-data-dir="$PROFILE" --window-size=1280,900 --virtual-time-budget=15000 \
  --screenshot="$OUT" "$URL" 2>"$PROFILE/chromium.log" || {
  cat "$PROFILE/chromium.log" >&2
  exit 1
}
echo "screenshot of $URL: $OUT ($(wc -c <"$OUT" | tr -d ' ') bytes)"
