-- Schema and workload generators of bench/core/run.sh.
-- t: the measured table; probe: the staleness probe's table; probe_result: the probe's
-- measurements (not in the publication: no view reads it).
CREATE TABLE t (
  id bigint PRIMARY KEY,
  k int NOT NULL,                -- ~10,000 groups (view by_k)
  g text NOT NULL,               -- ~100 groups (view by_g)
  amount numeric(12,2),          -- 1% NULL
  ts timestamptz NOT NULL        -- 60 days (view by_day)
);
CREATE SEQUENCE t_id_seq;
CREATE TABLE probe (id bigint PRIMARY KEY, sent_at timestamptz NOT NULL);
CREATE TABLE probe_result (id bigint PRIMARY KEY, committed_at timestamptz, visible_at timestamptz);

-- bench_step(n, part, parts): exactly n row changes on t in the caller's transaction:
-- 40% updates of a run of consecutive rows from a random position (amount always
-- changes; g, k and ts, the group keys, change for half, half and 30% of them), 20%
-- deletes of another run, and inserts for the rest (also making up for runs cut short
-- at the end of the table or by a concurrent delete). Returns the number of rows it
-- changed. Concurrent callers pass distinct parts (0 .. parts-1): each then starts its
-- runs in its own slice of the id range, so they rarely wait for (or deadlock with)
-- each other.
CREATE FUNCTION bench_step(n int, part int DEFAULT 0, parts int DEFAULT 1) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
  lo bigint;
  hi bigint;
  r bigint;
  c int;
  done int := 0;
BEGIN
  SELECT min(id), max(id) INTO lo, hi FROM t;
  IF lo IS NOT NULL THEN
    -- This caller's slice of [lo, hi].
    r := (hi - lo + 1) / parts;
    lo := lo + part * r;
    IF part < parts - 1 THEN
      hi := lo + r - 1;
    END IF;
    -- The start position is a variable: random() in the WHERE clause would be per row.
    r := lo + floor(random() * (hi - lo + 1))::bigint;
    UPDATE t SET
        amount = CASE WHEN random() < 0.01 THEN NULL
                      ELSE round((random() * 1000)::numeric, 2) END,
        g = CASE WHEN random() < 0.5 THEN 'g' || lpad(floor(random() * 100)::int::text, 2, '0')
                 ELSE g END,
        k = CASE WHEN random() < 0.5 THEN floor(random() * 10000)::int ELSE k END,
        ts = CASE WHEN random() < 0.3
                  THEN timestamptz '2024-01-01 00:00+00' + random() * interval '60 days'
                  ELSE ts END
      WHERE id IN (SELECT id FROM t WHERE id >= r ORDER BY id LIMIT n * 4 / 10);
    GET DIAGNOSTICS c = ROW_COUNT;
    done := done + c;
    r := lo + floor(random() * (hi - lo + 1))::bigint;
    DELETE FROM t WHERE id IN (SELECT id FROM t WHERE id >= r ORDER BY id LIMIT n * 2 / 10);
    GET DIAGNOSTICS c = ROW_COUNT;
    done := done + c;
  END IF;
  INSERT INTO t (id, k, g, amount, ts)
    SELECT nextval('t_id_seq'), floor(random() * 10000)::int,
           'g' || lpad(floor(random() * 100)::int::text, 2, '0'),
           CASE WHEN random() < 0.01 THEN NULL ELSE round((random() * 1000)::numeric, 2) END,
           timestamptz '2024-01-01 00:00+00' + random() * interval '60 days'
      FROM generate_series(1, n - done);
  GET DIAGNOSTICS c = ROW_COUNT;
  RETURN done + c;
END $$;

-- bench_load(total, txn_rows): exactly `total` row changes in transactions of txn_rows.
CREATE PROCEDURE bench_load(total bigint, txn_rows int) LANGUAGE plpgsql AS $$
DECLARE
  done bigint := 0;
  m int;
  c int;
BEGIN
  WHILE done < total LOOP
    m := least(txn_rows, total - done);
    c := bench_step(m);
    IF c <> m THEN
      RAISE EXCEPTION 'bench_step(%) changed % rows', m, c;
    END IF;
    done := done + m;
    COMMIT;
  END LOOP;
END $$;

-- bench_probe(seconds, every_ms, poll_ms, summary, grace_s): for `seconds`, every
-- every_ms insert probe row n (n = 1, 2, ...) in its own transaction and note the
-- clock when COMMIT has returned; all the while, every poll_ms read max(id) from the
-- summary table and note, for each probe id that newly appears, the clock at that
-- read. Commit-to-visible latency = visible_at - committed_at. Keeps polling up to
-- grace_s after the last probe; probes never seen keep visible_at NULL. Both clocks
-- are this backend's clock_timestamp(). Each poll is its own statement, so in READ
-- COMMITTED it sees every transaction committed before it.
CREATE PROCEDURE bench_probe(seconds float8, every_ms int, poll_ms int, summary text,
                             grace_s float8) LANGUAGE plpgsql AS $$
DECLARE
  t_end timestamptz := clock_timestamp() + seconds * interval '1 s';
  next_at timestamptz := clock_timestamp();
  n bigint := 0;
  seen bigint := 0;
  m bigint;
  committed timestamptz[] := '{}';
  visible timestamptz[] := '{}';
  poll text := format('SELECT max(last_id) FROM %I', summary);
BEGIN
  LOOP
    IF clock_timestamp() >= next_at AND clock_timestamp() < t_end THEN
      n := n + 1;
      INSERT INTO probe VALUES (n, clock_timestamp());
      COMMIT;
      committed[n] := clock_timestamp();
      next_at := next_at + every_ms * interval '1 ms';
    END IF;
    EXECUTE poll INTO m;
    WHILE seen < coalesce(m, 0) AND seen < n LOOP
      seen := seen + 1;
      visible[seen] := clock_timestamp();
    END LOOP;
    EXIT WHEN clock_timestamp() >= t_end AND seen >= n;
    EXIT WHEN clock_timestamp() >= t_end + grace_s * interval '1 s';
    PERFORM pg_sleep(poll_ms / 1000.0);
  END LOOP;
  INSERT INTO probe_result
    SELECT i, committed[i], visible[i] FROM generate_series(1, n) i;
  COMMIT;
END $$;
