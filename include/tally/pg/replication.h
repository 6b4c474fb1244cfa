// A logical replication connection (replication=database): IDENTIFY_SYSTEM, slot creation
// with an exported snapshot, START_REPLICATION, CopyBoth receive and standby status updates.
//
// The raw CopyData payloads ('w' XLogData, 'k' keepalive) are returned as they are; framing
// is decoded by the pure pgoutput module. Not thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "tally/core/lsn.h"
#include "tally/core/status.h"
#include "tally/pg/connection.h"

namespace tally::pg {

struct SystemIdentity {
  std::string system_id;
  int timeline = 0;
  Lsn xlog_pos;
  std::string dbname;
};

struct CreatedSlot {
  std::string name;
  Lsn consistent_point;
  std::string snapshot_name;  // empty when no snapshot was exported
};

class ReplicationConnection {
 public:
  static Result<std::unique_ptr<ReplicationConnection>> Connect(const std::string& dsn);
  ~ReplicationConnection();

  Result<SystemIdentity> IdentifySystem();
  // Exported snapshot stays valid until the next command on this connection.
  Result<CreatedSlot> CreateLogicalSlot(const std::string& slot, bool temporary,
                                        bool export_snapshot);
  Status StartReplication(const std::string& slot, Lsn start, const std::string& publication);

  // Waits up to `timeout` for one CopyData message. Returns an empty view on timeout. The
  // view is valid until the next call. Unavailable when the stream ends or the connection is
  // lost; the server's error text when it ends with an error (slot dropped, ...).
  Result<std::string_view> Receive(std::chrono::milliseconds timeout);
  // Sends one CopyData message (a standby status update built by pgoutput/replication_protocol.h).
  Status Send(std::string_view copy_data);

  PgConn& conn() { return *conn_; }

 private:
  explicit ReplicationConnection(std::unique_ptr<PgConn> c) : conn_(std::move(c)) {}
  Status StreamEndedStatus();
  std::unique_ptr<PgConn> conn_;
  char* buffer_ = nullptr;
  bool streaming_ = false;
};

}  // namespace tally::pg
