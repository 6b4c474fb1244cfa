#!/usr/bin/env bash
# RECONCILE_RUNS (default 20) reconciliations through the running daemon while a steady write
# load (~2,000 row changes/s: inserts, updates moving rows between groups, deletes) goes on:
# every one reports zero drift, since each compares at one exact position. Afterwards the
# summaries equal their queries (EXCEPT ALL).
source "$(dirname "$0")/../lib/common.sh"
RUNS=${RECONCILE_RUNS:-20}
start_cluster
q -c "CREATE TABLE t (id bigserial PRIMARY KEY, g int, k int, amount numeric(10,2), note text);
      INSERT INTO t (g, k, amount, note)
      SELECT CASE WHEN i % 23 = 0 THEN NULL ELSE i % 50 END, i % 1000, (i % 97) / 4.0, 'n' || (i % 17)
      FROM generate_series(1, 20000) i;
      CREATE TABLE load_ctl (stop boolean NOT NULL, changes bigint NOT NULL);
      INSERT INTO load_ctl VALUES (false, 0);
      -- load(seconds, rows per transaction, transactions per second), until load_ctl.stop
      CREATE PROCEDURE load(seconds float8, n int, tps int) LANGUAGE plpgsql AS \$\$
      DECLARE
        t_end timestamptz := clock_timestamp() + seconds * interval '1 s';
        next_at timestamptz := clock_timestamp();
        lo bigint; hi bigint; r bigint; c int; done int;
      BEGIN
        WHILE clock_timestamp() < t_end AND NOT (SELECT stop FROM load_ctl) LOOP
          SELECT min(id), max(id) INTO lo, hi FROM t;
          r := lo + floor(random() * (hi - lo))::bigint;
          UPDATE t SET amount = round((random() * 500)::numeric, 2),
                       g = CASE WHEN random() < 0.5 THEN floor(random() * 50)::int ELSE g END,
                       note = CASE WHEN random() < 0.3 THEN 'n' || floor(random() * 17)::int ELSE note END
            WHERE id IN (SELECT id FROM t WHERE id >= r ORDER BY id LIMIT n * 4 / 10);
          GET DIAGNOSTICS done = ROW_COUNT;
          r := lo + floor(random() * (hi - lo))::bigint;
          DELETE FROM t WHERE id IN (SELECT id FROM t WHERE id >= r ORDER BY id LIMIT n * 2 / 10);
          GET DIAGNOSTICS c = ROW_COUNT;
          done := done + c;
          INSERT INTO t (g, k, amount, note)
            SELECT CASE WHEN random() < 0.05 THEN NULL ELSE floor(random() * 50)::int END,
                   floor(random() * 1000)::int, round((random() * 500)::numeric, 2),
                   'n' || floor(random() * 17)::int
            FROM generate_series(1, n - done);
          UPDATE load_ctl SET changes = changes + n;
          COMMIT;
          next_at := next_at + interval '1 s' / tps;
          IF next_at > clock_timestamp() THEN PERFORM pg_sleep(extract(epoch FROM next_at - clock_timestamp())); END IF;
        END LOOP;
      END \$\$"
BY_G="SELECT g, count(*) AS n, sum(amount) AS total, min(amount) AS lo, max(amount) AS hi, count(DISTINCT note) AS notes FROM t GROUP BY g"
BY_K="SELECT k, count(*) AS n, avg(amount) AS mean FROM t GROUP BY k"
CFG=$WORK/tally.toml
write_config "$CFG" "[[views]]
name = \"by_g\"
query = \"$BY_G\"" "[[views]]
name = \"by_k\"
query = \"$BY_K\""
cd "$WORK"
"$TALLY" init --config "$CFG" >>"$WORK/tally.log" 2>&1
start_tally "$CFG"
"$TALLY" sync --config "$CFG"

# 20 rows per transaction, 100 transactions/s: 2,000 row changes/s.
SECONDS_LOAD=$((RUNS * 3 + 20))
load_started=$(date +%s.%N)
q -c "CALL load($SECONDS_LOAD, 20, 100)" &
LOAD=$!
sleep 2
started=$(date +%s.%N)
for i in $(seq "$RUNS"); do
  rc=0
  out=$("$TALLY" reconcile --config "$CFG" --json 2>>"$WORK/tally.log") || rc=$?
  drift=$(jq '[.views[] | .missing + .extra + .different + .state.missing + .state.extra + .state.different] | add' <<<"$out")
  if [ "$rc" != 0 ] || [ "$drift" != 0 ]; then
    echo "FAIL: run $i under load: exit $rc, drift $drift: $out" >&2
    exit 1
  fi
  kill -0 "$LOAD" 2>/dev/null || { echo "FAIL: the load ended before run $i" >&2; exit 1; }
done
elapsed=$(awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN{printf "%.1f", e - s}')
changes=$(q -c "SELECT changes FROM load_ctl")
rate=$(awk -v c="$changes" -v e="$(date +%s.%N)" -v s="$load_started" 'BEGIN{printf "%d", c / (e - s)}')
echo "ok: $RUNS reconciliations under load in ${elapsed}s, no drift ($changes row changes so far, ~$rate/s)"
# One repair under load: nothing to repair, nothing changed.
out=$("$TALLY" reconcile --config "$CFG" --repair --json 2>>"$WORK/tally.log")
[ "$(jq '[.views[] | select(.repaired)] | length' <<<"$out")" = 0 ] || { echo "FAIL: repaired: $out" >&2; exit 1; }
q -c "UPDATE load_ctl SET stop = true"
wait "$LOAD"
"$TALLY" sync --config "$CFG"
check_view by_g "$BY_G"
check_view by_k "$BY_K"
stop_tally
echo "reconcile_load passed"
