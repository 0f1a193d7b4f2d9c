#!/usr/bin/env bash
# Start time of the compiled binary on an existing data folder (embedded database, warm start):
# milliseconds from launch to the first 200 on GET /health, over several launches.
#
#   bash bench/start-time.sh [BINARY] [RUNS]      (defaults: dist/taskapi, 9)
#
# The first launch creates the data folder (initdb) and is not counted. Each launch runs with a
# clean environment (no JWT_SECRET: the generated one in the data folder is used) in a temporary
# folder, and is stopped with SIGTERM before the next. Prints every time and the median, and the
# median CPU time (user + system) the process had used by then, which a busy machine skews less.
# START_ENV="NAME=value ..." adds variables (an older binary needs JWT_SECRET).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${1:-$ROOT/dist/taskapi}
RUNS=${2:-9}
[[ "$BIN" == /* ]] || BIN="$PWD/$BIN"
[[ -x "$BIN" ]] || { echo "no executable at $BIN" >&2; exit 1; }
PORT=${START_PORT:-18281}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/taskapi-start.XXXXXX")
PID=''
cleanup() {
  if [[ -n "$PID" ]]; then kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT

now_ms() { date +%s%3N; }
TICK=$(getconf CLK_TCK)
cpu_ms() { awk -v t="$TICK" '{ print int(($14 + $15) * 1000 / t) }' "/proc/$1/stat"; }
launch() { # sets WALL and CPU: ms until /health answered 200, CPU ms used by then
  local start code
  start=$(now_ms)
  (cd "$TMP" && exec env -i PATH="$PATH" HOME="$TMP" PORT="$PORT" METRICS_PORT=0 LOG_LEVEL=warn ${START_ENV:-} "$BIN" >>"$TMP/log" 2>&1) &
  PID=$!
  for _ in $(seq 1 3000); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$PORT/health" || true)
    [[ "$code" == 200 ]] && break
    kill -0 "$PID" 2>/dev/null || { echo 'the server exited' >&2; tail "$TMP/log" >&2; exit 1; }
    sleep 0.005
  done
  WALL=$(($(now_ms) - start))
  CPU=$(cpu_ms "$PID")
  kill -TERM "$PID"
  wait "$PID" || true
  PID=''
}

median() { sort -n | sed -n "$(((RUNS + 1) / 2))p"; }
launch
echo "first start (creates the data folder, not counted): $WALL ms"
walls=()
cpus=()
for _ in $(seq 1 "$RUNS"); do
  launch
  walls+=("$WALL")
  cpus+=("$CPU")
done
echo "warm starts, ms to the first 200: ${walls[*]}"
echo "CPU used by then, ms: ${cpus[*]}"
echo "median warm start: $(printf '%s\n' "${walls[@]}" | median) ms" \
  "(CPU $(printf '%s\n' "${cpus[@]}" | median) ms) over $RUNS launches"
