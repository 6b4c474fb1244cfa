#include "tally/compiler/catalog.h"

namespace tally::compiler {

int TableInfo::FindColumn(std::string_view column) const {
  for (size_t i = 0; i < columns.size(); ++i) {
    if (columns[i].name == column) return static_cast<int>(i);
  }
  return -1;
}

void StaticCatalog::Add(TableInfo table) {
  auto key = std::make_pair(table.schema, table.name);
  tables_[key] = std::move(table);
}

Result<TableInfo> StaticCatalog::LookupTable(std::string_view schema, std::string_view name) const {
  if (!schema.empty()) {
    auto it = tables_.find({std::string(schema), std::string(name)});
    if (it != tables_.end()) return it->second;
  } else {
    auto it = tables_.find({"public", std::string(name)});
    if (it != tables_.end()) return it->second;
    for (const auto& [key, table] : tables_) {
      if (key.second == name) return table;
    }
  }
  std::string full =
      schema.empty() ? std::string(name) : std::string(schema) + "." + std::string(name);
  return Status::NotFound("relation \"" + full + "\" does not exist");
}

int32_t NumericTypmod(int precision, int scale) {
  return ((precision << 16) | (scale & 0x7ff)) + 4;
}

int32_t VarcharTypmod(int length) { return length + 4; }

}  // namespace tally::compiler
