#!/usr/bin/env bash
# Instructions per single-event WebSocket publish, all server threads, user
# space (callgrind counts instructions: repeatable on a noisy 2-core machine).
# 2,000 warm-up publishes, then the counters are zeroed and N are counted.
#
# usage: bench/callgrind_ws_publish.sh TAILBUS_BIN [N=20000] [SESSIONS=10]
# Needs valgrind and python3-websockets. Prints one line.
set -euo pipefail
BIN=$1; N=${2:-20000}; SESSIONS=${3:-10}; PORT=${PORT:-18556}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/tailbus-callgrind.XXXXXX)
trap 'pkill -INT -f "callgrind-out-file=$work/" || true; sleep 2; rm -rf "$work"' EXIT
valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" "$BIN" serve \
  --db "$work/t.db" --listen 127.0.0.1:$PORT --publish-rate 0 --connection-rate-per-ip 0 \
  >"$work/server.log" 2>&1 &
for _ in $(seq 1 60); do
  curl -sf "http://127.0.0.1:$PORT/api/status" >/dev/null && break
  sleep 1
done
url="ws://127.0.0.1:$PORT/ws?filter=%7B%22event_types%22%3A%5B%5D%7D"  # receives nothing
/usr/bin/python3 "$here/ws_publisher.py" "$url" 2000 "$SESSIONS"
callgrind_control -z >/dev/null
/usr/bin/python3 "$here/ws_publisher.py" "$url" "$N" "$SESSIONS"
callgrind_control -d >/dev/null
total=$(callgrind_annotate "$work/cg.out.1" | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
echo "$BIN: $total instructions for $N publishes, $((total / N)) per publish"
