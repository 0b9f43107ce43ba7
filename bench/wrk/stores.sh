#!/usr/bin/env bash
# Load-tests the axum example on each backend over loopback, alternating the backends, and
# prints requests/s and latency of each run; then fills each server-side store with logged-in
# sessions and prints what one session costs it in bytes.
#
#   cargo build --release --example axum \
#     --features axum,redis,postgres,mysql,sqlite,cookie-store,encryption
#   bash bench/wrk/stores.sh                  # 3 alternations x GET and POST x 10 s each
#   DURATION=5s ROUNDS=1 bash bench/wrk/stores.sh
#
# Needs `wrk`, and the servers the stores use: Redis (REDIS_URL), PostgreSQL (DATABASE_URL)
# and MySQL or MariaDB (MYSQL_URL), with the defaults below; `redis-cli`, `psql`, `mysql`
# and `sqlite3` for the sizes. Traffic goes to 127.0.0.1 only. Each run works in tables and
# keys of its own and removes them at the end.
set -euo pipefail

cd "$(dirname "$0")/../.."
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
FILL=${FILL:-5s}
SESSIONS_PER_THREAD=$((CONNECTIONS / THREADS))
SCRIPT=bench/wrk/sessions.lua
BIN=${CARGO_TARGET_DIR:-target}/release/examples/axum
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
MYSQL_URL=${MYSQL_URL:-mysql://root@127.0.0.1:3306/test}
KEY=$(head -c 32 /dev/urandom | base64)
WORK=$(mktemp -d)

test -x "$BIN" || {
  echo "missing $BIN: cargo build --release --example axum" \
    "--features axum,redis,postgres,mysql,sqlite,cookie-store,encryption" >&2
  exit 1
}

BACKENDS=(memory memory+encryption redis postgres mysql sqlite cookie)
declare -A STORE=([memory]=memory [memory+encryption]=memory [redis]=redis
  [postgres]=postgres [mysql]=mysql [sqlite]=sqlite [cookie]=cookie)
declare -A PORT
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

start() { # backend port
  local backend=$1 port=$2 encrypt=0
  [[ $backend == *+encryption ]] && encrypt=1
  SESSIONWARE_ADDR=127.0.0.1:$port SESSION_KEY=$KEY SESSION_STORE=${STORE[$backend]} \
    SESSION_ENCRYPT=$encrypt REDIS_URL=$REDIS_URL DATABASE_URL=$DATABASE_URL \
    MYSQL_URL=$MYSQL_URL SQLITE_PATH=$WORK/sessions.db RUST_LOG=${RUST_LOG:-warn} \
    "$BIN" >/dev/null 2>"$WORK/$backend.log" &
  pids+=($!)
  for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$port/plain" && return 0
    sleep 0.1
  done
  echo "$backend did not start:" >&2
  cat "$WORK/$backend.log" >&2
  exit 1
}

port=3100
for backend in "${BACKENDS[@]}"; do
  PORT[$backend]=$port
  start "$backend" "$port"
  port=$((port + 1))
done

run_wrk() { # url script-args...
  local url=$1
  shift
  local out
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$SCRIPT" "$url" -- "$@")
  local rps p50 p99 errors
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  errors=$(grep -E "Non-2xx|Socket errors" <<<"$out" || true)
  echo "$rps | $p50 | $p99 |${errors:+ $errors}"
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| round | backend | request | requests/s | p50 | p99 |"
echo "| ---: | --- | --- | ---: | ---: | ---: |"
for round in $(seq "$ROUNDS"); do
  echo "| $round | (no session) | GET /plain | $(run_wrk "http://127.0.0.1:${PORT[memory]}" "$SESSIONS_PER_THREAD" PLAIN)"
  for method in GET POST; do
    for backend in "${BACKENDS[@]}"; do
      echo "| $round | $backend | $method /counter | $(run_wrk "http://127.0.0.1:${PORT[$backend]}" "$SESSIONS_PER_THREAD" "$method")"
    done
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

# Bytes per session: a fresh instance of each server-side store, filled with logins for
# $FILL, then measured by the server itself.
for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
pids=()
wait 2>/dev/null || true
rm -f "$WORK"/sessions.db*
PREFIX="sw-size-$RANDOM:"
fill() { # backend
  local port=3200
  start "$1" "$port"
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$FILL" -s "$SCRIPT" "http://127.0.0.1:$port" \
    -- 1000000000 LOGIN >/dev/null
  kill "${pids[-1]}" 2>/dev/null || true
  wait "${pids[-1]}" 2>/dev/null || true
}
echo
echo "| store | sessions | bytes per session | measured as |"
echo "| --- | ---: | ---: | --- |"

psql_do() { psql -qtAX "$DATABASE_URL" -c "$1"; }
psql_do "DROP TABLE IF EXISTS public.sessionware_sessions" >/dev/null 2>&1 || true
fill postgres
rows=$(psql_do "SELECT count(*) FROM public.sessionware_sessions")
bytes=$(psql_do "SELECT pg_total_relation_size('public.sessionware_sessions')")
echo "| PostgreSQL | $rows | $((bytes / rows)) | pg_total_relation_size (table, indexes, TOAST) |"
psql_do "DROP TABLE public.sessionware_sessions"

mysql_db=${MYSQL_URL##*/}
mysql_do() { mysql -uroot -h127.0.0.1 -N -B "$mysql_db" -e "$1"; }
mysql_do "DROP TABLE IF EXISTS sessionware_sessions" 2>/dev/null || true
fill mysql
mysql_do "ANALYZE TABLE sessionware_sessions" >/dev/null
rows=$(mysql_do "SELECT count(*) FROM sessionware_sessions")
bytes=$(mysql_do "SELECT data_length + index_length FROM information_schema.tables
  WHERE table_schema = DATABASE() AND table_name = 'sessionware_sessions'")
echo "| MySQL (MariaDB) | $rows | $((bytes / rows)) | information_schema data_length + index_length |"
mysql_do "DROP TABLE sessionware_sessions"

fill sqlite
rows=$(sqlite3 "$WORK/sessions.db" "PRAGMA wal_checkpoint(TRUNCATE)" "SELECT count(*) FROM sessionware_sessions" | tail -n 1)
bytes=$(( $(sqlite3 "$WORK/sessions.db" "PRAGMA page_count") * $(sqlite3 "$WORK/sessions.db" "PRAGMA page_size") ))
echo "| SQLite | $rows | $((bytes / rows)) | page_count x page_size after a checkpoint |"

redis_before=$(redis-cli -u "$REDIS_URL" INFO memory | awk -F: '/^used_memory:/ {print $2+0}')
keys_before=$(redis-cli -u "$REDIS_URL" DBSIZE)
fill redis
redis_after=$(redis-cli -u "$REDIS_URL" INFO memory | awk -F: '/^used_memory:/ {print $2+0}')
sessions=$(redis-cli -u "$REDIS_URL" --scan --pattern 'sessionware:s:*' | wc -l)
keys_after=$(redis-cli -u "$REDIS_URL" DBSIZE)
echo "| Redis | $sessions | $(((redis_after - redis_before) / sessions)) | used_memory delta over $((keys_after - keys_before)) keys (sessions and user indexes) |"
redis-cli -u "$REDIS_URL" --scan --pattern 'sessionware:*' | xargs -r -n 500 redis-cli -u "$REDIS_URL" DEL >/dev/null
