// Aggregate algebra: per-group state for count/sum/avg that absorbs Z-set changes
// (weight +n inserts n rows, -n retracts them) and finalizes to what Postgres 15 returns.
//
// Accumulator is exactly invertible and order independent for every supported input type:
// applying +w then -w restores the identical state, and any order of the same changes
// gives the identical state. Integer, numeric and interval sums are exact; float sums are
// kept exact too (as a binary fraction m * 2^e), so they are order independent, and are
// rounded once at Finalize. Postgres adds floats one row at a time in scan order, so its
// float sum (and, for real, its float4 arithmetic) may differ in the last bits. One
// known difference: avg(float) in Postgres also accumulates a sum of squares and raises
// "value out of range: overflow" when that overflows (inputs beyond ~1e154); tally does not.
//
// min/max are not accumulated here: the engine keeps per-group value multisets ordered by
// sort_key.h's keys and reads the first/last. Apply still counts their non-NULL inputs.
// count(DISTINCT x): the engine keeps the multiset of distinct keys and calls Apply with
// +1 when a value appears and -1 when its last copy goes; count is then the distinct count.
//
// Thread safety: plain values, no shared state.
#pragma once

#include <gmpxx.h>

#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

#include "tally/core/status.h"
#include "tally/core/types.h"
#include "tally/core/value.h"

namespace tally::agg {

// Stored in encoded state and compiled plans: never renumber.
enum class AggKind : uint8_t { kCountStar = 0, kCount = 1, kSum = 2, kAvg = 3, kMin = 4, kMax = 5 };

// "count", "sum", "avg", "min", "max" (count(*) is "count").
std::string_view AggName(AggKind kind);

struct AggSpec {
  AggKind kind = AggKind::kCountStar;
  bool distinct = false;
  Oid input_type = pgtype::kInvalid;  // kInvalid for count(*)
  Oid result_type = pgtype::kInt8;    // the type Postgres gives the aggregate's column
};

// Postgres's result types: count -> bigint; sum(smallint|integer) -> bigint;
// sum(bigint|numeric) -> numeric; sum(real) -> real; sum(double precision) -> double
// precision; sum(interval) -> interval; avg(integers|numeric) -> numeric;
// avg(real|double precision) -> double precision; avg(interval) -> interval;
// min/max(x) -> x's type, except varchar and name give text (Postgres resolves them to
// min(text)).
// Errors: a function Postgres does not have ("function sum(text) does not exist") ->
// InvalidArgument; DISTINCT on anything but count, or a type tally cannot order (time,
// enums, unknown OIDs) -> NotSupported.
Result<AggSpec> MakeAggSpec(AggKind kind, bool distinct, Oid input_type);

// Per group, per aggregate state. Fields unused by an aggregate stay zero; all fields are
// canonical (equal states compare equal with ==).
struct Accumulator {
  // count(*): rows; other kinds: non-NULL inputs (NaN and infinities included);
  // count(DISTINCT): distinct non-NULL values.
  int64_t count = 0;
  // sum/avg of smallint, integer, bigint.
  __int128 int_sum = 0;
  // sum/avg of numeric: the exact sum of finite inputs = num_sum * 10^-num_scale, where
  // num_scale = max(largest scale in scale_counts, fewest digits the sum needs).
  mpz_class num_sum;
  int32_t num_scale = 0;
  // How many finite numeric inputs have each display scale, sorted by scale, no zero
  // counts: Postgres's sum has the largest input scale (its dscale).
  std::vector<std::pair<int32_t, int64_t>> scale_counts;
  // sum/avg of floats: the exact sum of finite inputs = float_mant * 2^float_exp, with
  // float_mant odd (or 0 and float_exp 0).
  mpz_class float_mant;
  int32_t float_exp = 0;
  // NaN, +Infinity and -Infinity inputs of numeric and float sums/avgs.
  int64_t nan_count = 0;
  int64_t pinf_count = 0;
  int64_t ninf_count = 0;
  // sum/avg of interval, component-wise as interval_pl adds.
  __int128 iv_months = 0;
  __int128 iv_days = 0;
  __int128 iv_micros = 0;

  bool operator==(const Accumulator& o) const;
  // True when every field is zero (the state of an empty group).
  bool IsEmpty() const;
};

// Adds `weight` copies of `input` (negative weight retracts). NULL inputs change nothing
// except for count(*). `input` must be of spec.input_type's representation (integers may
// feed numeric and float sums too).
void Apply(const AggSpec& spec, Accumulator& acc, const Value& input, int64_t weight);

// The aggregate's value for the group, as Postgres computes it from the same rows:
// count -> int8; sum/avg over no non-NULL input -> NULL of the result type; avg of
// integers/numeric -> numeric_div(sum, count) (same digits and scale); avg of floats ->
// sum / count; avg of interval -> interval_div(sum, count).
// Errors as Postgres raises them: "bigint out of range", "interval out of range",
// "value out of range: overflow" (float). min/max -> InvalidArgument (see above).
Result<Value> Finalize(const AggSpec& spec, const Accumulator& acc);

}  // namespace tally::agg
