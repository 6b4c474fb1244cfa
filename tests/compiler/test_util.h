// Shared helpers of the compiler tests: test data paths and the catalog of catalog.txt.
#pragma once

#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "tally/compiler/catalog.h"

namespace tally::compiler::testing {

namespace tc = tally::compiler;

inline std::string DataDir() { return std::string(TALLY_TEST_DATA_DIR) + "/compiler"; }

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string line;
  while (std::getline(ss, line)) out.push_back(line);
  return out;
}

inline tally::Oid TypeOid(const std::string& name) {
  using namespace tally::pgtype;
  static const std::map<std::string, tally::Oid> kTypes = {
      {"int2", kInt2},        {"int4", kInt4},           {"int8", kInt8},
      {"numeric", kNumeric},  {"float4", kFloat4},       {"float8", kFloat8},
      {"text", kText},        {"varchar", kVarchar},     {"bpchar", kBpchar},
      {"date", kDate},        {"timestamp", kTimestamp}, {"timestamptz", kTimestampTz},
      {"bool", kBool},        {"uuid", kUuid},           {"jsonb", kJsonb},
      {"interval", kInterval}};
  auto it = kTypes.find(name);
  if (it == kTypes.end()) FAIL("unknown type in catalog.txt: " << name);
  return it->second;
}

inline tc::StaticCatalog LoadCatalog() {
  tc::StaticCatalog catalog;
  tc::TableInfo current;
  bool have = false;
  std::vector<std::string> pk;
  auto flush = [&]() {
    if (!have) return;
    for (const auto& k : pk) {
      int idx = current.FindColumn(k);
      REQUIRE(idx >= 0);
      current.primary_key.push_back(idx);
    }
    catalog.Add(current);
  };
  for (const auto& line : Lines(ReadFile(DataDir() + "/catalog.txt"))) {
    if (line.empty() || line[0] == '#') continue;
    std::stringstream ss(line);
    if (line.rfind("table ", 0) == 0) {
      flush();
      current = tc::TableInfo();
      pk.clear();
      have = true;
      std::string word, qname;
      ss >> word >> qname;
      auto dot = qname.find('.');
      current.schema = qname.substr(0, dot);
      current.name = qname.substr(dot + 1);
      while (ss >> word) {
        auto eq = word.find('=');
        std::string k = word.substr(0, eq), v = word.substr(eq + 1);
        if (k == "oid") current.oid = static_cast<tally::Oid>(std::stoul(v));
        if (k == "ri") current.replica_identity = v[0];
        if (k == "pk" && v != "-") {
          std::stringstream cs(v);
          std::string c;
          while (std::getline(cs, c, ',')) pk.push_back(c);
        }
      }
      continue;
    }
    tc::ColumnInfo col;
    std::string type, flag;
    ss >> col.name >> type;
    while (ss >> flag) col.not_null = col.not_null || flag == "notnull";
    std::string base = type.substr(0, type.find('('));
    col.type_oid = TypeOid(base);
    if (type.find('(') != std::string::npos) {
      std::string mods = type.substr(type.find('(') + 1);
      mods.pop_back();
      int a = std::stoi(mods);
      int b = mods.find(',') != std::string::npos ? std::stoi(mods.substr(mods.find(',') + 1)) : 0;
      col.typmod = base == "numeric" ? tc::NumericTypmod(a, b) : tc::VarcharTypmod(a);
    }
    col.attnum = static_cast<int16_t>(current.columns.size() + 1);
    current.columns.push_back(col);
  }
  flush();
  return catalog;
}

}  // namespace tally::compiler::testing
