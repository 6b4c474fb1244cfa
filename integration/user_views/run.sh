#!/usr/bin/env bash
# The users' single-table views (copied from the requirement documents' runnable SQL, see
# sql/): group_member_counts, user_stats, product_summary, mv_activity_time_series. Each
# schema loads into its own database; tally maintains summaries (in schema "tally_sum", so
# they sit beside the documents' own materialized views) under the documents' workloads,
# and every summary must equal its query after `tally sync`.
# Usage: run.sh [SCALE] [N] [SEED]
source "$(dirname "$0")/../lib/common.sh"
SQL=$(dirname "$0")/sql
SCALE=${1:-0.2}
N=${2:-2000}
SEED=${3:-$((RANDOM % 100))}
echo "user_views: scale=$SCALE n=$N seed=$SEED (rerun: $0 $SCALE $N $SEED)"
start_cluster
BASE_DSN=$DSN

run_schema() {  # run_schema DB FILE VIEW...
  local db=$1 file=$2
  shift 2
  DSN="${BASE_DSN/dbname=postgres/dbname=$db}"
  psql "$BASE_DSN" -qAtX -v ON_ERROR_STOP=1 -c "CREATE DATABASE $db"
  psql "$DSN" -qX -v ON_ERROR_STOP=1 -v scale="$SCALE" -f "$SQL/$file.sql" >/dev/null
  local views=() v
  for v in "$@"; do
    local def
    def=$(q -c "SELECT definition FROM pg_matviews WHERE matviewname = '$v'")
    views+=("$(printf '[[views]]\nname = "%s"\nquery = """\n%s"""\n' "$v" "${def%;}")")
  done
  local cfg=$WORK/$db.toml
  write_config "$cfg" "${views[@]}"
  sed -i "s/^slot = .*/slot = \"tally_$db\"/; s/^dir = .*/dir = \"state_$db\"/" "$cfg"
  printf '\n[sink]\nschema = "tally_sum"\n' >>"$cfg"
  "$TALLY" validate --config "$cfg"
  "$TALLY" init --config "$cfg" >>"$WORK/tally.log" 2>&1
  start_tally "$cfg"
  psql "$DSN" -qX -v ON_ERROR_STOP=1 -v n="$N" -v seed="$SEED" -f "$SQL/$file.workload.sql" >/dev/null
  "$TALLY" sync --config "$cfg" --timeout 120s
  for v in "$@"; do
    local def
    def=$(q -c "SELECT definition FROM pg_matviews WHERE matviewname = '$v'")
    check_view_in tally_sum "$v" "${def%;}"
  done
  stop_tally
}

check_view_in() {
  local schema=$1 name=$2 query=$3 diff
  diff=$(q -c "BEGIN ISOLATION LEVEL REPEATABLE READ;
    SELECT 'extra', * FROM (TABLE $schema.\"$name\" EXCEPT ALL ($query)) a;
    SELECT 'missing', * FROM (($query) EXCEPT ALL TABLE $schema.\"$name\") b;
    COMMIT;")
  if [ -n "$diff" ]; then
    echo "FAIL: view $name differs from its query:" >&2
    echo "$diff" | head -20 >&2
    return 1
  fi
  echo "ok: $name equals its query ($(q -c "SELECT count(*) FROM $schema.\"$name\"") rows)"
}

run_schema v000 000_group_members group_member_counts
run_schema v001 001_user_product_stats user_stats product_summary
run_schema v003 003_activity_stats mv_activity_time_series
echo "user_views passed"
