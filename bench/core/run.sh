#!/usr/bin/env bash
# tally's core benchmark, on one private PostgreSQL 15 cluster, in one run:
#  1. Throughput: RUNS times, 1M row changes (inserts, updates of aggregated columns and
#     group keys, deletes; 1000-row transactions) while tally is stopped, then, in
#     alternating order, pg_recvlogical draining its own pgoutput slot to --endpos (the
#     walsender's ceiling) and tally catching up (from `tally run` to `tally sync`
#     returning). Three views read the table.
#  2. Staleness: tally running and caught up, a steady pgbench load (STEADY_RATE row
#     changes/s for STEADY_SECONDS) plus a probe that commits a row every PROBE_MS and
#     polls a 4th view until it shows it; commit-to-visible latency p50/p99/max.
#  3. tally's peak RSS (VmHWM) during each catch-up and during the steady load.
# Then every summary must equal its query (EXCEPT ALL both ways).
# Prints markdown tables on stdout, progress on stderr. Method: bench/README.md.
# Usage: bench/core/run.sh
# Parameters (environment), with defaults:
#   RUNS=3 CHANGES=1000000 TXN_ROWS=1000 INITIAL_ROWS=200000
#   STEADY_RATE=5000 (row changes/s; pgbench transactions of STEADY_TXN_ROWS=10 changes)
#   STEADY_SECONDS=30 STEADY_CLIENTS=2 PROBE_MS=100 POLL_MS=5 WINDOW=5 (s, time series)
#   TALLY=build/bin/tally PGBIN=/usr/lib/postgresql/15/bin KEEP=0 (1: keep the scratch dir)
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$BENCH_DIR/../.." && pwd)
TALLY=${TALLY:-$ROOT/build/bin/tally}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
RUNS=${RUNS:-3}
CHANGES=${CHANGES:-1000000}
TXN_ROWS=${TXN_ROWS:-1000}
INITIAL_ROWS=${INITIAL_ROWS:-200000}
STEADY_RATE=${STEADY_RATE:-5000}
STEADY_TXN_ROWS=${STEADY_TXN_ROWS:-10}
STEADY_SECONDS=${STEADY_SECONDS:-30}
STEADY_CLIENTS=${STEADY_CLIENTS:-2}
WINDOW=${WINDOW:-5}
PROBE_MS=${PROBE_MS:-100}
POLL_MS=${POLL_MS:-5}
KEEP=${KEEP:-0}
# The walsender baseline's server settings (shared_buffers, fsync and full-page writes
# on), over scripts/pgcluster's test defaults. logical_decoding_work_mem: pgcluster sets
# 64kB so tests exercise streaming; at 64MB (PostgreSQL's default) a 1000-row
# transaction is decoded in memory and sent at its commit, not streamed.
PG_CONF=(
  "shared_buffers = 1GB"
  "logical_decoding_work_mem = 64MB"
  "fsync = on"
  "full_page_writes = on"
  "synchronous_commit = on"
)
RECV_OPTS=(-o proto_version=2 -o streaming=on -o publication_names=tally)
CLK_TCK=$(getconf CLK_TCK)
[ -x "$TALLY" ] || { echo "no tally binary at $TALLY (ninja -C build tally)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/tally-bench.XXXXXX)
chmod 755 "$WORK"
# Every run uses this copy: a rebuild of the original during the benchmark must not
# change the binary (or its state format) between runs.
TALLY_SRC=$TALLY
TALLY_BUILT=$(date -u -r "$TALLY" +%FT%TZ)
cp "$TALLY" "$WORK/tally"
TALLY=$WORK/tally
CLUSTER=$WORK/pg
CFG=$WORK/tally.toml
LOG=$WORK/tally.log
RAW=$WORK/runs.tsv
TALLY_PID=
: >"$RAW"
: >"$LOG"

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }
now() { date +%s.%N; }
q() { psql "$DSN" -v ON_ERROR_STOP=1 -qAtX "$@"; }
calc() { awk "BEGIN{printf \"$1\", $2}"; }

cleanup() {
  local rc=$?
  set +e
  [ -n "$TALLY_PID" ] && kill -9 "$TALLY_PID" 2>/dev/null
  jobs -p | xargs -r kill 2>/dev/null
  if [ $rc -ne 0 ]; then
    echo "--- tally log (tail) ---" >&2
    tail -40 "$LOG" >&2 2>/dev/null || true
    echo "--- server log (tail) ---" >&2
    tail -20 "$CLUSTER/server.log" >&2 2>/dev/null || true
  fi
  if [ "$KEEP" = 1 ]; then
    "$ROOT/scripts/pgcluster" stop "$CLUSTER" >/dev/null 2>&1 || true
    echo "kept $WORK" >&2
  else
    "$ROOT/scripts/pgcluster" destroy "$CLUSTER" >/dev/null 2>&1 || true
    rm -rf "$WORK"
  fi
  exit $rc
}
trap cleanup EXIT

# record METRIC PRINTF-FORMAT VALUE: one measured value of one run.
record() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$RAW"; }

# summarize: per metric, in order of first appearance: median, min, max, runs.
summarize() {
  awk -F'\t' '
    { if (!($1 in n)) order[++m] = $1; fmt[$1] = $2; v[$1, ++n[$1]] = $3 }
    END {
      print "| | median | min | max | runs |"
      print "|---|---:|---:|---:|---:|"
      for (i = 1; i <= m; i++) {
        k = order[i]; c = n[k]
        for (j = 1; j <= c; j++) a[j] = v[k, j] + 0
        for (j = 2; j <= c; j++) { x = a[j]; for (l = j - 1; l >= 1 && a[l] > x; l--) a[l + 1] = a[l]; a[l + 1] = x }
        med = (c % 2) ? a[(c + 1) / 2] : (a[c / 2] + a[c / 2 + 1]) / 2
        f = fmt[k]
        printf "| %s | " f " | " f " | " f " | %d |\n", k, med, a[1], a[c], c
      }
    }' "$RAW"
}

# cpu_ticks PID: user + system clock ticks of a process (all its threads) so far.
cpu_ticks() {
  local s
  s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  s=${s##*) }
  awk '{print $12 + $13}' <<<"$s"
}
proc_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }  # proc_kb PID VmHWM
# Server processes of tally's connections (the walsender and the sink's backend).
tally_backend_pids() { q -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'tally'"; }
sum_ticks() { local t=0 p; for p in "$@"; do t=$((t + $(cpu_ticks "$p"))); done; echo $t; }

start_tally() {
  "$TALLY" run --config "$CFG" >>"$LOG" 2>&1 &
  TALLY_PID=$!
}
stop_tally() {
  kill -TERM "$TALLY_PID"
  local rc=0
  wait "$TALLY_PID" || rc=$?
  TALLY_PID=
  [ $rc -eq 0 ] || die "tally run exited with $rc after SIGTERM"
}
# tally_sync: `tally sync`, cut short if the daemon exits meanwhile; SYNC_DONE = when it
# returned.
tally_sync() {
  local sp watcher rc=0
  "$TALLY" sync --config "$CFG" --timeout 300s >>"$LOG" 2>&1 &
  sp=$!
  ( while kill -0 "$sp" 2>/dev/null; do
      kill -0 "$TALLY_PID" 2>/dev/null || { kill -TERM "$sp"; break; }
      sleep 0.2
    done ) 2>/dev/null &
  watcher=$!
  wait "$sp" || rc=$?
  SYNC_DONE=$(now)
  wait "$watcher" 2>/dev/null || true
  kill -0 "$TALLY_PID" 2>/dev/null || die "tally run exited (see its log below)"
  [ $rc -eq 0 ] || die "tally sync failed ($rc)"
}

# sample_walsender SLOT FILE: the CPU ticks of the slot's walsender, written to FILE
# every 50 ms until it exits (so the last value is at most 50 ms old).
sample_walsender() {
  local pid="" t
  for _ in $(seq 500); do
    pid=$(q -c "SELECT active_pid FROM pg_replication_slots WHERE slot_name = '$1'")
    [ -n "$pid" ] && break
    sleep 0.01
  done
  [ -n "$pid" ] || return 0
  while t=$(cpu_ticks "$pid") && [ -e "/proc/$pid" ]; do
    echo "$t" >"$2"
    sleep 0.05
  done
}

# measure_recv RUN SLOT END LOAD_END: time pg_recvlogical draining SLOT to END.
measure_recv() {
  local run=$1 slot=$2 end=$3 load_end=$4 t0 t1 sampler user sys ws confirmed
  rm -f "$WORK/ws.cpu"
  sample_walsender "$slot" "$WORK/ws.cpu" &
  sampler=$!
  t0=$(now)
  { TIMEFORMAT='%U %S'; time "$PGBIN/pg_recvlogical" -d "$DSN" --slot "$slot" --start --no-loop \
      "${RECV_OPTS[@]}" --endpos="$end" -f /dev/null 2>"$WORK/recv.err"; } 2>"$WORK/recv.time" ||
    die "pg_recvlogical failed: $(cat "$WORK/recv.err")"
  t1=$(now)
  wait "$sampler" || true
  read -r user sys <"$WORK/recv.time"
  ws=$(cat "$WORK/ws.cpu" 2>/dev/null || echo 0)
  # It must have consumed the whole load: its confirmed position is past the load's end.
  confirmed=$(q -c "SELECT confirmed_flush_lsn >= '$load_end'::pg_lsn FROM pg_replication_slots WHERE slot_name = '$slot'")
  [ "$confirmed" = t ] || die "run $run: $slot confirmed a position before the load's end $load_end"
  RECV_WALL=$(calc %.3f "$t1 - $t0")
  RECV_CPU=$(calc %.2f "$user + $sys")
  RECV_WS_CPU=$(calc %.2f "$ws / $CLK_TCK")
  log "run $run: pg_recvlogical drained in ${RECV_WALL}s (its CPU ${RECV_CPU}s, walsender ${RECV_WS_CPU}s)"
}

# measure_tally RUN: start `tally run`, time until `tally sync` returns; CPU and VmHWM.
measure_tally() {
  local run=$1 t0 t1 hwm cpu be
  t0=$(now)
  start_tally
  tally_sync
  t1=$SYNC_DONE
  hwm=$(proc_kb "$TALLY_PID" VmHWM)
  cpu=$(cpu_ticks "$TALLY_PID")
  # shellcheck disable=SC2046
  be=$(sum_ticks $(tally_backend_pids))
  stop_tally
  TALLY_WALL=$(calc %.3f "$t1 - $t0")
  TALLY_CPU=$(calc %.2f "$cpu / $CLK_TCK")
  TALLY_BE_CPU=$(calc %.2f "$be / $CLK_TCK")
  TALLY_HWM=$(calc %.1f "$hwm / 1024")
  # Start-up: from `run` to its log line "streaming from slot" (local time, ms).
  local ts
  ts=$(grep 'streaming from slot' "$LOG" | tail -1 | cut -d' ' -f1-2)
  TALLY_STARTUP=$(calc %.3f "$(date -d "$ts" +%s.%N) - $t0")
  log "run $run: tally caught up in ${TALLY_WALL}s (start-up ${TALLY_STARTUP}s, its CPU ${TALLY_CPU}s, its server backends ${TALLY_BE_CPU}s, VmHWM ${TALLY_HWM} MB)"
}

# ---------------------------------------------------------------------------------------
T_START=$(now)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "work dir $WORK"
"$ROOT/scripts/pgcluster" start "$CLUSTER" "${PG_CONF[@]}" >/dev/null
DSN=$("$ROOT/scripts/pgcluster" dsn "$CLUSTER")
SETTINGS=$(q -c "SELECT string_agg(name || '=' || current_setting(name), ', ' ORDER BY name)
  FROM pg_settings WHERE name IN ('shared_buffers', 'logical_decoding_work_mem', 'fsync',
  'full_page_writes', 'synchronous_commit', 'wal_level', 'max_wal_size', 'TimeZone')")
q -f "$BENCH_DIR/schema.sql"
q -c "INSERT INTO t (id, k, g, amount, ts)
      SELECT nextval('t_id_seq'), floor(random() * 10000)::int,
             'g' || lpad(floor(random() * 100)::int::text, 2, '0'),
             CASE WHEN random() < 0.01 THEN NULL ELSE round((random() * 1000)::numeric, 2) END,
             timestamptz '2024-01-01 00:00+00' + random() * interval '60 days'
        FROM generate_series(1, $INITIAL_ROWS)"
q -c "VACUUM ANALYZE t"

VIEW_NAMES=(by_g by_k by_day probe_last)
VIEW_QUERIES=(
  "SELECT g, count(*) AS n, sum(amount) AS total, avg(amount) AS avg_amount FROM t GROUP BY g"
  "SELECT k, min(amount) AS lo, max(amount) AS hi, count(DISTINCT g) AS distinct_g, count(*) AS n FROM t GROUP BY k"
  "SELECT date_trunc('day', ts) AS day, count(*) AS n, sum(amount) AS total FROM t GROUP BY date_trunc('day', ts)"
  "SELECT max(id) AS last_id, count(*) AS n FROM probe"
)
{
  cat <<TOML
# apply: the defaults (max_batch_ms = 100, max_batch_changes = 50000)
[source]
dsn = "$DSN"
slot = "tally"
publication = "tally"

[state]
dir = "state"

[reconcile]
every = ""

[metrics]
listen = ""
TOML
  for i in "${!VIEW_NAMES[@]}"; do
    printf '\n[[views]]\nname = "%s"\nquery = """\n%s"""\n' "${VIEW_NAMES[$i]}" "${VIEW_QUERIES[$i]}"
  done
} >"$CFG"
"$TALLY" validate --config "$CFG" >>"$LOG" 2>&1 || die "tally validate failed"
t0=$(now)
"$TALLY" init --config "$CFG" >>"$LOG" 2>&1 || die "tally init failed"
INIT_S=$(calc %.2f "$(now) - $t0")
PUB_TABLES=$(q -c "SELECT string_agg(tablename, ', ' ORDER BY tablename) FROM pg_publication_tables WHERE pubname = 'tally'")
log "tally init (backfill of $INITIAL_ROWS rows) took ${INIT_S}s; publication tally: $PUB_TABLES"

# --- 1. throughput ---------------------------------------------------------------------
for run in $(seq 1 "$RUNS"); do
  slot=bench_recv_$run
  # Created while tally is stopped and caught up: both slots start before the load.
  q -c "SELECT pg_create_logical_replication_slot('$slot', 'pgoutput')" >/dev/null
  q -c "CHECKPOINT"
  start_lsn=$(q -c "SELECT pg_current_wal_lsn()")
  t0=$(now)
  q -c "CALL bench_load($CHANGES, $TXN_ROWS)"
  load_s=$(calc %.2f "$(now) - $t0")
  load_end=$(q -c "SELECT pg_current_wal_lsn()")
  # Vacuum now, so autovacuum does not compete with the timed parts; both consumers
  # decode the vacuum's WAL. The message is transactional: a synchronous commit that
  # wrote WAL flushes everything before it, so END covers the whole load.
  q -c "VACUUM ANALYZE t"
  q -c "CHECKPOINT"
  q -c "SELECT pg_logical_emit_message(true, 'bench', 'end of load')" >/dev/null
  end_lsn=$(q -c "SELECT pg_current_wal_flush_lsn()")
  wal=$(q -c "SELECT pg_wal_lsn_diff('$end_lsn', '$start_lsn')")
  log "run $run: load of $CHANGES row changes took ${load_s}s, WAL $start_lsn..$end_lsn"
  if [ $((run % 2)) -eq 1 ]; then order="pg_recvlogical first"; else order="tally first"; fi
  if [ $((run % 2)) -eq 1 ]; then
    measure_recv "$run" "$slot" "$end_lsn" "$load_end"
    q -c "CHECKPOINT"
    measure_tally "$run"
  else
    measure_tally "$run"
    q -c "CHECKPOINT"
    measure_recv "$run" "$slot" "$end_lsn" "$load_end"
  fi
  q -c "SELECT pg_drop_replication_slot('$slot')" >/dev/null
  recv_rate=$(calc %.0f "$CHANGES / $RECV_WALL")
  tally_rate=$(calc %.0f "$CHANGES / $TALLY_WALL")
  record "load: $CHANGES row changes in $TXN_ROWS-row transactions (s)" %.2f "$load_s"
  record "WAL to decode (MB)" %.1f "$(calc %.1f "$wal / 1e6")"
  record "pg_recvlogical drain, wall (s)" %.2f "$RECV_WALL"
  record "tally catch-up, \`run\` start to \`sync\` return, wall (s)" %.2f "$TALLY_WALL"
  record "… of which tally's start-up, \`run\` start to its log line \"streaming from slot\" (s)" %.2f "$TALLY_STARTUP"
  record "**pg_recvlogical rows/s**" %.0f "$recv_rate"
  record "**tally rows/s**" %.0f "$tally_rate"
  record "**tally rows/s ÷ pg_recvlogical rows/s** (per run)" %.3f "$(calc %.4f "$tally_rate / $recv_rate")"
  record "pg_recvlogical: walsender CPU (s)" %.2f "$RECV_WS_CPU"
  record "pg_recvlogical: its own CPU (s)" %.2f "$RECV_CPU"
  record "tally: its walsender + sink backend CPU (s)" %.2f "$TALLY_BE_CPU"
  record "tally: its own CPU, all threads (s)" %.2f "$TALLY_CPU"
  record "tally: own CPU per row change (µs)" %.2f "$(calc %.3f "$TALLY_CPU * 1e6 / $CHANGES")"
  record "pg_recvlogical: own CPU per row change (µs)" %.2f "$(calc %.3f "$RECV_CPU * 1e6 / $CHANGES")"
  record "**tally peak RSS (VmHWM) during catch-up (MB)**" %.1f "$TALLY_HWM"
  echo "$run	$order" >>"$WORK/order.tsv"
done

# --- 2. staleness under a steady load --------------------------------------------------
log "staleness: ${STEADY_RATE} row changes/s for ${STEADY_SECONDS}s, a probe every ${PROBE_MS} ms"
start_tally
tally_sync
rss0=$(proc_kb "$TALLY_PID" VmRSS)
hwm0=$(proc_kb "$TALLY_PID" VmHWM)
# shellcheck disable=SC2207
be_pids=($(tally_backend_pids))
cpu0=$(cpu_ticks "$TALLY_PID")
be0=$(sum_ticks "${be_pids[@]}")
# Each client changes rows in its own slice of t (pgbench's :client_id).
echo "SELECT bench_step($STEADY_TXN_ROWS, :client_id, $STEADY_CLIENTS);" >"$WORK/steady.sql"
touch "$WORK/sampling"
t0=$(now)
(  # every second: seconds since t0, tally's RSS, the largest lag_bytes and staleness_seconds
  while [ -e "$WORK/sampling" ]; do
    st=$("$TALLY" status --config "$CFG" --json 2>/dev/null |
         jq -r '[([.views[].lag_bytes // 0] | max), ([.views[].staleness_seconds // 0] | max)] | @tsv' 2>/dev/null || echo "")
    echo "$(calc %.1f "$(now) - $t0")	$(proc_kb "$TALLY_PID" VmRSS)	$st" >>"$WORK/rss.tsv"
    sleep 1
  done
) &
sampler=$!
"$PGBIN/pgbench" -n -c "$STEADY_CLIENTS" -j "$STEADY_CLIENTS" -R $((STEADY_RATE / STEADY_TXN_ROWS)) \
  -T "$STEADY_SECONDS" -P "$WINDOW" --max-tries=10 -f "$WORK/steady.sql" "$DSN" >"$WORK/pgbench.out" 2>"$WORK/pgbench.err" &
pgb=$!
q -c "CALL bench_probe($STEADY_SECONDS, $PROBE_MS, $POLL_MS, 'probe_last', 60)" &
probe=$!
wait "$pgb" || die "pgbench failed: $(tail -5 "$WORK/pgbench.err")"
t_load_end=$(now)
tally_sync
sync_after_s=$(calc %.3f "$SYNC_DONE - $t_load_end")
wait "$probe" || die "the probe failed"
rm -f "$WORK/sampling"
wait "$sampler" || true
steady_wall=$(calc %.3f "$t_load_end - $t0")
cpu1=$(cpu_ticks "$TALLY_PID")
be1=$(sum_ticks "${be_pids[@]}")
rss1=$(proc_kb "$TALLY_PID" VmRSS)
hwm1=$(proc_kb "$TALLY_PID" VmHWM)
pgb_tx=$(awk -F': ' '/number of transactions actually processed/ {split($2, a, "/"); print a[1]}' "$WORK/pgbench.out")
pgb_failed=$(awk -F': ' '/number of failed transactions/ {split($2, a, " "); print a[1]}' "$WORK/pgbench.out")
pgb_lat=$(awk '/^latency average/ {print $4}' "$WORK/pgbench.out")
pgb_sched=$(awk '/^rate limit schedule lag/ {print $6, $8}' "$WORK/pgbench.out" | tr -d ')')
pgb_retried=$(awk -F': ' '/number of transactions retried/ {split($2, a, " "); print a[1]}' "$WORK/pgbench.out")
steady_changes=$((pgb_tx * STEADY_TXN_ROWS))
read -r p_n p_seen p50 p99 pmax pmin <<<"$(q -F ' ' -c "
  SELECT count(*), count(visible_at),
         round(percentile_disc(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1),
         round(percentile_disc(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1),
         round(max(ms)::numeric, 1), round(min(ms)::numeric, 1)
    FROM (SELECT visible_at, extract(epoch FROM visible_at - committed_at) * 1000 AS ms
            FROM probe_result) r")"
read -r rss_min rss_max lag_max stale_max <<<"$(awk -F'\t' '$2 != "" {
    if (mn == "" || $2 < mn) mn = $2; if ($2 > mx) mx = $2
    if ($3 + 0 > lag) lag = $3 + 0; if ($4 + 0 > st) st = $4 + 0 }
    END {printf "%s %s %d %s\n", mn, mx, lag, st + 0}' "$WORK/rss.tsv")"
# The same, per WINDOW seconds since the load started: probes (by commit time), pgbench's
# progress lines, the 1-second samples.
q -F $'\t' -c "
  SELECT floor((extract(epoch FROM committed_at) - $t0) / $WINDOW)::int AS w, count(*),
         round(percentile_disc(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1), round(max(ms)::numeric, 1)
    FROM (SELECT committed_at, extract(epoch FROM visible_at - committed_at) * 1000 AS ms
            FROM probe_result) r GROUP BY 1 ORDER BY 1" >"$WORK/probe_w.tsv"
SERIES=$(awk -F'\t' -v W="$WINDOW" -v R="$STEADY_TXN_ROWS" '
  FILENAME ~ /probe_w/ { pn[$1] = $2; p50[$1] = $3; pmx[$1] = $4; if ($1 > last) last = $1; next }
  FILENAME ~ /rss/ { w = int($1 / W); if ($2 > rss[w]) rss[w] = $2; if ($3 + 0 > lag[w]) lag[w] = $3 + 0
                     if ($4 + 0 > st[w]) st[w] = $4 + 0; seen[w] = 1; next }
  /^progress: / { split($0, f, ", "); t = f[1]; sub(/progress: /, "", t); w = int((t + 0) / W) - 1
                  tps[w] = f[2] + 0; for (i = 3; i in f; i++) if (f[i] ~ /^lag /) { split(f[i], l, " "); lg[w] = l[2] } }
  END {
    for (w = 0; w <= last || (w in seen); w++)
      printf "| %d–%d | %s | %s | %s | %s | %s | %s | %s | %s |\n", w * W, (w + 1) * W,
        (w in tps) ? sprintf("%.0f", tps[w] * R) : "", (w in lg) ? lg[w] : "",
        (w in pn) ? pn[w] : 0, (w in p50) ? p50[w] : "", (w in pmx) ? pmx[w] : "",
        (w in seen) ? sprintf("%.1f", rss[w] / 1024) : "", (w in seen) ? lag[w] : "",
        (w in st) ? sprintf("%.3f", st[w]) : ""
  }' "$WORK/probe_w.tsv" "$WORK/rss.tsv" "$WORK/pgbench.err")

# --- correctness -------------------------------------------------------------------------
tally_sync
check_out=""
for i in "${!VIEW_NAMES[@]}"; do
  name=${VIEW_NAMES[$i]}
  query=${VIEW_QUERIES[$i]}
  diff=$(q -c "BEGIN ISOLATION LEVEL REPEATABLE READ;
    SELECT 'extra', * FROM (TABLE \"$name\" EXCEPT ALL ($query)) a;
    SELECT 'missing', * FROM (($query) EXCEPT ALL TABLE \"$name\") b;
    COMMIT;")
  rows=$(q -c "SELECT count(*) FROM \"$name\"")
  if [ -n "$diff" ]; then
    echo "$diff" | head -20 >&2
    check_out+="| $name | $rows | **DIFFERS** ($(echo "$diff" | wc -l) rows) |"$'\n'
    CHECK_FAILED=1
  else
    check_out+="| $name | $rows | equal (EXCEPT ALL both ways empty) |"$'\n'
  fi
done
STATUS_JSON=$("$TALLY" status --config "$CFG" --json 2>>"$LOG" || true)
stop_tally
errors=$(grep -ciE '\b(error|fatal|panic)\b' "$LOG" || true)
warnings=$(grep -ciE '\bwarn(ing)?\b' "$LOG" || true)
server_errors=$(grep -cE '^.*(ERROR|FATAL|PANIC):' "$CLUSTER/server.log" || true)
TOTAL_S=$(calc %.0f "$(now) - $T_START")

# --- report ------------------------------------------------------------------------------
cat <<EOF

## tally core benchmark ($(date -u +%FT%TZ))

- Machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, shared with other work: load average (1, 5, 15 min) at the start $LOAD_START, at the end $(cut -d' ' -f1-3 /proc/loadavg). tally: $TALLY_SRC built $TALLY_BUILT (tree at commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'); $(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null | wc -l) files modified).
- PostgreSQL: $("$PGBIN/postgres" --version | awk '{print $3}'), private cluster (scripts/pgcluster) with $SETTINGS.
  logical_decoding_work_mem=64MB so that ${TXN_ROWS}-row transactions are decoded in memory and sent at commit, not streamed (pgcluster's test default is 64kB).
- Table t(id bigint PK, k int, g text, amount numeric(12,2), ts timestamptz), $INITIAL_ROWS rows at \`tally init\` (backfill ${INIT_S}s).
  Views: ${VIEW_NAMES[*]} (queries in bench/README.md); publication "tally" ($PUB_TABLES), created by \`tally init\`; tally's apply settings are the defaults (max_batch_ms 100, max_batch_changes 50000).
- Each throughput run: $CHANGES row changes (40% updates: amount always, g / k / ts each for 50% / 50% / 30% of them; 20% deletes; 40% inserts) in $TXN_ROWS-row transactions, loaded while tally is stopped, then VACUUM + CHECKPOINT. Then, in alternating order (run 1 pg_recvlogical first, run 2 tally first, ...):
  (a) \`pg_recvlogical --start --no-loop ${RECV_OPTS[*]} --endpos=END -f /dev/null\` on its own pgoutput slot created beside tally's (same publication), END = flushed WAL position after the load; timed until it exits, its slot must have confirmed past the load.
  (b) \`tally run\` started, \`tally sync --timeout 300s\` started right after it; timed from the start of \`run\` to the return of \`sync\` (includes tally's start-up; nothing subtracted).
  rows/s = $CHANGES / wall time. CPU from /proc (utime+stime); tally's server backends are those with application_name 'tally' (its walsender and its sink connection).

### 1. Throughput: catching up on $CHANGES row changes, $RUNS runs

$(summarize)

Run order: $(awk -F'\t' '{printf "%s%s: %s", (NR > 1 ? "; " : ""), $1, $2}' "$WORK/order.tsv").

### 2. Staleness under a steady load

Method: tally running and caught up; pgbench -n -c $STEADY_CLIENTS -j $STEADY_CLIENTS -R $((STEADY_RATE / STEADY_TXN_ROWS)) -T $STEADY_SECONDS --max-tries=10, each transaction \`SELECT bench_step($STEADY_TXN_ROWS, :client_id, $STEADY_CLIENTS)\` ($STEADY_TXN_ROWS row changes on t, same mix as above, each client in its own slice of t), i.e. a target of $STEADY_RATE row changes/s. At the same time one session runs the probe (bench_probe in bench/core/schema.sql): every $PROBE_MS ms it inserts row n into \`probe\` in its own transaction and notes clock_timestamp() when COMMIT has returned; every $POLL_MS ms it reads \`SELECT max(last_id) FROM probe_last\` (tally's summary of \`SELECT max(id) AS last_id, count(*) AS n FROM probe\`) and notes the clock when each probe id first shows. Latency = first seen − committed, both on the same backend's clock, so it includes up to $POLL_MS ms of polling granularity plus the poll's own time.

| | value |
|---|---:|
| load achieved (row changes/s) | $(calc %.0f "$steady_changes / $steady_wall") ($pgb_tx transactions of $STEADY_TXN_ROWS in ${steady_wall}s; ${pgb_failed:-0} failed, ${pgb_retried:-0} retried) |
| pgbench latency avg; schedule lag avg / max (ms) | ${pgb_lat}; ${pgb_sched/ / / } |
| probes committed / seen in the summary | $p_n / $p_seen |
| **commit-to-visible p50 (ms)** | **$p50** |
| **commit-to-visible p99 (ms)** | **$p99** |
| **commit-to-visible max (ms)** | **$pmax** (min $pmin) |
| largest lag_bytes / staleness_seconds in \`tally status\` (sampled every 1 s) | $lag_max / $stale_max |
| \`tally sync\` right after the load stopped (s) | $sync_after_s |
| tally's own CPU during the load (share of one core) | $(calc %.1f "100 * ($cpu1 - $cpu0) / $CLK_TCK / $steady_wall")% ($(calc %.1f "($cpu1 - $cpu0) / $CLK_TCK * 1e6 / ($steady_changes > 0 ? $steady_changes : 1)") µs per row change) |
| tally's walsender + sink backend CPU during the load (share of one core) | $(calc %.1f "100 * ($be1 - $be0) / $CLK_TCK / $steady_wall")% |

Per ${WINDOW}-second window since the load started (probes by commit time; RSS, lag_bytes and staleness from the 1-second samples of /proc and \`tally status --json\`; load and schedule lag from pgbench -P $WINDOW, which prints no line for its last interval):

| seconds | load (row changes/s) | pgbench schedule lag (ms) | probes | probe p50 (ms) | probe max (ms) | tally RSS max (MB) | lag_bytes max | staleness_seconds max |
|---|---:|---:|---:|---:|---:|---:|---:|---:|
$SERIES

### 3. tally's memory during the steady load

| | MB |
|---|---:|
| VmRSS after start-up and sync, before the load | $(calc %.1f "$rss0 / 1024") |
| VmRSS min / max, sampled every 1 s during the load | $(calc %.1f "${rss_min:-0} / 1024") / $(calc %.1f "${rss_max:-0} / 1024") |
| VmRSS after the load | $(calc %.1f "$rss1 / 1024") |
| **VmHWM before / after the load** (peak RSS of this process, started fresh for this phase) | $(calc %.1f "$hwm0 / 1024") / **$(calc %.1f "$hwm1 / 1024")** |

(Peak RSS during each catch-up is in table 1: tally is started fresh for each run.)

### Correctness after everything (tally sync, then every summary vs its query, one snapshot)

| view | rows | result |
|---|---:|---|
${check_out}
tally log: $errors lines matching error/fatal/panic, $warnings matching warn; server log: $server_errors ERROR/FATAL/PANIC lines.
Total runtime: ${TOTAL_S}s.
EOF
if [ "$errors" != 0 ] || [ "$warnings" != 0 ]; then
  echo; echo "tally log, error and warning lines (first 20):"; echo '```'
  grep -iE '\b(error|fatal|panic|warn(ing)?)\b' "$LOG" | head -20; echo '```'
fi
if [ "$server_errors" != 0 ]; then
  echo; echo "server log, ERROR/FATAL/PANIC lines (first 20):"; echo '```'
  grep -E '(ERROR|FATAL|PANIC):' "$CLUSTER/server.log" | head -20; echo '```'
fi
log "final status: $(jq -c '[.views[] | {name, lag_bytes, groups}]' <<<"$STATUS_JSON" 2>/dev/null || echo "$STATUS_JSON")"
[ -z "${CHECK_FAILED:-}" ] || die "a summary differs from its query"
