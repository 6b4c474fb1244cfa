#include "tally/pg/replication.h"

#include <poll.h>

#include <cerrno>

namespace tally::pg {

Result<std::unique_ptr<ReplicationConnection>> ReplicationConnection::Connect(
    const std::string& dsn) {
  TALLY_ASSIGN_OR_RETURN(auto conn, PgConn::Connect(dsn, /*replication=*/true));
  return std::unique_ptr<ReplicationConnection>(new ReplicationConnection(std::move(conn)));
}

ReplicationConnection::~ReplicationConnection() {
  if (buffer_) PQfreemem(buffer_);
}

Result<SystemIdentity> ReplicationConnection::IdentifySystem() {
  TALLY_ASSIGN_OR_RETURN(auto res, conn_->Exec("IDENTIFY_SYSTEM"));
  if (res.rows() != 1 || res.cols() < 4) {
    return Status::Internal("unexpected IDENTIFY_SYSTEM reply");
  }
  SystemIdentity id;
  id.system_id = std::string(res.get(0, 0));
  id.timeline = std::stoi(std::string(res.get(0, 1)));
  TALLY_ASSIGN_OR_RETURN(id.xlog_pos, Lsn::Parse(res.get(0, 2)));
  id.dbname = res.get_opt(0, 3).value_or("");
  return id;
}

Result<CreatedSlot> ReplicationConnection::CreateLogicalSlot(const std::string& slot,
                                                             bool temporary, bool export_snapshot) {
  std::string sql = "CREATE_REPLICATION_SLOT " + QuoteIdentifier(slot) +
                    (temporary ? " TEMPORARY" : "") + " LOGICAL pgoutput" +
                    (export_snapshot ? " (SNAPSHOT 'export')" : " (SNAPSHOT 'nothing')");
  auto res = conn_->Exec(sql);
  if (!res.ok()) return res.status().WithContext("creating replication slot " + slot);
  CreatedSlot out;
  out.name = std::string(res->get(0, 0));
  TALLY_ASSIGN_OR_RETURN(out.consistent_point, Lsn::Parse(res->get(0, 1)));
  if (!res->is_null(0, 2)) out.snapshot_name = std::string(res->get(0, 2));
  return out;
}

Status ReplicationConnection::StartReplication(const std::string& slot, Lsn start,
                                               const std::string& publication) {
  std::string sql = "START_REPLICATION SLOT " + QuoteIdentifier(slot) + " LOGICAL " +
                    start.ToString() +
                    " (proto_version '2', streaming 'on', messages 'true', publication_names " +
                    conn_->QuoteLiteral(QuoteIdentifier(publication)) + ")";
  PgResult res(PQexec(conn_->raw(), sql.c_str()));
  if (PQresultStatus(res.raw()) != PGRES_COPY_BOTH) {
    Status s = conn_->ErrorFromResult(res.raw(), "START_REPLICATION on slot " + slot);
    // A missing slot or publication is the world's state, not the user's command line.
    return s.retryable() ? s : Status::FailedPrecondition(s.message());
  }
  if (PQsetnonblocking(conn_->raw(), 1) != 0) {
    return Status::Unavailable("cannot make replication connection non-blocking");
  }
  streaming_ = true;
  return Status::Ok();
}

Status ReplicationConnection::StreamEndedStatus() {
  streaming_ = false;
  std::string detail;
  for (;;) {
    PGresult* r = PQgetResult(conn_->raw());
    if (r == nullptr) break;
    if (PQresultStatus(r) == PGRES_FATAL_ERROR) {
      Status s = conn_->ErrorFromResult(r, "replication stream ended");
      PQclear(r);
      // An error from the server (slot dropped, publication missing) is not retryable by
      // waiting; a lost connection is.
      if (!s.retryable() && PQstatus(conn_->raw()) == CONNECTION_OK) {
        return Status::FailedPrecondition(s.message());
      }
      return s;
    }
    PQclear(r);
  }
  return Status::Unavailable("replication stream ended: " + conn_->LastError());
}

Result<std::string_view> ReplicationConnection::Receive(std::chrono::milliseconds timeout) {
  if (buffer_) {
    PQfreemem(buffer_);
    buffer_ = nullptr;
  }
  // libpq's buffer first, then whatever the socket holds, and only when that is empty too a
  // poll: during a catch-up the socket is rarely empty, and a poll before every read (one per
  // 16 kB that libpq takes in) is a system call for nothing.
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (attempt == 2) {
      pollfd pfd{conn_->socket(), POLLIN, 0};
      int rc = poll(&pfd, 1, static_cast<int>(timeout.count()));
      if (rc < 0 && errno == EINTR) return std::string_view();  // a signal: let the caller look
      if (rc < 0) return Status::Unavailable("poll failed on replication connection");
      if (rc == 0) return std::string_view();
    }
    if (attempt > 0 && PQconsumeInput(conn_->raw()) != 1) {
      return Status::Unavailable("replication connection lost: " + conn_->LastError());
    }
    int n = PQgetCopyData(conn_->raw(), &buffer_, /*async=*/1);
    if (n > 0) return std::string_view(buffer_, static_cast<size_t>(n));
    if (n == -1) return StreamEndedStatus();
    if (n == -2) return Status::Unavailable("replication stream failed: " + conn_->LastError());
  }
  return std::string_view();
}

Status ReplicationConnection::Send(std::string_view copy_data) {
  if (PQputCopyData(conn_->raw(), copy_data.data(), static_cast<int>(copy_data.size())) != 1 ||
      PQflush(conn_->raw()) < 0) {
    return Status::Unavailable("sending status update failed: " + conn_->LastError());
  }
  return Status::Ok();
}

}  // namespace tally::pg
