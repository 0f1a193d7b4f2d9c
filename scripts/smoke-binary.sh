#!/usr/bin/env bash
# Smoke test of the compiled executable, run from an empty folder away from node_modules and src/
#
#   bash scripts/smoke-binary.sh [--build] [BINARY]      (BINARY defaults to dist/taskapi)
#
# --build  First runs `bun run build --outfile=BINARY` with canary secrets in the build
#          environment (TASKAPI_BUILD_CANARY and JWT_SECRET set to fresh random values), then checks
#          that the binary contains neither. This is the form CI uses: one command builds and
#          tests, and the canary check cannot be skipped by accident.
# Without --build the binary is tested as it is. If TASKAPI_BUILD_CANARY is set, it must be the
# value that was set while the binary was built, and the binary must not contain it; if it is
# unset, that check is reported as "skip".
#
# What it does: copies the binary into a new empty temporary folder and starts it there with a
# clean environment (only PATH, HOME, TMPDIR and PORT, LOG_LEVEL=warn: no JWT_SECRET, no
# DATA_DIR), so it uses embedded PostgreSQL in ./data and generates its JWT secret there (0600);
# waits for GET /health to answer 200; checks that /docs, its Scalar bundle and /docs/json answer
# from the binary itself; registers, logs in and reads /api/v1/users/me; checks the data folder;
# reads the idle RSS; sends SIGTERM and expects exit status 0 within 15 s; starts it again on the
# existing data folder (warm start) and logs in with the same account (the kept secret); finally
# checks that the binary runs as production even when NODE_ENV is unset (with DATABASE_URL set it
# must refuse to start without JWT_SECRET).
# Measurements: binary size, cold start (first run, includes initdb) and warm start in ms from
# process start to the first 200 on /health, idle RSS.
#
# Environment: SMOKE_PORT (first port to try, default 18181; must stay below 32768),
# SMOKE_KEEP=1 keeps the temporary folder.
# Exit status is non-zero on any failure; the server is always stopped. Total run time is capped
# at 110 s. Needs bash, curl, GNU date and grep; Linux for the RSS reading.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=0
BIN=''
for arg in "$@"; do
  case "$arg" in
    --build) BUILD=1 ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
      exit 0
      ;;
    -*)
      echo "unknown option: $arg" >&2
      exit 2
      ;;
    *) BIN=$arg ;;
  esac
done
if [[ -z "$BIN" ]]; then BIN="$ROOT/dist/taskapi"; elif [[ "$BIN" != /* ]]; then BIN="$PWD/$BIN"; fi

DEADLINE=$((SECONDS + 110))
HEALTH_WAIT=60
STOP_WAIT=15
TMP=''
SERVER_PID=''
LOG=''

say() { printf '%-5s %s\n' "$1" "$2"; }
pass() { say ok "$1"; }
info() { say info "$1"; }
fail() {
  say FAIL "$1" >&2
  if [[ -n "$LOG" && -s "$LOG" ]]; then
    echo '----- server output (last 30 lines) -----' >&2
    tail -n 30 "$LOG" >&2
  fi
  exit 1
}
now_ms() { date +%s%3N; }
left() { echo $((DEADLINE - SECONDS)); }
bounded() { # the smaller of $1 seconds and the time left
  local l
  l=$(left)
  ((l < 1)) && fail 'overall time limit (110 s) reached'
  echo $(($1 < l ? $1 : l))
}
random_hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }

stop_server() { # best effort, for the exit trap
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=''
}
cleanup() {
  local status=$?
  stop_server
  if [[ -n "$TMP" ]]; then
    if [[ "${SMOKE_KEEP:-0}" == 1 ]]; then echo "kept $TMP" >&2; else rm -rf "$TMP"; fi
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

command -v curl >/dev/null || fail 'curl is required'

# ---- build (optional) and static checks of the binary ------------------------------------------
BUILD_JWT_CANARY=''
if ((BUILD)); then
  TASKAPI_BUILD_CANARY="canary-$(random_hex 24)"
  export TASKAPI_BUILD_CANARY
  BUILD_JWT_CANARY=$(random_hex 32)
  (cd "$ROOT" && JWT_SECRET="$BUILD_JWT_CANARY" bun run build "--outfile=$BIN") ||
    fail 'bun run build'
  pass 'bun run build (with canary secrets in the build environment)'
fi
[[ -f "$BIN" && -x "$BIN" ]] || fail "no executable at $BIN (run bun run build, or pass --build)"
SIZE=$(wc -c <"$BIN" | tr -d ' ')
info "binary $BIN: $SIZE bytes ($(awk -v b="$SIZE" 'BEGIN { printf "%.1f", b / 1048576 }') MiB)"

contains() { LC_ALL=C grep -a -F -q -e "$1" "$BIN"; }
if [[ -n "${TASKAPI_BUILD_CANARY:-}" ]]; then
  contains "$TASKAPI_BUILD_CANARY" && fail 'the binary contains the value of TASKAPI_BUILD_CANARY'
  pass 'binary does not contain the build canary TASKAPI_BUILD_CANARY'
else
  say skip 'build canary: TASKAPI_BUILD_CANARY is unset (pass --build, or set it for the build and here)'
fi
if [[ -n "$BUILD_JWT_CANARY" ]]; then
  contains "$BUILD_JWT_CANARY" && fail 'the binary contains the JWT_SECRET of the build environment'
  pass 'binary does not contain the JWT_SECRET of the build environment'
fi
# An absolute path into the build tree would mean a file is loaded from there at run time (B7).
contains "$ROOT/" && fail "the binary refers to the build tree $ROOT/"
pass "binary holds no path into the build tree ($ROOT)"

# ---- run it from an empty folder ------------------------------------------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/taskapi-smoke.XXXXXX")
cp "$BIN" "$TMP/taskapi"
LOG="$TMP/server.log"

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
PORT=''
for p in $(seq "${SMOKE_PORT:-18181}" $((${SMOKE_PORT:-18181} + 100))); do
  ((p < 32768)) || break
  if ! port_in_use "$p"; then
    PORT=$p
    break
  fi
done
[[ -n "$PORT" ]] || fail 'no free port found below 32768'
BASE="http://127.0.0.1:$PORT"

# Starts the binary in $TMP with a clean environment plus "$@"; sets SERVER_PID and START_MS.
start_server() {
  START_MS=$(now_ms)
  (
    cd "$TMP"
    exec env -i PATH="$PATH" HOME="$TMP" TMPDIR="${TMPDIR:-/tmp}" "$@" ./taskapi >>"$LOG" 2>&1
  ) &
  SERVER_PID=$!
}
# Waits for the first 200 on /health; sets READY_MS (ms since START_MS).
wait_healthy() {
  local limit code
  limit=$((SECONDS + $(bounded "$HEALTH_WAIT")))
  while ((SECONDS < limit)); do
    kill -0 "$SERVER_PID" 2>/dev/null || fail "the server exited before answering /health"
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$BASE/health" || true)
    if [[ "$code" == 200 ]]; then
      READY_MS=$(($(now_ms) - START_MS))
      return 0
    fi
    sleep 0.02
  done
  fail "GET /health did not answer 200 within ${HEALTH_WAIT} s"
}
# SIGTERM, then the exit status must be 0 within STOP_WAIT seconds.
stop_gracefully() {
  local limit status=0 t0
  t0=$(now_ms)
  kill -TERM "$SERVER_PID"
  limit=$((SECONDS + $(bounded "$STOP_WAIT")))
  while kill -0 "$SERVER_PID" 2>/dev/null; do
    ((SECONDS < limit)) || fail "still running ${STOP_WAIT} s after SIGTERM"
    sleep 0.05
  done
  wait "$SERVER_PID" || status=$?
  SERVER_PID=''
  ((status == 0)) || fail "exit status $status after SIGTERM (expected 0)"
  pass "SIGTERM: exited 0 after $(($(now_ms) - t0)) ms"
}
# request METHOD PATH EXPECTED_STATUS [JSON_BODY] [TOKEN]; the body is left in $BODY.
request() {
  local method=$1 path=$2 want=$3 data=${4:-} token=${5:-} code
  local args=(-s -o "$TMP/body" -w '%{http_code}' --max-time 10 -X "$method")
  [[ -n "$data" ]] && args+=(-H 'Content-Type: application/json' --data "$data")
  [[ -n "$token" ]] && args+=(-H "Authorization: Bearer $token")
  code=$(curl "${args[@]}" "$BASE$path" || true)
  BODY=$(cat "$TMP/body" 2>/dev/null || true)
  [[ "$code" == "$want" ]] || fail "$method $path answered ${code:-nothing} (expected $want): ${BODY:0:300}"
  pass "$method $path -> $code"
}
json_string() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p" <<<"$BODY"; }

# Nothing but a port: the binary must run with no configuration.
RUN_ENV=(PORT="$PORT" METRICS_PORT=0 LOG_LEVEL=warn)

# Cold start: empty data folder, so this includes initdb and the migrations.
start_server "${RUN_ENV[@]}"
wait_healthy
COLD_MS=$READY_MS
pass "cold start (empty data folder): /health 200 after $COLD_MS ms"
grep -q '"database":"healthy"' <<<"$(curl -s --max-time 5 "$BASE/health")" ||
  fail '/health does not report the database as healthy'
pass '/health reports the database as healthy'

SUFFIX=$(random_hex 4)
EMAIL="smoke-$SUFFIX@example.com"
PASSWORD="smoke-$(random_hex 12)"
docs_asset() { # PATH EXPECTED_CONTENT_TYPE_PREFIX
  local out
  out=$(curl -s -o "$TMP/asset" -w '%{http_code} %{content_type}' --max-time 10 "$BASE$1" || true)
  [[ "$out" == "200 $2"* ]] || fail "GET $1 answered '$out' (expected 200 $2)"
  pass "GET $1 -> $out ($(wc -c <"$TMP/asset" | tr -d ' ') bytes)"
}
docs_asset /docs text/html
BUNDLE_PATH=$(grep -o 'src="/docs/assets/scalar-[^"]*\.js"' "$TMP/asset" | sed 's/^src="//; s/"$//')
[[ -n "$BUNDLE_PATH" ]] || fail '/docs does not load the Scalar bundle from /docs/assets/'
grep -q -E '(src|href)="(https?:)?//' "$TMP/asset" && fail '/docs refers to another origin'
pass '/docs refers to this server only'
docs_asset "$BUNDLE_PATH" text/javascript
docs_asset /docs/json application/json

request POST /api/v1/auth/register 201 \
  "{\"email\":\"$EMAIL\",\"username\":\"smoke_$SUFFIX\",\"password\":\"$PASSWORD\"}"
request POST /api/v1/auth/login 200 "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\"}"
TOKEN=$(json_string access_token)
[[ -n "$TOKEN" ]] || fail 'the login answer has no access_token'
request GET /api/v1/users/me 200 '' "$TOKEN"
[[ "$BODY" == *"\"$EMAIL\""* ]] || fail "/users/me is not the registered account: ${BODY:0:300}"
pass '/users/me is the registered account'

[[ -d "$TMP/data/pg" ]] || fail 'DATA_DIR ./data/pg was not created'
pass 'data folder ./data/pg created'
[[ -s "$TMP/data/jwt-secret" ]] || fail 'no generated secret in ./data/jwt-secret'
[[ "$(stat -c %a "$TMP/data/jwt-secret")" == 600 ]] || fail './data/jwt-secret is not mode 0600'
pass 'JWT secret generated into ./data/jwt-secret (mode 0600)'
grep -q 'JWT_SECRET is not set' "$LOG" || fail 'no warning about the generated JWT secret'
pass 'the server warned that it uses a generated JWT secret'
JWT=$(tr -d '\n' <"$TMP/data/jwt-secret")
contains "$JWT" && fail 'the binary contains the generated JWT secret'

sleep 1
if [[ -r "/proc/$SERVER_PID/status" ]]; then
  RSS_KB=$(awk '/^VmRSS:/ { print $2 }' "/proc/$SERVER_PID/status")
  info "idle RSS after the round trip: $RSS_KB kB ($((RSS_KB / 1024)) MiB)"
else
  RSS_KB=''
  say skip 'idle RSS: /proc is not available'
fi

stop_gracefully
[[ ! -e "$TMP/data/taskapi.lock" ]] || fail 'the data folder lock was not released on shutdown'
pass 'data folder lock released'

# Warm start: the same data folder; the account must still be there.
start_server "${RUN_ENV[@]}"
wait_healthy
WARM_MS=$READY_MS
pass "warm start (existing data folder): /health 200 after $WARM_MS ms"
request POST /api/v1/auth/login 200 "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\"}"
sleep 1
if [[ -r "/proc/$SERVER_PID/status" ]]; then
  WARM_RSS_KB=$(awk '/^VmRSS:/ { print $2 }' "/proc/$SERVER_PID/status")
  info "idle RSS after a warm start and a login: $WARM_RSS_KB kB ($((WARM_RSS_KB / 1024)) MiB)"
fi
stop_gracefully

if grep -a -F -q -e "$JWT" "$LOG"; then fail 'the server output contains the JWT secret'; fi
pass 'server output does not contain the JWT secret'

# Production by default (B6): with DATABASE_URL set (instances may share the database) and
# neither NODE_ENV nor JWT_SECRET, a production binary must refuse to start instead of generating
# a secret. The address is never reached: the configuration is checked first.
mkdir "$TMP/prod-check"
PROD_OUT="$TMP/prod-check/out.log"
(
  cd "$TMP/prod-check"
  exec env -i PATH="$PATH" HOME="$TMP" TMPDIR="${TMPDIR:-/tmp}" PORT="$PORT" METRICS_PORT=0 DATA_DIR=./data \
    DATABASE_URL=postgres://taskapi@127.0.0.1:1/taskapi LOG_LEVEL=warn "$TMP/taskapi" >"$PROD_OUT" 2>&1
) &
SERVER_PID=$!
limit=$((SECONDS + $(bounded 10)))
while kill -0 "$SERVER_PID" 2>/dev/null && ((SECONDS < limit)); do sleep 0.05; done
if kill -0 "$SERVER_PID" 2>/dev/null; then
  prod_status=running
  stop_server
else
  prod_status=0
  wait "$SERVER_PID" || prod_status=$?
  SERVER_PID=''
fi
if [[ "$prod_status" != 0 && "$prod_status" != running ]] &&
  grep -q 'required when NODE_ENV=production' "$PROD_OUT"; then
  pass 'without NODE_ENV the binary runs as production (with DATABASE_URL, refuses to start without JWT_SECRET)'
else
  fail 'without NODE_ENV the binary does not run as production (it started without JWT_SECRET)'
fi

SIZE_MIB=$(awk -v b="$SIZE" 'BEGIN { printf "%.1f", b / 1048576 }')
echo "summary: size=${SIZE} bytes (${SIZE_MIB} MiB) cold_start_ms=$COLD_MS warm_start_ms=$WARM_MS" \
  "idle_rss_kb=${RSS_KB:-n/a} warm_idle_rss_kb=${WARM_RSS_KB:-n/a} total_s=$SECONDS"
pass 'smoke test of the binary passed'
