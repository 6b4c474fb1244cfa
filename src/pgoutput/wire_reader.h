// Bounds-checked big-endian cursor over a wire buffer (pgoutput and CopyBoth frames).
//
// Every Read* returns false instead of reading past the end; the cursor then stays where it was
// and failed_offset() tells where the short read started. Reads of strings and byte runs return
// views into the buffer. Thread safety: a value; one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace tally::pgoutput::internal {

class WireReader {
 public:
  explicit WireReader(std::string_view buf) : buf_(buf) {}

  size_t size() const { return buf_.size(); }
  size_t offset() const { return pos_; }
  size_t remaining() const { return buf_.size() - pos_; }
  size_t failed_offset() const { return failed_offset_; }
  // Moves back to an earlier offset, so errors about a byte point at that byte.
  void Seek(size_t offset) { pos_ = offset <= buf_.size() ? offset : buf_.size(); }

  bool ReadU8(uint8_t& v) {
    if (!Need(1)) return false;
    v = static_cast<uint8_t>(buf_[pos_]);
    pos_ += 1;
    return true;
  }
  bool ReadI16(int16_t& v) {
    uint64_t u = 0;
    if (!ReadBigEndian(2, u)) return false;
    v = static_cast<int16_t>(static_cast<uint16_t>(u));
    return true;
  }
  bool ReadU32(uint32_t& v) {
    uint64_t u = 0;
    if (!ReadBigEndian(4, u)) return false;
    v = static_cast<uint32_t>(u);
    return true;
  }
  bool ReadI32(int32_t& v) {
    uint32_t u = 0;
    if (!ReadU32(u)) return false;
    v = static_cast<int32_t>(u);
    return true;
  }
  bool ReadU64(uint64_t& v) { return ReadBigEndian(8, v); }
  bool ReadI64(int64_t& v) {
    uint64_t u = 0;
    if (!ReadU64(u)) return false;
    v = static_cast<int64_t>(u);
    return true;
  }
  // A NUL-terminated String; the view excludes the NUL.
  bool ReadString(std::string_view& v) {
    const void* nul =
        remaining() == 0 ? nullptr : std::memchr(buf_.data() + pos_, '\0', remaining());
    if (nul == nullptr) {
      failed_offset_ = pos_;
      return false;
    }
    size_t len = static_cast<const char*>(nul) - (buf_.data() + pos_);
    v = buf_.substr(pos_, len);
    pos_ += len + 1;
    return true;
  }
  bool ReadBytes(size_t n, std::string_view& v) {
    if (!Need(n)) return false;
    v = buf_.substr(pos_, n);
    pos_ += n;
    return true;
  }

 private:
  bool Need(size_t n) {
    if (remaining() >= n) return true;
    failed_offset_ = pos_;
    return false;
  }
  bool ReadBigEndian(size_t n, uint64_t& v) {
    if (!Need(n)) return false;
    uint64_t x = 0;
    for (size_t i = 0; i < n; ++i) x = (x << 8) | static_cast<uint8_t>(buf_[pos_ + i]);
    v = x;
    pos_ += n;
    return true;
  }

  std::string_view buf_;
  size_t pos_ = 0;
  size_t failed_offset_ = 0;
};

}  // namespace tally::pgoutput::internal
