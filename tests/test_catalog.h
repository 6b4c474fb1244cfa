// The one-table catalog the engine's tests and tools compile their views against: table
// public.t (oid 1000) with the given columns, its first column the primary key. Included by
// relative path ("../test_catalog.h").
#pragma once

#include <utility>
#include <vector>

#include "tally/compiler/catalog.h"

namespace tally::testing {

inline compiler::StaticCatalog TableTCatalog(std::vector<compiler::ColumnInfo> columns) {
  compiler::StaticCatalog cat;
  compiler::TableInfo t;
  t.oid = 1000;
  t.schema = "public";
  t.name = "t";
  t.columns = std::move(columns);
  t.primary_key = {0};
  cat.Add(t);
  return cat;
}

}  // namespace tally::testing
