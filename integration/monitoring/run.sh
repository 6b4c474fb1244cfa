#!/usr/bin/env bash
# Monitoring: refresh_log keeps one row per view per minute for stream batches and one per
# backfill; retention deletes old rows; tally.freshness shows 0 staleness and a small lag when
# idle and caught up, and growing staleness while tally is stopped and the source changes;
# status (table and JSON) reads the same numbers.
source "$(dirname "$0")/../lib/common.sh"
start_cluster
q -c 'CREATE TABLE ev (id int PRIMARY KEY, k int, v int);
      INSERT INTO ev SELECT i, i % 10, i FROM generate_series(1, 1000) i'
VIEWS='[[views]]
name = "by_k"
query = "SELECT k, count(*) AS n, sum(v) AS s FROM ev GROUP BY k"

[[views]]
name = "total"
query = "SELECT count(*) AS n FROM ev"'
config() {  # config RETENTION
  write_config "$WORK/tally.toml" "$VIEWS"
  printf '\n[monitoring]\nrefresh_log_retention = "%s"\n' "$1" >>"$WORK/tally.toml"
}
fail() { echo "FAIL: $*" >&2; exit 1; }
config 1h
"$TALLY" init --config "$WORK/tally.toml" >>"$WORK/tally.log" 2>&1
[ "$(q -c "SELECT count(*) FROM tally.refresh_log WHERE mode = 'backfill'")" = 2 ] || fail "one backfill row per view"
start_tally "$WORK/tally.toml"

# 300 small transactions over ~3 s: many batches, folded into one row per view per minute.
for i in $(seq 1 30); do
  q -c "$(for j in $(seq 1 10); do echo "UPDATE ev SET v = v + 1 WHERE id = $(( (i * 10 + j) % 1000 + 1 ));"; done)" >/dev/null
  sleep 0.1
done
"$TALLY" sync --config "$WORK/tally.toml"
check_view by_k "SELECT k, count(*) AS n, sum(v) AS s FROM ev GROUP BY k"
rows=$(q -c "SELECT view_name, count(*), sum(batches), sum(rows_changed), count(DISTINCT minute)
             FROM tally.refresh_log WHERE mode = 'incremental' GROUP BY 1 ORDER BY 1")
echo "refresh_log (view, rows, batches, rows_changed, minutes): $rows"
while IFS='|' read -r view n batches changed minutes; do
  [ "$n" = "$minutes" ] || fail "$view: $n rows for $minutes minutes"
  [ "$n" -le 2 ] || fail "$view: $n rows for a 3 s workload"
  [ "$batches" -ge 5 ] || fail "$view: only $batches batches logged"
done <<<"$(grep by_k <<<"$rows")"
q -c "SELECT bool_and(started_at <= finished_at AND lsn IS NOT NULL) FROM tally.refresh_log" | grep -qx t \
  || fail "refresh_log rows: started_at after finished_at or no lsn"
echo "ok: refresh_log holds one row per view per minute"

# Idle and caught up: no staleness, a small lag.
sleep 2
fresh=$(q -c "SELECT staleness_seconds, lag_bytes, tally_running FROM tally.freshness ORDER BY view_name")
echo "idle freshness (staleness, lag_bytes, running): $(tr '\n' ' ' <<<"$fresh")"
while IFS='|' read -r stale lag running; do
  [ "$stale" = 0 ] || fail "idle staleness $stale"
  [ "$lag" -lt 65536 ] || fail "idle lag_bytes $lag"
  [ "$running" = t ] || fail "tally_running is $running while tally runs"
done <<<"$fresh"
json=$("$TALLY" status --config "$WORK/tally.toml" --json)
[ "$(jq '[.views[].staleness_seconds] | max' <<<"$json")" = 0 ] || fail "status --json: $json"
[ "$(jq -r '.views[] | select(.name == "by_k") | .last_refresh' <<<"$json")" != null ] || fail "last_refresh: $json"
echo "ok: idle and caught up: staleness 0, lag $(cut -d'|' -f2 <<<"$fresh" | sort -n | tail -1) bytes"

# Stopped while the source changes: staleness grows from the last batch.
stop_tally
q -c "UPDATE ev SET v = v + 1 WHERE id <= 100"
sleep 1.5
read -r stale lag running < <(q -F ' ' -c "SELECT staleness_seconds, lag_bytes, tally_running FROM tally.freshness WHERE view_name = 'by_k'")
echo "stopped: staleness $stale s, lag $lag bytes, running $running"
[ "$running" = f ] || fail "tally_running after SIGTERM"
awk "BEGIN{exit !($stale >= 1.5)}" || fail "staleness $stale while tally is stopped"
[ "$lag" -gt 0 ] || fail "lag_bytes $lag while tally is stopped and the source changed"
"$TALLY" status --config "$WORK/tally.toml" | grep -q "no \`tally run\` is reporting" || fail "status table: no note"

# Back again: caught up, staleness 0. Old refresh_log rows are deleted past the retention.
q -c "INSERT INTO tally.refresh_log (view_name, started_at, finished_at, mode, rows_changed, lsn, minute)
      VALUES ('by_k', now() - interval '3 hours', now() - interval '3 hours', 'incremental', 1, '0/1',
              date_trunc('minute', now() - interval '3 hours')),
             ('by_k', now() - interval '2 hours', now() - interval '2 hours', 'backfill', 1, '0/1', NULL)"
start_tally "$WORK/tally.toml"
"$TALLY" sync --config "$WORK/tally.toml"
check_view by_k "SELECT k, count(*) AS n, sum(v) AS s FROM ev GROUP BY k"
sleep 1.5
[ "$(q -c "SELECT max(staleness_seconds) FROM tally.freshness")" = 0 ] || fail "staleness after restart"
[ "$(q -c "SELECT count(*) FROM tally.refresh_log WHERE finished_at < now() - interval '1 hour'")" = 0 ] \
  || fail "rows past the 1h retention are still there"
[ "$(q -c "SELECT count(*) FROM tally.refresh_log WHERE finished_at > now() - interval '1 hour'")" -gt 0 ] \
  || fail "the retention deleted recent rows"
echo "ok: rows past the retention deleted at start-up"
stop_tally

# Running, with a commit received and its batch not applied yet (batches of 5 s): the daemon
# reports the commit's age after a second; once the batch is applied, 0 again.
config 1h
sed -i 's/^max_batch_ms = .*/max_batch_ms = 5000/' "$WORK/tally.toml"
start_tally "$WORK/tally.toml"
for i in $(seq 100); do
  [ "$(q -c "SELECT bool_and(tally_running) FROM tally.freshness")" = t ] && break
  sleep 0.1
done
q -c "UPDATE ev SET v = v + 1 WHERE id = 1"
sleep 2
read -r stale running < <(q -F ' ' -c "SELECT staleness_seconds, tally_running FROM tally.freshness WHERE view_name = 'by_k'")
echo "a commit waiting for its batch: staleness $stale s, running $running"
[ "$running" = t ] || fail "tally_running while tally runs"
awk "BEGIN{exit !($stale >= 1 && $stale < 10)}" || fail "staleness $stale while a received commit waits for its batch"
"$TALLY" sync --config "$WORK/tally.toml"
[ "$(q -c "SELECT max(staleness_seconds) FROM tally.freshness")" = 0 ] || fail "staleness once the batch is applied"
echo "ok: a received commit waiting for its batch shows its age; 0 once applied"
stop_tally

# A tiny retention: the idle daemon purges on its own (at most once a second then).
config 2s
start_tally "$WORK/tally.toml"
q -c "UPDATE ev SET v = v + 1 WHERE id <= 10"
"$TALLY" sync --config "$WORK/tally.toml"
[ "$(q -c "SELECT count(*) FROM tally.refresh_log WHERE finished_at > now() - interval '2 seconds'")" -gt 0 ] \
  || fail "no recent row"
sleep 4
n=$(q -c "SELECT count(*) FROM tally.refresh_log")
[ "$n" = 0 ] || fail "$n refresh_log rows left past a 2 s retention"
echo "ok: a 2 s retention empties the idle log"
stop_tally
echo "monitoring passed"
