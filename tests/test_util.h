// Helpers shared by the unit tests of several modules (core, agg): readers of the
// tab-separated data files under tests/data (TALLY_TEST_DATA_DIR). Included by relative path
// ("../test_util.h").
#pragma once

#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "tally/core/types.h"

namespace tally::testing {

// The rows of a data file (path relative to tests/data), split at tabs; empty lines and
// '#' comments skipped.
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

// A cell's "\t" and "\n" escapes as the characters.
inline std::string Unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() && (s[i + 1] == 't' || s[i + 1] == 'n')) {
      out.push_back(s[i + 1] == 't' ? '\t' : '\n');
      ++i;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// The OID of a type as the data files name it ("double precision", "text COLLATE C").
inline Oid OidOfName(const std::string& name) {
  static const std::map<std::string, Oid> kOids = {
      {"boolean", pgtype::kBool},
      {"smallint", pgtype::kInt2},
      {"integer", pgtype::kInt4},
      {"bigint", pgtype::kInt8},
      {"oid", pgtype::kOid},
      {"numeric", pgtype::kNumeric},
      {"real", pgtype::kFloat4},
      {"double precision", pgtype::kFloat8},
      {"interval", pgtype::kInterval},
      {"date", pgtype::kDate},
      {"timestamp without time zone", pgtype::kTimestamp},
      {"timestamp with time zone", pgtype::kTimestampTz},
      {"character(4)", pgtype::kBpchar},
      {"text COLLATE C", pgtype::kText},
      {"text COLLATE C.utf8", pgtype::kText},
  };
  auto it = kOids.find(name);
  REQUIRE(it != kOids.end());
  return it->second;
}

}  // namespace tally::testing
