CREATE SEQUENCE IF NOT EXISTS items_new_id START 10000000;
CREATE SEQUENCE IF NOT EXISTS items_moved_id START 100000000;
-- Randomized DML over items(id, g, h, x, y, ts, note) and events(k, v) (no primary key,
-- REPLICA IDENTITY FULL). Seeded: `CALL random_dml(seed, n)` runs the same statements for the
-- same seed on the same data. Each statement is its own transaction; every 50th call commits
-- a few statements together, and some transactions roll back.
CREATE OR REPLACE PROCEDURE random_dml(seed float8, n int) LANGUAGE plpgsql AS $$
DECLARE
  i int;
  r float8;
  pick int;
  groups text[] := ARRAY['a', 'b', 'c', 'd', 'e', NULL];
BEGIN
  PERFORM setseed(seed);
  FOR i IN 1..n LOOP
    r := random();
    pick := 1 + floor(random() * 20000)::int;
    IF r < 0.35 THEN
      INSERT INTO items (id, g, h, x, y, ts)
      VALUES (nextval('items_new_id'),
              groups[1 + floor(random() * 6)::int], floor(random() * 50)::int,
              CASE WHEN random() < 0.1 THEN NULL ELSE round((random() * 1000 - 200)::numeric, 2) END,
              CASE WHEN random() < 0.1 THEN NULL ELSE floor(random() * 100)::int END,
              timestamptz '2024-01-01 00:00:00+00' + random() * interval '400 days');
    ELSIF r < 0.55 THEN
      -- move rows between groups, change aggregated values (also to and from NULL)
      UPDATE items SET g = groups[1 + floor(random() * 6)::int],
                       x = CASE WHEN random() < 0.1 THEN NULL ELSE round((random() * 500)::numeric, 2) END
       WHERE id = (SELECT min(id) FROM items WHERE id >= pick);
    ELSIF r < 0.65 THEN
      UPDATE items SET y = CASE WHEN random() < 0.2 THEN NULL ELSE floor(random() * 100)::int END,
                       h = h + 1
       WHERE id = (SELECT min(id) FROM items WHERE id >= pick);
    ELSIF r < 0.70 THEN
      -- an update no view reads: leaves the TOASTed note unchanged
      UPDATE items SET note = note WHERE id = (SELECT min(id) FROM items WHERE id >= pick);
    ELSIF r < 0.73 THEN
      -- change the primary key
      UPDATE items SET id = nextval('items_moved_id') WHERE id = (SELECT min(id) FROM items WHERE id >= pick);
    ELSIF r < 0.85 THEN
      DELETE FROM items WHERE id = (SELECT min(id) FROM items WHERE id >= pick);
    ELSIF r < 0.87 THEN
      -- delete the current max and min of a group
      DELETE FROM items WHERE id IN (
        (SELECT id FROM items WHERE g = 'b' AND x IS NOT NULL ORDER BY x DESC, id LIMIT 1),
        (SELECT id FROM items WHERE g = 'c' AND x IS NOT NULL ORDER BY x, id LIMIT 1));
    ELSIF r < 0.88 THEN
      -- empty a whole group
      DELETE FROM items WHERE h = floor(random() * 50)::int;
    ELSIF r < 0.95 THEN
      INSERT INTO events (k, v) VALUES (floor(random() * 10)::int, floor(random() * 1000)::int);
    ELSIF r < 0.98 THEN
      UPDATE events SET v = v + 1 WHERE ctid = (SELECT ctid FROM events WHERE k = floor(random() * 10)::int LIMIT 1);
    ELSE
      DELETE FROM events WHERE ctid = (SELECT ctid FROM events WHERE k = floor(random() * 10)::int LIMIT 1);
    END IF;
    IF i % 50 <> 0 THEN
      COMMIT;
    END IF;
    IF i % 97 = 0 THEN
      ROLLBACK;  -- the statements since the last commit never happened
    END IF;
  END LOOP;
  COMMIT;
END $$;
