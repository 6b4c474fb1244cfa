// The view compiler: SQL text (a SELECT, or CREATE MATERIALIZED VIEW ... AS SELECT ...
// followed by optional CREATE INDEX statements) to a typed maintenance plan for one
// single-table GROUP BY view, or a NotSupported status naming the construct and its
// line:column when the view cannot be maintained incrementally.
//
// Only src/compiler includes libpg_query; nothing here exposes its types.
// Thread safety: CompileView and friends are pure functions (libpg_query keeps per-thread
// parser memory; call pg_query_exit() when a thread that compiled views ends, if it matters).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tally/agg/aggregate.h"
#include "tally/compiler/catalog.h"
#include "tally/compiler/expr.h"
#include "tally/core/status.h"
#include "tally/core/types.h"

namespace tally::compiler {

// The aggregate kinds and result types are the aggregate module's (agg/aggregate.h).
using AggKind = agg::AggKind;

struct AggregateCall {
  AggKind kind = AggKind::kCountStar;
  bool distinct = false;
  ExprPtr arg;                        // over the input row; null for count(*)
  ExprPtr filter;                     // FILTER (WHERE ...) over the input row; null if none
  Oid input_type = pgtype::kInvalid;  // arg's type; kInvalid for count(*)
  int32_t input_typmod = -1;
  Oid result_type = pgtype::kInvalid;  // agg::MakeAggSpec's
  agg::AggSpec spec() const { return agg::AggSpec{kind, distinct, input_type, result_type}; }
};

struct OutputColumn {
  std::string name;  // Postgres's column name: alias, column, function name or "?column?"
  ExprPtr expr;      // over group keys and aggregate results
  Oid type = pgtype::kInvalid;
  int32_t typmod = -1;
  int group_key_index = -1;  // >= 0 when the column is exactly that group key
};

struct ViewPlan {
  std::string name;
  std::string query_sql;  // the SELECT text alone (for CREATE TABLE ... AS and reconciliation)
  TableInfo source;       // the one base table
  // Indices into source.columns that the plan reads, sorted. InputColumn(i) refers to
  // input_columns[i], i.e. the input row is the projection of the table row on these.
  std::vector<int> input_columns;
  ExprPtr where;                          // over the input row; null if none
  std::vector<ExprPtr> group_keys;        // over the input row
  std::vector<AggregateCall> aggregates;  // distinct calls; outputs refer to them by index
  ExprPtr having;                         // over group keys + aggregates; null if none
  std::vector<OutputColumn> outputs;      // select-list order
  bool has_group_by = false;              // false: exactly one output row, even over an empty table
};

// Compiles a view. Errors: InvalidArgument for SQL that Postgres would reject too (syntax
// error with line:column, unknown table or column, ungrouped column, grouping expression
// missing from the select list); NotSupported for valid SQL the engine cannot maintain
// ("window function rank() at 3:10 cannot be maintained incrementally"). The caller prefixes
// the view name.
Result<ViewPlan> CompileView(std::string_view name, std::string_view sql, const Catalog& catalog);

// The SELECT text of the view's defining statement: the whole text for a plain SELECT (without
// a trailing semicolon), the query after AS for CREATE MATERIALIZED VIEW (without
// WITH [NO] DATA). InvalidArgument on a syntax error or when no such statement is present.
Result<std::string> ExtractSelectSql(std::string_view sql);

// One construct that makes a view refresh-only.
struct Construct {
  std::string what;              // "window function rank()", "JOIN", "CURRENT_DATE", ...
  int line = 0;                  // 1-based; 0 when unknown
  int column = 0;                // 1-based, in characters
  std::string ToString() const;  // "JOIN at 3:1"
};
// Every construct the incremental engine does not support, in text order (empty when the view's
// syntax is supported; CompileView may still reject it on semantic grounds). InvalidArgument on
// a syntax error.
Result<std::vector<Construct>> ListUnsupportedConstructs(std::string_view sql);

// Human-readable maintenance plan for `tally explain`: operators, keys, state kept.
std::string ExplainPlan(const ViewPlan& plan);

// Names for ExprToString over this plan's trees.
ExprNames PlanExprNames(const ViewPlan& plan);

}  // namespace tally::compiler
