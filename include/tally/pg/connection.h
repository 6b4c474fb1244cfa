// Thin RAII wrappers over libpq: a connection, a result, COPY IN, and identifier quoting.
//
// Every SQL statement with values goes through ExecParams; identifiers are quoted with
// QuoteIdent. Errors carry the server's message and SQLSTATE. A lost connection is
// Status::Unavailable (retryable). Not thread-safe: one thread per connection.
#pragma once

#include <libpq-fe.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tally/core/status.h"

namespace tally::pg {

// Session settings every tally connection uses, so the text forms of values are the ones
// tally parses and prints (ISO dates, UTC offsets, round-trip floats).
inline constexpr const char* kSessionOptions =
    "-c DateStyle=ISO -c IntervalStyle=postgres -c TimeZone=UTC -c extra_float_digits=3 "
    "-c client_encoding=UTF8";

class PgResult {
 public:
  PgResult() = default;
  explicit PgResult(PGresult* r) : res_(r, &PQclear) {}
  int rows() const { return res_ ? PQntuples(res_.get()) : 0; }
  int cols() const { return res_ ? PQnfields(res_.get()) : 0; }
  bool is_null(int row, int col) const { return PQgetisnull(res_.get(), row, col); }
  std::string_view get(int row, int col) const {
    return {PQgetvalue(res_.get(), row, col),
            static_cast<size_t>(PQgetlength(res_.get(), row, col))};
  }
  std::optional<std::string> get_opt(int row, int col) const {
    if (is_null(row, col)) return std::nullopt;
    return std::string(get(row, col));
  }
  std::string column_name(int col) const { return PQfname(res_.get(), col); }
  Oid column_type(int col) const { return PQftype(res_.get(), col); }
  int column_typmod(int col) const { return PQfmod(res_.get(), col); }
  std::string_view command_tuples() const { return PQcmdTuples(res_.get()); }
  PGresult* raw() const { return res_.get(); }

 private:
  std::shared_ptr<PGresult> res_;
};

class PgConn {
 public:
  // `dsn` is a libpq connection string or URI; `replication` adds replication=database.
  // The session options above are always set (they replace any `options` in the DSN).
  static Result<std::unique_ptr<PgConn>> Connect(const std::string& dsn, bool replication = false,
                                                 bool session_options = true);
  ~PgConn();
  PgConn(const PgConn&) = delete;
  PgConn& operator=(const PgConn&) = delete;

  Result<PgResult> Exec(const std::string& sql);
  Result<PgResult> ExecParams(const std::string& sql,
                              const std::vector<std::optional<std::string>>& params);
  // Runs each statement; stops at the first error.
  Status ExecAll(const std::vector<std::string>& statements);

  // COPY ... FROM STDIN: Begin, PutData any number of times, End.
  Status CopyInBegin(const std::string& copy_sql);
  Status CopyInPut(std::string_view data);
  Status CopyInEnd();

  // COPY ... TO STDOUT: calls `row` for every data row (text format, one line with '\n').
  template <typename F>
  Status CopyOut(const std::string& copy_sql, F&& row);

  std::string QuoteIdent(std::string_view ident) const;
  std::string QuoteLiteral(std::string_view lit) const;
  bool ok() const { return conn_ && PQstatus(conn_) == CONNECTION_OK; }
  PGconn* raw() const { return conn_; }
  int socket() const { return PQsocket(conn_); }
  // The server's message for the last failure, with the DSN's password never included.
  std::string LastError() const;
  Status ErrorFromResult(PGresult* res, std::string_view what) const;

 private:
  explicit PgConn(PGconn* c) : conn_(c) {}
  Status StartCopyOut(const std::string& copy_sql);
  Result<int> ReadCopyLine(char** line);
  PGconn* conn_ = nullptr;
};

template <typename F>
Status PgConn::CopyOut(const std::string& copy_sql, F&& row) {
  TALLY_RETURN_IF_ERROR(StartCopyOut(copy_sql));
  for (;;) {
    char* line = nullptr;
    TALLY_ASSIGN_OR_RETURN(int n, ReadCopyLine(&line));
    if (n < 0) break;
    Status s = row(std::string_view(line, static_cast<size_t>(n)));
    PQfreemem(line);
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

// Splits one line of COPY text format into fields, unescaping; NULL (\N) is nullopt.
// `fields` is reused; the string_views point into `storage`.
void SplitCopyLine(std::string_view line, std::vector<std::optional<std::string>>* fields);
// Appends `value` escaped for COPY text format.
void AppendCopyEscaped(std::string_view value, std::string* out);

// A text[] literal holding `items`.
std::string TextArrayLiteral(const std::vector<std::string>& items);
// Quotes an identifier as quote_ident would, without a connection.
std::string QuoteIdentifier(std::string_view ident);
// A DSN with any password removed, for logs and messages.
std::string RedactDsn(std::string_view dsn);

}  // namespace tally::pg
