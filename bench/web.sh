#!/usr/bin/env bash
# The web application under load: the fund page (HTML, signed-in session) and the monitoring
# API (bearer token) of a partnership whose ledger holds N generated postings, measured with
# wrk on loopback at C concurrent connections, on SQLite and then on PostgreSQL.
#
# usage: bench/web.sh [N] [OUTDIR]      N defaults to 10000000; OUTDIR to target/bench-out
#   CONNECTIONS=64  THREADS=2  DURATION=20s  WARMUP=5s
#   BACKENDS="sqlite postgres"   PG=postgres://postgres@127.0.0.1:5432
# Paths are relative to the repository root; the shared bench folder sits beside it.
set -eu
cd "$(dirname "$0")/.."
N=${1:-10000000}
OUT=${2:-target/bench-out}
SHARED=${SHARED:-../shared/bench}
BIN=target/release/concordat
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
DURATION=${DURATION:-20s}
WARMUP=${WARMUP:-5s}
BACKENDS=${BACKENDS:-sqlite postgres}
PG=${PG:-postgres://postgres@127.0.0.1:5432}
PORT=${PORT:-18080}
AGREEMENT=halton-st-helens
FUND=aligned-budgets
PERIOD=2024/25-P06
PASSWORD=bench-password-long
export CONCORDAT_ACTOR=bench
unset DATABASE_URL
mkdir -p "$OUT"

for p in wrk curl; do command -v $p >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk curl >/dev/null; break; }; done
cargo build --release -p concordat

csv="$OUT/ledger-$N.csv"
[ -f "$csv" ] || python3 "$SHARED/gen_ledger.py" "$N" "$OUT/ledger-$N" --formats csv

# One database per backend: the example agreements, a budget per service line, the ledger,
# a pool manager to sign in as and a token for the API.
prepare() { # URL
  local db=$1
  for f in examples/agreements/*.toml; do $BIN agreement load "$f" --database "$db" >/dev/null; done
  for line in $(head -200000 "$csv" | tail -n +2 | cut -d, -f3 | sort -u); do
    $BIN budget set --agreement $AGREEMENT --fund $FUND --year 2024/25 --service-line "$line" \
      --annual 250000000.00 --reason "bench budget" --new-line --database "$db" >/dev/null 2>&1
  done
  $BIN import "$csv" --agreement $AGREEMENT --mapping examples/mappings/gen-ledger.toml \
    --database "$db" --no-progress | grep -E "postings|time taken"
  $BIN org add bench-council --name "Bench Council" --database "$db" >/dev/null
  $BIN org party bench-council --party $AGREEMENT:halton --database "$db" >/dev/null
  echo "$PASSWORD" | $BIN user add pm --name "Pool Manager" --organisation bench-council --database "$db" >/dev/null
  $BIN user grant pm --agreement $AGREEMENT --role pool_manager --database "$db" >/dev/null
  $BIN token create --agreement $AGREEMENT --name bench --role viewer --database "$db" 2>/dev/null
}

measure() { # NAME URL [wrk header]
  local name=$1 url=$2 hdr=$3
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" -H "$hdr" "$url" >/dev/null
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -H "$hdr" "$url" > "$OUT/wrk-$name.txt"
  local p50 p99 rps errors
  p50=$(awk '$1=="50%" {print $2}' "$OUT/wrk-$name.txt")
  p99=$(awk '$1=="99%" {print $2}' "$OUT/wrk-$name.txt")
  rps=$(awk '/Requests\/sec/ {print $2}' "$OUT/wrk-$name.txt")
  errors=$(awk '/Non-2xx|Socket errors/ {print}' "$OUT/wrk-$name.txt" | tr '\n' ' ')
  printf '| %s | %s | %s | %s | %s |\n' "$name" "$p50" "$p99" "$rps" "${errors:-none}"
}

echo "| what | p50 | p99 | requests/s | errors |"
echo "|---|---|---|---|---|"
for backend in $BACKENDS; do
  case $backend in
    sqlite) db="sqlite:$OUT/web-$N.db"; rm -f "$OUT/web-$N.db"*;;
    postgres)
      name="concordat_bench_web"
      psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $name WITH (FORCE)" -c "CREATE DATABASE $name" >/dev/null
      db="$PG/$name";;
  esac
  token=$(prepare "$db" | tail -n 1)
  $BIN serve --database "$db" --bind 127.0.0.1:$PORT --json-logs > "$OUT/serve-$backend.log" 2>&1 &
  server=$!
  trap 'kill $server 2>/dev/null' EXIT
  for _ in $(seq 50); do curl -sf http://127.0.0.1:$PORT/health >/dev/null && break; sleep 0.2; done
  jar="$OUT/cookies-$backend.txt"; rm -f "$jar"
  csrf=$(curl -s -c "$jar" http://127.0.0.1:$PORT/sign-in | grep -o 'name="csrf" value="[^"]*"' | head -1 | sed 's/.*value="//;s/"//')
  curl -s -b "$jar" -c "$jar" -o /dev/null -d "csrf=$csrf&username=pm&password=$PASSWORD&next=/agreements" http://127.0.0.1:$PORT/sign-in
  session=$(awk '$6=="concordat_session" {print $7}' "$jar")
  [ -n "$session" ] || { echo "sign-in failed" >&2; exit 1; }
  measure "$backend fund page" "http://127.0.0.1:$PORT/agreements/$AGREEMENT/funds/$FUND?period=$PERIOD" "Cookie: concordat_session=$session"
  measure "$backend monitoring API" "http://127.0.0.1:$PORT/api/v1/agreements/$AGREEMENT/funds/$FUND/monitoring?period=$PERIOD" "Authorization: Bearer $token"
  kill $server; wait $server 2>/dev/null || true
  trap - EXIT
done
