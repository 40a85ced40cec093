#!/usr/bin/env bash
# Time the README's first command as a new user meets it: clone this repository into a temp directory, run
# `bash deploy/quickstart.sh` there, and poll POST /similar and GET /readyz once a second.
#   bash benchmarks/quickstart_timing.sh [REV] [PORT]     (default: HEAD, 8765)
# Prints when the first answer came and when /readyz stopped reporting background indexing, in seconds since
# the clone started; the quickstart's own log (step durations) is kept in $OUT/quickstart.log.
set -uo pipefail
rev="${1:-HEAD}"; port="${2:-8765}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
out="$(mktemp -d /tmp/quickstart-timing.XXXXXX)"
t0=$(date +%s.%N)
git clone -q "$repo" "$out/clone" && git -C "$out/clone" checkout -q "$rev" || exit 1
echo "clone: $(echo "$(date +%s.%N) - $t0" | bc) s"
cd "$out/clone"
INCIDENT_SIM_PORT=$port INCIDENT_SIM_DATA_DIR="$out/clone/var" bash deploy/quickstart.sh > "$out/quickstart.log" 2>&1 &
pid=$!
first=""
while kill -0 $pid 2>/dev/null; do
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "localhost:$port/similar" -H 'content-type: application/json' \
         -d '{"short_description": "VPN disconnects every few minutes"}')
  if [ "$code" = "200" ] && [ -z "$first" ]; then
    first=$(date +%s.%N); echo "first answer: $(echo "$first - $t0" | bc) s"
  fi
  if [ -n "$first" ] && curl -s "localhost:$port/readyz" | grep -q '"indexing":null'; then
    echo "all indexed: $(echo "$(date +%s.%N) - $t0" | bc) s"; break
  fi
  sleep 1
done
kill $pid 2>/dev/null; sleep 3; pkill -f "$out/clone/.venv" 2>/dev/null
echo "log: $out/quickstart.log"
