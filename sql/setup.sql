-- tally's least-privilege setup: run once, as a superuser, in the source database.
--
--   psql "dbname=app" -v tables='public.orders, public."Line Items"' \
--        -v role=tally -v password='…' -v publication=tally \
--        -v meta_schema=tally -v sink_schema=public -f sql/setup.sql
--
-- Only `tables` is required (the tables the views read, comma-separated, as you would write
-- them in SQL; unqualified names follow search_path). The others default to what is shown.
-- Without `password` the role gets none (use peer or certificate authentication, or set one
-- later with psql's \password, which never sends it in clear).
--
-- What it makes, each step idempotent (run it again with more tables to add them):
--   * role `role`: LOGIN, REPLICATION (the slot and the stream), BYPASSRLS (a backfill must
--     see the rows the stream carries, whatever row-level security policies say); no superuser;
--   * CONNECT on the database, USAGE on the tables' schemas, SELECT on the tables;
--   * schema `meta_schema`, owned by the role (tally's own tables);
--   * CREATE on `sink_schema` (the summary tables; the role owns the ones it creates), or the
--     schema itself, owned by the role, when it does not exist;
--   * publication `publication` FOR the tables, with every operation and
--     publish_via_partition_root (created by the superuser, so tally cannot change it; tally
--     checks it holds the tables it needs and says what to run when it does not).
-- sql/teardown.sql undoes it after `tally uninstall`.
\set ON_ERROR_STOP on
\if :{?tables}
\else
  \echo 'sql/setup.sql: give the tables the views read: -v tables=''public.orders, public.items'''
  \quit
\endif
\if :{?role}
\else
  \set role tally
\endif
\if :{?publication}
\else
  \set publication tally
\endif
\if :{?meta_schema}
\else
  \set meta_schema tally
\endif
\if :{?sink_schema}
\else
  \set sink_schema public
\endif
\if :{?password}
\else
  \set password ''
\endif

BEGIN;

-- The role. Attributes only a superuser can give.
SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') AS tally_new_role,
       :'password' <> '' AS tally_has_password \gset
\if :tally_new_role
  CREATE ROLE :"role" LOGIN REPLICATION BYPASSRLS NOSUPERUSER;
\else
  ALTER ROLE :"role" LOGIN REPLICATION BYPASSRLS;
\endif
\if :tally_has_password
  ALTER ROLE :"role" PASSWORD :'password';
\endif

-- The rest needs the names inside DO blocks, which psql does not interpolate: hand them over
-- as settings of this transaction.
SELECT set_config('tally_setup.role', :'role', true),
       set_config('tally_setup.tables', :'tables', true),
       set_config('tally_setup.publication', :'publication', true),
       set_config('tally_setup.meta_schema', :'meta_schema', true),
       set_config('tally_setup.sink_schema', :'sink_schema', true) \gset tally_ignored_

DO $setup$
DECLARE
  r text := current_setting('tally_setup.role');
  pub text := current_setting('tally_setup.publication');
  meta text := current_setting('tally_setup.meta_schema');
  sink text := current_setting('tally_setup.sink_schema');
  item text;
  t regclass;
  tables regclass[] := '{}';
  list text;
BEGIN
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), r);

  FOREACH item IN ARRAY string_to_array(current_setting('tally_setup.tables'), ',') LOOP
    CONTINUE WHEN btrim(item) = '';
    t := btrim(item)::regclass;  -- quoting and search_path as in SQL; unknown tables fail here
    tables := tables || t;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I',
                   (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE c.oid = t), r);
    EXECUTE format('GRANT SELECT ON %s TO %I', t, r);
    IF (SELECT relreplident = 'n' OR (relreplident = 'd' AND NOT EXISTS (
          SELECT 1 FROM pg_index WHERE indrelid = t AND indisprimary))
        FROM pg_class WHERE oid = t) THEN
      RAISE WARNING 'table % has no primary key and is not REPLICA IDENTITY FULL: tally will '
                    'refuse views over it (ALTER TABLE % REPLICA IDENTITY FULL)', t, t;
    END IF;
  END LOOP;
  IF cardinality(tables) = 0 THEN
    RAISE EXCEPTION 'sql/setup.sql: -v tables=... names no table';
  END IF;

  IF NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = meta) THEN
    EXECUTE format('CREATE SCHEMA %I AUTHORIZATION %I', meta, r);
  ELSE
    EXECUTE format('GRANT USAGE, CREATE ON SCHEMA %I TO %I', meta, r);
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = sink) THEN
    EXECUTE format('CREATE SCHEMA %I AUTHORIZATION %I', sink, r);
  ELSE
    EXECUTE format('GRANT USAGE, CREATE ON SCHEMA %I TO %I', sink, r);
  END IF;

  SELECT string_agg(x::text, ', ') INTO list FROM unnest(tables) x;
  IF NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = pub) THEN
    EXECUTE format('CREATE PUBLICATION %I FOR TABLE %s WITH (publish = ''insert, update, '
                   'delete, truncate'', publish_via_partition_root = true)', pub, list);
  ELSE
    EXECUTE format('ALTER PUBLICATION %I SET (publish = ''insert, update, delete, truncate'', '
                   'publish_via_partition_root = true)', pub);
    FOREACH t IN ARRAY tables LOOP
      IF NOT EXISTS (SELECT 1 FROM pg_publication_rel pr JOIN pg_publication p ON p.oid = pr.prpubid
                     WHERE p.pubname = pub AND pr.prrelid = t) THEN
        EXECUTE format('ALTER PUBLICATION %I ADD TABLE %s', pub, t);
      END IF;
    END LOOP;
  END IF;
  RAISE NOTICE 'tally setup: role %, publication % (%), meta schema %, summaries in %',
               r, pub, list, meta, sink;
END
$setup$;

COMMIT;

SELECT current_setting('wal_level') <> 'logical' AS tally_wal_not_logical \gset
\if :tally_wal_not_logical
  \echo 'warning: wal_level is not logical: set wal_level = logical in postgresql.conf and restart'
\endif
