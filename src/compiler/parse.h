// Private: libpg_query parsing and the syntactic checks shared by CompileView,
// ExtractSelectSql and ListUnsupportedConstructs.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "sql_text.h"
#include "tally/compiler/plan.h"
#include "tally/core/status.h"

namespace tally::compiler::internal {

using json = nlohmann::json;

struct ParsedView {
  json tree;
  const json* select = nullptr;  // the SelectStmt's fields (inside {"SelectStmt": ...})
  int query_start = 0;           // byte range of the SELECT text
  int query_end = 0;
  std::vector<sqltext::Token> tokens;
  std::vector<std::string> column_names;  // CREATE MATERIALIZED VIEW v (a, b, ...) AS
};

// Parses the text and finds the view's SELECT. InvalidArgument with line:column on a syntax
// error.
Result<ParsedView> ParseView(std::string_view sql);

// Unsupported constructs of the parsed view, ordered by position (byte offsets).
struct FoundConstruct {
  int offset = -1;
  std::string what;
};
std::vector<FoundConstruct> FindUnsupported(std::string_view sql, const ParsedView& view);

std::string PositionText(std::string_view sql, int byte_offset);  // "3:10" or "?"

// libpg_query JSON helpers.
const json* Field(const json& obj, const char* key);
std::string NodeName(const json& node);  // the single key of {"Type": {...}}
const json& NodeBody(const json& node);
int Location(const json& body);
int MinLocation(const json& node);
std::string StringValue(const json& string_node);  // {"String": {"sval": ...}}
// Function name without a pg_catalog qualifier, lower case as parsed.
std::string FuncName(const json& func_call_body);

bool IsSupportedAggregate(std::string_view name);
bool IsSupportedScalarFunction(std::string_view name);

}  // namespace tally::compiler::internal
