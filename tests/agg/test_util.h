// Helpers shared by the agg unit tests.
#pragma once

#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "tally/core/types.h"

namespace tally::agg::testing {

inline std::vector<std::vector<std::string>> ReadTsv(const std::string& name) {
  std::ifstream in(std::string(TALLY_TEST_DATA_DIR) + "/" + name);
  REQUIRE(in.good());
  std::vector<std::vector<std::string>> rows;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> cells;
    size_t start = 0;
    while (true) {
      size_t tab = line.find('\t', start);
      cells.push_back(
          line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
      if (tab == std::string::npos) break;
      start = tab + 1;
    }
    rows.push_back(std::move(cells));
  }
  return rows;
}

inline Oid OidOfName(const std::string& name) {
  static const std::map<std::string, Oid> kOids = {
      {"smallint", pgtype::kInt2},
      {"integer", pgtype::kInt4},
      {"bigint", pgtype::kInt8},
      {"numeric", pgtype::kNumeric},
      {"real", pgtype::kFloat4},
      {"double precision", pgtype::kFloat8},
      {"interval", pgtype::kInterval},
      {"date", pgtype::kDate},
      {"timestamp with time zone", pgtype::kTimestampTz},
      {"character(4)", pgtype::kBpchar},
      {"text COLLATE C", pgtype::kText},
      {"text COLLATE C.utf8", pgtype::kText},
  };
  auto it = kOids.find(name);
  REQUIRE(it != kOids.end());
  return it->second;
}

}  // namespace tally::agg::testing
