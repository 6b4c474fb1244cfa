#include "tally/pgoutput/replication_protocol.h"

#include <array>
#include <string>

#include "fixture.h"
#include "tally/pgoutput/decoder.h"

namespace tally::pgoutput {
namespace {

std::string Be64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 7; i >= 0; --i) {
    s[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  return s;
}

TEST_CASE("replication protocol: XLogData frame around a captured message", "[pgoutput]") {
  std::vector<testing::FixtureMessage> fixture = testing::LoadFixture("stream_v2.txt");
  const std::string& payload = fixture.at(0).bytes;  // a Begin
  std::string frame = "w" + Be64(0x0000000100000010ULL) + Be64(0x0000000100000FFFULL) +
                      Be64(757479845000000ULL) + payload;

  CopyMessage msg;
  REQUIRE(ParseCopyMessage(frame, msg).ok());
  CHECK(msg.type == CopyMessageType::kXLogData);
  CHECK(msg.xlog_data.wal_start == Lsn(0x0000000100000010ULL));
  CHECK(msg.xlog_data.wal_end == Lsn(0x0000000100000FFFULL));
  CHECK(msg.xlog_data.wal_start.ToString() == "1/10");
  CHECK(msg.xlog_data.send_time == 757479845000000LL);
  CHECK(msg.xlog_data.payload == payload);
  // The payload is a view into the frame, not a copy.
  CHECK(msg.xlog_data.payload.data() == frame.data() + kXLogDataHeaderSize);

  Message m;
  REQUIRE(DecodeMessage(msg.xlog_data.payload, false, m).ok());
  CHECK(m.type == MessageType::kBegin);
  CHECK(m.begin.xid == testing::Facts().U32("xid.insert"));

  // Every prefix shorter than the header is Corruption.
  for (size_t len = 0; len < kXLogDataHeaderSize; ++len) {
    std::string prefix = frame.substr(0, len);
    Status s = ParseCopyMessage(prefix, msg);
    CHECK(s.code() == StatusCode::kCorruption);
    CHECK(s.message().find("byte offset") != std::string::npos);
    CHECK(ParseXLogData(prefix).status().code() == StatusCode::kCorruption);
  }
  // A header-only frame parses with an empty payload (which the decoder then rejects).
  Result<XLogData> empty = ParseXLogData(frame.substr(0, kXLogDataHeaderSize));
  REQUIRE(empty.ok());
  CHECK(empty->payload.empty());
  CHECK(DecodeMessage(empty->payload, false, m).code() == StatusCode::kCorruption);
}

TEST_CASE("replication protocol: primary keepalive", "[pgoutput]") {
  std::string frame = "k" + Be64(0x16B374D848ULL) + Be64(123456789) + std::string(1, '\1');
  REQUIRE(frame.size() == kPrimaryKeepaliveSize);
  CopyMessage msg;
  REQUIRE(ParseCopyMessage(frame, msg).ok());
  CHECK(msg.type == CopyMessageType::kPrimaryKeepalive);
  CHECK(msg.keepalive.wal_end.ToString() == "16/B374D848");
  CHECK(msg.keepalive.send_time == 123456789);
  CHECK(msg.keepalive.reply_requested);

  frame.back() = '\0';
  Result<PrimaryKeepalive> k = ParsePrimaryKeepalive(frame);
  REQUIRE(k.ok());
  CHECK_FALSE(k->reply_requested);

  for (size_t len = 0; len < frame.size(); ++len) {
    Status s = ParseCopyMessage(frame.substr(0, len), msg);
    CHECK(s.code() == StatusCode::kCorruption);
  }
  Status trailing = ParsePrimaryKeepalive(frame + "x").status();
  CHECK(trailing.code() == StatusCode::kCorruption);
  CHECK(trailing.message().find("1 trailing bytes at byte offset 18") != std::string::npos);
}

TEST_CASE("replication protocol: unknown and mismatched frames", "[pgoutput]") {
  CopyMessage msg;
  CHECK(ParseCopyMessage("", msg).code() == StatusCode::kCorruption);
  Status s = ParseCopyMessage("x123", msg);
  CHECK(s.code() == StatusCode::kCorruption);
  CHECK(s.message().find("unknown CopyData frame type 120") != std::string::npos);
  CHECK(ParseXLogData("k").status().code() == StatusCode::kCorruption);
  CHECK(ParsePrimaryKeepalive("w").status().code() == StatusCode::kCorruption);
}

TEST_CASE("replication protocol: standby status update bytes and round trip", "[pgoutput]") {
  StandbyStatusUpdate u;
  u.written = Lsn(0x0102030405060708ULL);
  u.flushed = Lsn(0x1112131415161718ULL);
  u.applied = Lsn(0x2122232425262728ULL);
  u.client_time = PgTimestampFromUnixMicros(int64_t{1700000000} * 1000000);
  u.reply_requested = true;

  std::array<char, kStandbyStatusUpdateSize> buf{};
  EncodeStandbyStatusUpdate(u, buf);
  std::string bytes(buf.data(), buf.size());
  std::string expected = "r" + Be64(0x0102030405060708ULL) + Be64(0x1112131415161718ULL) +
                         Be64(0x2122232425262728ULL) +
                         Be64(uint64_t{1700000000} * 1000000 - 946684800000000ULL) +
                         std::string(1, '\1');
  CHECK(bytes == expected);

  Result<StandbyStatusUpdate> back = ParseStandbyStatusUpdate(bytes);
  REQUIRE(back.ok());
  CHECK(back->written == u.written);
  CHECK(back->flushed == u.flushed);
  CHECK(back->applied == u.applied);
  CHECK(back->client_time == u.client_time);
  CHECK(back->reply_requested);

  u.reply_requested = false;
  u.client_time = -5;  // before 2000: negative on the wire, two's complement
  EncodeStandbyStatusUpdate(u, buf);
  back = ParseStandbyStatusUpdate(std::string_view(buf.data(), buf.size()));
  REQUIRE(back.ok());
  CHECK(back->client_time == -5);
  CHECK_FALSE(back->reply_requested);

  CHECK(ParseStandbyStatusUpdate(bytes.substr(0, 33)).status().code() == StatusCode::kCorruption);
  CHECK(ParseStandbyStatusUpdate(bytes + "z").status().code() == StatusCode::kCorruption);
}

TEST_CASE("replication protocol: PostgreSQL epoch conversion", "[pgoutput]") {
  CHECK(PgTimestampFromUnixMicros(946684800000000LL) == 0);
  CHECK(UnixMicrosFromPgTimestamp(0) == 946684800000000LL);
  CHECK(UnixMicrosFromPgTimestamp(PgTimestampFromUnixMicros(42)) == 42);
}

}  // namespace
}  // namespace tally::pgoutput
