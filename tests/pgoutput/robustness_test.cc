// Malformed input: truncated, extended, bit-flipped and random buffers must give Corruption (or,
// for a flip that still forms a valid message, Ok), never a crash or an out-of-bounds read.
// Run once under -fsanitize=address,undefined to make the "never reads out of bounds" real.
#include <random>
#include <set>
#include <string>
#include <vector>

#include "fixture.h"
#include "tally/pgoutput/decoder.h"

namespace tally::pgoutput {
namespace {

using testing::FixtureMessage;
using testing::LoadFixture;

// Each distinct message of both fixtures once, with whether it lies inside a stream block.
struct Sample {
  std::string bytes;
  bool in_stream;
};

std::vector<Sample> DistinctSamples() {
  std::vector<Sample> out;
  std::set<std::pair<std::string, bool>> seen;
  for (const char* name : {"stream_v2.txt", "binary_v2.txt"}) {
    bool in_stream = false;
    for (const FixtureMessage& f : LoadFixture(name)) {
      char type = f.bytes.empty() ? 0 : f.bytes[0];
      if (type == 'E') in_stream = false;
      if (seen.insert({f.bytes, in_stream}).second) out.push_back({f.bytes, in_stream});
      if (type == 'S') in_stream = true;
    }
  }
  return out;
}

bool IsOkOrCorruption(const Status& s) { return s.ok() || s.code() == StatusCode::kCorruption; }

TEST_CASE("pgoutput: every fixture message decodes, every strict prefix is Corruption",
          "[pgoutput]") {
  std::vector<Sample> samples = DistinctSamples();
  REQUIRE(samples.size() > 100);
  Message m;
  size_t checked = 0;
  for (const Sample& sample : samples) {
    REQUIRE(DecodeMessage(sample.bytes, sample.in_stream, m).ok());
    std::string_view type_name = MessageTypeName(m.type);
    for (size_t len = 0; len < sample.bytes.size(); ++len) {
      // Copy the prefix to its own allocation so ASan sees any read past its end.
      std::string prefix = sample.bytes.substr(0, len);
      Status s = DecodeMessage(prefix, sample.in_stream, m);
      if (s.code() != StatusCode::kCorruption) {
        FAIL("prefix of " << len << " bytes of a " << type_name << " message: " << s.ToString());
      }
      // The message names the type (once there is a type byte) and the offset.
      if (len > 0 && s.message().find(type_name) == std::string::npos) {
        FAIL("no message type in: " << s.message());
      }
      if (s.message().find("byte offset") == std::string::npos) {
        FAIL("no offset in: " << s.message());
      }
      ++checked;
    }
  }
  CHECK(checked > 10000);
}

TEST_CASE("pgoutput: trailing bytes are Corruption", "[pgoutput]") {
  Message m;
  for (const Sample& sample : DistinctSamples()) {
    Status s = DecodeMessage(sample.bytes + std::string(1, '\0'), sample.in_stream, m);
    REQUIRE(s.code() == StatusCode::kCorruption);
    CHECK(s.message().find("trailing") != std::string::npos);
  }
}

TEST_CASE("pgoutput: bit flips never crash", "[pgoutput]") {
  Message m;
  size_t corruptions = 0;
  for (const Sample& sample : DistinctSamples()) {
    std::string bytes = sample.bytes;
    for (size_t i = 0; i < bytes.size(); ++i) {
      for (int bit = 0; bit < 8; ++bit) {
        bytes[i] = static_cast<char>(bytes[i] ^ (1 << bit));
        for (bool in_stream : {false, true}) {
          Status s = DecodeMessage(bytes, in_stream, m);
          if (!IsOkOrCorruption(s)) FAIL(s.ToString());
          if (!s.ok()) ++corruptions;
        }
        bytes[i] = static_cast<char>(bytes[i] ^ (1 << bit));
      }
    }
  }
  // Most flips of type, tag, kind or length bytes are detected.
  CHECK(corruptions > 1000);
}

TEST_CASE("pgoutput: random garbage never crashes", "[pgoutput]") {
  std::mt19937 rng(20240101);
  const std::string kTypes = "BCORYIUDTMSEcA";
  const std::string kTags = "KONntub";
  Message m;
  size_t ok = 0;
  for (int iter = 0; iter < 200000; ++iter) {
    std::string buf(rng() % 48, '\0');
    for (char& c : buf) {
      // Bias towards bytes that mean something to the decoder, so it gets past the first check.
      switch (rng() % 4) {
        case 0:
          c = kTags[rng() % kTags.size()];
          break;
        case 1:
          c = 0;
          break;
        default:
          c = static_cast<char>(rng() & 0xff);
      }
    }
    if (!buf.empty() && rng() % 2 == 0) buf[0] = kTypes[rng() % kTypes.size()];
    Status s = DecodeMessage(buf, iter % 3 == 0, m);
    if (!IsOkOrCorruption(s)) FAIL(s.ToString());
    if (s.ok()) ++ok;
  }
  CHECK(ok > 0);  // e.g. 'E' alone; shows the generator reaches valid messages at all
}

std::string Bytes(std::initializer_list<int> bytes) {
  std::string s;
  for (int b : bytes) s += static_cast<char>(b);
  return s;
}

TEST_CASE("pgoutput: specific malformed messages", "[pgoutput]") {
  Message m;
  auto corrupt = [&](const std::string& bytes, const std::string& needle, bool in_stream = false) {
    Status s = DecodeMessage(bytes, in_stream, m);
    INFO(s.ToString());
    CHECK(s.code() == StatusCode::kCorruption);
    CHECK(s.message().find(needle) != std::string::npos);
  };
  corrupt("", "empty");
  corrupt("Z", "unknown message type 'Z' (0x5a) at byte offset 0");
  corrupt(Bytes({0xff}), "unknown message type (0xff)");
  // Insert, relation 1, 'N', 1 column of unknown kind 'x'.
  corrupt(Bytes({'I', 0, 0, 0, 1, 'N', 0, 1, 'x'}),
          "unknown tuple field kind 'x' (0x78) in column 0 at byte offset 8");
  // Text field with a negative length.
  corrupt(Bytes({'I', 0, 0, 0, 1, 'N', 0, 1, 't', 0xff, 0xff, 0xff, 0xff}),
          "negative field length");
  // Text field longer than the buffer.
  corrupt(Bytes({'I', 0, 0, 0, 1, 'N', 0, 1, 't', 0x7f, 0xff, 0xff, 0xff, 'a'}),
          "Insert message: truncated at byte offset 13");
  // Negative and too large column counts.
  corrupt(Bytes({'I', 0, 0, 0, 1, 'N', 0xff, 0xff}), "bad tuple column count -1");
  corrupt(Bytes({'I', 0, 0, 0, 1, 'N', 0x7f, 0xff, 'n'}), "bad tuple column count 32767");
  // Insert needs 'N'; Update rejects a tag other than K/O/N; Delete needs K or O.
  corrupt(Bytes({'I', 0, 0, 0, 1, 'K', 0, 0}), "expected 'N', got 'K'");
  corrupt(Bytes({'U', 0, 0, 0, 1, 'X', 0, 0}), "expected 'K', 'O' or 'N', got 'X'");
  corrupt(Bytes({'U', 0, 0, 0, 1, 'K', 0, 0, 'K', 0, 0}), "expected 'N', got 'K'");
  corrupt(Bytes({'D', 0, 0, 0, 1, 'N', 0, 0}),
          "expected 'K' or 'O', got 'N' (0x4e) at byte offset 5");
  // A String without its NUL.
  corrupt(Bytes({'Y', 0, 0, 0, 1, 'p', 'u', 'b'}), "Type message: truncated at byte offset 5");
  // Relation with an unknown replica identity.
  corrupt(Bytes({'R', 0, 0, 0, 1, 0, 't', 0, 'z', 0, 0}), "unknown replica identity 'z'");
  // Relation claiming more columns than the buffer can hold.
  corrupt(Bytes({'R', 0, 0, 0, 1, 0, 't', 0, 'd', 0x10, 0}), "bad column count 4096");
  // Truncate with a negative count, an absurd count, unknown options.
  corrupt(Bytes({'T', 0xff, 0xff, 0xff, 0xff, 0}), "bad relation count -1");
  corrupt(Bytes({'T', 0x10, 0, 0, 0, 0, 0, 0, 0, 1}), "bad relation count");
  corrupt(Bytes({'T', 0, 0, 0, 1, 4, 0, 0, 0, 1}), "unknown truncate options");
  // Message with unknown flags and with a negative content length.
  corrupt(Bytes({'M', 2, 0, 0, 0, 0, 0, 0, 0, 0, 'p', 0, 0, 0, 0, 0}), "unknown message flags");
  corrupt(Bytes({'M', 0, 0, 0, 0, 0, 0, 0, 0, 0, 'p', 0, 0xff, 0xff, 0xff, 0xff}),
          "negative content length");
  // Stream Start with a bad first-segment flag.
  corrupt(Bytes({'S', 0, 0, 0, 1, 2}), "bad first-segment flag");
  // A streamed change decoded as not streamed misreads the xid as the relation and fails.
  corrupt(Bytes({'I', 0, 0, 2, 0xe8, 0, 0, 0x40, 0x1a, 'N', 0, 0}), "expected 'N'");
  // And the other way round.
  corrupt(Bytes({'I', 0, 0, 0x40, 0x1a, 'N', 0, 0}), "truncated", /*in_stream=*/true);
}

TEST_CASE("pgoutput: minimal hand-built messages decode", "[pgoutput]") {
  Message m;
  REQUIRE(DecodeMessage(Bytes({'E'}), true, m).ok());
  CHECK(m.type == MessageType::kStreamStop);
  REQUIRE(DecodeMessage(Bytes({'A', 0, 0, 0, 5, 0, 0, 0, 6}), false, m).ok());
  CHECK(m.stream_abort.xid == 5);
  CHECK(m.stream_abort.subxid == 6);
  // Delete with an empty old key; Insert with a zero-column tuple.
  REQUIRE(DecodeMessage(Bytes({'D', 0, 0, 0, 9, 'K', 0, 0}), false, m).ok());
  CHECK(m.change.relation_id == 9);
  CHECK(m.change.old_tuple.fields.empty());
  // Binary field with zero length; streamed insert.
  REQUIRE(DecodeMessage(Bytes({'I', 0, 0, 0, 7, 0, 0, 0, 9, 'N', 0, 1, 'b', 0, 0, 0, 0}), true, m)
              .ok());
  CHECK(m.stream_xid == 7);
  CHECK(m.change.relation_id == 9);
  REQUIRE(m.change.new_tuple.fields.size() == 1);
  CHECK(m.change.new_tuple.fields[0].kind == TupleFieldKind::kBinary);
  CHECK(m.change.new_tuple.fields[0].data.empty());
  // Reuse: a following message with fewer fields leaves no stale fields.
  REQUIRE(DecodeMessage(Bytes({'I', 0, 0, 0, 9, 'N', 0, 0}), false, m).ok());
  CHECK(m.stream_xid == 0);
  CHECK(m.change.new_tuple.fields.empty());
}

TEST_CASE("pgoutput: Decoder tracks stream blocks", "[pgoutput]") {
  Decoder d;
  Message m;
  const std::string start = Bytes({'S', 0, 0, 0, 7, 1});
  const std::string stop = Bytes({'E'});
  const std::string streamed_insert = Bytes({'I', 0, 0, 0, 7, 0, 0, 0, 9, 'N', 0, 0});

  Status s = d.Decode(stop, m);
  CHECK(s.code() == StatusCode::kCorruption);
  CHECK(s.message().find("outside a stream") != std::string::npos);

  REQUIRE(d.Decode(start, m).ok());
  CHECK(d.in_stream());
  REQUIRE(d.Decode(streamed_insert, m).ok());
  CHECK(m.stream_xid == 7);
  s = d.Decode(start, m);
  CHECK(s.code() == StatusCode::kCorruption);
  CHECK(s.message().find("inside a stream") != std::string::npos);
  REQUIRE(d.Decode(stop, m).ok());
  CHECK_FALSE(d.in_stream());
  // Outside the block the same bytes no longer parse as an insert with an xid.
  CHECK(d.Decode(streamed_insert, m).code() == StatusCode::kCorruption);

  REQUIRE(d.Decode(start, m).ok());
  d.Reset();
  CHECK_FALSE(d.in_stream());
}

TEST_CASE("pgoutput: std::byte span overload", "[pgoutput]") {
  std::string b = Bytes({'A', 0, 0, 0, 5, 0, 0, 0, 6});
  std::span<const std::byte> span(reinterpret_cast<const std::byte*>(b.data()), b.size());
  Message m;
  REQUIRE(DecodeMessage(span, false, m).ok());
  CHECK(m.type == MessageType::kStreamAbort);
  CHECK(m.stream_abort.subxid == 6);
}

}  // namespace
}  // namespace tally::pgoutput
