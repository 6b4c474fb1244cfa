// ApplyWorker: folds the stream's changes into the views on a thread of its own, so that
// receiving, decoding, the row store and parsing (on the stream's thread) overlap with view
// maintenance (ViewMaintainer::ApplyValues and ApplyUpdateValues).
//
// The stream's thread fills a block of changes: their parsed rows and, per view a change
// concerns, an operation naming the rows. A full block goes to the worker, which applies the
// blocks in order, so every view sees its changes in stream order. The queue is bounded by
// both a block count and the bytes its blocks hold: when the worker falls behind, the stream's
// thread waits (memory stays bounded whatever the rows' width). The bounds are wide enough for
// the stream to run on through a large settle (ViewMaintainer::SettleValueCounts) at a flush.
//
// A task (AddTask) runs on the worker between two operations, in order with them: a flush
// writes the views there, so the stream's thread goes on with the next changes meanwhile.
//
// Drain() hands over the block being filled, waits until the worker has applied everything
// and returns the first error it met (once). Between a Drain and the next operation the
// worker touches nothing, so whatever else reads or changes a ViewMaintainer (Truncate,
// Reset, jobs) outside a task must Drain first.
// While the stream's thread waits for the worker (a full queue, Drain, WaitForTask), it
// calls the wait hook about once a second (to keep the replication connection alive).
// All methods are for the stream's thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tally/core/lsn.h"
#include "tally/core/status.h"
#include "tally/core/value.h"
#include "tally/engine/view_maintainer.h"
#include "tally/store/kv.h"

namespace tally::daemon {

class ApplyWorker {
 public:
  // One view's part of one change: the row it loses (old_row) and the row it gains (new_row),
  // each an index into the block's rows, or -1. With neither, the view settles its value
  // counts (ViewMaintainer::SettleValueCounts), as a flush needs. Without a maintainer, the
  // op runs the block's task number old_row.
  struct Op {
    engine::ViewMaintainer* maintainer = nullptr;
    const std::vector<int>* row_map = nullptr;  // plan input column -> row column
    const std::string* view_name = nullptr;
    store::KvStore* store = nullptr;
    Lsn commit_lsn;
    int32_t old_row = -1;
    int32_t new_row = -1;
  };

  // How the worker parses a row given as text (AddTextRow): the columns' types, and for errors
  // the table's and the columns' names. The caller keeps it alive and unchanged until Drain.
  struct TextLayout {
    std::string table;
    const std::vector<std::string>* columns = nullptr;
    const std::vector<Oid>* types = nullptr;
  };

  // The queue's bound on the bytes its blocks hold (text, fields, ops and the rows' values).
  static constexpr size_t kMaxQueuedBytes = size_t{64} << 20;

  ApplyWorker();
  ~ApplyWorker();  // drains; an error still pending is dropped
  ApplyWorker(const ApplyWorker&) = delete;
  ApplyWorker& operator=(const ApplyWorker&) = delete;

  // A row slot of the block being filled, for the caller to fill; its index for an Op.
  // Slots are reused: the caller overwrites every column it reads.
  int32_t AddRow(std::vector<Value>** row);
  // A row slot holding `fields` as text (nullopt: NULL), one per layout column: the worker
  // parses it when an op first reads it, so that parsing is off the caller's thread.
  int32_t AddTextRow(const TextLayout& layout,
                     std::span<const std::optional<std::string_view>> fields);
  void AddOp(const Op& op) { filling_->ops.push_back(op); }
  // Queues `task` after the ops added so far; its number (1, 2, ...) for WaitForTask.
  // A task that is not run (an earlier op failed) counts as finished.
  using Task = std::function<Status()>;
  uint64_t AddTask(Task task);
  // Whether task `number` has finished.
  bool TaskDone(uint64_t number) const {
    return tasks_done_.load(std::memory_order_acquire) >= number;
  }
  // Hands over what is queued and waits until task `number` has finished; the worker's first
  // error, if it met one (kept for Drain and EndChange to return too).
  Status WaitForTask(uint64_t number);
  void set_wait_hook(std::function<void()> hook) { wait_hook_ = std::move(hook); }
  // After each change: hands the block over once it is full. Returns the worker's error,
  // if it met one (the changes after it are not applied).
  Status EndChange();
  // Hands over the block being filled now, full or not: the worker starts on it while the
  // caller does something else before it drains.
  void HandOverNow() { HandOver(); }
  // Everything handed over is applied; the first error, once.
  Status Drain();

 private:
  static constexpr size_t kBlockOps = 512;
  // A block is handed over early once its rows take this much (wide rows, large values).
  static constexpr size_t kBlockBytes = size_t{1} << 20;
  static constexpr size_t kMaxBlocks = 1024;
  struct Block {
    std::vector<std::vector<Value>> rows;
    size_t rows_used = 0;
    std::vector<Op> ops;
    // Per row: its layout while it waits to be parsed from `text`, else null.
    std::vector<const TextLayout*> text_layouts;
    std::vector<uint32_t> first_field;  // per row: its first entry in `fields`
    // Per text field: its offset in `text` and its length, or -1 for NULL.
    std::vector<std::pair<uint32_t, int32_t>> fields;
    std::string text;
    std::vector<Task> tasks;
    // What the queue counts for this block: its text, fields, ops and the rows' values.
    size_t bytes = 0;
    void Clear();
  };
  // Waits on cv_ (lock held) until `done`, calling the wait hook about every second.
  template <class Done>
  void WaitUntil(std::unique_lock<std::mutex>& lock, Done done);
  // Parses the block's text row `index` into rows[index], once.
  static Status ParseRow(Block& block, int32_t index);
  void HandOver();
  void Run();
  Status ApplyBlock(Block& block);

  std::unique_ptr<Block> filling_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Block>> queued_;  // handed over, in order
  size_t queued_bytes_ = 0;                    // the blocks' bytes in queued_
  std::vector<std::unique_ptr<Block>> free_;
  size_t blocks_ = 1;      // made so far (filling_, queued_, free_ and the one being applied)
  bool applying_ = false;  // the worker holds a block
  bool stop_ = false;
  // error_ holds the first error; later ops are skipped. Atomic: EndChange looks without the lock.
  std::atomic<bool> failed_ = false;
  Status error_;
  uint64_t tasks_added_ = 0;
  std::atomic<uint64_t> tasks_done_ = 0;
  uint64_t block_tasks_base_ = 0;  // tasks in the blocks before the one being applied
  std::function<void()> wait_hook_;
  std::thread thread_;
};

}  // namespace tally::daemon
