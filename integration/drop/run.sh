#!/usr/bin/env bash
# tally drop --view: the summary table, the view's keys in the state (and its row store when
# no other view shares it), its meta rows and, when no other view reads its table, that table's
# place in the publication go; the other views stay exact. Both workflows: remove the view from
# the config then drop it (it stays gone), or drop it while still in the config (the next init
# builds it again). Refused when a user's view depends on the summary. (With a daemon running
# the drop goes to it: integration/handoff.)
source "$(dirname "$0")/../lib/common.sh"
STATE_DUMP=${STATE_DUMP:-$ROOT/build/bin/tally_state_dump}
fail() { echo "FAIL: $*" >&2; exit 1; }
start_cluster
q -c 'CREATE TABLE t1 (id int PRIMARY KEY, g int, x int);
      CREATE TABLE "T two" (id int PRIMARY KEY, k text, y int);
      INSERT INTO t1 SELECT i, i % 13, i % 101 FROM generate_series(1, 5000) i;
      INSERT INTO "T two" SELECT i, $$k$$ || (i % 9), i % 17 FROM generate_series(1, 3000) i'
QA='SELECT g, count(*) AS n, sum(x) AS s FROM t1 GROUP BY g'
QB='SELECT g, max(x) AS hi FROM t1 GROUP BY g'
QC='SELECT k, count(*) AS n, count(DISTINCT y) AS d FROM "T two" GROUP BY k'
view() { printf '[[views]]\nname = "%s"\nquery = '"'''"'%s'"'''"'\n' "$1" "$2"; }
config() {  # config VIEW...: a config with those of a, b, "View C"
  local blocks=() v
  for v in "$@"; do
    case $v in
      a) blocks+=("$(view a "$QA")") ;;
      b) blocks+=("$(view b "$QB")") ;;
      c) blocks+=("$(view 'View C' "$QC")") ;;
    esac
  done
  write_config "$WORK/tally.toml" "${blocks[@]}"
}
dml() {
  q -c "UPDATE t1 SET x = x + 1 WHERE id % 7 = $((RANDOM % 7)); DELETE FROM t1 WHERE id % 50 = $((RANDOM % 50));
        INSERT INTO t1 SELECT 10000 + i, i % 17, i FROM generate_series($((RANDOM % 100)), 300) i ON CONFLICT DO NOTHING;
        UPDATE \"T two\" SET y = y + 1 WHERE id % 5 = 0; DELETE FROM \"T two\" WHERE id % 40 = 1"
}
check_ab() { check_view a "$QA"; check_view b "$QB"; }
published() { q -c "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_publication_tables WHERE pubname = 'tally'"; }
views_in_state() {  # lines "id group name" (tally_state_dump prints "V id group name")
  "$STATE_DUMP" "$WORK/state" | awk '$1 == "V" && NF >= 4 { name = $0; sub(/^V [0-9]+ [0-9]+ /, "", name); print $2, $3, name }'
}
view_id() { views_in_state | awk -v n="$1" '{ id = $1; $1 = ""; $2 = ""; sub(/^  /, ""); if ($0 == n) print id }'; }
group_of() { views_in_state | awk -v n="$1" '{ g = $2; $1 = ""; $2 = ""; sub(/^  /, ""); if ($0 == n) print g }'; }
keys_of() {  # keys_of ID: the state's lines for that view id (V, g, x, p, Mrewrite)
  "$STATE_DUMP" "$WORK/state" | awk -v id="$1" '$1 ~ /^(V|g|x|p|Mrewrite)$/ && $2 == id'
}
store_of() { "$STATE_DUMP" "$WORK/state" | awk -v id="$1" '($1 == "r" || $1 == "Mgroup") && $2 == id'; }

config a b c
"$TALLY" init --config "$WORK/tally.toml" >>"$WORK/tally.log" 2>&1
start_tally "$WORK/tally.toml"
dml
"$TALLY" sync --config "$WORK/tally.toml"
check_ab; check_view 'View C' "$QC"
[ "$(published)" = "T two,t1" ] || fail "publication holds $(published)"

stop_tally

# Workflow 1: remove it from the config, then drop it.
C_ID=$(view_id 'View C'); C_GROUP=$(group_of 'View C'); A_GROUP=$(group_of a)
[ -n "$C_ID" ] && [ -n "$(keys_of "$C_ID" | grep '^g ')" ] && [ -n "$(store_of "$C_GROUP" | grep '^r ')" ] \
  || fail "no state for View C before the drop: $("$STATE_DUMP" "$WORK/state")"
config a b
"$TALLY" drop --config "$WORK/tally.toml" --view 'View C' | tee "$WORK/drop.log"
[ "$(q -c "SELECT to_regclass('public.\"View C\"') IS NULL")" = t ] || fail "summary of View C is still there"
[ "$(q -c "SELECT count(*) FROM tally.views WHERE name = 'View C'")$(q -c "SELECT count(*) FROM tally.refresh_log WHERE view_name = 'View C'")" = 00 ] \
  || fail "meta rows of View C left"
[ -z "$(keys_of "$C_ID")" ] || fail "state keys of View C left: $(keys_of "$C_ID")"
[ -z "$(store_of "$C_GROUP")" ] || fail "row store of View C left: $(store_of "$C_GROUP")"
[ -n "$(store_of "$A_GROUP" | grep '^r ')" ] || fail "the drop took a's row store"
[ "$(published)" = "t1" ] || fail "publication holds $(published) after dropping the only view of \"T two\""
! "$TALLY" status --config "$WORK/tally.toml" | grep -q 'View C' || fail "status lists View C"
[ "$("$TALLY" status --config "$WORK/tally.toml" --json | jq -r '[.views[].name] | join(",")')" = a,b ] || fail "status --json"
if "$TALLY" drop --config "$WORK/tally.toml" --view 'View C' 2>"$WORK/drop-again.log"; then fail "a second drop succeeded"; fi
grep -q "no view named 'View C'" "$WORK/drop-again.log" || fail "second drop: $(cat "$WORK/drop-again.log")"
echo "ok: View C dropped: summary, keys, row store, meta rows, publication entry"

start_tally "$WORK/tally.toml"
dml; dml
"$TALLY" sync --config "$WORK/tally.toml"
check_ab
[ "$(q -c "SELECT to_regclass('public.\"View C\"') IS NULL")" = t ] || fail "View C came back"
echo "ok: the other views stay exact; a dropped view out of the config stays gone"
stop_tally

# Workflow 2: drop a view still in the config (sharing a's row store): the next init builds it.
B_ID=$(view_id b)
"$TALLY" drop --config "$WORK/tally.toml" --view b | tee "$WORK/drop-b.log"
grep -q "still in" "$WORK/drop-b.log" || fail "no note that b is still in the config"
[ -z "$(keys_of "$B_ID")" ] || fail "state keys of b left"
[ -n "$(store_of "$A_GROUP" | grep '^r ')" ] || fail "dropping b took the row store a shares"
[ "$(published)" = "t1" ] || fail "publication lost t1, which a reads"
dml
"$TALLY" init --config "$WORK/tally.toml" >"$WORK/init-b.log" 2>&1
grep -q "view b: backfilled" "$WORK/init-b.log" || fail "b was not built again"
start_tally "$WORK/tally.toml"
dml
"$TALLY" sync --config "$WORK/tally.toml"
check_ab
stop_tally
config a
"$TALLY" drop --config "$WORK/tally.toml" --view b >/dev/null
echo "ok: a view dropped while in the config is built again by init"

# A user's view over a summary: the drop stops before changing anything.
q -c 'CREATE VIEW a_report AS SELECT * FROM a'
A_ID=$(view_id a)
if "$TALLY" drop --config "$WORK/tally.toml" --view a 2>"$WORK/drop-dep.log"; then fail "drop with a dependent view"; fi
grep -q "depend" "$WORK/drop-dep.log" || fail "dependent view: $(cat "$WORK/drop-dep.log")"
[ -n "$(keys_of "$A_ID")" ] || fail "the refused drop took a's state"
[ "$(q -c "SELECT count(*) FROM tally.views WHERE name = 'a'")" = 1 ] || fail "the refused drop took a's meta row"
q -c 'DROP VIEW a_report'
start_tally "$WORK/tally.toml"
dml
"$TALLY" sync --config "$WORK/tally.toml"
check_view a "$QA"
echo "ok: a summary another view depends on is not dropped, and nothing else is"
stop_tally
echo "drop passed"
