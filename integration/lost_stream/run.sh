#!/usr/bin/env bash
# A lost stretch of the stream is never passed over silently:
# 1. the slot is dropped while tally is down and writes go on: `tally run` refuses (exit 1)
#    naming the slot; `reconcile` reports the drift (exit 3, the counts the EXCEPT ALL oracle
#    gives); `reconcile --repair` recreates the slot and rebuilds every view from its snapshot;
#    then `run` follows the stream again and every view is exact.
# 2. the state is restored from an older copy (the slot has confirmed past it): the same.
source "$(dirname "$0")/../lib/common.sh"
start_cluster
q -c "CREATE TABLE t (id int PRIMARY KEY, g int, amount numeric(10,2));
      INSERT INTO t SELECT i, i % 30, i / 8.0 FROM generate_series(1, 3000) i;
      CREATE TABLE u (id int PRIMARY KEY, k text);
      INSERT INTO u SELECT i, 'k' || (i % 7) FROM generate_series(1, 500) i"
BY_G="SELECT g, count(*) AS n, sum(amount) AS total, max(amount) AS hi FROM t GROUP BY g"
BY_K="SELECT k, count(*) AS n FROM u GROUP BY k"
CFG=$WORK/tally.toml
write_config "$CFG" "[[views]]
name = \"by_g\"
query = \"$BY_G\"" "[[views]]
name = \"by_k\"
query = \"$BY_K\""
cd "$WORK"
fail() { echo "FAIL: $*" >&2; exit 1; }
writes() {
  q -c "UPDATE t SET amount = amount + $1 WHERE id % 4 = 0; DELETE FROM t WHERE id % 9 = $1;
        INSERT INTO t SELECT i, i % 33, 1 FROM generate_series(10000 * $1, 10000 * $1 + 99) i;
        UPDATE u SET k = 'k' || ((id + $1) % 9) WHERE id % 5 = 0"
}
oracle_missing_different() { q -c "SELECT count(*) FROM (($BY_G) EXCEPT ALL TABLE by_g) x"; }
oracle_extra_different() { q -c "SELECT count(*) FROM (TABLE by_g EXCEPT ALL ($BY_G)) x"; }
recover() {  # the documented recovery; $1 names the case, $2 the writes after it
  local rc=0 out
  "$TALLY" run --config "$CFG" >"$WORK/refused.log" 2>&1 || rc=$?
  [ "$rc" = 1 ] || fail "$1: tally run exited $rc: $(cat "$WORK/refused.log")"
  grep -q "slot 'tally'" "$WORK/refused.log" || fail "$1: the refusal does not name the slot: $(cat "$WORK/refused.log")"
  grep -q "reconcile --repair" "$WORK/refused.log" || fail "$1: the refusal does not name the recovery"
  rc=0
  "$TALLY" refresh --config "$CFG" --view by_g --full >"$WORK/refresh.log" 2>&1 || rc=$?
  [ "$rc" = 1 ] || fail "$1: refresh --full with the stream lost exited $rc"
  local md ed
  md=$(oracle_missing_different)
  ed=$(oracle_extra_different)
  rc=0
  out=$("$TALLY" reconcile --config "$CFG" --json 2>>"$WORK/tally.log") || rc=$?
  [ "$rc" = 3 ] || fail "$1: reconcile exited $rc: $out"
  [ "$(jq '.views[] | select(.name == "by_g") | .missing + .different' <<<"$out")" = "$md" ] &&
    [ "$(jq '.views[] | select(.name == "by_g") | .extra + .different' <<<"$out")" = "$ed" ] ||
    fail "$1: reconcile disagrees with the oracle ($md, $ed): $out"
  [ "$(jq '.views[] | select(.name == "by_k") | .different' <<<"$out")" -gt 0 ] || fail "$1: by_k drift: $out"
  echo "ok: $1: run refused, reconcile reported the drift ($md/$ed)"
  rc=0
  out=$("$TALLY" reconcile --config "$CFG" --repair --json 2>>"$WORK/tally.log") || rc=$?
  [ "$rc" = 0 ] || fail "$1: reconcile --repair exited $rc: $out"
  [ "$(jq '[.views[] | select(.repaired)] | length' <<<"$out")" = 2 ] || fail "$1: not repaired: $out"
  check_view by_g "$BY_G"
  check_view by_k "$BY_K"
  start_tally "$CFG"
  writes "$2"
  "$TALLY" sync --config "$CFG"
  check_view by_g "$BY_G"
  check_view by_k "$BY_K"
  rc=0
  out=$("$TALLY" reconcile --config "$CFG" --json 2>>"$WORK/tally.log") || rc=$?
  [ "$rc" = 0 ] || fail "$1: reconcile after the recovery exited $rc: $out"
  stop_tally
  echo "ok: $1: recovered, every view exact"
}

"$TALLY" init --config "$CFG" >>"$WORK/tally.log" 2>&1
start_tally "$CFG"
writes 1
"$TALLY" sync --config "$CFG"
stop_tally
q -c "SELECT pg_drop_replication_slot('tally')" >/dev/null
writes 2
recover "slot dropped" 5

cp -a "$WORK/state" "$WORK/state.old"
start_tally "$CFG"
writes 3
"$TALLY" sync --config "$CFG"
stop_tally
rm -rf "$WORK/state"
mv "$WORK/state.old" "$WORK/state"
writes 4
recover "state older than the slot" 6
echo "lost_stream passed"
