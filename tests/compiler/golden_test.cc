// Golden tests for the view compiler: tests/data/compiler/*.test hold records
//
//   view <name>
//   <SQL, any number of lines>
//   ----
//   <expected: ExplainPlan output plus "query_sql: ...", or "error <Code>: <message>">
//   ====
//
// against the tables of tests/data/compiler/catalog.txt. With TALLY_UPDATE_GOLDEN=1 the runner
// rewrites the expected sections with the actual output instead of comparing (review the diff).
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "tally/compiler/plan.h"
#include "test_util.h"

namespace tc = tally::compiler;

namespace {

using namespace tally::compiler::testing;

struct Record {
  std::string name;
  std::string sql;
  std::string expected;
  size_t line = 0;
};

std::vector<Record> ParseRecords(const std::string& text, std::vector<std::string>* preamble) {
  std::vector<Record> out;
  auto lines = Lines(text);
  size_t i = 0;
  while (i < lines.size()) {
    if (lines[i].rfind("view ", 0) != 0) {
      if (out.empty() && preamble) preamble->push_back(lines[i]);
      ++i;
      continue;
    }
    Record r;
    r.line = i + 1;
    r.name = lines[i].substr(5);
    ++i;
    while (i < lines.size() && lines[i] != "----") r.sql += lines[i++] + "\n";
    ++i;
    while (i < lines.size() && lines[i] != "====") r.expected += lines[i++] + "\n";
    ++i;
    out.push_back(std::move(r));
  }
  return out;
}

std::string Actual(const Record& r, const tc::Catalog& catalog) {
  auto plan = tc::CompileView(r.name, r.sql, catalog);
  if (!plan.ok()) {
    return "error " + std::string(tally::StatusCodeName(plan.status().code())) + ": " +
           plan.status().message() + "\n";
  }
  std::string out = tc::ExplainPlan(*plan);
  out += "query_sql: " + plan->query_sql + "\n";
  return out;
}

}  // namespace

TEST_CASE("golden compile cases", "[compiler][golden]") {
  tc::StaticCatalog catalog = LoadCatalog();
  bool update = std::getenv("TALLY_UPDATE_GOLDEN") != nullptr;
  size_t files = 0, records = 0;
  for (const auto& entry : std::filesystem::directory_iterator(DataDir())) {
    if (entry.path().extension() != ".test") continue;
    ++files;
    std::string path = entry.path().string();
    std::vector<std::string> preamble;
    auto recs = ParseRecords(ReadFile(path), &preamble);
    std::string rewritten;
    for (const auto& p : preamble) rewritten += p + "\n";
    for (const auto& r : recs) {
      ++records;
      std::string actual = Actual(r, catalog);
      if (update) {
        rewritten += "view " + r.name + "\n" + r.sql + "----\n" + actual + "====\n\n";
        continue;
      }
      INFO(path << ":" << r.line << " view " << r.name);
      CHECK(actual == r.expected);
    }
    if (update) {
      std::ofstream(path) << rewritten;
    }
  }
  REQUIRE(files >= 2);
  REQUIRE(records >= 10);
}

// What pg_matviews.definition gives for a view (Postgres's deparse: IN as = ANY (ARRAY[...]),
// casts on every literal, qualified columns, extra parentheses) compiles to the plan of the
// text the user wrote.
TEST_CASE("deparsed definitions compile like the original text", "[compiler][golden]") {
  tc::StaticCatalog catalog = LoadCatalog();
  std::map<std::string, Record> originals;
  for (auto& r : ParseRecords(ReadFile(DataDir() + "/views.test"), nullptr)) {
    originals[r.name] = r;
  }
  auto deparsed = ParseRecords(ReadFile(DataDir() + "/pg_matviews.test"), nullptr);
  size_t same_plan = 0, same_refusal = 0;
  for (const auto& d : deparsed) {
    INFO("view " << d.name);
    auto it = originals.find(d.name);
    REQUIRE(it != originals.end());
    auto from_original = tc::CompileView(d.name, it->second.sql, catalog);
    auto from_deparsed = tc::CompileView(d.name, d.sql, catalog);
    REQUIRE(from_original.ok() == from_deparsed.ok());
    if (from_original.ok()) {
      CHECK(tc::ExplainPlan(*from_deparsed) == tc::ExplainPlan(*from_original));
      ++same_plan;
    } else {
      CHECK(from_deparsed.status().code() == from_original.status().code());
      auto construct = [](const std::string& m) { return m.substr(0, m.find(" at ")); };
      CHECK(construct(from_deparsed.status().message()) ==
            construct(from_original.status().message()));
      ++same_refusal;
    }
  }
  CHECK(same_plan >= 4);
  CHECK(same_refusal >= 2);
}
