#include "tally/pgoutput/replication_protocol.h"

#include <string>

#include "wire_reader.h"

namespace tally::pgoutput {

namespace {

using internal::WireReader;

// A short read, or (when the reads succeeded) bytes left over after the frame.
Status FrameError(std::string_view frame_name, const WireReader& r, size_t frame_size,
                  bool truncated) {
  std::string msg = "replication protocol ";
  msg += frame_name;
  if (truncated) {
    msg += " frame: truncated at byte offset " + std::to_string(r.failed_offset());
  } else {
    msg += " frame: " + std::to_string(r.remaining()) + " trailing bytes at byte offset " +
           std::to_string(r.offset());
  }
  msg += " (frame is " + std::to_string(frame_size) + " bytes)";
  return Status::Corruption(std::move(msg));
}

// Checks the leading type byte; the reader is left just after it.
Status ExpectType(WireReader& r, CopyMessageType type, std::string_view frame_name) {
  uint8_t b = 0;
  if (!r.ReadU8(b)) {
    return Status::Corruption(std::string("replication protocol ") + std::string(frame_name) +
                              " frame: empty frame at byte offset 0");
  }
  if (b != static_cast<uint8_t>(type)) {
    return Status::Corruption("replication protocol: expected " + std::string(frame_name) +
                              " frame '" + static_cast<char>(type) + "', got byte " +
                              std::to_string(b) + " at byte offset 0");
  }
  return Status::Ok();
}

void PutU64(char* p, uint64_t v) {
  for (int i = 7; i >= 0; --i) {
    p[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
}

}  // namespace

Result<XLogData> ParseXLogData(std::string_view frame) {
  WireReader r(frame);
  TALLY_RETURN_IF_ERROR(ExpectType(r, CopyMessageType::kXLogData, "XLogData"));
  XLogData d;
  uint64_t start = 0, end = 0;
  if (!(r.ReadU64(start) && r.ReadU64(end) && r.ReadI64(d.send_time))) {
    return FrameError("XLogData", r, frame.size(), true);
  }
  d.wal_start = Lsn(start);
  d.wal_end = Lsn(end);
  d.payload = frame.substr(r.offset());
  return d;
}

Result<PrimaryKeepalive> ParsePrimaryKeepalive(std::string_view frame) {
  WireReader r(frame);
  TALLY_RETURN_IF_ERROR(ExpectType(r, CopyMessageType::kPrimaryKeepalive, "PrimaryKeepalive"));
  PrimaryKeepalive k;
  uint64_t end = 0;
  uint8_t reply = 0;
  if (!(r.ReadU64(end) && r.ReadI64(k.send_time) && r.ReadU8(reply))) {
    return FrameError("PrimaryKeepalive", r, frame.size(), true);
  }
  if (r.remaining() != 0) return FrameError("PrimaryKeepalive", r, frame.size(), false);
  k.wal_end = Lsn(end);
  k.reply_requested = reply != 0;
  return k;
}

Status ParseCopyMessage(std::string_view frame, CopyMessage& out) {
  if (frame.empty()) {
    return Status::Corruption("replication protocol: empty CopyData frame at byte offset 0");
  }
  switch (static_cast<CopyMessageType>(frame[0])) {
    case CopyMessageType::kXLogData: {
      TALLY_ASSIGN_OR_RETURN(out.xlog_data, ParseXLogData(frame));
      out.type = CopyMessageType::kXLogData;
      return Status::Ok();
    }
    case CopyMessageType::kPrimaryKeepalive: {
      TALLY_ASSIGN_OR_RETURN(out.keepalive, ParsePrimaryKeepalive(frame));
      out.type = CopyMessageType::kPrimaryKeepalive;
      return Status::Ok();
    }
    default:
      break;
  }
  return Status::Corruption("replication protocol: unknown CopyData frame type " +
                            std::to_string(static_cast<uint8_t>(frame[0])) + " at byte offset 0");
}

void EncodeStandbyStatusUpdate(const StandbyStatusUpdate& update,
                               std::span<char, kStandbyStatusUpdateSize> out) {
  char* p = out.data();
  p[0] = static_cast<char>(CopyMessageType::kStandbyStatusUpdate);
  PutU64(p + 1, update.written.value);
  PutU64(p + 9, update.flushed.value);
  PutU64(p + 17, update.applied.value);
  PutU64(p + 25, static_cast<uint64_t>(update.client_time));
  p[33] = update.reply_requested ? 1 : 0;
}

Result<StandbyStatusUpdate> ParseStandbyStatusUpdate(std::string_view frame) {
  WireReader r(frame);
  TALLY_RETURN_IF_ERROR(
      ExpectType(r, CopyMessageType::kStandbyStatusUpdate, "StandbyStatusUpdate"));
  StandbyStatusUpdate u;
  uint64_t written = 0, flushed = 0, applied = 0;
  uint8_t reply = 0;
  if (!(r.ReadU64(written) && r.ReadU64(flushed) && r.ReadU64(applied) &&
        r.ReadI64(u.client_time) && r.ReadU8(reply))) {
    return FrameError("StandbyStatusUpdate", r, frame.size(), true);
  }
  if (r.remaining() != 0) return FrameError("StandbyStatusUpdate", r, frame.size(), false);
  u.written = Lsn(written);
  u.flushed = Lsn(flushed);
  u.applied = Lsn(applied);
  u.reply_requested = reply != 0;
  return u;
}

}  // namespace tally::pgoutput
