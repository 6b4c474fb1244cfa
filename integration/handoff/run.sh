#!/usr/bin/env bash
# drop and init with `tally run` up, under a steady write load: both go to the daemon through
# the command table. (a) init with views added to the config backfills them in the running
# daemon (one over a table not yet published, one over a table it already streams) and they
# are then maintained exactly, as are the old ones; init with nothing new says so and reports a
# changed view as ignored. (b) drop removes a view (summary, meta rows, publication entry, and
# its state keys: checked once the daemon stops); a view dropped while still in the config is
# not built again by init until the daemon restarts. (c) the daemon starts again afterwards,
# with the view it added and without the ones it dropped; a view the state holds but the daemon
# does not follow (out of the config at its start) is rebuilt by init, its old row store gone.
source "$(dirname "$0")/../lib/common.sh"
STATE_DUMP=${STATE_DUMP:-$ROOT/build/bin/tally_state_dump}
fail() { echo "FAIL: $*" >&2; exit 1; }
SEED=${SEED:-$RANDOM}
echo "seed: $SEED"
start_cluster
q -c 'CREATE TABLE t1 (id int PRIMARY KEY, g int, x int);
      CREATE TABLE t2 (id int PRIMARY KEY, k text, y int);
      CREATE TABLE t3 (id int PRIMARY KEY, k text, y int);
      ALTER TABLE t1 SET (autovacuum_enabled = off);
      CREATE SEQUENCE ids START 1000000;
      CREATE TABLE ctl (stop bool);
      INSERT INTO t1 SELECT i, i % 13, i % 101 FROM generate_series(1, 5000) i;
      INSERT INTO t2 SELECT i, $$k$$ || (i % 9), i % 17 FROM generate_series(1, 3000) i;
      INSERT INTO t3 SELECT i, $$c$$ || (i % 7), i % 23 FROM generate_series(1, 2000) i'
QA='SELECT g, count(*) AS n, sum(x) AS s FROM t1 GROUP BY g'
QB='SELECT k, count(*) AS n, max(y) AS hi FROM t2 GROUP BY k'
QB2='SELECT k, count(*) AS n, min(y) AS lo FROM t2 GROUP BY k'
QC='SELECT k, count(*) AS n, sum(y) AS s FROM t3 GROUP BY k'
QD='SELECT g, count(DISTINCT x) AS dx, min(x) AS lo FROM t1 GROUP BY g'
view() { printf '[[views]]\nname = "%s"\nquery = '"'''"'%s'"'''"'\n' "$1" "$2"; }
CFG=$WORK/tally.toml
config() {  # config VIEW...: a config with those of a, b (b2: b with a changed query), c, d
  local blocks=() v
  for v in "$@"; do
    case $v in
      a) blocks+=("$(view a "$QA")") ;;
      b) blocks+=("$(view b "$QB")") ;;
      b2) blocks+=("$(view b "$QB2")") ;;
      c) blocks+=("$(view c "$QC")") ;;
      d) blocks+=("$(view d "$QD")") ;;
    esac
  done
  write_config "$CFG" "${blocks[@]}"
}
LOAD_PID=
start_load() {  # a plpgsql loop: small transactions on every table until ctl.stop
  q -c "UPDATE ctl SET stop = false; INSERT INTO ctl SELECT false WHERE NOT EXISTS (SELECT 1 FROM ctl)"
  q -c "DO \$\$
    DECLARE n bigint;
    BEGIN
      PERFORM setseed(($SEED % 1000) / 1000.0);
      WHILE NOT (SELECT stop FROM ctl) LOOP
        n := nextval('ids');
        UPDATE t1 SET x = x + 1, g = (g + 1) % 13 WHERE id = 1 + (random() * 4999)::int;
        INSERT INTO t1 VALUES (n, n % 11, n % 97);
        DELETE FROM t1 WHERE id = 1 + (random() * 4999)::int;
        UPDATE t2 SET y = y + 1 WHERE id = 1 + (random() * 2999)::int;
        INSERT INTO t2 VALUES (n, 'k' || (n % 5), n % 31);
        INSERT INTO t3 VALUES (n, 'c' || (n % 7), n % 23);
        DELETE FROM t3 WHERE id = 1 + (random() * 1999)::int;
        UPDATE t3 SET y = y + 2 WHERE id = 1 + (random() * 1999)::int;
        COMMIT;
        PERFORM pg_sleep(0.002);
      END LOOP;
    END \$\$" &
  LOAD_PID=$!
}
stop_load() {
  q -c "UPDATE ctl SET stop = true"
  wait "$LOAD_PID" || fail "the write load failed"
  LOAD_PID=
}
load_count() { q -c "SELECT last_value FROM ids"; }
published() { q -c "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_publication_tables WHERE pubname = 'tally'"; }
exists() { q -c "SELECT to_regclass('public.$1') IS NOT NULL"; }
meta_rows() { q -c "SELECT (SELECT count(*) FROM tally.views WHERE name = '$1') + (SELECT count(*) FROM tally.refresh_log WHERE view_name = '$1')"; }

config a b
"$TALLY" init --config "$CFG" >>"$WORK/tally.log" 2>&1
start_tally "$CFG"
start_load
sleep 2
[ "$(published)" = "t1,t2" ] || fail "publication holds $(published)"

# (a) init with a view added: d over t1, which the stream carries already (no Relation message
# comes again for it: the daemon must describe t1 to d's new row store itself).
config a b d
before=$(load_count)
"$TALLY" init --config "$CFG" >"$WORK/init.out" 2>"$WORK/init.err" || { cat "$WORK/init.err"; fail "init with the daemon up"; }
cat "$WORK/init.out"
grep -q "added view d" "$WORK/init.out" || fail "init did not add d"
[ "$(load_count)" -gt "$before" ] || fail "no writes while init ran"
sleep 1
# Then c over t3, a table not yet published.
config a b c d
"$TALLY" init --config "$CFG" >"$WORK/init1.out" 2>>"$WORK/init.err" || { cat "$WORK/init.err"; fail "init of c with the daemon up"; }
cat "$WORK/init1.out"
grep -q "added view c" "$WORK/init1.out" && ! grep -q "added view d" "$WORK/init1.out" || fail "init did not add c alone"
[ "$(published)" = "t1,t2,t3" ] || fail "publication holds $(published) after adding c"
sleep 3
config a b2 c d  # b's query changed: init leaves b alone and says so
"$TALLY" init --config "$CFG" >"$WORK/init2.out" 2>>"$WORK/init.err" || fail "a second init exited $?"
cat "$WORK/init2.out"
grep -q "nothing to do" "$WORK/init2.out" || fail "a second init did something"
grep -q "ignored view b: its query changed" "$WORK/init2.out" || fail "the changed view b was not reported"
config a b c d
sleep 2
stop_load
"$TALLY" sync --config "$CFG"
check_view a "$QA"; check_view b "$QB"; check_view c "$QC"; check_view d "$QD"
echo "ok: init with the daemon up backfilled d, then c, under load; all four views exact"

# (b) drop with the daemon up: refused with nothing changed when a user's view depends on the
# summary (the daemon goes on maintaining it); then c after it left the config, and b (the only
# view of t2) while still in it.
start_load
q -c 'CREATE VIEW b_report AS SELECT * FROM b'
if "$TALLY" drop --config "$CFG" --view b 2>"$WORK/drop-dep.err"; then fail "drop of b with a dependent view"; fi
grep -q "depend" "$WORK/drop-dep.err" || fail "dependent view: $(cat "$WORK/drop-dep.err")"
[ "$(exists b)$(q -c "SELECT count(*) FROM tally.views WHERE name = 'b'")" = t1 ] || fail "the refused drop changed b"
q -c 'DROP VIEW b_report'
sleep 1
config a b d
"$TALLY" drop --config "$CFG" --view c >"$WORK/drop-c.out" 2>"$WORK/drop.err" || { cat "$WORK/drop.err"; fail "drop c with the daemon up"; }
cat "$WORK/drop-c.out"
[ "$(exists c)" = f ] || fail "summary c is still there"
[ "$(meta_rows c)" = 0 ] || fail "meta rows of c left"
[ "$(published)" = "t1,t2" ] || fail "publication holds $(published) after dropping c, the only view of t3"
"$TALLY" drop --config "$CFG" --view b >"$WORK/drop-b.out" 2>>"$WORK/drop.err" || { cat "$WORK/drop.err"; fail "drop b with the daemon up"; }
cat "$WORK/drop-b.out"
grep -q "still in" "$WORK/drop-b.out" || fail "no note that b is still in the config"
[ "$(exists b)" = f ] && [ "$(meta_rows b)" = 0 ] || fail "b is not dropped"
[ "$(published)" = "t1" ] || fail "publication holds $(published) after dropping b, the only view of t2"
"$TALLY" init --config "$CFG" >"$WORK/init3.out" 2>>"$WORK/init.err" || fail "init after the drops exited $?"
cat "$WORK/init3.out"
grep -q "ignored view b: dropped while this daemon runs" "$WORK/init3.out" || fail "init with b dropped but in the config"
[ "$(exists b)" = f ] || fail "init built b again while the daemon runs"
if "$TALLY" drop --config "$CFG" --view c 2>"$WORK/drop-again.err"; then fail "a second drop of c succeeded"; fi
grep -q "no view named 'c'" "$WORK/drop-again.err" || fail "second drop: $(cat "$WORK/drop-again.err")"
sleep 2
stop_load
config a d  # sync waits for every view of the config
"$TALLY" sync --config "$CFG"
check_view a "$QA"; check_view d "$QD"
kill -0 "$TALLY_PID" || fail "the daemon is gone"
echo "ok: drop with the daemon up removed c and b; the other views stay exact"
stop_tally

# Their state keys went too: the state holds a and d only, and no key of another view or group.
"$STATE_DUMP" "$WORK/state" >"$WORK/state.txt"
names=$(awk '$1 == "V" && NF >= 4 { print $4 }' "$WORK/state.txt" | sort | paste -sd,)
[ "$names" = a,d ] || fail "the state holds views $names"
orphans=$(awk '$1 == "V" && NF >= 4 { view[$2] = 1; group[$3] = 1; next }
  ($1 == "g" || $1 == "x" || $1 == "p" || $1 == "Mrewrite") && !($2 in view) { print }
  ($1 == "r" || $1 == "Mgroup") && !($2 in group) { print }' "$WORK/state.txt")
[ -z "$orphans" ] || fail "keys of dropped views left in the state: $orphans"
echo "ok: the state holds no key of b or c"

# (c) with b out of the config, the daemon starts again: a, and d (added by the running daemon)
# go on from their state.
start_tally "$CFG"
start_load
sleep 2
stop_load
"$TALLY" sync --config "$CFG"
check_view a "$QA"; check_view d "$QD"
[ "$(exists b)$(exists c)" = ff ] || fail "a dropped view came back"
[ "$(grep -c "view d: backfilled" "$WORK/tally.log")" = 1 ] || fail "the restart backfilled d again"
stop_tally
echo "ok: the daemon restarts with the view it added and without the ones it dropped"

# A view the state holds but the daemon does not follow (it left the config before the start)
# comes back through init: built afresh under its old id, its old row store gone.
D_GROUP=$(awk '$1 == "V" && $4 == "d" { print $3 }' "$WORK/state.txt")
config a
start_tally "$CFG"
start_load
sleep 1
config a d
"$TALLY" init --config "$CFG" >"$WORK/init4.out" 2>>"$WORK/init.err" || { cat "$WORK/init.err"; fail "init of d back"; }
grep -q "added view d" "$WORK/init4.out" || fail "init did not add d back: $(cat "$WORK/init4.out")"
sleep 1
stop_load
"$TALLY" sync --config "$CFG"
check_view a "$QA"; check_view d "$QD"
stop_tally
"$STATE_DUMP" "$WORK/state" >"$WORK/state.txt"
[ "$(awk '$1 == "V" && NF >= 4 { print $4 }' "$WORK/state.txt" | sort | paste -sd,)" = a,d ] || fail "views in the state: $(cat "$WORK/state.txt")"
[ "$(awk '$1 == "V" && $4 == "d" { print $3 }' "$WORK/state.txt")" != "$D_GROUP" ] || fail "d kept its old row store"
orphans=$(awk '$1 == "V" && NF >= 4 { view[$2] = 1; group[$3] = 1; next }
  ($1 == "g" || $1 == "x" || $1 == "p" || $1 == "Mrewrite") && !($2 in view) { print }
  ($1 == "r" || $1 == "Mgroup") && !($2 in group) { print }' "$WORK/state.txt")
[ -z "$orphans" ] || fail "keys left in the state: $orphans"
echo "ok: a view back in the config is rebuilt by the running daemon, its old row store dropped"
if grep -q "stopped:\|reconnecting" "$WORK/tally.log"; then fail "the daemon stopped a view or lost a connection"; fi
echo "handoff passed"
