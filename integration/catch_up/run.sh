#!/usr/bin/env bash
# Catching up ends where the walsender runs out of WAL, also when the backlog ends in WAL that
# decodes to nothing (tables no view reads, the summaries' own writes). Far behind the server,
# a batch may be held up to 20 x max_batch_ms; lag measured only from the last decoded change
# kept the final batch waiting that long after the backlog was gone.
source "$(dirname "$0")/../lib/common.sh"
# Not streamed: the noise below is one transaction the walsender decodes and sends nothing of.
start_cluster "logical_decoding_work_mem = 64MB"
q -c "CREATE TABLE t (id int PRIMARY KEY, g int, amount numeric(10,2));
      INSERT INTO t SELECT i, i % 30, i / 8.0 FROM generate_series(1, 3000) i;
      CREATE TABLE noise (id bigserial PRIMARY KEY, pad text)"
BY_G="SELECT g, count(*) AS n, sum(amount) AS total FROM t GROUP BY g"
CFG=$WORK/tally.toml
write_config "$CFG" "[[views]]
name = \"by_g\"
query = \"$BY_G\""
# One second per batch: a batch held for catching up would wait 20 s.
sed -i 's/^max_batch_ms = .*/max_batch_ms = 1000/' "$CFG"
cd "$WORK"
fail() { echo "FAIL: $*" >&2; exit 1; }
"$TALLY" init --config "$CFG" >>"$WORK/tally.log" 2>&1

q -c "UPDATE t SET amount = amount + 1 WHERE id % 3 = 0; DELETE FROM t WHERE id % 7 = 0"
# The barrier, then 24 MB of WAL in a table no view reads: the stream's last message is the
# barrier, the server's WAL end is far past it.
"$TALLY" sync --config "$CFG" --timeout 120s >>"$WORK/tally.log" 2>&1 &
SYNC_PID=$!
sleep 0.5
q -c "INSERT INTO noise (pad) SELECT repeat('x', 200) FROM generate_series(1, 100000)"
behind=$(q -c "SELECT pg_current_wal_lsn() - confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'tally'")
[ "$behind" -gt $((16 << 20)) ] || fail "the backlog is only $behind bytes: the test would not catch up"
started=$(date +%s.%N)
start_tally "$CFG"
wait "$SYNC_PID" || fail "tally sync failed"
took=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
echo "ok: sync returned $took s after tally run started ($behind bytes behind)"
awk -v t="$took" 'BEGIN { exit !(t < 10) }' ||
  fail "sync took $took s: the last batch was held as if still catching up"
check_view by_g "$BY_G"
stop_tally
