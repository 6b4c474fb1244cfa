#include "tally/pg/connection.h"

#include <regex>

namespace tally::pg {

namespace {

bool IsConnectionLost(PGconn* c) { return c == nullptr || PQstatus(c) != CONNECTION_OK; }

}  // namespace

std::string RedactDsn(std::string_view dsn) {
  static const std::regex kKeyword(R"((password\s*=\s*)('([^'\\]|\\.)*'|\S+))",
                                   std::regex::icase);
  static const std::regex kUri(R"((postgres(ql)?://[^:/@]*:)[^@]*@)", std::regex::icase);
  std::string s = std::regex_replace(std::string(dsn), kKeyword, "$1********");
  return std::regex_replace(s, kUri, "$1********@");
}

std::string TextArrayLiteral(const std::vector<std::string>& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ',';
    out += '"';
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

std::string QuoteIdentifier(std::string_view ident) {
  std::string out = "\"";
  for (char c : ident) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

Result<std::unique_ptr<PgConn>> PgConn::Connect(const std::string& dsn, bool replication,
                                                bool session_options) {
  std::vector<const char*> keys = {"dbname", "fallback_application_name"};
  std::vector<const char*> vals = {dsn.c_str(), "tally"};
  if (session_options) {
    keys.push_back("options");
    vals.push_back(kSessionOptions);
  }
  if (replication) {
    keys.push_back("replication");
    vals.push_back("database");
  }
  keys.push_back(nullptr);
  vals.push_back(nullptr);
  PGconn* c = PQconnectdbParams(keys.data(), vals.data(), /*expand_dbname=*/1);
  if (c == nullptr) return Status::Unavailable("out of memory creating a connection");
  if (PQstatus(c) != CONNECTION_OK) {
    std::string msg = PQerrorMessage(c);
    PQfinish(c);
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    // Authentication and unknown database are not going to fix themselves.
    bool permanent = msg.find("authentication failed") != std::string::npos ||
                     msg.find("does not exist") != std::string::npos ||
                     msg.find("invalid") != std::string::npos ||
                     msg.find("replication role") != std::string::npos ||
                     msg.find("permission denied") != std::string::npos;
    std::string text = "cannot connect to " + RedactDsn(dsn) + ": " + msg;
    if (replication && msg.find("replication role") != std::string::npos) {
      text += " (tally's role needs the REPLICATION attribute: ALTER ROLE <role> REPLICATION)";
    }
    return permanent ? Status::FailedPrecondition(text) : Status::Unavailable(text);
  }
  // Server notices ("relation ... already exists, skipping") are not the user's business.
  PQsetNoticeProcessor(c, [](void*, const char*) {}, nullptr);
  return std::unique_ptr<PgConn>(new PgConn(c));
}

PgConn::~PgConn() {
  if (conn_) PQfinish(conn_);
}

std::string PgConn::LastError() const {
  std::string msg = conn_ ? PQerrorMessage(conn_) : "no connection";
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  return msg;
}

Status PgConn::ErrorFromResult(PGresult* res, std::string_view what) const {
  std::string msg;
  const char* state = nullptr;
  if (res != nullptr) {
    msg = PQresultErrorMessage(res);
    state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
  }
  if (msg.empty()) msg = LastError();
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  std::string text = std::string(what) + ": " + msg;
  if (state != nullptr) text += " (SQLSTATE " + std::string(state) + ")";
  if (IsConnectionLost(conn_) ||
      (state != nullptr && (std::string_view(state).substr(0, 2) == "08" ||
                            std::string_view(state) == "57P01" ||
                            std::string_view(state) == "57P02" ||
                            std::string_view(state) == "57P03"))) {
    return Status::Unavailable(text);
  }
  if (state != nullptr && (std::string_view(state).substr(0, 2) == "42" ||
                           std::string_view(state).substr(0, 2) == "22")) {
    return Status::InvalidArgument(text);
  }
  return Status::FailedPrecondition(text);
}

Result<PgResult> PgConn::Exec(const std::string& sql) {
  PgResult res(PQexec(conn_, sql.c_str()));
  auto st = PQresultStatus(res.raw());
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    return ErrorFromResult(res.raw(), "query failed");
  }
  return res;
}

Result<PgResult> PgConn::ExecParams(const std::string& sql,
                                    const std::vector<std::optional<std::string>>& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  PgResult res(PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr,
                            values.data(), nullptr, nullptr, 0));
  auto st = PQresultStatus(res.raw());
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    return ErrorFromResult(res.raw(), "query failed");
  }
  return res;
}

Status PgConn::ExecAll(const std::vector<std::string>& statements) {
  for (const auto& s : statements) {
    auto r = Exec(s);
    if (!r.ok()) return r.status();
  }
  return Status::Ok();
}

Status PgConn::CopyInBegin(const std::string& copy_sql) {
  PgResult res(PQexec(conn_, copy_sql.c_str()));
  if (PQresultStatus(res.raw()) != PGRES_COPY_IN) return ErrorFromResult(res.raw(), "COPY failed");
  return Status::Ok();
}

Status PgConn::CopyInPut(std::string_view data) {
  if (data.empty()) return Status::Ok();
  if (PQputCopyData(conn_, data.data(), static_cast<int>(data.size())) != 1) {
    return Status::Unavailable("COPY data failed: " + LastError());
  }
  return Status::Ok();
}

Status PgConn::CopyInEnd() {
  if (PQputCopyEnd(conn_, nullptr) != 1) return Status::Unavailable("COPY end failed: " + LastError());
  for (;;) {
    PgResult res(PQgetResult(conn_));
    if (res.raw() == nullptr) break;
    if (PQresultStatus(res.raw()) != PGRES_COMMAND_OK) {
      return ErrorFromResult(res.raw(), "COPY failed");
    }
  }
  return Status::Ok();
}

Status PgConn::StartCopyOut(const std::string& copy_sql) {
  PgResult res(PQexec(conn_, copy_sql.c_str()));
  if (PQresultStatus(res.raw()) != PGRES_COPY_OUT) return ErrorFromResult(res.raw(), "COPY failed");
  return Status::Ok();
}

Result<int> PgConn::ReadCopyLine(char** line) {
  int n = PQgetCopyData(conn_, line, 0);
  if (n >= 0) return n;
  if (n == -2) return Status::Unavailable("COPY read failed: " + LastError());
  for (;;) {
    PgResult res(PQgetResult(conn_));
    if (res.raw() == nullptr) break;
    if (PQresultStatus(res.raw()) != PGRES_COMMAND_OK) {
      return ErrorFromResult(res.raw(), "COPY failed");
    }
  }
  return -1;
}

std::string PgConn::QuoteIdent(std::string_view ident) const { return QuoteIdentifier(ident); }

std::string PgConn::QuoteLiteral(std::string_view lit) const {
  char* q = PQescapeLiteral(conn_, lit.data(), lit.size());
  if (q == nullptr) return "''";
  std::string out(q);
  PQfreemem(q);
  return out;
}

void SplitCopyLine(std::string_view line, std::vector<std::optional<std::string>>* fields) {
  fields->clear();
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  std::string cur;
  bool is_null = false;
  auto finish = [&] {
    if (is_null) {
      fields->emplace_back(std::nullopt);
    } else {
      fields->emplace_back(std::move(cur));
    }
    cur.clear();
    is_null = false;
  };
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (c == '\t') {
      finish();
      continue;
    }
    if (c == '\\' && i + 1 < line.size()) {
      char n = line[++i];
      switch (n) {
        case 'N': is_null = true; break;
        case 't': cur += '\t'; break;
        case 'n': cur += '\n'; break;
        case 'r': cur += '\r'; break;
        case 'b': cur += '\b'; break;
        case 'f': cur += '\f'; break;
        case 'v': cur += '\v'; break;
        default: cur += n; break;
      }
      continue;
    }
    cur += c;
  }
  finish();
}

void AppendCopyEscaped(std::string_view value, std::string* out) {
  for (char c : value) {
    switch (c) {
      case '\\': out->append("\\\\"); break;
      case '\t': out->append("\\t"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      default: out->push_back(c);
    }
  }
}

}  // namespace tally::pg
