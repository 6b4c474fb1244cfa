#!/usr/bin/env bash
# What `validate` and `init` say about views they cannot maintain and configs they cannot
# read: exit 2, naming the construct and its line:column, or the key and its line.
source "$(dirname "$0")/../lib/common.sh"
start_cluster
q -c "CREATE TABLE t (id int PRIMARY KEY, g text, x int); CREATE TABLE nopk (g text, x int);
      CREATE TABLE u (id int PRIMARY KEY, t_id int, y int)"

expect() {  # expect CODE PATTERN -- command...
  local code=$1 pattern=$2
  shift 3
  local out rc=0
  out=$("$@" 2>&1) || rc=$?
  if [ "$rc" != "$code" ] || ! grep -qF -- "$pattern" <<<"$out"; then
    echo "FAIL: $* exited $rc (wanted $code) with:" >&2
    echo "$out" >&2
    echo "(wanted output containing: $pattern)" >&2
    exit 1
  fi
  echo "ok: exit $code, '$pattern'"
}

write_config "$WORK/window.toml" '[[views]]
name = "ranked"
mode = "incremental"
query = """
SELECT g,
       count(*) AS n,
       rank() OVER (ORDER BY g) AS r
FROM t GROUP BY g"""'
expect 2 "window function rank() at 3:8" -- "$TALLY" validate --config "$WORK/window.toml"
expect 2 "window function rank() at 3:8" -- "$TALLY" init --config "$WORK/window.toml"

write_config "$WORK/lateral.toml" '[[views]]
name = "lat"
mode = "incremental"
query = """
SELECT t.g, count(*) AS n
FROM t, LATERAL (SELECT y FROM u WHERE u.t_id = t.id) s
GROUP BY t.g"""'
expect 2 "LATERAL subquery at 2:9" -- "$TALLY" validate --config "$WORK/lateral.toml"

write_config "$WORK/typo.toml" '[[views]]
name = "v"
query = "SELECT g, count(*) AS n FROM t GROUP BY g"'
sed -i 's/^max_batch_ms = 50/max_batch_msec = 50/' "$WORK/typo.toml"
line=$(grep -n max_batch_msec "$WORK/typo.toml" | cut -d: -f1)
expect 2 "typo.toml:$line: unknown key 'apply.max_batch_msec'" -- "$TALLY" validate --config "$WORK/typo.toml"

write_config "$WORK/nopk.toml" '[[views]]
name = "v"
query = "SELECT g, count(*) AS n FROM nopk GROUP BY g"'
expect 2 "REPLICA IDENTITY FULL" -- "$TALLY" init --config "$WORK/nopk.toml"

q -c "CREATE TABLE taken (g text)"
write_config "$WORK/taken.toml" '[[views]]
name = "taken"
query = "SELECT g, count(*) AS n FROM t GROUP BY g"'
expect 2 "already exists and was not created by tally" -- "$TALLY" init --config "$WORK/taken.toml"

write_config "$WORK/ok.toml" '[[views]]
name = "by_g"
query = "SELECT g, count(*) AS n FROM t GROUP BY g"'
expect 0 "by_g: incremental" -- "$TALLY" validate --config "$WORK/ok.toml"
echo "cli_errors passed"

# The role lacks REPLICATION.
q -c "CREATE ROLE plain LOGIN; GRANT SELECT ON t TO plain; GRANT CREATE ON SCHEMA public TO plain;
      GRANT CREATE ON DATABASE postgres TO plain"
write_config "$WORK/norepl.toml" '[[views]]
name = "by_g2"
query = "SELECT g, count(*) AS n FROM t GROUP BY g"'
sed -i "s/user=postgres/user=plain/" "$WORK/norepl.toml"
expect 1 "needs the REPLICATION attribute" -- "$TALLY" init --config "$WORK/norepl.toml"

# The slot disappears while tally is down: tally refuses to go on, naming the slot.
"$TALLY" init --config "$WORK/ok.toml" >/dev/null 2>&1
q -c "SELECT pg_drop_replication_slot('tally')" >/dev/null
expect 1 "replication slot 'tally' is missing" -- "$TALLY" run --config "$WORK/ok.toml"

# A server without wal_level = logical.
"$ROOT/scripts/pgcluster" destroy "$CLUSTER" >/dev/null
start_cluster "wal_level = replica"
q -c "CREATE TABLE t (id int PRIMARY KEY, g text, x int)"
write_config "$WORK/walrep.toml" '[[views]]
name = "by_g"
query = "SELECT g, count(*) AS n FROM t GROUP BY g"'
# The old state belongs to the destroyed cluster: refused, not reused.
expect 1 "belongs to another database" -- "$TALLY" init --config "$WORK/walrep.toml"
rm -rf "$WORK/state"
expect 1 "tally needs wal_level = logical" -- "$TALLY" init --config "$WORK/walrep.toml"
echo "cli_errors (server checks) passed"
