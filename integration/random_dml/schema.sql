CREATE TABLE items (
  id int PRIMARY KEY,
  g text,
  h int NOT NULL,
  x numeric(12, 2),
  y int,
  ts timestamptz NOT NULL,
  note text
);
ALTER TABLE items ALTER COLUMN note SET STORAGE EXTERNAL;
CREATE TABLE events (k int, v int);
ALTER TABLE events REPLICA IDENTITY FULL;
INSERT INTO items
SELECT i, (ARRAY['a', 'b', 'c', 'd', NULL])[1 + i % 5], i % 50,
       CASE WHEN i % 13 = 0 THEN NULL ELSE (i * 7 % 1000)::numeric / 4 END,
       CASE WHEN i % 11 = 0 THEN NULL ELSE i % 100 END,
       timestamptz '2024-01-01 00:00:00+00' + i * interval '37 minutes',
       CASE WHEN i % 100 = 0 THEN repeat('n', 3000) END
FROM generate_series(1, 20000) i;
INSERT INTO events SELECT i % 10, i FROM generate_series(1, 500) i;
