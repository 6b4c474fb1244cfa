// Catalog: what the view compiler needs to know about base tables, and the lookup interface
// the caller implements (the daemon fills it from pg_catalog; tests use StaticCatalog).
//
// Ownership: TableInfo is a value. A Catalog is borrowed for the duration of one CompileView
// call. Thread safety: LookupTable must be callable from the compiling thread; StaticCatalog is
// immutable after setup and safe to share for reading.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tally/core/status.h"
#include "tally/core/types.h"

namespace tally::compiler {

struct ColumnInfo {
  std::string name;
  Oid type_oid = pgtype::kInvalid;
  int32_t typmod = -1;  // as pg_attribute.atttypmod: numeric(p,s) = ((p << 16) | s) + 4
  int16_t attnum = 0;
  bool not_null = false;
};

struct TableInfo {
  Oid oid = 0;
  std::string schema;
  std::string name;
  std::vector<ColumnInfo> columns;  // in attnum order, dropped columns left out
  std::vector<int> primary_key;     // indices into columns; empty if none
  char replica_identity = 'd';      // pg_class.relreplident: d, n, f, i

  // -1 if there is no such column. Names are compared exactly (the parser has folded case).
  int FindColumn(std::string_view column) const;
  std::string QualifiedName() const { return schema.empty() ? name : schema + "." + name; }
};

class Catalog {
 public:
  virtual ~Catalog() = default;
  // schema is empty when the SQL did not qualify the name (the caller applies search_path).
  // NotFound names the relation when it does not exist.
  virtual Result<TableInfo> LookupTable(std::string_view schema, std::string_view name) const = 0;
};

// An in-memory catalog. An unqualified lookup finds a table of that name in schema "public"
// first, then in any schema.
class StaticCatalog : public Catalog {
 public:
  void Add(TableInfo table);
  Result<TableInfo> LookupTable(std::string_view schema, std::string_view name) const override;

 private:
  std::map<std::pair<std::string, std::string>, TableInfo> tables_;
};

// Builds a typmod the way Postgres stores it: numeric(p, s), varchar(n) / char(n), and
// timestamp(p) / timestamptz(p).
int32_t NumericTypmod(int precision, int scale);
int32_t VarcharTypmod(int length);

}  // namespace tally::compiler
