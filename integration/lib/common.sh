# Shared helpers for integration scenarios: a private cluster, psql, tally, and the oracle.
# Source it; it sets TALLY (the binary), WORK (a temp dir, removed at exit), DSN.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TALLY=${TALLY:-$ROOT/build/bin/tally}
WORK=$(mktemp -d /tmp/tally-it.XXXXXX)
chmod 755 "$WORK"
CLUSTER=$WORK/pg
TALLY_PID=
cleanup() {
  local rc=$?
  [ -n "$TALLY_PID" ] && kill -9 "$TALLY_PID" 2>/dev/null || true
  if [ $rc -ne 0 ]; then
    echo "--- tally log (tail) ---" >&2
    tail -40 "$WORK"/tally*.log >&2 2>/dev/null || true
    echo "--- server log (tail) ---" >&2
    tail -20 "$CLUSTER/server.log" >&2 2>/dev/null || true
  fi
  "$ROOT/scripts/pgcluster" destroy "$CLUSTER" >/dev/null 2>&1 || true
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT

start_cluster() {
  "$ROOT/scripts/pgcluster" start "$CLUSTER" "$@" >/dev/null
  DSN=$("$ROOT/scripts/pgcluster" dsn "$CLUSTER")
}

q() { psql "$DSN" -v ON_ERROR_STOP=1 -qAtX "$@"; }

# write_config FILE VIEW_TOML... : a config for this cluster with the given [[views]] blocks.
write_config() {
  local file=$1
  shift
  cat >"$file" <<TOML
[source]
dsn = "$DSN"
slot = "tally"
publication = "tally"

[state]
dir = "state"
cache_mb = ${CACHE_MB:-256}

[apply]
max_batch_ms = 50

[reconcile]
every = ""

[metrics]
listen = ""
TOML
  for v in "$@"; do printf '\n%s\n' "$v" >>"$file"; done
}

start_tally() {  # start_tally CONFIG [KILL_POINT]: KILL_POINT (name[:n]) makes tally SIGKILL itself there
  TALLY_KILL_POINT=${2:-} "$TALLY" run --config "$1" >>"$WORK/tally.log" 2>&1 &
  TALLY_PID=$!
}

wait_killed() {  # waits (up to 60 s) for a tally started with a kill point to have killed itself
  local i
  for i in $(seq 600); do
    kill -0 "$TALLY_PID" 2>/dev/null || { wait "$TALLY_PID" 2>/dev/null || true; TALLY_PID=; return 0; }
    sleep 0.1
  done
  echo "FAIL: tally did not reach its kill point" >&2
  return 1
}

stop_tally() {
  [ -n "$TALLY_PID" ] || return 0
  kill -TERM "$TALLY_PID" 2>/dev/null || true
  wait "$TALLY_PID" || { echo "tally run exited with $?" >&2; return 1; }
  TALLY_PID=
}

kill_tally() {
  [ -n "$TALLY_PID" ] || return 0
  kill -9 "$TALLY_PID" 2>/dev/null || true
  wait "$TALLY_PID" 2>/dev/null || true
  TALLY_PID=
}

# check_view NAME QUERY: the summary equals the query, EXCEPT ALL both ways, one snapshot.
check_view() {
  local name=$1 query=$2
  local diff table="\"${1//\"/\"\"}\""
  diff=$(q -c "BEGIN ISOLATION LEVEL REPEATABLE READ;
    SELECT 'extra', * FROM (TABLE $table EXCEPT ALL ($query)) a;
    SELECT 'missing', * FROM (($query) EXCEPT ALL TABLE $table) b;
    COMMIT;")
  if [ -n "$diff" ]; then
    echo "FAIL: view $name differs from its query:" >&2
    echo "$diff" | head -20 >&2
    return 1
  fi
  echo "ok: $name equals its query ($(q -c "SELECT count(*) FROM $table") rows)"
}
