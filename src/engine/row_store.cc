#include "tally/engine/row_store.h"

namespace tally::engine {

std::string RowStore::Prefix() const {
  std::string p = "r";
  store::AppendU32(id_, &p);
  return p;
}

Result<std::optional<std::string>> RowStore::Lookup(std::string_view pk_key,
                                                    store::KvStore& store) {
  auto it = overlay_.find(std::string(pk_key));
  if (it != overlay_.end()) return it->second;
  if (truncated_) return std::optional<std::string>();
  return store.Get(Prefix() + std::string(pk_key));
}

void RowStore::Put(std::string_view pk_key, std::optional<std::string> encoded_row) {
  overlay_[std::string(pk_key)] = std::move(encoded_row);
}

void RowStore::Truncate() {
  overlay_.clear();
  truncated_ = true;
}

void RowStore::Reset() {
  overlay_.clear();
  truncated_ = false;
}

Status RowStore::Flush(store::KvStore& store, store::KvBatch& batch) {
  const std::string prefix = Prefix();
  if (truncated_) TALLY_RETURN_IF_ERROR(store::DeletePrefix(store, prefix, &batch));
  for (auto& [pk, row] : overlay_) {
    if (row) {
      batch.Put(prefix + pk, *row);
    } else if (!truncated_) {
      batch.Delete(prefix + pk);
    }
  }
  Reset();
  return Status::Ok();
}

}  // namespace tally::engine
