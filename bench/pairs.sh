#!/usr/bin/env bash
# concordat summarize and DuckDB timed in alternating pairs on the same ledger, each once per
# pair after one warm-up of each: on a shared machine whose speed moves within minutes, the
# ratio within a pair is steadier than two separate medians.
#
# usage: bench/pairs.sh FILE [PAIRS]     PAIRS defaults to 8; prints concordat s, DuckDB s, ratio
# Needs python3 with duckdb (pip install duckdb); builds concordat in release first.
set -eu
cd "$(dirname "$0")/.."
FILE=$1
PAIRS=${2:-8}
BIN=target/release/concordat
OUT=target/bench-out
mkdir -p "$OUT"
cargo build --release -p concordat >&2
# The same query as the shared peers script.
cat >"$OUT/duck.py" <<'PY'
import sys, duckdb
q = f"SELECT fund, service, sum(amount) FROM read_csv('{sys.argv[1]}', types={{'amount':'DECIMAL(18,2)'}}) GROUP BY ALL"
for r in duckdb.sql(q).fetchall(): print(*r, sep=',')
PY
seconds() { # wall time of a command, output discarded
  local start end
  start=$(date +%s.%N)
  "$@" >/dev/null 2>&1
  end=$(date +%s.%N)
  echo "$end - $start" | bc
}
seconds "$BIN" summarize "$FILE" --by fund,service --format csv >/dev/null
seconds python3 "$OUT/duck.py" "$FILE" >/dev/null
echo "concordat_s,duckdb_s,ratio"
for _ in $(seq "$PAIRS"); do
  c=$(seconds "$BIN" summarize "$FILE" --by fund,service --format csv)
  d=$(seconds python3 "$OUT/duck.py" "$FILE")
  echo "$c,$d,$(echo "scale=2; $d / $c" | bc)"
done
