#include "apply_worker.h"

#include <span>
#include <utility>

namespace tally::daemon {

ApplyWorker::ApplyWorker() : filling_(std::make_unique<Block>()) {
  for (size_t i = 1; i < kBlocks; ++i) free_.push_back(std::make_unique<Block>());
  filling_->ops.reserve(kBlockOps);
  thread_ = std::thread([this] { Run(); });
}

ApplyWorker::~ApplyWorker() {
  Drain().IgnoreError();
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

int32_t ApplyWorker::AddRow(std::vector<Value>** row) {
  Block& b = *filling_;
  if (b.rows_used == b.rows.size()) b.rows.emplace_back();
  *row = &b.rows[b.rows_used];
  return static_cast<int32_t>(b.rows_used++);
}

Status ApplyWorker::EndChange() {
  if (filling_->ops.size() >= kBlockOps) HandOver();
  if (!failed_.load(std::memory_order_acquire)) return Status::Ok();
  std::lock_guard lock(mu_);
  return error_;
}

void ApplyWorker::HandOver() {
  if (filling_->ops.empty()) {
    filling_->rows_used = 0;
    return;
  }
  std::unique_lock lock(mu_);
  queued_.push_back(std::move(filling_));
  cv_.notify_all();
  cv_.wait(lock, [&] { return !free_.empty(); });
  filling_ = std::move(free_.back());
  free_.pop_back();
}

Status ApplyWorker::Drain() {
  HandOver();
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return queued_.empty() && !applying_; });
  if (!failed_.load()) return Status::Ok();
  failed_.store(false);
  return std::exchange(error_, Status::Ok());
}

void ApplyWorker::Run() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stop_ || !queued_.empty(); });
    if (queued_.empty()) return;
    std::unique_ptr<Block> block = std::move(queued_.front());
    queued_.pop_front();
    applying_ = true;
    const bool skip = failed_.load();
    lock.unlock();
    Status s = skip ? Status::Ok() : ApplyBlock(*block);
    block->ops.clear();
    block->rows_used = 0;
    lock.lock();
    if (!s.ok() && !failed_.load()) {
      error_ = std::move(s);
      failed_.store(true, std::memory_order_release);
    }
    free_.push_back(std::move(block));
    applying_ = false;
    cv_.notify_all();
  }
}

Status ApplyWorker::ApplyBlock(Block& block) {
  for (const Op& op : block.ops) {
    Status s;
    if (op.old_row < 0 && op.new_row < 0) {
      s = op.maintainer->SettleValueCounts(*op.store);
      if (!s.ok()) return s.WithContext("view " + *op.view_name);
      continue;
    }
    const std::span<const int> row_map(*op.row_map);
    if (op.old_row >= 0 && op.new_row >= 0) {
      s = op.maintainer->ApplyUpdateValues(block.rows[op.old_row], block.rows[op.new_row], row_map,
                                           *op.store);
    } else if (op.old_row >= 0) {
      s = op.maintainer->ApplyValues(block.rows[op.old_row], row_map, -1, *op.store);
    } else {
      s = op.maintainer->ApplyValues(block.rows[op.new_row], row_map, 1, *op.store);
    }
    if (!s.ok()) {
      return s.WithContext("view " + *op.view_name)
          .WithContext("in transaction committing at " + op.commit_lsn.ToString());
    }
  }
  return Status::Ok();
}

}  // namespace tally::daemon
