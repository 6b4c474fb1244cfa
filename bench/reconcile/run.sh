#!/usr/bin/env bash
# Reconciliation cost against REFRESH MATERIALIZED VIEW CONCURRENTLY, on one private
# PostgreSQL 15 cluster, in one run: dataset B of the shared baselines (1M events in 10K
# groups; count, sum, avg, min, max, count(DISTINCT), max(timestamptz)) kept by tally as
# view events_by_group and, next to it, as materialized view mv_events_by_group with its
# unique index. RUNS rounds, each: a 0.1% change (a third each updated, deleted, inserted,
# one transaction: change.sql), `tally sync`, then in alternating order
#   - `tally reconcile --view events_by_group` through the running daemon (command table),
#     wall time of the command, exit 0 required (no drift);
#   - REFRESH MATERIALIZED VIEW CONCURRENTLY mv_events_by_group, wall time in psql;
# and `tally reconcile` with no daemon running (in-process: start-up, catch-up and the
# comparison) once the daemon is stopped, RUNS times. Prints medians and the ratio
# reconcile / REFRESH CONCURRENTLY (target: <= 1.5).
# The SQL is copied from the shared baselines (seed.sql, group_by.sql, change.sql).
# Usage: bench/reconcile/run.sh
# Parameters (environment): RUNS=3 ROWS=1000000 NGROUPS=10000 USERS=100000 SEED=0.42
#   CHANGE_FRACTION=0.001 TALLY=build/bin/tally KEEP=0
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$BENCH_DIR/../.." && pwd)
TALLY=${TALLY:-$ROOT/build/bin/tally}
RUNS=${RUNS:-3} ROWS=${ROWS:-1000000} NGROUPS=${NGROUPS:-10000} USERS=${USERS:-100000}
SEED=${SEED:-0.42} CHANGE_FRACTION=${CHANGE_FRACTION:-0.001} KEEP=${KEEP:-0}
[ -x "$TALLY" ] || { echo "no tally binary at $TALLY (ninja -C build tally)" >&2; exit 1; }
WORK=$(mktemp -d /tmp/tally-bench-rc.XXXXXX)
chmod 755 "$WORK"
cp "$TALLY" "$WORK/tally"
TALLY=$WORK/tally
CLUSTER=$WORK/pg CFG=$WORK/tally.toml LOG=$WORK/tally.log RAW=$WORK/runs.tsv
TALLY_PID=
: >"$RAW"
log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }
q() { psql "$DSN" -v ON_ERROR_STOP=1 -qAtX "$@"; }
now() { date +%s.%N; }
ms_since() { awk -v s="$1" -v e="$(now)" 'BEGIN{printf "%.0f", (e - s) * 1000}'; }
cleanup() {
  local rc=$?
  set +e
  [ -n "$TALLY_PID" ] && kill -9 "$TALLY_PID" 2>/dev/null
  if [ $rc -ne 0 ]; then tail -30 "$LOG" >&2; fi
  if [ "$KEEP" = 1 ]; then
    "$ROOT/scripts/pgcluster" stop "$CLUSTER" >/dev/null 2>&1; echo "kept $WORK" >&2
  else
    "$ROOT/scripts/pgcluster" destroy "$CLUSTER" >/dev/null 2>&1; rm -rf "$WORK"
  fi
  exit $rc
}
trap cleanup EXIT
record() { printf '%s\t%s\n' "$1" "$2" >>"$RAW"; }
median() { awk -F'\t' -v k="$1" '$1 == k {a[++n] = $2 + 0} END {
  for (j = 2; j <= n; j++) { x = a[j]; for (l = j - 1; l >= 1 && a[l] > x; l--) a[l + 1] = a[l]; a[l + 1] = x }
  printf "%.0f", (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }' "$RAW"; }
minmax() { awk -F'\t' -v k="$1" '$1 == k {v = $2 + 0; if (!n++ || v < lo) lo = v; if (v > hi) hi = v}
  END {printf "%.0f | %.0f", lo, hi}' "$RAW"; }

"$ROOT/scripts/pgcluster" start "$CLUSTER" "shared_buffers = 1GB" "logical_decoding_work_mem = 64MB" \
  "fsync = on" "synchronous_commit = on" >/dev/null
DSN=$("$ROOT/scripts/pgcluster" dsn "$CLUSTER")
log "seeding $ROWS events in $NGROUPS groups"
q -v rows="$ROWS" -v groups="$NGROUPS" -v users="$USERS" -v start="2024-01-01 00:00:00+00" \
  -v seed="$SEED" -f "$BENCH_DIR/seed.sql" >/dev/null
QUERY=$(sed 's/;$//' "$BENCH_DIR/group_by.sql")
cat >"$CFG" <<TOML
[source]
dsn = "$DSN"
[state]
dir = "state"
[reconcile]
every = ""
[metrics]
listen = ""
[[views]]
name = "events_by_group"
query = """$QUERY"""
TOML
log "tally init (backfill) and the materialized view"
start=$(now)
"$TALLY" init --config "$CFG" >>"$LOG" 2>&1
log "tally init: $(ms_since "$start") ms"
q -c "CREATE MATERIALIZED VIEW mv_events_by_group AS $QUERY" \
  -c "CREATE UNIQUE INDEX ON mv_events_by_group (group_id)"
"$TALLY" run --config "$CFG" >>"$LOG" 2>&1 &
TALLY_PID=$!
n=$(awk -v f="$CHANGE_FRACTION" -v r="$ROWS" 'BEGIN{printf "%d", f * r + 0.5}')
for r in $(seq "$RUNS"); do
  q -v n_upd=$(((n + 2) / 3)) -v n_del=$(((n + 1) / 3)) -v n_ins=$((n / 3)) -v groups="$NGROUPS" \
    -v users="$USERS" -f "$BENCH_DIR/change.sql" >/dev/null
  "$TALLY" sync --config "$CFG" --timeout 120s
  q -c "CHECKPOINT"
  order="reconcile refresh"
  [ $((r % 2)) = 0 ] && order="refresh reconcile"
  for what in $order; do
    start=$(now)
    if [ "$what" = reconcile ]; then
      "$TALLY" reconcile --config "$CFG" --view events_by_group >>"$LOG" 2>&1 || die "reconcile found drift or failed"
      record "tally reconcile (daemon running)" "$(ms_since "$start")"
    else
      q -c "REFRESH MATERIALIZED VIEW CONCURRENTLY mv_events_by_group"
      record "REFRESH MATERIALIZED VIEW CONCURRENTLY" "$(ms_since "$start")"
    fi
  done
  log "round $r: $(tail -2 "$RAW" | tr '\t\n' '= ')"
done
kill -TERM "$TALLY_PID"; wait "$TALLY_PID"; TALLY_PID=
for r in $(seq "$RUNS"); do
  start=$(now)
  "$TALLY" reconcile --config "$CFG" --view events_by_group >>"$LOG" 2>&1 || die "reconcile (no daemon) found drift or failed"
  record "tally reconcile (no daemon: in-process)" "$(ms_since "$start")"
done
d=$(q -c "SELECT (SELECT count(*) FROM (TABLE events_by_group EXCEPT ALL TABLE mv_events_by_group) a) +
                 (SELECT count(*) FROM (TABLE mv_events_by_group EXCEPT ALL TABLE events_by_group) b)")
[ "$d" = 0 ] || die "the summary and the materialized view differ in $d rows"

rc=$(median "tally reconcile (daemon running)")
rf=$(median "REFRESH MATERIALIZED VIEW CONCURRENTLY")
echo "## reconcile vs REFRESH CONCURRENTLY: $ROWS rows, $NGROUPS groups, RUNS=$RUNS ($(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg))"
echo
echo "| ms | median | min | max |"
echo "|---|---:|---:|---:|"
for k in "tally reconcile (daemon running)" "tally reconcile (no daemon: in-process)" "REFRESH MATERIALIZED VIEW CONCURRENTLY"; do
  echo "| $k | $(median "$k") | $(minmax "$k") |"
done
echo
echo "ratio reconcile / REFRESH CONCURRENTLY (medians): $(awk -v a="$rc" -v b="$rf" 'BEGIN{printf "%.2f", a / b}') (target <= 1.5)"
