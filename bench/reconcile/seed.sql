-- Dataset B: 1M events in 10K groups.
-- psql variables: rows, groups, users, start (timestamptz), seed.
DROP MATERIALIZED VIEW IF EXISTS mv_events_by_group;
DROP TABLE IF EXISTS events;
CREATE TABLE events (
  id         bigserial PRIMARY KEY,
  group_id   int           NOT NULL,
  user_id    int           NOT NULL,
  amount     numeric(12,2) NOT NULL,
  status     text          NOT NULL,
  created_at timestamptz   NOT NULL
);
SELECT setseed(:seed);
INSERT INTO events (group_id, user_id, amount, status, created_at)
SELECT 1 + floor(random() * :groups)::int,
       1 + floor(random() * :users)::int,
       round((random() * 1000)::numeric, 2),
       (ARRAY['new', 'paid', 'shipped', 'refunded', 'cancelled'])[1 + floor(random() * 5)::int],
       :'start'::timestamptz + random() * interval '365 days'
FROM generate_series(1, :rows);
VACUUM ANALYZE events;
