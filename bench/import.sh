#!/usr/bin/env bash
# `concordat import` of a generated ledger into a fresh SQLite database, beside SQLite's own raw
# `.import` of the same CSV; then `concordat monitor` on the imported aggregates, peak memory,
# and a re-import of the same file (which must be refused as already imported).
#
# usage: bench/import.sh [N] [OUTDIR]     N defaults to 1000000; OUTDIR to target/bench-out
#   RUNS=3           hyperfine runs per import command (each on a fresh database)
#   MONITOR_RUNS=30  hyperfine runs per monitor command (after MONITOR_WARMUP=3 warm-ups)
#   WAL_RUNS=10      runs of monitor on the database as the import left it (if it left a WAL)
# Paths are relative to the repository root; the shared bench folder sits beside it.
set -eu
cd "$(dirname "$0")/.."
N=${1:-1000000}
OUT=${2:-target/bench-out}
SHARED=${SHARED:-../shared/bench}
BIN=target/release/concordat
AGREEMENT_FILE=examples/agreements/halton-st-helens.toml
AGREEMENT=halton-st-helens
FUND=aligned-budgets
PERIOD=2024/25-P06
MAPPING=examples/mappings/gen-ledger.toml
RUNS=${RUNS:-3}
MONITOR_RUNS=${MONITOR_RUNS:-30}
MONITOR_WARMUP=${MONITOR_WARMUP:-3}
WAL_RUNS=${WAL_RUNS:-10}
export CONCORDAT_ACTOR=${CONCORDAT_ACTOR:-bench}
unset DATABASE_URL
mkdir -p "$OUT"

need_apt=""
for p in hyperfine sqlite3; do command -v $p >/dev/null || need_apt="$need_apt $p"; done
[ -x /usr/bin/time ] || need_apt="$need_apt time"
if [ -n "$need_apt" ]; then apt-get update -qq && apt-get install -y -qq $need_apt >/dev/null; fi

cargo build --release -p concordat

# The same ledger peers.sh generates (CSV and journal), so summarize.sh can reuse it.
base="$OUT/ledger-$N"
csv="$base.csv"
[ -f "$csv" ] || python3 "$SHARED/gen_ledger.py" "$N" "$base" --formats csv,journal | tee "$OUT/gen-$N.txt"

db="$OUT/import-$N.db"        # concordat's database, fresh for each timed import
mdb="$OUT/monitor-$N.db"      # one import, kept for monitor
sdb="$OUT/sqlite-$N.db"       # SQLite's raw .import
url() { echo "sqlite:$1"; }
fresh="rm -f $db $db-wal $db-shm $db-journal && $BIN agreement load $AGREEMENT_FILE --database $(url "$db") >/dev/null"
import_cmd="$BIN import $csv --agreement $AGREEMENT --mapping $MAPPING --database $(url "$db") --no-progress"
create="CREATE TABLE p(date,fund,service,partner,subjective,supplier,reference,amount INTEGER)"
sqlite_import="printf '.import --csv --skip 1 $csv p\n' | sqlite3 -cmd '$create' $sdb"
sqlite_query="printf '.import --csv --skip 1 $csv p\nSELECT fund, service, sum(amount) FROM p GROUP BY fund, service;\n' | sqlite3 -cmd '$create' $sdb"
monitor="$BIN monitor --agreement $AGREEMENT --fund $FUND --period $PERIOD --database $(url "$mdb")"

peak() { # peak resident memory of a command, in MB
  /usr/bin/time -v "$@" 2>&1 >/dev/null | awk '/Maximum resident set size/ {printf "%.1f", $6/1024}'
}

wal_size() { # bytes of the WAL file left beside a database (0 if none)
  if [ -f "$1-wal" ]; then stat -c %s "$1-wal"; else echo 0; fi
}

echo "## One import into a fresh database, $N postings ($(du -h "$csv" | cut -f1))"
rm -f "$mdb" "$mdb-wal" "$mdb-shm" "$mdb-journal" "$mdb.snap" "$mdb-wal.snap"
$BIN agreement load "$AGREEMENT_FILE" --database "$(url "$mdb")"
$BIN import "$csv" --agreement "$AGREEMENT" --mapping "$MAPPING" --database "$(url "$mdb")" --no-progress
wal=$(wal_size "$mdb")
wal_mb=$(awk -v b="$wal" 'BEGIN {printf "%.0f", b/1048576}')
echo "database size after import: $(du -h "$mdb" | cut -f1); WAL file left beside it: $wal_mb MB"
# Keep the database as the import left it, to time the first opens after an import.
if [ "$wal" -gt 0 ]; then cp "$mdb" "$mdb.snap"; cp "$mdb-wal" "$mdb-wal.snap"; fi
echo
echo "## The same file again, on the same database (must be refused)"
again=$($BIN import "$csv" --agreement "$AGREEMENT" --mapping "$MAPPING" --database "$(url "$mdb")" --no-progress 2>&1) || true
echo "$again"
case $again in
  *"already imported"*) echo "ok: the second import was refused as already imported" ;;
  *) echo "FAIL: the second import was not refused as already imported" >&2; exit 1 ;;
esac

echo
echo "## Timing the imports (hyperfine, $RUNS runs, each on a fresh database; only the import is timed)"
hyperfine --runs "$RUNS" -N --export-json "$OUT/import-$N.json" \
  --prepare "sh -c '$fresh'" -n "concordat import (fresh SQLite: validate + persist + aggregates)" "$import_cmd" \
  --prepare "rm -f $sdb" -n "SQLite .import (raw, no validation)" "sh -c \"$sqlite_import\"" \
  --prepare "rm -f $sdb" -n "SQLite .import then GROUP BY fund, service" "sh -c \"$sqlite_query\""
echo "SQLite raw database size: $(du -h "$sdb" | cut -f1)"

echo
echo "## Timing monitor on the imported aggregates"
# A WAL file left beside the database (when the import's process exits without closing its
# connections) is read through again by every process that opens the database, until one closes
# cleanly and checkpoints it. So: first the open right after such an import (the database and
# WAL restored from a copy before each run), then the steady state, WAL checkpointed.
jsons="$OUT/import-$N.json"
if [ "$wal" -gt 0 ]; then
  restore="sh -c 'cp $mdb.snap $mdb && cp $mdb-wal.snap $mdb-wal && rm -f $mdb-shm'"
  echo "### right after the import, $wal_mb MB WAL left ($WAL_RUNS runs, each on a restored copy)"
  hyperfine --warmup 1 --runs "$WAL_RUNS" -N --export-json "$OUT/monitor-wal-$N.json" \
    --prepare "$restore" -n "concordat monitor --format table (first open after import, $wal_mb MB WAL left)" "$monitor --format table" \
    --prepare "$restore" -n "concordat monitor --format json (first open after import, $wal_mb MB WAL left)" "$monitor --format json"
  jsons="$jsons $OUT/monitor-wal-$N.json"
  rm -f "$mdb.snap" "$mdb-wal.snap"
else
  echo "(the import closed its database cleanly this time: no WAL left)"
fi
sqlite3 "$mdb" 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null
echo "### WAL checkpointed ($MONITOR_RUNS runs after $MONITOR_WARMUP warm-ups)"
hyperfine --warmup "$MONITOR_WARMUP" --runs "$MONITOR_RUNS" -N --export-json "$OUT/monitor-$N.json" \
  -n "concordat --version (process start only)" "$BIN --version" \
  -n "concordat monitor --format table (WAL checkpointed)" "$monitor --format table" \
  -n "concordat monitor --format json (WAL checkpointed)" "$monitor --format json"
jsons="$jsons $OUT/monitor-$N.json"

echo
echo "## Peak resident memory"
rm -f "$db" "$db-wal" "$db-shm" "$db-journal"
$BIN agreement load "$AGREEMENT_FILE" --database "$(url "$db")" >/dev/null
export PEAK_IMPORT PEAK_SQLITE PEAK_MONITOR_TABLE PEAK_MONITOR_JSON
PEAK_IMPORT=$(peak $import_cmd)
rm -f "$sdb"
PEAK_SQLITE=$(peak sh -c "$sqlite_import")
PEAK_MONITOR_TABLE=$(peak $monitor --format table)
PEAK_MONITOR_JSON=$(peak $monitor --format json)
echo "concordat import $PEAK_IMPORT MB; SQLite .import $PEAK_SQLITE MB;" \
  "monitor table $PEAK_MONITOR_TABLE MB, json $PEAK_MONITOR_JSON MB (WAL checkpointed)"

echo
python3 - "$N" $jsons <<'PY' | tee "$OUT/import-$N.md"
import json, os, sys
n = int(sys.argv[1])
runs = [r for f in sys.argv[2:] for r in json.load(open(f))['results']]
peaks = {
    "concordat import (": "PEAK_IMPORT",
    "SQLite .import (raw": "PEAK_SQLITE",
    "concordat monitor --format table (WAL": "PEAK_MONITOR_TABLE",
    "concordat monitor --format json (WAL": "PEAK_MONITOR_JSON",
}
def peak(cmd):
    for prefix, var in peaks.items():
        if cmd.startswith(prefix) and os.environ.get(var):
            return os.environ[var] + " MB"
    return "—"
print(f"| tool ({n:,} postings) | median | postings/s, or mean ± σ | peak memory |\n|---|---|---|---|")
for r in runs:
    c, m = r['command'], r['median']
    if c.startswith(("concordat import", "SQLite")):
        print(f"| {c} | {m:.3f} s | {n/m:,.0f}/s | {peak(c)} |")
    else:
        print(f"| {c} | {m*1000:.1f} ms | {r['mean']*1000:.1f} ± {r['stddev']*1000:.1f} ms | {peak(c)} |")
ci, si = runs[0]['median'], runs[1]['median']
print(f"\nconcordat import / SQLite raw .import: {ci/si:.2f}x the time (medians of {len(runs[0]['times'])} runs each).")
print("Monitor times include process start and opening the database; `--version` is the floor.")
PY
