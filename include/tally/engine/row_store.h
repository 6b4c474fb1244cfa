// RowStore: the source rows tally keeps per primary key, for REPLICA IDENTITY DEFAULT, where
// the stream carries no old row on UPDATE and only the key on DELETE.
//
// One RowStore serves every view over one table that was backfilled from the same snapshot:
// it holds the union of the columns those views read, once per row. Its key layout is
// "r" store_id:u32be pk_key -> EncodeRow(columns) (store/kv.h). Writes stay in an overlay
// until Flush puts them into the batch, so they become durable with the views' states.
// Not thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tally/core/status.h"
#include "tally/engine/view_maintainer.h"
#include "tally/store/kv.h"

namespace tally::engine {

class RowStore {
 public:
  RowStore(uint32_t id, std::vector<std::string> columns)
      : id_(id), columns_(std::move(columns)) {}

  uint32_t id() const { return id_; }
  // The stored columns, by name, in stored order.
  const std::vector<std::string>& columns() const { return columns_; }
  std::string Prefix() const;

  Result<std::optional<std::string>> Lookup(std::string_view pk_key, store::KvStore& store);
  void Put(std::string_view pk_key, std::optional<std::string> encoded_row);
  // TRUNCATE: every stored row is gone.
  void Truncate();
  // Adds the overlay to `batch` and clears it.
  Status Flush(store::KvStore& store, store::KvBatch& batch);
  void Reset();

 private:
  uint32_t id_;
  std::vector<std::string> columns_;
  std::unordered_map<std::string, std::optional<std::string>> overlay_;
  bool truncated_ = false;
};

}  // namespace tally::engine
