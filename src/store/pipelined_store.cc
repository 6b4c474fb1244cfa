#include "tally/store/pipelined_store.h"

namespace tally::store {

PipelinedStore::PipelinedStore(std::unique_ptr<KvStore> base)
    : base_(std::move(base)), thread_([this] { Run(); }) {}

PipelinedStore::~PipelinedStore() {
  {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !pending_; });
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void PipelinedStore::Run() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stop_ || pending_; });
    if (!pending_) return;
    lock.unlock();
    // batch_ and after_write_ are not touched by the caller while pending_. Sorting the batch
    // here keeps it off the caller's thread (for a large batch, tens of milliseconds).
    batch_->Seal();
    lock.lock();
    sealed_ = true;
    cv_.notify_all();
    lock.unlock();
    Status s = base_->Write(*batch_, sync_);
    if (s.ok() && after_write_) s = after_write_();
    lock.lock();
    result_ = std::move(s);
    after_write_ = nullptr;
    pending_ = false;
    cv_.notify_all();
  }
}

Status PipelinedStore::Wait() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return !pending_; });
  // Written (or failed, and never to be read as if written): the store answers from here on.
  batch_.reset();
  filter_.reset();
  Status s = std::move(result_);
  result_ = Status::Ok();
  return s;
}

bool PipelinedStore::WaitFor(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return !pending_; });
}

bool PipelinedStore::busy() const {
  std::lock_guard lock(mu_);
  return pending_;
}

namespace {

// Three probes from one 64-bit hash (double hashing); about 12 bits per key, so under 1%
// false positives.
constexpr int kFilterProbes = 3;
constexpr size_t kFilterBitsPerKey = 12;

uint64_t KeyHash(std::string_view key) { return std::hash<std::string_view>{}(key); }

std::vector<uint64_t> BuildFilter(const KvBatch& batch) {
  if (!batch.ranges().empty() || batch.op_count() == 0) return {};
  size_t words = 1;
  while (words * 64 < batch.op_count() * kFilterBitsPerKey) words *= 2;
  std::vector<uint64_t> bits(words, 0);
  const uint64_t mask = words * 64 - 1;
  for (size_t i = 0; i < batch.op_count(); ++i) {
    uint64_t h = KeyHash(batch.op(i).key);
    const uint64_t step = (h >> 33) | 1;
    for (int p = 0; p < kFilterProbes; ++p, h += step) bits[(h & mask) >> 6] |= 1ull << (h & 63);
  }
  return bits;
}

}  // namespace

bool PipelinedStore::MayBeIn(const std::vector<uint64_t>* filter, std::string_view key) {
  if (filter == nullptr || filter->empty()) return true;
  const uint64_t mask = filter->size() * 64 - 1;
  uint64_t h = KeyHash(key);
  const uint64_t step = (h >> 33) | 1;
  for (int p = 0; p < kFilterProbes; ++p, h += step) {
    if (((*filter)[(h & mask) >> 6] & (1ull << (h & 63))) == 0) return false;
  }
  return true;
}

Status PipelinedStore::Submit(KvBatch batch, bool sync, std::function<Status()> after_write) {
  TALLY_RETURN_IF_ERROR(Wait());
  auto filter = std::make_shared<const std::vector<uint64_t>>(BuildFilter(batch));
  {
    std::lock_guard lock(mu_);
    filter_ = std::move(filter);
    batch_ = std::make_shared<KvBatch>(std::move(batch));
    sealed_ = false;
    sync_ = sync;
    after_write_ = std::move(after_write);
    pending_ = true;
  }
  cv_.notify_all();
  return Status::Ok();
}

Result<std::optional<std::string>> PipelinedStore::Get(std::string_view key) {
  // Once sealed, the batch is immutable and read without the lock; the reference keeps it
  // alive if a Wait or Submit lets go of it meanwhile. If the job finishes meanwhile, the
  // store holds what the batch says anyway.
  std::shared_ptr<const KvBatch> batch;
  {
    std::unique_lock lock(mu_);
    if (batch_ && MayBeIn(filter_.get(), key)) {
      cv_.wait(lock, [&] { return !pending_ || sealed_; });
      if (batch_ && batch_->sealed()) batch = batch_;
    }
  }
  if (batch) {
    if (auto found = batch->Find(key)) {
      if (!*found) return std::optional<std::string>();
      return std::optional<std::string>(std::string(**found));
    }
  }
  return base_->Get(key);
}

std::unique_ptr<KvIterator> PipelinedStore::NewIterator() {
  // An iterator must see the batch in the store; an error shows at the next Wait.
  {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !pending_; });
  }
  return base_->NewIterator();
}

Status PipelinedStore::ReadNeighbours(std::string_view key, std::string_view prefix, size_t count,
                                      const Visitor& visit) {
  // As in Get, the write in flight changes only the keys its batch holds, and a batch
  // submitted meanwhile is not seen: the caller must not ask about keys that one may hold
  // (the row stores keep a batch's rows cached until it is in flight).
  std::shared_ptr<const std::vector<uint64_t>> filter;  // set while a batch is in flight
  {
    std::lock_guard lock(mu_);
    filter = filter_;
  }
  if (!filter) return base_->ReadNeighbours(key, prefix, count, visit);
  return base_->ReadNeighbours(key, prefix, count, [&](std::string_view k, std::string_view v) {
    if (!MayBeIn(filter.get(), k)) visit(k, v);
  });
}

Status PipelinedStore::Write(const KvBatch& batch, bool sync) {
  {
    // A failed job stays failed until the caller Waits for it.
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !pending_; });
    if (!result_.ok()) return result_;
  }
  return base_->Write(batch, sync);
}

}  // namespace tally::store
