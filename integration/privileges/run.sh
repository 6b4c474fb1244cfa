#!/usr/bin/env bash
# Least privilege: a superuser makes the source tables (one with row-level security) and runs
# sql/setup.sql; tally then runs end to end as the role it made, with a password over TCP
# (scram), never a superuser. A reader in grant_select may SELECT the summaries and
# tally.freshness and change nothing; a row-level security policy and a grant the DBA adds to a
# summary hold while tally keeps applying changes and across restarts; tally's output never
# holds the password; uninstall and init work as that role; sql/teardown.sql removes the rest.
# Usage: run.sh [SEED]
source "$(dirname "$0")/../lib/common.sh"
SEED=${1:-$((RANDOM % 1000))}
echo "privileges: seed=$SEED (rerun: $0 $SEED)"
RANDOM=$SEED
fail() { echo "FAIL: $*" >&2; exit 1; }
start_cluster
SUPER_DSN=$DSN
PORT=$(cat "$CLUSTER/port")
PASS="Pw-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"   # must never show in tally's output
"$ROOT/scripts/pgcluster" hba "$CLUSTER" \
  "local all tally_app scram-sha-256" \
  "host all tally_app 127.0.0.1/32 scram-sha-256"  # the logical replication connection too

q -c 'CREATE TABLE orders (id int PRIMARY KEY, region text NOT NULL, amount numeric(10,2));
      CREATE TABLE "Secret Notes" (id int PRIMARY KEY, owner text NOT NULL, score int);
      ALTER TABLE "Secret Notes" ENABLE ROW LEVEL SECURITY;
      ALTER TABLE "Secret Notes" FORCE ROW LEVEL SECURITY;
      CREATE POLICY own_notes ON "Secret Notes" USING (owner = current_user);
      INSERT INTO orders SELECT i, (ARRAY[$$north$$, $$south$$, $$east$$])[1 + i % 3], i % 97 FROM generate_series(1, 3000) i;
      INSERT INTO "Secret Notes" SELECT i, $$user$$ || (i % 5), i % 50 FROM generate_series(1, 500) i;
      CREATE ROLE dash LOGIN; CREATE ROLE auditor LOGIN;'
psql "$SUPER_DSN" -X -q -v ON_ERROR_STOP=1 -v role=tally_app -v password="$PASS" \
  -v tables='public.orders, public."Secret Notes"' -f "$ROOT/sql/setup.sql" >"$WORK/setup.log" 2>&1 \
  || { cat "$WORK/setup.log"; fail "sql/setup.sql"; }
[ "$(q -c "SELECT rolsuper, rolreplication, rolbypassrls, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = 'tally_app'")" = "f|t|t|f|f" ] \
  || fail "tally_app's attributes"
[ "$(q -c "SELECT has_database_privilege('tally_app', current_database(), 'CREATE')")" = f ] || fail "tally_app may create schemas"

ORDERS_Q="SELECT region, count(*) AS n, sum(amount) AS total FROM orders GROUP BY region"
NOTES_Q='SELECT owner, count(*) AS n, max(score) AS top FROM "Secret Notes" GROUP BY owner'
TALLY_DSN="host=127.0.0.1 port=$PORT dbname=postgres user=tally_app password=$PASS"
DSN=$TALLY_DSN write_config "$WORK/tally.toml" "[[views]]
name = \"by_region\"
query = \"$ORDERS_Q\"
grant_select = [\"dash\"]

[[views]]
name = \"notes\"
query = '''$NOTES_Q'''
grant_select = [\"dash\"]"
tally_cmd() { "$TALLY" "$@" --config "$WORK/tally.toml" >>"$WORK/tally.log" 2>&1; }

# What tally may not create is checked, with the fix in the message.
q -c 'DROP PUBLICATION tally'
if "$TALLY" init --config "$WORK/tally.toml" >"$WORK/tally-nopub.log" 2>&1; then fail "init without a publication"; fi
grep -q 'publication "tally" does not exist' "$WORK/tally-nopub.log" && grep -q 'sql/setup.sql' "$WORK/tally-nopub.log" \
  && grep -q 'CREATE PUBLICATION "tally" FOR TABLE "public"."orders", "public"."Secret Notes"' "$WORK/tally-nopub.log" \
  || { cat "$WORK/tally-nopub.log"; fail "no clear message for a missing publication"; }
q -c 'ALTER ROLE tally_app NOBYPASSRLS'
if "$TALLY" init --config "$WORK/tally.toml" >"$WORK/tally-rls.log" 2>&1; then fail "init without BYPASSRLS"; fi
grep -q 'row-level security' "$WORK/tally-rls.log" && grep -q 'BYPASSRLS' "$WORK/tally-rls.log" \
  || { cat "$WORK/tally-rls.log"; fail "no clear message for row-level security"; }
psql "$SUPER_DSN" -X -q -v ON_ERROR_STOP=1 -v role=tally_app -v password="$PASS" \
  -v tables='public.orders, public."Secret Notes"' -f "$ROOT/sql/setup.sql" >>"$WORK/setup.log" 2>&1 \
  || { cat "$WORK/setup.log"; fail "sql/setup.sql, again"; }
echo "ok: a missing publication and row-level security without BYPASSRLS are refused with the fix"

tally_cmd init || fail "init as tally_app"
[ "$(q -c "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'public.by_region'::regclass")" = tally_app ] \
  || fail "the summary is not owned by tally_app"
check_view by_region "$ORDERS_Q"
check_view notes "$NOTES_Q"
start_tally "$WORK/tally.toml"

dml() {  # dml N: N random statements over both tables, as the superuser
  local i sql=""
  for i in $(seq "$1"); do
    local id=$((RANDOM % 4000 + 1)) r=$((RANDOM % 4))
    case $((RANDOM % 6)) in
      0|1) sql+="INSERT INTO orders VALUES ($id, (ARRAY['north','south','east','west'])[$((r + 1))], $((RANDOM % 500)) / 4.0) ON CONFLICT (id) DO UPDATE SET amount = EXCLUDED.amount;" ;;
      2) sql+="UPDATE orders SET region = (ARRAY['north','south','east','west'])[$((r + 1))] WHERE id = $id;" ;;
      3) sql+="DELETE FROM orders WHERE id = $id;" ;;
      4) sql+="INSERT INTO \"Secret Notes\" VALUES ($id, 'user$((RANDOM % 7))', $((RANDOM % 100))) ON CONFLICT (id) DO UPDATE SET score = EXCLUDED.score;" ;;
      5) sql+="DELETE FROM \"Secret Notes\" WHERE id = $id;" ;;
    esac
    if [ $((i % 20)) = 0 ]; then q -c "$sql"; sql=""; fi
  done
  [ -z "$sql" ] || q -c "$sql"
}
dml 600
tally_cmd sync || fail "sync as tally_app"
check_view by_region "$ORDERS_Q"
check_view notes "$NOTES_Q"
echo "ok: init, run and sync as a role with no superuser, over a table with row-level security"

# The reader: SELECT on the summaries and freshness; no writes anywhere, nothing to call.
dash() { psql "$SUPER_DSN user=dash" -v ON_ERROR_STOP=1 -qAtX "$@"; }
dash -c 'SELECT count(*) FROM by_region' >/dev/null || fail "dash cannot read by_region"
dash -c 'SELECT count(*) FROM notes' >/dev/null || fail "dash cannot read notes"
dash -c 'SELECT view_name, staleness_seconds, lag_bytes FROM tally.freshness' >/dev/null || fail "dash cannot read tally.freshness"
for sql in "INSERT INTO by_region VALUES ('x', 1, 1)" "UPDATE by_region SET n = 0" "DELETE FROM notes" \
           "TRUNCATE by_region" "DROP TABLE notes" "UPDATE tally.views SET applied_lsn = '0/0'" \
           "DELETE FROM tally.refresh_log" "INSERT INTO tally.reconcile_log VALUES ('x', now(), NULL, 0, 0, 0, true)"; do
  if dash -c "$sql" 2>/dev/null; then fail "dash could run: $sql"; fi
done
[ "$(q -c "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE (n.nspname = 'tally' OR c.oid IN ('public.by_region'::regclass, 'public.notes'::regclass))
              AND c.relkind IN ('r', 'p', 'v', 'm')
              AND has_table_privilege('dash', c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')")" = 0 ] \
  || fail "dash may change a table of tally's"
[ "$(q -c "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = 'tally' AND has_function_privilege('dash', p.oid, 'EXECUTE')")" = 0 ] \
  || fail "dash may call a function of tally's"
echo "ok: the reader may read summaries and freshness, and change or call nothing"

# The DBA's own row-level security and grants on a summary hold while tally writes.
q -c "ALTER TABLE by_region ENABLE ROW LEVEL SECURITY; ALTER TABLE by_region FORCE ROW LEVEL SECURITY;
      CREATE POLICY north_only ON by_region FOR SELECT TO dash USING (region = 'north');
      GRANT SELECT ON by_region TO auditor"
dash_north() {
  local want got
  want=$(q -c "SELECT * FROM ($ORDERS_Q) q WHERE region = 'north'")
  got=$(dash -c 'SELECT * FROM by_region')
  [ -n "$want" ] && [ "$want" = "$got" ] || fail "dash sees '$got', the north row is '$want'"
}
dml 400
tally_cmd sync
check_view by_region "$ORDERS_Q"   # as the superuser: every row, exact
dash_north
stop_tally
start_tally "$WORK/tally.toml"     # start-up grants again; nothing of the DBA's is lost
dml 400
tally_cmd sync
check_view by_region "$ORDERS_Q"
check_view notes "$NOTES_Q"
dash_north
[ "$(q -c "SELECT count(*) FROM pg_policies WHERE tablename = 'by_region'")" = 1 ] || fail "the policy is gone"
[ "$(q -c "SELECT has_table_privilege('auditor', 'by_region', 'SELECT')")" = t ] || fail "auditor's grant is gone"
[ "$(q -c "SELECT relrowsecurity AND relforcerowsecurity FROM pg_class WHERE relname = 'by_region'")" = t ] || fail "RLS is off"
echo "ok: a policy and a grant added to a summary hold while tally applies changes and restarts"

# A wrong password: the error says so, without the password.
WRONG="Wrong-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
sed "s/password=$PASS/password=$WRONG/" "$WORK/tally.toml" >"$WORK/wrong.toml"
if "$TALLY" status --config "$WORK/wrong.toml" >"$WORK/tally-wrong.log" 2>&1; then fail "status with a wrong password"; fi
grep -q "password authentication failed" "$WORK/tally-wrong.log" || { cat "$WORK/tally-wrong.log"; fail "no authentication error"; }
grep -qF "$WRONG" "$WORK/tally-wrong.log" && fail "the wrong password is in the error: $(cat "$WORK/tally-wrong.log")"
stop_tally

tally_cmd uninstall || fail "uninstall as tally_app"
[ -z "$(q -c "SELECT 1 FROM pg_replication_slots WHERE slot_name = 'tally'")" ] || fail "slot left"
[ "$(q -c "SELECT to_regclass('public.by_region') IS NULL AND to_regclass('tally.views') IS NULL")" = t ] || fail "tables left"
[ -n "$(q -c "SELECT 1 FROM pg_publication WHERE pubname = 'tally'")" ] || fail "uninstall dropped the DBA's publication"
tally_cmd init || fail "init after uninstall"
check_view by_region "$ORDERS_Q"
tally_cmd uninstall
psql "$SUPER_DSN" -X -q -v ON_ERROR_STOP=1 -v role=tally_app -f "$ROOT/sql/teardown.sql" >>"$WORK/setup.log" 2>&1 \
  || { cat "$WORK/setup.log"; fail "sql/teardown.sql"; }
[ -z "$(q -c "SELECT 1 FROM pg_roles WHERE rolname = 'tally_app' UNION ALL SELECT 1 FROM pg_publication WHERE pubname = 'tally'
              UNION ALL SELECT 1 FROM pg_namespace WHERE nspname = 'tally'")" ] || fail "teardown left something"
echo "ok: uninstall, init and uninstall as tally_app; sql/teardown.sql removes the role, publication and schema"

if grep -rlF "$PASS" "$WORK"/tally*.log; then fail "the password is in tally's output"; fi
echo "ok: the password appears in none of tally's output ($(cat "$WORK"/tally*.log | wc -l) lines)"
cat "$WORK/tally-nopub.log" "$WORK/tally-rls.log" "$WORK/tally-wrong.log"
echo "privileges passed (seed $SEED)"
