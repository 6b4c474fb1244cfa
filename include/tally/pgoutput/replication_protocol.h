// The CopyBoth framing of a logical replication connection (PostgreSQL docs, "Streaming
// Replication Protocol"), without I/O: parse what PQgetCopyData returns, build what
// PQputCopyData sends.
//
// Server -> client (one CopyData each; integers big-endian, times µs since 2000-01-01 UTC):
//   'w' XLogData           Int64 wal_start, Int64 wal_end, Int64 send_time, Byte[n] payload
//   'k' Primary keepalive  Int64 wal_end, Int64 send_time, Byte1 reply_requested
// Client -> server:
//   'r' Standby status     Int64 written, Int64 flushed, Int64 applied, Int64 client_time,
//                          Byte1 reply_requested                       (34 bytes in all)
//
// Ownership: XLogData::payload is a view into the caller's buffer (pass it to
// pgoutput::DecodeMessage). Encoding writes into a caller buffer. Errors: short, overlong or
// unknown frames return Status::Corruption naming the frame type and offset.
// Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "tally/core/lsn.h"
#include "tally/core/status.h"
#include "tally/pgoutput/decoder.h"

namespace tally::pgoutput {

// Unix epoch (1970) to PostgreSQL epoch (2000-01-01) in microseconds.
inline constexpr int64_t kPgEpochUnixMicros = 946'684'800'000'000;

inline constexpr PgTimestamp PgTimestampFromUnixMicros(int64_t unix_micros) {
  return unix_micros - kPgEpochUnixMicros;
}
inline constexpr int64_t UnixMicrosFromPgTimestamp(PgTimestamp t) { return t + kPgEpochUnixMicros; }

// Wire bytes; DO NOT renumber.
enum class CopyMessageType : char {
  kXLogData = 'w',
  kPrimaryKeepalive = 'k',
  kStandbyStatusUpdate = 'r',
};

struct XLogData {
  Lsn wal_start;  // WAL position of the payload's start
  Lsn wal_end;    // the server's current end of WAL
  PgTimestamp send_time = 0;
  std::string_view payload;  // one pgoutput message
};

struct PrimaryKeepalive {
  Lsn wal_end;
  PgTimestamp send_time = 0;
  bool reply_requested = false;  // answer with a status update now or be disconnected
};

struct StandbyStatusUpdate {
  Lsn written;  // received and written
  Lsn flushed;  // durable: the server may release WAL and advance the slot up to here
  Lsn applied;
  PgTimestamp client_time = 0;
  bool reply_requested = false;  // ask the server to answer with a keepalive
};

// One server -> client frame: either XLogData or a keepalive, as `type` says.
struct CopyMessage {
  CopyMessageType type = CopyMessageType::kXLogData;
  XLogData xlog_data;
  PrimaryKeepalive keepalive;
};

inline constexpr size_t kXLogDataHeaderSize = 25;
inline constexpr size_t kPrimaryKeepaliveSize = 18;
inline constexpr size_t kStandbyStatusUpdateSize = 34;

// Parses a CopyData frame the server sent ('w' or 'k').
Status ParseCopyMessage(std::string_view frame, CopyMessage& out);
Result<XLogData> ParseXLogData(std::string_view frame);
Result<PrimaryKeepalive> ParsePrimaryKeepalive(std::string_view frame);

// Writes the 34-byte 'r' frame into `out`.
void EncodeStandbyStatusUpdate(const StandbyStatusUpdate& update,
                               std::span<char, kStandbyStatusUpdateSize> out);
// The inverse, for tests and fake servers.
Result<StandbyStatusUpdate> ParseStandbyStatusUpdate(std::string_view frame);

}  // namespace tally::pgoutput
