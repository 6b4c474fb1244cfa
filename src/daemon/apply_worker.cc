#include "apply_worker.h"

#include <chrono>
#include <span>
#include <utility>

namespace tally::daemon {

ApplyWorker::ApplyWorker() : filling_(std::make_unique<Block>()) {
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
  if (b.rows_used == b.text_layouts.size()) {
    b.text_layouts.push_back(nullptr);
    b.first_field.push_back(0);
  }
  b.text_layouts[b.rows_used] = nullptr;
  *row = &b.rows[b.rows_used];
  return static_cast<int32_t>(b.rows_used++);
}

int32_t ApplyWorker::AddTextRow(const TextLayout& layout,
                                std::span<const std::optional<std::string_view>> fields) {
  std::vector<Value>* unused = nullptr;
  const int32_t index = AddRow(&unused);
  Block& b = *filling_;
  b.text_layouts[index] = &layout;
  b.first_field[index] = static_cast<uint32_t>(b.fields.size());
  b.bytes += fields.size() * (sizeof(Value) + sizeof(b.fields[0])) + sizeof(std::vector<Value>);
  for (const auto& f : fields) {
    if (!f) {
      b.fields.emplace_back(0, -1);
      continue;
    }
    b.fields.emplace_back(static_cast<uint32_t>(b.text.size()), static_cast<int32_t>(f->size()));
    b.text.append(*f);
    b.bytes += f->size();
  }
  return index;
}

uint64_t ApplyWorker::AddTask(Task task) {
  Block& b = *filling_;
  Op op;
  op.old_row = static_cast<int32_t>(b.tasks.size());
  b.tasks.push_back(std::move(task));
  b.ops.push_back(op);
  return ++tasks_added_;
}

void ApplyWorker::Block::Clear() {
  ops.clear();
  tasks.clear();
  rows_used = 0;
  fields.clear();
  text.clear();
  bytes = 0;
  // A block that once held a few very large values does not keep their memory. (Its row slots
  // number at most two per change, so they stay within about 2 * kBlockOps.)
  if (text.capacity() > 4 * kBlockBytes) text.shrink_to_fit();
}

Status ApplyWorker::ParseRow(Block& block, int32_t index) {
  const TextLayout* layout = block.text_layouts[index];
  if (layout == nullptr) return Status::Ok();
  block.text_layouts[index] = nullptr;
  const std::vector<Oid>& types = *layout->types;
  std::vector<Value>& out = block.rows[index];
  out.resize(types.size());
  const std::string_view text(block.text);
  for (size_t i = 0; i < types.size(); ++i) {
    const auto [offset, length] = block.fields[block.first_field[index] + i];
    if (length < 0) {
      out[i] = Value::Null(types[i]);
      continue;
    }
    Status s =
        Value::ParseTextInto(types[i], text.substr(offset, static_cast<size_t>(length)), &out[i]);
    if (!s.ok())
      return s.WithContext("table " + layout->table + ", column " + (*layout->columns)[i]);
  }
  return Status::Ok();
}

Status ApplyWorker::EndChange() {
  if (filling_->ops.size() >= kBlockOps || filling_->bytes >= kBlockBytes) HandOver();
  if (!failed_.load(std::memory_order_acquire)) return Status::Ok();
  std::lock_guard lock(mu_);
  return error_;
}

template <class Done>
void ApplyWorker::WaitUntil(std::unique_lock<std::mutex>& lock, Done done) {
  while (!cv_.wait_for(lock, std::chrono::seconds(1), done)) {
    if (!wait_hook_) continue;
    lock.unlock();
    wait_hook_();
    lock.lock();
  }
}

void ApplyWorker::HandOver() {
  if (filling_->ops.empty()) {
    filling_->Clear();
    return;
  }
  filling_->bytes += filling_->ops.size() * sizeof(Op);
  std::unique_lock lock(mu_);
  queued_bytes_ += filling_->bytes;
  queued_.push_back(std::move(filling_));
  cv_.notify_all();
  WaitUntil(lock, [&] {
    return queued_bytes_ <= kMaxQueuedBytes && (!free_.empty() || blocks_ < kMaxBlocks);
  });
  if (free_.empty()) {
    ++blocks_;
    filling_ = std::make_unique<Block>();
    filling_->ops.reserve(kBlockOps);
    return;
  }
  filling_ = std::move(free_.back());
  free_.pop_back();
}

Status ApplyWorker::Drain() {
  HandOver();
  std::unique_lock lock(mu_);
  WaitUntil(lock, [&] { return queued_.empty() && !applying_; });
  if (!failed_.load()) return Status::Ok();
  failed_.store(false);
  return std::exchange(error_, Status::Ok());
}

Status ApplyWorker::WaitForTask(uint64_t number) {
  if (!TaskDone(number)) HandOver();
  std::unique_lock lock(mu_);
  WaitUntil(lock, [&] { return TaskDone(number); });
  return failed_.load() ? error_ : Status::Ok();
}

void ApplyWorker::Run() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stop_ || !queued_.empty(); });
    if (queued_.empty()) return;
    std::unique_ptr<Block> block = std::move(queued_.front());
    queued_.pop_front();
    queued_bytes_ -= block->bytes;
    applying_ = true;
    const bool skip = failed_.load();
    lock.unlock();
    Status s = skip ? Status::Ok() : ApplyBlock(*block);
    const size_t tasks = block->tasks.size();
    block->Clear();
    lock.lock();
    if (!s.ok() && !failed_.load()) {
      error_ = std::move(s);
      failed_.store(true, std::memory_order_release);
    }
    // Tasks of the block not run (it failed, or one before did) are over too.
    tasks_done_.store(block_tasks_base_ + tasks, std::memory_order_release);
    block_tasks_base_ += tasks;
    free_.push_back(std::move(block));
    applying_ = false;
    cv_.notify_all();
  }
}

Status ApplyWorker::ApplyBlock(Block& block) {
  uint64_t tasks_run = 0;
  for (const Op& op : block.ops) {
    Status s;
    if (op.maintainer == nullptr) {
      // A failed task is counted by Run, with the error recorded first.
      TALLY_RETURN_IF_ERROR(block.tasks[static_cast<size_t>(op.old_row)]());
      {
        // Counted before the block ends: a waiter (the next flush) goes on at once.
        std::lock_guard lock(mu_);
        tasks_done_.store(block_tasks_base_ + ++tasks_run, std::memory_order_release);
      }
      cv_.notify_all();
      continue;
    }
    if (op.old_row < 0 && op.new_row < 0) {
      s = op.maintainer->SettleValueCounts(*op.store);
      if (!s.ok()) return s.WithContext("view " + *op.view_name);
      continue;
    }
    if (op.old_row >= 0) s = ParseRow(block, op.old_row);
    if (s.ok() && op.new_row >= 0) s = ParseRow(block, op.new_row);
    if (!s.ok()) {
      return s.WithContext("in transaction committing at " + op.commit_lsn.ToString());
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
