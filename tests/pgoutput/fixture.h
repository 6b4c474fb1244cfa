// Test helpers: load the captured pgoutput fixtures of tests/data/pgoutput (see README.md there).
#pragma once

#include <catch2/catch.hpp>
#include <cstdint>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "tally/core/lsn.h"
#include "tally/pgoutput/decoder.h"

namespace tally::pgoutput::testing {

// One row of pg_logical_slot_peek_binary_changes: the server's lsn and xid columns and the
// message bytes.
struct FixtureMessage {
  int line = 0;
  Lsn lsn;
  uint32_t xid = 0;
  std::string bytes;
};

inline std::string DataPath(const std::string& name) {
  return std::string(TALLY_TEST_DATA_DIR) + "/pgoutput/" + name;
}

inline std::string Unhex(const std::string& hex) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  REQUIRE(hex.size() % 2 == 0);
  std::string out(hex.size() / 2, '\0');
  for (size_t i = 0; i < out.size(); ++i) {
    int hi = nibble(hex[2 * i]);
    int lo = nibble(hex[2 * i + 1]);
    REQUIRE(hi >= 0);
    REQUIRE(lo >= 0);
    out[i] = static_cast<char>(hi * 16 + lo);
  }
  return out;
}

// Loads "<lsn> <xid> <hex>" lines; '#' lines are comments.
inline std::vector<FixtureMessage> LoadFixture(const std::string& name) {
  std::ifstream in(DataPath(name));
  INFO("fixture " << DataPath(name));
  REQUIRE(in.good());
  std::vector<FixtureMessage> messages;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string lsn, hex;
    FixtureMessage m;
    m.line = line_no;
    fields >> lsn >> m.xid >> hex;
    INFO("line " << line_no);
    REQUIRE(!fields.fail());
    Result<Lsn> parsed = Lsn::Parse(lsn);
    REQUIRE(parsed.ok());
    m.lsn = *parsed;
    m.bytes = Unhex(hex);
    messages.push_back(std::move(m));
  }
  REQUIRE(!messages.empty());
  return messages;
}

// facts.txt: key=value lines written by integration/capture/workload.sql.
class Facts {
 public:
  Facts() {
    std::ifstream in(DataPath("facts.txt"));
    REQUIRE(in.good());
    std::string line;
    while (std::getline(in, line)) {
      auto eq = line.find('=');
      if (eq != std::string::npos) values_[line.substr(0, eq)] = line.substr(eq + 1);
    }
  }
  std::string Str(const std::string& key) const {
    auto it = values_.find(key);
    INFO("fact " << key);
    REQUIRE(it != values_.end());
    return it->second;
  }
  uint32_t U32(const std::string& key) const { return static_cast<uint32_t>(std::stoul(Str(key))); }
  Lsn LsnOf(const std::string& key) const {
    Result<Lsn> lsn = Lsn::Parse(Str(key));
    REQUIRE(lsn.ok());
    return *lsn;
  }

 private:
  std::map<std::string, std::string> values_;
};

// Decodes a whole fixture with a stateful Decoder, keeping a copy of every message (the copies'
// views point into `messages`, which must outlive the result).
inline std::vector<Message> DecodeAll(const std::vector<FixtureMessage>& messages) {
  Decoder decoder;
  Message m;
  std::vector<Message> out;
  out.reserve(messages.size());
  for (const FixtureMessage& f : messages) {
    Status s = decoder.Decode(f.bytes, m);
    INFO("fixture line " << f.line << ": " << s.ToString());
    REQUIRE(s.ok());
    out.push_back(m);
  }
  CHECK(!decoder.in_stream());
  return out;
}

// A tuple as strings: the text value, "<null>" or "<unchanged>".
inline std::vector<std::string> Texts(const TupleData& tuple) {
  std::vector<std::string> out;
  for (const TupleField& f : tuple.fields) {
    switch (f.kind) {
      case TupleFieldKind::kNull:
        out.emplace_back("<null>");
        break;
      case TupleFieldKind::kUnchangedToast:
        out.emplace_back("<unchanged>");
        break;
      case TupleFieldKind::kText:
        out.emplace_back(f.data);
        break;
      case TupleFieldKind::kBinary:
        out.emplace_back("<binary>");
        break;
    }
  }
  return out;
}

inline std::string TypeString(const std::vector<Message>& messages, size_t begin, size_t end) {
  std::string s;
  for (size_t i = begin; i < end && i < messages.size(); ++i) {
    s += static_cast<char>(messages[i].type);
  }
  return s;
}

}  // namespace tally::pgoutput::testing
