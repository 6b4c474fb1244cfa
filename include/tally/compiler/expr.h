// Expr: the typed expression tree the view compiler produces and the evaluator runs.
//
// Every node carries its result type (OID + typmod, as Postgres would type it). Operands are
// already coerced by the compiler (explicit Cast nodes), so the evaluator never resolves types:
// both sides of a comparison share a representation (types.h, Repr), arithmetic operands share
// the result's family (except date +/- integer and the like, see ArithOp).
//
// Ownership: nodes are immutable once compiled and shared through ExprPtr
// (shared_ptr<const Expr>), so copying a plan is cheap. Thread safety: immutable; safe to
// evaluate from several threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tally/core/types.h"
#include "tally/core/value.h"

namespace date {
class time_zone;
}

namespace tally::compiler {

enum class ExprKind : uint8_t {
  kInputColumn,   // index: position in ViewPlan::input_columns (the input row)
  kGroupKeyRef,   // index: position in ViewPlan::group_keys
  kAggregateRef,  // index: position in ViewPlan::aggregates
  kConst,         // constant
  kArith,         // op: ArithOp; args [left, right]
  kNegate,        // args [x]
  kCompare,       // op: CmpOp; args [left, right], same Repr
  kAnd,           // args [a, b, ...], three-valued
  kOr,
  kNot,
  kIsNull,          // args [x]; negated: IS NOT NULL
  kBoolTest,        // op: BoolTestOp; args [x]
  kIsDistinctFrom,  // args [left, right]; negated: IS NOT DISTINCT FROM
  kIn,              // args [x, item...], items have x's Repr; negated: NOT IN
  kCase,            // args [when1, then1, when2, then2, ..., else?]; has_else
  kCoalesce,        // args [a, b, ...]
  kNullIf,          // args [a, b], both coerced to a common Repr; result typed as a
  kGreatest,        // args [a, b, ...]
  kLeast,
  kCast,  // args [x]; target type/typmod are the node's type/typmod
  kFunc,  // op: FuncId; args depend on the function (see FuncId)
  // x op ANY / ALL (ARRAY[...]): op: CmpOp; args [x, element...], elements share the Repr
  // that x has; `all` selects ALL. (= ANY and <> ALL compile to kIn.) Postgres's
  // ScalarArrayOpExpr: an empty array gives false (ANY) / true (ALL) even for a NULL x.
  kAnyAll,
  // args [text, pattern]: op: LikeOp; negated: NOT LIKE / NOT ILIKE. The pattern uses '\'
  // as escape (an ESCAPE clause is a like_escape call on the pattern).
  kLike,
};

enum class ArithOp : uint8_t { kAdd, kSub, kMul, kDiv, kMod, kConcat };
enum class CmpOp : uint8_t { kEq, kNe, kLt, kLe, kGt, kGe };
// LIKE compares characters exactly (as under COLLATE "C" or any deterministic collation);
// ILIKE folds ASCII letters only, as lower() and upper() do here.
enum class LikeOp : uint8_t { kLike, kILike };
enum class BoolTestOp : uint8_t {
  kIsTrue,
  kIsNotTrue,
  kIsFalse,
  kIsNotFalse,
  kIsUnknown,
  kIsNotUnknown
};

enum class FuncId : uint8_t {
  kDateTrunc,  // args [field (const text), ts] or [field, timestamptz, zone]; result ts's type
  kExtract,    // args [field (const text), x]: numeric (PG14+ EXTRACT)
  kDatePart,   // args [field (const text), x]: float8
  kTimezone,   // args [zone, x]: x AT TIME ZONE zone (timestamptz <-> timestamp)
  kLower,      // args [text]
  kUpper,
  kLength,  // args [text]: int4, in characters
  kAbs,     // args [x]
  kRound,   // args [x] or [numeric, int4 scale]
  kTrunc,   // args [x] or [numeric, int4 scale]
  kFloor,   // args [x]
  kCeil,
  kSubstr,      // args [text, int4 start] or [text, start, int4 count]; characters
  kLeft,        // args [text, int4 n]
  kRight,       // args [text, int4 n]
  kReplace,     // args [text, from, to]
  kStrpos,      // args [text, needle]: int4, 1-based character position or 0
  kBtrim,       // args [text] or [text, characters]
  kLtrim,       // args [text] or [text, characters]
  kRtrim,       // args [text] or [text, characters]
  kConcat,      // args [x...] (any types): NULLs skipped, never NULL
  kConcatWs,    // args [separator, x...]: NULL separator gives NULL; NULL values skipped
  kLikeEscape,  // args [pattern, escape]: the pattern rewritten with '\' as escape
  kOutput,      // args [x]: x's text output (what concat() appends; bool gives t/f)
};

struct Expr;
using ExprPtr = std::shared_ptr<const Expr>;

struct Expr {
  ExprKind kind = ExprKind::kConst;
  Oid type = pgtype::kInvalid;
  int32_t typmod = -1;
  uint8_t op = 0;         // ArithOp, CmpOp, BoolTestOp or FuncId, by kind
  bool negated = false;   // kIsNull, kIsDistinctFrom, kIn
  bool has_else = false;  // kCase
  bool all = false;       // kAnyAll: ALL instead of ANY
  int index = -1;         // kInputColumn, kGroupKeyRef, kAggregateRef
  Value constant;         // kConst
  // Resolved at compile time when a time zone argument is a constant (kFunc kTimezone and
  // kDateTrunc); null means "evaluate args[...] / use the session zone".
  const date::time_zone* zone = nullptr;
  std::vector<ExprPtr> args;
};

// Structural equality: same kinds, types, operators, constants and children. Used to match
// select-list expressions against GROUP BY expressions and to share identical aggregates.
bool ExprEquals(const Expr& a, const Expr& b);

// Names for the leaves when printing an expression.
struct ExprNames {
  std::vector<std::string> input_columns;  // by input position
  std::vector<std::string> group_keys;     // by key index; empty: "key<i>"
  std::vector<std::string> aggregates;     // by aggregate index; empty: "agg<i>"
};
// SQL-like text of an expression, for explain output and error messages.
std::string ExprToString(const Expr& e, const ExprNames& names);

}  // namespace tally::compiler
