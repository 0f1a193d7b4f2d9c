#!/usr/bin/env bash
# Lints the OpenAPI document the server serves with two tools nobody here wrote:
# Redocly CLI (recommended rules, redocly.yaml) and Spectral (spectral:oas, .spectral.yaml).
# Fails on any error; prints each tool's error and warning counts. Needs node (both are Node CLIs).
#
#   bash scripts/openapi-lint.sh [FILE]     (FILE: lint that document instead of the served one)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/taskapi-openapi.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
DOC=${1:-$TMP/openapi.json}
[[ -n "${1:-}" ]] || bun scripts/openapi-doc.ts "$DOC"
echo "document: $(wc -c <"$DOC" | tr -d ' ') bytes, $(grep -c '"operationId"' "$DOC") operations"

status=0
# No telemetry and no update check: CI has no network beyond the package registries.
REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true NO_UPDATE_NOTIFIER=1 \
  node_modules/.bin/redocly lint "$DOC" --config redocly.yaml --format=stylish >"$TMP/redocly.txt" 2>&1 ||
  status=1
grep -v -E '^\s*$|[║╔╚]' "$TMP/redocly.txt" || true
redocly_errors=$(grep -c -E '^\s*[0-9]+:[0-9]+\s+error\s' "$TMP/redocly.txt" || true)
redocly_warnings=$(grep -c -E '^\s*[0-9]+:[0-9]+\s+warning\s' "$TMP/redocly.txt" || true)

node_modules/.bin/spectral lint "$DOC" --ruleset .spectral.yaml --fail-severity=error \
  --format=text >"$TMP/spectral.txt" 2>&1 || status=1
cat "$TMP/spectral.txt"
echo
spectral_errors=$(grep -c -E ':[0-9]+:[0-9]+ error ' "$TMP/spectral.txt" || true)
spectral_warnings=$(grep -c -E ':[0-9]+:[0-9]+ warning ' "$TMP/spectral.txt" || true)

echo "openapi lint: redocly ${redocly_errors} error(s) ${redocly_warnings} warning(s);" \
  "spectral ${spectral_errors} error(s) ${spectral_warnings} warning(s)"
exit "$status"
