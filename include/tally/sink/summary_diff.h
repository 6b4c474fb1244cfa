// Key-wise comparison of a summary table with the rows it should hold, and the repair that
// makes it hold them (reconcile, refresh --full). Both run as SQL on one connection, between
// tables of the same shape (a summary and temporary tables created LIKE it).
//
// Rows are matched by the summary's key columns, NULL keys matching NULL keys (IS NOT
// DISTINCT FROM). Rows whose keys are all non-NULL are matched with a hash join on `=`; only
// the (rare) rows with a NULL key component take the null-safe nested loop. Non-key columns
// differ when: numeric — their text differs (scale included); float4/float8 — they differ by
// more than 1e-9 relative (float sums depend on order); other types — IS DISTINCT FROM.
//
// The repair changes only rows that differ (DELETE by key, INSERT ... ON CONFLICT DO UPDATE):
// no table rewrite and no lock beyond those rows, so readers are never blocked and the
// table's grants and row-level security policies stay as they are.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tally/core/status.h"
#include "tally/core/types.h"
#include "tally/pg/connection.h"
#include "tally/sink/summary_writer.h"

namespace tally::sink {

// A summary's shape for comparisons: its columns (summary_writer.h) and their type oids.
struct DiffShape {
  const SummaryTable* table = nullptr;
  std::vector<Oid> types;  // per column
};

struct DiffSample {
  char kind = 0;                                 // 'm' missing, 'e' extra, 'd' different
  std::vector<std::optional<std::string>> keys;  // per key column, as text
};

struct DiffCounts {
  int64_t missing = 0;    // rows of the truth that the compared table lacks
  int64_t extra = 0;      // rows of the compared table that the truth lacks
  int64_t different = 0;  // keys in both with other values
  std::vector<DiffSample> samples;
  int64_t total() const { return missing + extra + different; }
};

// SQL selecting the differences between `truth` and `compared` (qualified, quoted relation
// names): a "char" column tally_kind ('m', 'e', 'd') then every column of the shape — the
// truth's values for 'm' and 'd', the compared table's for 'e'.
std::string DiffSql(const DiffShape& shape, const std::string& truth, const std::string& compared);

// Creates temporary table `diff_table` (unquoted name, dropped first if it exists) holding
// DiffSql(truth, compared) and returns the counts and up to `samples_per_kind` sample keys of
// each kind.
Result<DiffCounts> CompareInto(pg::PgConn& conn, const DiffShape& shape, const std::string& truth,
                               const std::string& compared, const std::string& diff_table,
                               int samples_per_kind);

// Makes the summary equal the truth a CompareInto against it found: deletes the extra rows
// and upserts the missing and different ones, by key. Call inside the caller's transaction.
// Returns the number of rows changed.
Result<int64_t> ApplyDiff(pg::PgConn& conn, const DiffShape& shape, const std::string& diff_table);

// Creates (or empties) temporary table `temp` (unquoted name) with the summary's columns.
Status CreateTempLike(pg::PgConn& conn, const SummaryTable& table, const std::string& temp);

// COPYs every row of `rows` (upserts only) into temporary table `temp` (unquoted name).
Status CopyRowsInto(pg::PgConn& conn, const SummaryTable& table, const std::string& temp,
                    const RowSource& rows);

// The summary's qualified, quoted name.
std::string QualifiedName(const SummaryTable& table);

}  // namespace tally::sink
