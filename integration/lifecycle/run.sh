#!/usr/bin/env bash
# init, run, status (table and JSON), explain, SIGTERM, uninstall, and init again; identifiers
# that need quoting (upper case, spaces, quotes) work everywhere.
source "$(dirname "$0")/../lib/common.sh"
start_cluster
q -c 'CREATE TABLE "Orders" (id int PRIMARY KEY, "Customer Name" text, amount numeric(10,2));
      INSERT INTO "Orders" SELECT i, $$cust "$$ || (i % 7), i / 10.0 FROM generate_series(1, 1000) i'
write_config "$WORK/tally.toml" '[[views]]
name = "Sales by \"Customer\""
query = """SELECT "Customer Name", count(*) AS "N", sum(amount) AS total FROM "Orders" GROUP BY "Customer Name" """'
"$TALLY" init --config "$WORK/tally.toml" >>"$WORK/tally.log" 2>&1
start_tally "$WORK/tally.toml"
q -c 'UPDATE "Orders" SET amount = amount + 1 WHERE id % 3 = 0; DELETE FROM "Orders" WHERE id % 7 = 1'
"$TALLY" sync --config "$WORK/tally.toml"
check_view 'Sales by "Customer"' 'SELECT "Customer Name", count(*) AS "N", sum(amount) AS total FROM "Orders" GROUP BY "Customer Name"'

json=$("$TALLY" status --config "$WORK/tally.toml" --json)
for key in name mode applied_lsn lag_bytes staleness_seconds groups last_reconcile; do
  jq -e ".views[0] | has(\"$key\")" <<<"$json" >/dev/null || { echo "FAIL: status --json lacks $key: $json" >&2; exit 1; }
done
# The DELETE emptied one of the 7 customers' groups.
[ "$(jq -r '.views[0].groups' <<<"$json")" = 6 ] || { echo "FAIL: groups in $json" >&2; exit 1; }
[ "$(jq -r '.views[0].mode' <<<"$json")" = incremental ] || { echo "FAIL: mode in $json" >&2; exit 1; }
"$TALLY" status --config "$WORK/tally.toml" | grep -q 'Sales by "Customer"'
"$TALLY" explain --config "$WORK/tally.toml" --view 'Sales by "Customer"' | grep -qi 'orders'
echo "ok: status and explain"

stop_tally  # SIGTERM: finishes its batch and exits 0
grep -q "streaming from slot" "$WORK/tally.log"

"$TALLY" uninstall --config "$WORK/tally.toml"
[ -z "$(q -c "SELECT 1 FROM pg_replication_slots WHERE slot_name = 'tally'")" ]
[ -z "$(q -c "SELECT 1 FROM pg_publication WHERE pubname = 'tally'")" ]
[ -z "$(q -c "SELECT 1 FROM pg_namespace WHERE nspname = 'tally'")" ]
[ "$(q -c "SELECT to_regclass('public.\"Sales by \"\"Customer\"\"\"') IS NULL")" = t ]
[ ! -e "$WORK/state" ]
echo "ok: uninstall removed summaries, slot, publication, meta schema and state"

"$TALLY" init --config "$WORK/tally.toml" >>"$WORK/tally.log" 2>&1
check_view 'Sales by "Customer"' 'SELECT "Customer Name", count(*) AS "N", sum(amount) AS total FROM "Orders" GROUP BY "Customer Name"'
echo "lifecycle passed"
