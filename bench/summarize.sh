#!/usr/bin/env bash
# `concordat summarize` beside the peers a finance team might reach for (DuckDB, SQLite, Python,
# ledger), on the same generated ledger, totals by fund x service; then concordat's peak memory,
# and optionally concordat alone on a bigger file.
#
# usage: bench/summarize.sh [N] [OUTDIR]     N defaults to 1000000; OUTDIR to target/bench-out
#   BIG=10000000   also time concordat alone on a BIG-posting file (generating it takes minutes)
#   PEERS=...      passed on to peers.sh (default "duckdb sqlite python ledger")
#   RUNS=3         hyperfine runs per command
# Paths are relative to the repository root; the shared bench folder sits beside it.
set -eu
cd "$(dirname "$0")/.."
N=${1:-1000000}
OUT=${2:-target/bench-out}
SHARED=${SHARED:-../shared/bench}
BIN=target/release/concordat
mkdir -p "$OUT"

cargo build --release -p concordat

echo "## Peers, $N postings (medians; the machine is shared and noisy: compare ratios within one run)"
CONCORDAT=$BIN "$SHARED/peers.sh" "$N" "$OUT" | tee "$OUT/summarize-$N.md"

csv="$OUT/ledger-$N.csv"
peak() { # peak resident memory of a command, in MB
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -v "$@" 2>&1 >/dev/null | awk '/Maximum resident set size/ {printf "%.1f MB\n", $6/1024}'
  else
    echo "(no /usr/bin/time: install the 'time' package)"
  fi
}
echo
echo "concordat summarize peak RSS, $N postings: $(peak $BIN summarize "$csv" --by fund,service --format csv)"
echo "concordat summarize peak RSS, $N postings, --by fund,service,period,partner: $(peak $BIN summarize "$csv" --by fund,service,period,partner --format csv)"

if [ -n "${BIG:-}" ]; then
  big="$OUT/ledger-$BIG.csv"
  [ -f "$big" ] || python3 "$SHARED/gen_ledger.py" "$BIG" "$OUT/ledger-$BIG" --formats csv | tee "$OUT/gen-$BIG.txt"
  echo
  echo "## concordat alone, $BIG postings ($(du -h "$big" | cut -f1))"
  if command -v hyperfine >/dev/null; then
    hyperfine --warmup 1 --runs "${RUNS:-3}" -N \
      -n "read the bytes (cat)" "cat $big" \
      -n "concordat summarize" "$BIN summarize $big --by fund,service --format csv" \
      -n "concordat summarize, 4 dimensions" "$BIN summarize $big --by fund,service,period,partner --format csv"
  else
    time $BIN summarize "$big" --by fund,service --format csv >/dev/null
  fi
  echo "concordat summarize peak RSS, $BIG postings: $(peak $BIN summarize "$big" --by fund,service --format csv)"
fi
