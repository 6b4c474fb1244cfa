// Evaluation of compiled expressions (expr.h) with PostgreSQL's semantics: three-valued logic,
// integer overflow and division by zero as errors, numeric scales, text compared with the
// database collation, time-zone-dependent casts and date_trunc in the session time zone,
// interval arithmetic as timestamp.c does it (months, then days, then the time part; for
// timestamptz the month and day steps in the session time zone), op ANY/ALL (array) as
// ScalarArrayOpExpr (NULL elements, NULL left side, empty arrays).
//
// Character semantics are those of COLLATE "C" (exact for any deterministic collation where
// they only test equality): LIKE matches characters exactly; ILIKE, lower() and upper() fold
// ASCII letters only, so a database whose LC_CTYPE folds other letters (e.g. 'Ü' ILIKE 'ü')
// can disagree on non-ASCII text.
//
// Hot path: evaluating column references and comparisons does not allocate. Errors are
// InvalidArgument with Postgres's message ("division by zero", "integer out of range").
// Thread safety: pure; the context is borrowed for the call.
#pragma once

#include <span>

#include "tally/compiler/expr.h"
#include "tally/core/status.h"
#include "tally/core/value.h"

namespace date {
class time_zone;
}

namespace tally {
class Collation;
}

namespace tally::compiler {

struct EvalContext {
  std::span<const Value> row;  // the input row (ViewPlan::input_columns order)
  // When set, input column i is row[row_map[i]]: a wider row shared by several plans (the
  // columns a table group keeps), read without copying it into each plan's order.
  std::span<const int> row_map;
  std::span<const Value> group_keys;              // for output / HAVING expressions
  std::span<const Value> aggregates;              // for output / HAVING expressions
  const date::time_zone* session_zone = nullptr;  // null: UTC
  const Collation* collation = nullptr;           // null: byte order ("C")
};

Result<Value> Evaluate(const Expr& e, const EvalContext& ctx);
// As Evaluate, without copying the value of a column reference or a constant (a numeric's
// copy allocates): *out points into ctx.row, into e's constant, or at *tmp, which holds a
// computed result.
Status EvaluateInPlace(const Expr& e, const EvalContext& ctx, Value* tmp, const Value** out);
// WHERE / FILTER / HAVING: NULL counts as false.
Result<bool> EvaluatePredicate(const Expr& e, const EvalContext& ctx);

// Postgres's text output of a value, as a session in `zone` prints it (timestamptz with its
// offset, floats shortest-exact, numeric with its scale). NULL gives "NULL".
std::string FormatValue(const Value& v, const date::time_zone* zone);

// Looks up a time zone by name (IANA names and the aliases tzdata carries, e.g. "UTC").
Result<const date::time_zone*> FindTimeZone(std::string_view name);

}  // namespace tally::compiler
