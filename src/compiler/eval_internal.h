// Private: value-level operations shared by the evaluator and the compiler's constant folding.
#pragma once

#include <string>

#include "tally/compiler/eval.h"
#include "tally/core/value.h"

namespace tally::compiler::internal {

// Casts a non-NULL value to `target` with `typmod` (-1: none), as an explicit CAST does.
Result<Value> CastValue(const Value& v, Oid target, int32_t typmod, const EvalContext& ctx);
// Compares two non-NULL values of the same Repr.
int CompareValues(const Value& a, const Value& b, const EvalContext& ctx);

}  // namespace tally::compiler::internal
