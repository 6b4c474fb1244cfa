-- The workload behind tests/data/pgoutput/. Run by capture.sh with psql -q -At: every SELECT
-- prints one key=value line into facts.txt. The literal values here are asserted by
-- tests/pgoutput/fixture_test.cc, so change both together.

CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE t_pk (id int PRIMARY KEY, amount numeric(12,2), note text, ts timestamptz,
                   qty int, flag bool);
CREATE TABLE t_full (a int, b text, m mood);
ALTER TABLE t_full REPLICA IDENTITY FULL;
CREATE TABLE t_toast (id int PRIMARY KEY, big text, small int);
-- EXTERNAL: out of line and uncompressed, so a 3000-byte value is TOASTed as is.
ALTER TABLE t_toast ALTER COLUMN big SET STORAGE EXTERNAL;
CREATE TABLE t_big (id int PRIMARY KEY, payload text);
CREATE PUBLICATION pub FOR TABLE t_pk, t_full, t_toast, t_big;

SELECT 'oid.t_pk=' || 't_pk'::regclass::oid;
SELECT 'oid.t_full=' || 't_full'::regclass::oid;
SELECT 'oid.t_toast=' || 't_toast'::regclass::oid;
SELECT 'oid.t_big=' || 't_big'::regclass::oid;
SELECT 'oid.mood=' || 'mood'::regtype::oid;
SELECT 'slot.lsn=' || lsn FROM pg_create_logical_replication_slot('slot', 'pgoutput');

-- Insert: two rows, all column kinds, NULLs.
BEGIN;
INSERT INTO t_pk VALUES (1, 12.34, 'hello', '2024-01-02 03:04:05+00', 7, true),
                        (2, NULL, 'second', NULL, -3, false);
SELECT 'xid.insert=' || pg_current_xact_id();
COMMIT;

-- Update with REPLICA IDENTITY DEFAULT that keeps the key: only the new tuple.
BEGIN;
UPDATE t_pk SET amount = 99.50, note = 'updated' WHERE id = 1;
SELECT 'xid.update=' || pg_current_xact_id();
COMMIT;

-- Update that changes the key: 'K' old key, then 'N'.
BEGIN;
UPDATE t_pk SET id = 10 WHERE id = 2;
SELECT 'xid.update_key=' || pg_current_xact_id();
COMMIT;

-- Delete: 'K' old key only.
BEGIN;
DELETE FROM t_pk WHERE id = 10;
SELECT 'xid.delete=' || pg_current_xact_id();
COMMIT;

-- REPLICA IDENTITY FULL with an enum column ('Y' type message): 'O' old rows.
BEGIN;
INSERT INTO t_full VALUES (1, 'one', 'happy'), (2, NULL, 'sad');
UPDATE t_full SET b = 'uno' WHERE a = 1;
DELETE FROM t_full WHERE a = 2;
SELECT 'xid.full=' || pg_current_xact_id();
COMMIT;

-- Truncate: one relation with no options, then two relations with CASCADE + RESTART IDENTITY.
BEGIN;
TRUNCATE t_full;
SELECT 'xid.truncate=' || pg_current_xact_id();
COMMIT;
BEGIN;
TRUNCATE t_pk, t_full RESTART IDENTITY CASCADE;
SELECT 'xid.truncate2=' || pg_current_xact_id();
COMMIT;

-- Logical decoding messages: transactional (inside B..C) and not (alone, no xid).
BEGIN;
SELECT 'xid.message=' || pg_current_xact_id();
SELECT 'lsn.message_tx=' || pg_logical_emit_message(true, 'tally', 'transactional payload');
COMMIT;
SELECT 'lsn.message_nt=' || pg_logical_emit_message(false, 'tally_nt', '\x00ff0a'::bytea);

-- TOAST: insert a 3003-byte value, then an update that does not touch it sends 'u'.
BEGIN;
INSERT INTO t_toast VALUES (1, repeat('x', 3000) || 'END', 1);
SELECT 'xid.toast_insert=' || pg_current_xact_id();
COMMIT;
BEGIN;
UPDATE t_toast SET small = 2 WHERE id = 1;
SELECT 'xid.toast_update=' || pg_current_xact_id();
COMMIT;

-- A transaction replayed from a replication origin: 'O' after 'B'.
SELECT 'origin.id=' || pg_replication_origin_create('tally_origin');
SELECT 'origin.setup=done' FROM (SELECT pg_replication_origin_session_setup('tally_origin')) s;
BEGIN;
SELECT 'origin.xact_setup=done' FROM (SELECT pg_replication_origin_xact_setup('0/ABCDEF', now())) s;
INSERT INTO t_pk VALUES (100, 1.00, 'from origin', NULL, NULL, NULL);
SELECT 'xid.origin=' || pg_current_xact_id();
COMMIT;
SELECT 'origin.reset=done' FROM (SELECT pg_replication_origin_session_reset()) s;

SELECT 'lsn.before_big=' || pg_current_wal_lsn();

-- Big committed transaction: more than logical_decoding_work_mem, so it streams (S..E..c).
BEGIN;
INSERT INTO t_big SELECT g, 'row ' || g FROM generate_series(1, 1200) g;
SELECT 'lsn.message_big=' || pg_logical_emit_message(true, 'tally_big', 'end of big');
SELECT 'xid.big_commit=' || pg_current_xact_id();
COMMIT;

-- Big rolled-back transaction: streamed, then 'A' with subxid == xid.
BEGIN;
INSERT INTO t_big SELECT g, 'row ' || g FROM generate_series(10001, 11200) g;
SELECT 'xid.big_abort=' || pg_current_xact_id();
ROLLBACK;

-- Big transaction whose subtransaction is rolled back after it was streamed: 'A' with the
-- subxact's xid, then the rest commits ('c').
BEGIN;
INSERT INTO t_big SELECT g, 'row ' || g FROM generate_series(20001, 20300) g;
SAVEPOINT s1;
INSERT INTO t_big SELECT g, 'row ' || g FROM generate_series(21001, 22200) g;
-- pg_current_xact_id() is the top-level xid; the subxact's xid shows in pg_locks.
SELECT 'xid.big_sub_child=' || transactionid FROM pg_locks
  WHERE locktype = 'transactionid' AND pid = pg_backend_pid()
    AND transactionid::text <> pg_current_xact_id()::text;
ROLLBACK TO SAVEPOINT s1;
RELEASE SAVEPOINT s1;
INSERT INTO t_big SELECT g, 'row ' || g FROM generate_series(25001, 25300) g;
SELECT 'xid.big_sub=' || pg_current_xact_id();
COMMIT;

-- A last small transaction after the streams.
BEGIN;
INSERT INTO t_pk VALUES (200, 2.50, 'last', '2024-06-30 23:59:59.5+00', 0, true);
SELECT 'xid.last=' || pg_current_xact_id();
COMMIT;
SELECT 'lsn.end=' || pg_current_wal_lsn();
