-- Undoes sql/setup.sql: run as a superuser in the source database, after `tally uninstall`
-- (which drops the summaries, tally's tables and the slot it made).
--
--   psql "dbname=app" -v role=tally -v publication=tally -v meta_schema=tally -v slot=tally \
--        -f sql/teardown.sql
--
-- Drops the publication, the slot if tally left it (and no one consumes it), the meta schema,
-- whatever the role still owns in this database (summary tables included) and its grants,
-- and the role.
\set ON_ERROR_STOP on
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
\if :{?slot}
\else
  \set slot tally
\endif

SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
 WHERE slot_name = :'slot' AND database = current_database() AND NOT active;
BEGIN;
DROP PUBLICATION IF EXISTS :"publication";
DROP SCHEMA IF EXISTS :"meta_schema" CASCADE;
DROP OWNED BY :"role";
DROP ROLE :"role";
COMMIT;
