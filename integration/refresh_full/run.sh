#!/usr/bin/env bash
# refresh --full rebuilds a view from a fresh snapshot while readers keep reading: a reader
# holding the summary open in a transaction does not block it, a poller never sees rows
# vanish, and the summary's grants and row-level security policy survive it and
# `reconcile --repair` (through the daemon and with no daemon running).
source "$(dirname "$0")/../lib/common.sh"
start_cluster
q -c "CREATE ROLE reader LOGIN;
      CREATE TABLE t (id int PRIMARY KEY, g int, amount numeric(10,2));
      INSERT INTO t SELECT i, i % 2000, i / 8.0 FROM generate_series(1, 100000) i"
BY_G="SELECT g, count(*) AS n, sum(amount) AS total, min(amount) AS lo FROM t GROUP BY g"
CFG=$WORK/tally.toml
write_config "$CFG" "[[views]]
name = \"by_g\"
query = \"$BY_G\"
grant_select = [\"reader\"]"
cd "$WORK"
fail() { echo "FAIL: $*" >&2; exit 1; }
"$TALLY" init --config "$CFG" >>"$WORK/tally.log" 2>&1
q -c "ALTER TABLE by_g ENABLE ROW LEVEL SECURITY;
      CREATE POLICY small_groups ON by_g FOR SELECT TO reader USING (g < 100)"
as_reader() { psql "$DSN user=reader" -v ON_ERROR_STOP=1 -qAtX "$@"; }
rls_holds() {  # the reader still reads, and only what the policy lets through
  local want
  want="$(q -c 'SELECT count(*) FROM by_g WHERE g < 100')|0"
  [ "$(as_reader -c 'SELECT count(*), count(*) FILTER (WHERE g >= 100) FROM by_g')" = "$want" ] ||
    fail "$1: the reader sees $(as_reader -c 'SELECT count(*), count(*) FILTER (WHERE g >= 100) FROM by_g'), not $want"
  [ "$(q -c "SELECT relrowsecurity FROM pg_class WHERE oid = 'by_g'::regclass")" = t ] ||
    fail "$1: row-level security is off"
  [ "$(q -c "SELECT count(*) FROM pg_policies WHERE tablename = 'by_g'")" = 1 ] || fail "$1: policy gone"
  echo "ok: $1: grant and row-level security policy hold"
}
rls_holds "after init"

start_tally "$CFG"
q -c "UPDATE t SET amount = amount + 1 WHERE id % 3 = 0"
"$TALLY" sync --config "$CFG"
# Drift the refresh must repair, in groups no later write touches.
q -c "UPDATE by_g SET n = n + 5 WHERE g = 7; DELETE FROM by_g WHERE g = 8"

# A reader holds the summary open (ACCESS SHARE) for 10 s; a poller counts rows meanwhile.
as_reader -c "BEGIN; SELECT count(*) FROM by_g; SELECT pg_sleep(10); COMMIT" >/dev/null &
READER=$!
( for i in $(seq 60); do q -c "SELECT count(*) FROM by_g"; sleep 0.05; done ) >"$WORK/counts" &
POLLER=$!
sleep 0.5
started=$(date +%s.%N)
out=$("$TALLY" refresh --config "$CFG" --view by_g --full 2>>"$WORK/tally.log") || fail "refresh --full exited $?"
took=$(awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN{printf "%.2f", e - s}')
kill -0 "$READER" 2>/dev/null || fail "refresh --full took ${took}s: it waited for the reader"
echo "ok: refresh --full finished in ${took}s while a reader held the summary ($out)"
grep -q "2 summary row(s) changed" <<<"$out" || fail "expected 2 rows changed: $out"
wait "$POLLER"
[ "$(sort -u "$WORK/counts" | tr '\n' ' ')" = "1999 2000 " ] ||
  fail "readers saw row counts $(sort -u "$WORK/counts" | tr '\n' ' ')"
echo "ok: readers kept seeing the rows during the rebuild"
wait "$READER"
check_view by_g "$BY_G"
[ "$(q -c "SELECT count(*) FROM tally.refresh_log WHERE view_name = 'by_g' AND mode = 'full' AND rows_changed = 2")" = 1 ] ||
  fail "refresh_log: $(q -c 'TABLE tally.refresh_log')"
rls_holds "after refresh --full"

# The rebuilt state goes on following the stream.
q -c "UPDATE t SET g = g + 1 WHERE id % 10 = 0; DELETE FROM t WHERE id % 13 = 0"
"$TALLY" sync --config "$CFG"
check_view by_g "$BY_G"

q -c "UPDATE by_g SET total = 0 WHERE g = 3; INSERT INTO by_g VALUES (-5, 1, 1, 1)"
rc=0
"$TALLY" reconcile --config "$CFG" --repair >/dev/null 2>>"$WORK/tally.log" || rc=$?
[ "$rc" = 0 ] || fail "reconcile --repair exited $rc"
check_view by_g "$BY_G"
rls_holds "after reconcile --repair"
stop_tally

# No daemon running: the command does the work itself.
q -c "UPDATE by_g SET lo = -1 WHERE g = 51"
out=$("$TALLY" refresh --config "$CFG" --view by_g --full 2>>"$WORK/tally.log") || fail "refresh --full (no daemon) exited $?"
grep -q "1 summary row(s) changed" <<<"$out" || fail "expected 1 row changed: $out"
check_view by_g "$BY_G"
rls_holds "after refresh --full with no daemon"
rc=0
"$TALLY" refresh --config "$CFG" --view by_g 2>/dev/null || rc=$?
[ "$rc" = 2 ] || fail "refresh without --full of an incremental view exited $rc"
rc=0
"$TALLY" refresh --config "$CFG" --view nope --full 2>/dev/null || rc=$?
[ "$rc" = 2 ] || fail "refresh of an unknown view exited $rc"
start_tally "$CFG"
q -c "UPDATE t SET amount = amount + 3 WHERE id % 7 = 0"
"$TALLY" sync --config "$CFG"
check_view by_g "$BY_G"
stop_tally
echo "refresh_full passed"
