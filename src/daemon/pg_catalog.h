// Reads what the compiler and engine need from the source database's catalogs.
#pragma once

#include <string>

#include "tally/compiler/catalog.h"
#include "tally/pg/connection.h"

namespace tally::daemon {

class PgCatalog : public compiler::Catalog {
 public:
  explicit PgCatalog(pg::PgConn* conn) : conn_(conn) {}
  Result<compiler::TableInfo> LookupTable(std::string_view schema,
                                          std::string_view name) const override;

 private:
  pg::PgConn* conn_;
};

struct DatabaseSettings {
  std::string system_id;
  std::string db_oid;
  std::string time_zone;  // the database's default TimeZone
  std::string collation;  // datcollate
};

// `dsn` is connected once without tally's session options, to see the database's defaults.
Result<DatabaseSettings> ReadDatabaseSettings(const std::string& dsn);

}  // namespace tally::daemon
