#!/usr/bin/env bash
# Records the pgoutput byte fixtures of tests/data/pgoutput/ from a real PostgreSQL 15 server.
#
# It starts a private, throwaway cluster (initdb in a temp dir, unix socket only), runs a fixed
# workload (workload.sql) that covers every pgoutput message kind tally must decode, and reads the
# messages back with pg_logical_slot_peek_binary_changes (the SQL interface of logical decoding
# runs pgoutput in the calling backend, streaming included). Peeking does not consume the slot,
# so the same changes are read twice: once as protocol 2 with streaming (text tuples) and once
# with binary tuples and no streaming (only the small transactions).
#
# Outputs (in OUT_DIR, default tests/data/pgoutput of this repo):
#   stream_v2.txt   one message per line: "<lsn> <xid> <hex of the pgoutput message>"
#   binary_v2.txt   same format, 'binary' 'true', streaming off, up to the first big transaction
#   facts.txt       key=value facts the server assigned (relation/type oids, xids, LSNs)
#
# Usage: integration/capture/capture.sh [OUT_DIR]
# Needs PostgreSQL 15 server binaries (PG_BIN, default /usr/lib/postgresql/15/bin) and psql.
# As root, the server runs as the `postgres` OS user.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out_dir="${1:-$repo/tests/data/pgoutput}"
pg_bin="${PG_BIN:-/usr/lib/postgresql/15/bin}"

as_pg() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

work="$(mktemp -d /tmp/tally-capture.XXXXXX)"
chmod 755 "$work"
if [[ $(id -u) -eq 0 ]]; then chown postgres: "$work"; fi
data="$work/data"
started=0

cleanup() {
  if [[ $started -eq 1 ]]; then
    as_pg "$pg_bin/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# A free TCP port: the socket is private to $work, but keep the port unique anyway so the
# cluster cannot be mistaken for another one in logs or by a stray client.
port=""
for _ in $(seq 1 50); do
  candidate=$((20000 + RANDOM % 30000))
  if ! command -v ss >/dev/null || ! ss -ltnH "sport = :$candidate" | grep -q .; then
    port=$candidate
    break
  fi
done
[[ -n $port ]] || { echo "capture.sh: no free port found" >&2; exit 1; }

as_pg "$pg_bin/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C --no-sync >"$work/initdb.log"
cat >>"$data/postgresql.conf" <<EOF
port = $port
listen_addresses = ''
unix_socket_directories = '$work'
wal_level = logical
max_replication_slots = 4
max_wal_senders = 4
# The smallest allowed value: a few thousand rows are enough to make a transaction stream.
logical_decoding_work_mem = 64kB
timezone = 'UTC'
datestyle = 'ISO, MDY'
fsync = off
EOF
as_pg "$pg_bin/pg_ctl" -D "$data" -l "$work/server.log" -w start >/dev/null
started=1

psql_run() {
  psql -X -q -At -v ON_ERROR_STOP=1 -h "$work" -p "$port" -U postgres -d postgres "$@"
}

tmp_out="$work/out"
mkdir -p "$tmp_out"
psql_run -f "$here/workload.sql" >"$tmp_out/facts.txt"
server_version="$(psql_run -c 'SHOW server_version')"
before_big="$(sed -n 's/^lsn.before_big=//p' "$tmp_out/facts.txt")"

header() {
  echo "# Recorded by integration/capture/capture.sh from PostgreSQL $server_version."
  echo "# $1"
  echo "# One pgoutput message per line: <lsn> <xid> <hex bytes>."
}

{
  header "proto_version 2, streaming on, messages true, text tuples."
  psql_run -F ' ' -c "SELECT lsn, xid, encode(data, 'hex')
      FROM pg_logical_slot_peek_binary_changes('slot', NULL, NULL,
        'proto_version', '2', 'publication_names', 'pub', 'streaming', 'on', 'messages', 'true')"
} >"$tmp_out/stream_v2.txt"

{
  header "proto_version 2, binary true, streaming off, messages true, upto_lsn lsn.before_big."
  psql_run -F ' ' -c "SELECT lsn, xid, encode(data, 'hex')
      FROM pg_logical_slot_peek_binary_changes('slot', '$before_big', NULL,
        'proto_version', '2', 'publication_names', 'pub', 'binary', 'true', 'messages', 'true')"
} >"$tmp_out/binary_v2.txt"

echo "server_version=$server_version" >>"$tmp_out/facts.txt"

mkdir -p "$out_dir"
cp "$tmp_out/stream_v2.txt" "$tmp_out/binary_v2.txt" "$tmp_out/facts.txt" "$out_dir/"
echo "capture.sh: wrote $(grep -vc '^#' "$out_dir/stream_v2.txt") + $(grep -vc '^#' "$out_dir/binary_v2.txt") messages to $out_dir"
