#!/usr/bin/env bash
# Load-tests the axum example against its tower-sessions twin over loopback, alternating
# the two apps, and prints requests/s and p99 latency of each run.
#
#   cargo build --release --workspace --example axum --example tower_sessions_twin
#   bash bench/wrk/compare.sh                  # 3 alternations x GET and POST x 15 s each
#   DURATION=5s ROUNDS=1 bash bench/wrk/compare.sh
#
# Needs `wrk` (Debian: apt-get install wrk). Traffic goes to 127.0.0.1 only.
set -euo pipefail

cd "$(dirname "$0")/../.."
DURATION=${DURATION:-15s}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
SESSIONS_PER_THREAD=$((CONNECTIONS / THREADS))
SCRIPT=bench/wrk/sessions.lua
BIN=${CARGO_TARGET_DIR:-target}/release/examples

declare -A PORT=([sessionware]=3000 [tower-sessions]=3002)
declare -A EXAMPLE=([sessionware]=axum [tower-sessions]=tower_sessions_twin)

for app in sessionware tower-sessions; do
  test -x "$BIN/${EXAMPLE[$app]}" || {
    echo "missing $BIN/${EXAMPLE[$app]}: cargo build --release --workspace" \
      "--example axum --example tower_sessions_twin" >&2
    exit 1
  }
done

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

for app in sessionware tower-sessions; do
  SESSIONWARE_ADDR=127.0.0.1:${PORT[$app]} RUST_LOG=${RUST_LOG:-info} \
    "$BIN/${EXAMPLE[$app]}" >/dev/null 2>"/tmp/sessionware-wrk-$app.log" &
  pids+=($!)
done
for app in sessionware tower-sessions; do
  for _ in $(seq 50); do
    curl -s -o /dev/null "http://127.0.0.1:${PORT[$app]}/plain" && break
    sleep 0.1
  done
done

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| round | app | method | requests/s | p50 | p99 |"
echo "| ---: | --- | --- | ---: | ---: | ---: |"
for round in $(seq "$ROUNDS"); do
  for method in GET POST; do
    for app in sessionware tower-sessions; do
      out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$SCRIPT" \
        "http://127.0.0.1:${PORT[$app]}" -- "$SESSIONS_PER_THREAD" "$method")
      rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
      p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
      p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
      errors=$(grep -E "Non-2xx|Socket errors" <<<"$out" || true)
      echo "| $round | $app | $method /counter | $rps | $p50 | $p99 |${errors:+ $errors}"
    done
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
