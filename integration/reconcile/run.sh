#!/usr/bin/env bash
# Drift injection: summary rows updated, deleted and inserted by hand and one group's state
# corrupted (TALLY_TEST_CORRUPT_STATE, a test-only hook: tally counts one stored row twice in
# that view's state while its summary stays right). `reconcile` reports exactly what was
# injected (exit 3, JSON checked with jq, counts agreeing with the EXCEPT ALL oracle),
# `--repair` fixes it (exit 0) and the next `reconcile` finds nothing: first with no daemon
# running (the command runs tally in-process), then through a running daemon (the command
# table), then the [reconcile] schedule repairs on its own.
source "$(dirname "$0")/../lib/common.sh"
start_cluster
q -c "CREATE TABLE t (id int PRIMARY KEY, g int, amount numeric(10,2), note text);
      INSERT INTO t SELECT i, CASE WHEN i % 17 = 0 THEN NULL ELSE i % 40 END, (i % 97) / 4.0,
                           'n' || (i % 13)
      FROM generate_series(1, 5000) i"
BY_G="SELECT g, count(*) AS n, sum(amount) AS total, min(amount) AS lo, max(note) AS hi, count(DISTINCT note) AS notes FROM t GROUP BY g"
TOTAL="SELECT count(*) AS n, sum(amount) AS total FROM t"
CFG=$WORK/tally.toml
write_config "$CFG" "[[views]]
name = \"by_g\"
query = \"$BY_G\"" "[[views]]
name = \"total\"
query = \"$TOTAL\""
cd "$WORK"
"$TALLY" init --config "$CFG" >>"$WORK/tally.log" 2>&1

fail() { echo "FAIL: $*" >&2; exit 1; }
# reconcile ARGS...: runs `tally reconcile --json`, sets RC and OUT
reconcile() {
  RC=0
  OUT=$("$TALLY" reconcile --config "$CFG" --json "$@" 2>>"$WORK/tally.log") || RC=$?
}
expect() {  # expect VIEW MISSING EXTRA DIFFERENT STATE_MISSING STATE_EXTRA STATE_DIFFERENT
  local got
  got=$(jq -r --arg v "$1" '.views[] | select(.name == $v) |
    "\(.missing) \(.extra) \(.different) \(.state.missing) \(.state.extra) \(.state.different)"' <<<"$OUT")
  [ "$got" = "$2 $3 $4 $5 $6 $7" ] || fail "view $1: expected $2 $3 $4 / $5 $6 $7, got '$got' in $OUT"
}
oracle() {  # oracle MISSING+DIFFERENT EXTRA+DIFFERENT: EXCEPT ALL both ways on by_g
  local a b
  a=$(q -c "SELECT count(*) FROM (($BY_G) EXCEPT ALL TABLE by_g) x")
  b=$(q -c "SELECT count(*) FROM (TABLE by_g EXCEPT ALL ($BY_G)) x")
  [ "$a $b" = "$1 $2" ] || fail "oracle: expected $1 $2, got $a $b"
}
inject() {  # 2 different, 3 missing (one of them the NULL group), 1 extra
  q -c "UPDATE by_g SET n = n + 1 WHERE g IN (1, 2);
        DELETE FROM by_g WHERE g IN (3, 4) OR g IS NULL;
        INSERT INTO by_g VALUES (1000, 1, 1, 1, 'x', 1)"
}

echo "--- no daemon running"
reconcile
[ "$RC" = 0 ] || fail "clean reconcile exited $RC: $OUT"
expect by_g 0 0 0 0 0 0
expect total 0 0 0 0 0 0
inject
TALLY_TEST_CORRUPT_STATE=by_g "$TALLY" init --config "$CFG" >>"$WORK/tally.log" 2>&1
oracle 5 3
reconcile
[ "$RC" = 3 ] || fail "reconcile with drift exited $RC"
expect by_g 3 1 2 0 0 1
expect total 0 0 0 0 0 0
jq -e '.lsn | test("^[0-9A-F]+/[0-9A-F]+$")' <<<"$OUT" >/dev/null || fail "lsn in $OUT"
jq -e '.views[] | select(.name == "by_g") | .samples | map(select(.kind == "missing" and .key.g == null)) | length == 1' <<<"$OUT" >/dev/null ||
  fail "the NULL group is not among the missing samples: $OUT"
jq -e '.views[] | select(.name == "by_g") | .samples | map(select(.kind == "extra" and .key.g == "1000")) | length == 1' <<<"$OUT" >/dev/null ||
  fail "the extra row is not among the samples: $OUT"
"$TALLY" reconcile --config "$CFG" --view by_g 2>>"$WORK/tally.log" >"$WORK/report.txt" || true
grep -q "summary missing (g=NULL)" "$WORK/report.txt" ||
  fail "text report lacks the sample: $(cat "$WORK/report.txt")"
reconcile --repair
[ "$RC" = 0 ] || fail "reconcile --repair exited $RC: $OUT"
jq -e '.views[] | select(.name == "by_g") | .repaired' <<<"$OUT" >/dev/null || fail "not repaired: $OUT"
expect by_g 3 1 2 0 0 1
reconcile
[ "$RC" = 0 ] || fail "reconcile after repair exited $RC: $OUT"
expect by_g 0 0 0 0 0 0
oracle 0 0
check_view by_g "$BY_G"
check_view total "$TOTAL"
[ "$(q -c "SELECT count(*) FROM tally.reconcile_log WHERE view_name = 'by_g' AND repaired")" = 1 ] ||
  fail "reconcile_log: $(q -c 'TABLE tally.reconcile_log')"
echo "ok: drift reported and repaired with no daemon running"

echo "--- daemon running"
start_tally "$CFG"
q -c "UPDATE t SET amount = amount + 1 WHERE id % 5 = 0; DELETE FROM t WHERE id % 11 = 0;
      INSERT INTO t SELECT i, i % 40, 1, 'new' FROM generate_series(5001, 5500) i"
"$TALLY" sync --config "$CFG"
reconcile
[ "$RC" = 0 ] || fail "clean reconcile exited $RC: $OUT"
stop_tally
TALLY_TEST_CORRUPT_STATE=by_g "$TALLY" init --config "$CFG" >>"$WORK/tally.log" 2>&1
start_tally "$CFG"
"$TALLY" sync --config "$CFG"
inject
oracle 5 3
reconcile
[ "$RC" = 3 ] || fail "reconcile with drift exited $RC: $OUT"
expect by_g 3 1 2 0 0 1
[ "$(q -c "SELECT count(*) FROM tally.commands WHERE command = 'reconcile' AND status = 'done'")" -ge 2 ] ||
  fail "the daemon did not run the commands: $(q -c 'TABLE tally.commands')"
# Writes go on while the repair runs; the repair is exact at its own position.
q -c "UPDATE t SET amount = amount + 2 WHERE id % 7 = 0" &
reconcile --repair
wait $!
[ "$RC" = 0 ] || fail "reconcile --repair exited $RC: $OUT"
"$TALLY" sync --config "$CFG"
reconcile
[ "$RC" = 0 ] || fail "reconcile after repair exited $RC: $OUT"
expect by_g 0 0 0 0 0 0
q -c "UPDATE t SET amount = amount + 1 WHERE id % 3 = 0; DELETE FROM t WHERE id % 19 = 0"
"$TALLY" sync --config "$CFG"
check_view by_g "$BY_G"
check_view total "$TOTAL"
reconcile
[ "$RC" = 0 ] || fail "reconcile after more writes exited $RC: $OUT"
echo "ok: drift reported and repaired through the running daemon"
stop_tally

echo "--- scheduled reconciliation"
sed -i 's/^every = ""/every = "1s"\naction = "repair"/' "$CFG"
start_tally "$CFG"
"$TALLY" sync --config "$CFG"
before=$(q -c "SELECT count(*) FROM tally.reconcile_log WHERE view_name = 'by_g' AND repaired AND missing = 3")
inject
for i in $(seq 100); do
  [ "$(q -c "SELECT count(*) FROM tally.reconcile_log WHERE view_name = 'by_g' AND repaired AND missing = 3")" -gt "$before" ] && break
  sleep 0.2
done
[ "$i" -lt 100 ] || fail "the schedule did not repair: $(q -c 'TABLE tally.reconcile_log')"
oracle 0 0
stop_tally
grep -q "reconcile (scheduled) of by_g" "$WORK/tally.log" || fail "no scheduled reconcile in the log"
echo "ok: the schedule repaired the drift"
echo "reconcile passed"
