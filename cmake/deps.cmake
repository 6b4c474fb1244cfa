# Dependencies, all from Debian 12 packages (see README, "Developer notes").
find_package(Threads REQUIRED)
find_package(RocksDB 7 CONFIG REQUIRED)
find_package(fmt 9 CONFIG REQUIRED)
find_package(spdlog 1.10 CONFIG REQUIRED)
find_package(nlohmann_json 3.11 CONFIG REQUIRED)
find_package(tomlplusplus 3 CONFIG REQUIRED)
find_package(CLI11 2 CONFIG REQUIRED)
find_package(Catch2 2 CONFIG REQUIRED)
find_package(date CONFIG REQUIRED)

find_package(PkgConfig REQUIRED)
pkg_check_modules(PQ REQUIRED IMPORTED_TARGET libpq>=15)
pkg_check_modules(GMP REQUIRED IMPORTED_TARGET gmpxx gmp)

find_path(PG_QUERY_INCLUDE_DIR NAMES pg_query.h REQUIRED)
find_library(PG_QUERY_LIBRARY NAMES pg_query REQUIRED)
if(NOT TARGET PgQuery::PgQuery)
  add_library(PgQuery::PgQuery UNKNOWN IMPORTED)
  set_target_properties(PgQuery::PgQuery PROPERTIES
    IMPORTED_LOCATION "${PG_QUERY_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${PG_QUERY_INCLUDE_DIR}")
endif()
