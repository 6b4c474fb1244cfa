// Lsn: a position in the source's WAL. tally's positions are always a Commit's end LSN.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "tally/core/status.h"

namespace tally {

struct Lsn {
  uint64_t value = 0;

  constexpr Lsn() = default;
  constexpr explicit Lsn(uint64_t v) : value(v) {}

  bool IsZero() const { return value == 0; }
  std::string ToString() const;                  // "16/B374D848", as Postgres prints pg_lsn
  static Result<Lsn> Parse(std::string_view text);  // accepts what ToString() gives

  friend constexpr auto operator<=>(Lsn a, Lsn b) = default;
};

}  // namespace tally
