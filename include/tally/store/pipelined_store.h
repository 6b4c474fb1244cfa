// PipelinedStore: a KvStore that writes one batch at a time on a background thread, so the
// caller can go on with the next batch while RocksDB (and whatever must follow the write, such
// as the sink transaction) works on the last one.
//
// At most one batch is in flight. Reads see it: Get looks in the in-flight batch first (once
// the background thread has sealed it, it is immutable), then in the store, which is safe
// because the write cannot change a key the batch does not hold. Iterators and direct writes
// wait for the in-flight batch.
// A failed job's Status is returned by the next Wait or Submit (once), and by every Write
// until then; after a failure no job runs until the caller has waited.
//
// Thread safety: Submit and Wait are for one caller thread at a time (callers hand the role
// over among themselves); WaitFor, busy, Write, Get and NewIterator may come from any
// thread, at any time. The background thread only seals batches and runs jobs.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "tally/store/kv.h"

namespace tally::store {

class PipelinedStore : public KvStore {
 public:
  explicit PipelinedStore(std::unique_ptr<KvStore> base);
  ~PipelinedStore() override;  // waits for the job in flight

  // Seals `batch`, then on the background thread writes it (synced when `sync`) and, if that
  // succeeded, runs `after_write` (which may use base(), never this). Waits for the previous
  // job first and returns its error, if it failed (this job then is not started).
  Status Submit(KvBatch batch, bool sync, std::function<Status()> after_write);
  // Waits for the job in flight, if any; returns its Status (once).
  Status Wait();
  // Waits up to `timeout` for the job in flight; true when none is running any more.
  bool WaitFor(std::chrono::milliseconds timeout);
  // Whether a job is running.
  bool busy() const;

  // The underlying store: for jobs on the background thread.
  KvStore& base() { return *base_; }

  Result<std::optional<std::string>> Get(std::string_view key) override;
  std::unique_ptr<KvIterator> NewIterator() override;
  // Reads the store without waiting for the batch in flight; leaves out the keys it may hold.
  Status ReadNeighbours(std::string_view key, std::string_view prefix, size_t count,
                        const Visitor& visit) override;
  Status Write(const KvBatch& batch, bool sync) override;

 private:
  void Run();

  std::unique_ptr<KvStore> base_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  // The job: set by Submit, run by the thread; `batch_` stays readable until the next Submit.
  std::shared_ptr<KvBatch> batch_;  // null: none since the last Wait
  bool sync_ = false;
  std::function<Status()> after_write_;
  bool pending_ = false;  // submitted, not finished
  bool sealed_ = false;   // batch_ has been sealed by the background thread
  // A Bloom filter of batch_'s keys (empty when it has ranges): a Get of a key the batch
  // does not touch (most row-store misses) neither waits for the seal nor searches it.
  // Set exactly while batch_ is; shared with readers that check keys against it without the
  // lock (ReadNeighbours).
  std::shared_ptr<const std::vector<uint64_t>> filter_;
  static bool MayBeIn(const std::vector<uint64_t>* filter, std::string_view key);
  bool stop_ = false;
  Status result_;
  std::thread thread_;
};

}  // namespace tally::store
