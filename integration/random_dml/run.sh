#!/usr/bin/env bash
# Randomized DML (seeded) over several views, then `tally sync`; every summary must equal its
# query. MODE=plain: tally runs throughout. MODE=crash: tally is SIGKILLed at random moments
# three times and restarted, and PostgreSQL is restarted mid-stream.
# Usage: run.sh [plain|crash] [SEED] [N]
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/views.sh"
MODE=${1:-plain}
SEED=${2:-$(( (RANDOM % 1000) ))}
N=${3:-20000}
echo "random_dml: mode=$MODE seed=$SEED n=$N (rerun: $0 $MODE $SEED $N)"
SEEDF=$(awk "BEGIN{print ($SEED % 1000) / 1000}")
# Crash mode also runs without the group-state cache (every batch reads the store).
[ "$MODE" = crash ] && CACHE_MB=0

start_cluster
q -f "$(dirname "$0")/schema.sql"
q -f "$(dirname "$0")/workload.sql"
write_config "$WORK/tally.toml" "$(view_toml)"
"$TALLY" validate --config "$WORK/tally.toml"
"$TALLY" init --config "$WORK/tally.toml" >>"$WORK/tally.log" 2>&1
check_all_views
start_tally "$WORK/tally.toml"

# The workload in four parts, with the big transactions and a TRUNCATE between them.
part=$((N / 4))
q -c "CALL random_dml($SEEDF, $part)"
if [ "$MODE" = crash ]; then
  sleep 0.$((RANDOM % 9)); kill_tally
  # The next big streamed transaction dies half-applied, between two replay chunks.
  start_tally "$WORK/tally.toml" replay_chunk:2
fi
# One transaction of 100k+ rows (streamed: logical_decoding_work_mem is 64kB), and a large
# transaction that rolls back.
q -c "INSERT INTO items (id, g, h, x, y, ts) SELECT 2000000 + i, (ARRAY['a','b','z'])[1 + i % 3], i % 50, (i % 997)::numeric / 8, i % 100, timestamptz '2024-06-01+00' + i * interval '1 minute' FROM generate_series(1, 110000) i"
if [ "$MODE" = crash ]; then
  wait_killed
  grep -q "kill point replay_chunk reached" "$WORK/tally.log"
  start_tally "$WORK/tally.toml" after_state_write:2
fi
q -c "BEGIN; UPDATE items SET x = x + 1 WHERE id > 2000000; DELETE FROM items WHERE id < 5000; ROLLBACK;" 
q -c "BEGIN; INSERT INTO items (id, g, h, x, y, ts) SELECT 3000000 + i, 'sp', 1, 1, 1, now() FROM generate_series(1, 3000) i; SAVEPOINT s1; INSERT INTO items (id, g, h, x, y, ts) SELECT 4000000 + i, 'gone', 1, 1, 1, now() FROM generate_series(1, 3000) i; ROLLBACK TO SAVEPOINT s1; DELETE FROM items WHERE id BETWEEN 2000001 AND 2050000; COMMIT;"
q -c "CALL random_dml($SEEDF + 0.0001, $part)"
if [ "$MODE" = crash ]; then
  wait_killed  # it died between its state write and its sink transaction
  grep -q "kill point after_state_write reached" "$WORK/tally.log"
  "$ROOT/scripts/pgcluster" restart "$CLUSTER" immediate
  start_tally "$WORK/tally.toml"
fi
if [ "$MODE" = plain ]; then
  # A view added later is backfilled from its own snapshot, alone; the others go on.
  stop_tally
  q -c "CALL random_dml($SEEDF + 0.0004, 300)"  # changes while tally is down
  VIEW_NAMES+=(late)
  VIEW_QUERIES+=("SELECT y % 3 AS m, count(*) AS n, max(x) AS hi, sum(h) AS sh FROM items GROUP BY 1")
  write_config "$WORK/tally.toml" "$(view_toml)"
  "$TALLY" init --config "$WORK/tally.toml" >"$WORK/init2.log" 2>&1
  grep -q "view late: backfilled" "$WORK/init2.log"
  ! grep -q "view by_group: backfilled" "$WORK/init2.log"
  start_tally "$WORK/tally.toml"
fi
q -c "CALL random_dml($SEEDF + 0.0002, $part)" &
wl=$!
if [ "$MODE" = crash ]; then
  sleep 0.$((3 + RANDOM % 6)); kill_tally; start_tally "$WORK/tally.toml"
  sleep 1; "$ROOT/scripts/pgcluster" restart "$CLUSTER" fast; 
fi
wait $wl || [ "$MODE" = crash ]
q -c "TRUNCATE events"
q -c "INSERT INTO events SELECT i % 7, i FROM generate_series(1, 300) i"
q -c "CALL random_dml($SEEDF + 0.0003, $part)"
[ "$MODE" = crash ] && { kill_tally; start_tally "$WORK/tally.toml"; }

"$TALLY" sync --config "$WORK/tally.toml" --timeout 120s
check_all_views
if [ "$MODE" = crash ]; then
  grep -q "finishing a streamed transaction interrupted" "$WORK/tally.log"
  grep -q "re-writing the summary rows of an interrupted batch" "$WORK/tally.log"
fi
"$TALLY" status --config "$WORK/tally.toml"
stop_tally
echo "random_dml $MODE passed (seed $SEED)"
