#!/usr/bin/env bash
# fsync()/fdatasync() calls per commit of the embedded database, traced with strace (Linux):
# starts the server on a new DATA_DIR, creates 200 tasks one at a time with curl (one commit each)
# and counts the calls made meanwhile.   usage: bash bench/fsync-per-commit.sh [true|false] [port]
set -u
F=${1:-true}; PORT=${2:-18621}; D=$(mktemp -d); T=$D.trace
(cd "$(dirname "$0")/.." && EMBEDDED_FSYNC=$F DATA_DIR=$D/data PORT=$PORT HOST=127.0.0.1 LOG_LEVEL=warn timeout 300 strace -f -qq -e trace=fsync,fdatasync -o $T bun src/index.ts >/dev/null 2>&1 &)
API=http://127.0.0.1:$PORT/api/v1
for i in $(seq 1 60); do curl -s -o /dev/null $API/../../health && break; sleep 1; done
curl -s -X POST $API/auth/register -H 'content-type: application/json' -d '{"email":"ada@example.com","username":"ada","password":"correct horse battery"}' > $D/login
A=$(sed -E 's/.*"access_token":"([^"]+)".*/\1/' $D/login)
P=$(curl -s -X POST $API/projects -H "authorization: Bearer $A" -H 'content-type: application/json' -d '{"name":"L"}' | sed -E 's/^\{"id":"([^"]+)".*/\1/')
b=$(grep -c 'sync(' $T)
ok=0; for i in $(seq 1 200); do s=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -X POST $API/tasks -H "authorization: Bearer $A" -H 'content-type: application/json' -d "{\"project_id\":\"$P\",\"title\":\"t$i\"}"); [ "$s" = 201 ] && ok=$((ok+1)); done
a=$(grep -c 'sync(' $T)
echo "EMBEDDED_FSYNC=$F: $ok tasks created, fsync/fdatasync calls during them: $((a-b)) ($(grep 'sync(' $T | tail -n +$((b+1)) | grep -c fdatasync) fdatasync); initdb+start: $b"
pid=$(ss -ltnp | grep ":$PORT " | grep -o 'pid=[0-9]*' | cut -d= -f2); kill -TERM $pid; sleep 3; rm -rf $D $T
