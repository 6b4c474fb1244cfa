-- Daily buckets per chapter, in UTC, for bar charts (requirement document 003).
CREATE MATERIALIZED VIEW activity_time_series AS
SELECT date_trunc('day', a.recorded_at AT TIME ZONE 'UTC')::date AS bucket_date,
       a.chapter_id,
       count(*)                                                 AS activity_count,
       coalesce(sum(a.duration_hours), 0)                       AS total_hours
FROM activities a
WHERE a.status IN ('registered', 'approved')
GROUP BY date_trunc('day', a.recorded_at AT TIME ZONE 'UTC')::date, a.chapter_id;

CREATE UNIQUE INDEX activity_time_series_key ON activity_time_series (bucket_date, chapter_id);
