# The views of this scenario: NAME and QUERY pairs.
VIEW_NAMES=(by_group by_bucket totals by_k n_items n_events)
VIEW_QUERIES=(
"SELECT g, count(*) AS n, count(x) AS nx, sum(x) AS sx, avg(x) AS ax, min(x) AS lo, max(x) AS hi, count(DISTINCT y) AS dy, sum(y) AS sy, avg(y) AS ay FROM items GROUP BY g"
"SELECT h % 7 AS bucket, date_trunc('month', ts) AS month, count(*) FILTER (WHERE y > 50) AS big, min(g) AS first_g, max(ts) AS last_ts, coalesce(sum(x), 0) AS total FROM items WHERE y IS NOT NULL GROUP BY 1, 2"
"SELECT count(*) AS n, sum(x) AS sx, max(y) AS my FROM items"
"SELECT k, count(*) AS n, sum(v) AS sv, min(v) AS lo FROM events GROUP BY k"
"SELECT count(*) AS n FROM items"
"SELECT count(*) AS n FROM events"
)
view_toml() {
  local i
  for i in "${!VIEW_NAMES[@]}"; do
    printf '[[views]]\nname = "%s"\nquery = """\n%s"""\n\n' "${VIEW_NAMES[$i]}" "${VIEW_QUERIES[$i]}"
  done
}
check_all_views() {
  local i
  for i in "${!VIEW_NAMES[@]}"; do check_view "${VIEW_NAMES[$i]}" "${VIEW_QUERIES[$i]}"; done
}
