// Decodes the messages a real PostgreSQL 15 server produced for integration/capture/workload.sql
// and checks them against the workload's literal values and the server's facts.txt.
#include "fixture.h"

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "tally/core/types.h"
#include "tally/pgoutput/decoder.h"

namespace tally::pgoutput {
namespace {

using testing::DecodeAll;
using testing::Facts;
using testing::FixtureMessage;
using testing::LoadFixture;
using testing::Texts;
using testing::TypeString;

struct Stream {
  std::vector<FixtureMessage> raw = LoadFixture("stream_v2.txt");
  std::vector<Message> msgs = DecodeAll(raw);
  Facts facts;

  // [begin, end] indexes of the non-streamed transaction with this xid (B .. C inclusive).
  std::pair<size_t, size_t> Txn(uint32_t xid) const {
    for (size_t i = 0; i < msgs.size(); ++i) {
      if (msgs[i].type == MessageType::kBegin && msgs[i].begin.xid == xid) {
        for (size_t j = i + 1; j < msgs.size(); ++j) {
          if (msgs[j].type == MessageType::kCommit) return {i, j};
          REQUIRE(msgs[j].type != MessageType::kBegin);
        }
      }
    }
    FAIL("no transaction with xid " << xid);
    return {0, 0};
  }
  std::string Types(std::pair<size_t, size_t> txn) const {
    return TypeString(msgs, txn.first, txn.second + 1);
  }
  const Message& At(size_t i) const { return msgs.at(i); }
};

// Begin/Commit consistency every transaction must have.
void CheckBeginCommit(const Stream& s, std::pair<size_t, size_t> txn, uint32_t xid) {
  const Message& b = s.At(txn.first);
  const Message& c = s.At(txn.second);
  REQUIRE(b.type == MessageType::kBegin);
  REQUIRE(c.type == MessageType::kCommit);
  CHECK(b.begin.xid == xid);
  CHECK(c.commit.flags == 0);
  CHECK(c.commit.commit_lsn == b.begin.final_lsn);
  CHECK(c.commit.end_lsn > c.commit.commit_lsn);
  // The SQL interface reports a commit's row at the commit's end LSN.
  CHECK(c.commit.end_lsn == s.raw.at(txn.second).lsn);
  CHECK(c.commit.commit_time == b.begin.commit_time);
  // Sanity of the timestamp: after 2020-01-01 (631152000 s after the PG epoch).
  CHECK(b.begin.commit_time > int64_t{631152000} * 1000000);
}

void CheckTPkRelation(const Message& m, const Facts& facts) {
  REQUIRE(m.type == MessageType::kRelation);
  const RelationMessage& r = m.relation;
  CHECK(r.relation_id == facts.U32("oid.t_pk"));
  CHECK(r.namespace_name == "public");
  CHECK(r.name == "t_pk");
  CHECK(r.replica_identity == ReplicaIdentity::kDefault);
  REQUIRE(r.columns.size() == 6);
  std::vector<std::string> names;
  std::vector<Oid> types;
  std::vector<int32_t> typmods;
  std::vector<bool> keys;
  for (const RelationColumn& c : r.columns) {
    names.emplace_back(c.name);
    types.push_back(c.type_oid);
    typmods.push_back(c.type_modifier);
    keys.push_back(c.is_key());
  }
  CHECK(names == std::vector<std::string>{"id", "amount", "note", "ts", "qty", "flag"});
  CHECK(types == std::vector<Oid>{pgtype::kInt4, pgtype::kNumeric, pgtype::kText,
                                  pgtype::kTimestampTz, pgtype::kInt4, pgtype::kBool});
  // numeric(12,2): ((precision << 16) | scale) + VARHDRSZ.
  CHECK(typmods == std::vector<int32_t>{-1, ((12 << 16) | 2) + 4, -1, -1, -1, -1});
  CHECK(keys == std::vector<bool>{true, false, false, false, false, false});
}

TEST_CASE("stream_v2 fixture: the small transactions arrive in workload order", "[pgoutput]") {
  Stream s;
  size_t first_stream = 0;
  while (first_stream < s.msgs.size() && s.At(first_stream).type != MessageType::kStreamStart) {
    ++first_stream;
  }
  CHECK(TypeString(s.msgs, 0, first_stream) == "BRIICBUCBUCBDCBYRIIUDCBYRTCBRYRTCBMCMBRICBUCBORIC");
  // Outside streams no message carries a stream xid.
  for (size_t i = 0; i < first_stream; ++i) CHECK(s.At(i).stream_xid == 0);
}

TEST_CASE("stream_v2 fixture: insert", "[pgoutput]") {
  Stream s;
  auto txn = s.Txn(s.facts.U32("xid.insert"));
  REQUIRE(s.Types(txn) == "BRIIC");
  CheckBeginCommit(s, txn, s.facts.U32("xid.insert"));
  CheckTPkRelation(s.At(txn.first + 1), s.facts);

  const Message& i1 = s.At(txn.first + 2);
  CHECK(i1.change.relation_id == s.facts.U32("oid.t_pk"));
  CHECK(i1.change.old_kind == OldTupleKind::kNone);
  CHECK(i1.change.has_new_tuple);
  CHECK(Texts(i1.change.new_tuple) ==
        std::vector<std::string>{"1", "12.34", "hello", "2024-01-02 03:04:05+00", "7", "t"});
  const Message& i2 = s.At(txn.first + 3);
  CHECK(Texts(i2.change.new_tuple) ==
        std::vector<std::string>{"2", "<null>", "second", "<null>", "-3", "f"});
  CHECK(i2.change.new_tuple.fields[1].is_null());
  CHECK(i2.change.new_tuple.fields[0].kind == TupleFieldKind::kText);
}

TEST_CASE("stream_v2 fixture: update keeping the key sends only the new tuple", "[pgoutput]") {
  Stream s;
  auto txn = s.Txn(s.facts.U32("xid.update"));
  REQUIRE(s.Types(txn) == "BUC");
  CheckBeginCommit(s, txn, s.facts.U32("xid.update"));
  const RowChange& u = s.At(txn.first + 1).change;
  CHECK(u.relation_id == s.facts.U32("oid.t_pk"));
  CHECK(u.old_kind == OldTupleKind::kNone);
  CHECK(u.has_new_tuple);
  CHECK(Texts(u.new_tuple) ==
        std::vector<std::string>{"1", "99.50", "updated", "2024-01-02 03:04:05+00", "7", "t"});
}

TEST_CASE("stream_v2 fixture: update changing the key sends the old key", "[pgoutput]") {
  Stream s;
  auto txn = s.Txn(s.facts.U32("xid.update_key"));
  REQUIRE(s.Types(txn) == "BUC");
  CheckBeginCommit(s, txn, s.facts.U32("xid.update_key"));
  const RowChange& u = s.At(txn.first + 1).change;
  CHECK(u.old_kind == OldTupleKind::kKey);
  CHECK(Texts(u.old_tuple) ==
        std::vector<std::string>{"2", "<null>", "<null>", "<null>", "<null>", "<null>"});
  CHECK(u.has_new_tuple);
  CHECK(Texts(u.new_tuple) ==
        std::vector<std::string>{"10", "<null>", "second", "<null>", "-3", "f"});
}

TEST_CASE("stream_v2 fixture: delete sends the old key", "[pgoutput]") {
  Stream s;
  auto txn = s.Txn(s.facts.U32("xid.delete"));
  REQUIRE(s.Types(txn) == "BDC");
  CheckBeginCommit(s, txn, s.facts.U32("xid.delete"));
  const RowChange& d = s.At(txn.first + 1).change;
  CHECK(d.relation_id == s.facts.U32("oid.t_pk"));
  CHECK(d.old_kind == OldTupleKind::kKey);
  CHECK_FALSE(d.has_new_tuple);
  CHECK(Texts(d.old_tuple) ==
        std::vector<std::string>{"10", "<null>", "<null>", "<null>", "<null>", "<null>"});
}

TEST_CASE("stream_v2 fixture: REPLICA IDENTITY FULL and a custom type", "[pgoutput]") {
  Stream s;
  auto txn = s.Txn(s.facts.U32("xid.full"));
  REQUIRE(s.Types(txn) == "BYRIIUDC");
  CheckBeginCommit(s, txn, s.facts.U32("xid.full"));

  const TypeMessage& y = s.At(txn.first + 1).type_info;
  CHECK(y.type_oid == s.facts.U32("oid.mood"));
  CHECK(y.namespace_name == "public");
  CHECK(y.name == "mood");

  const RelationMessage& r = s.At(txn.first + 2).relation;
  CHECK(r.relation_id == s.facts.U32("oid.t_full"));
  CHECK(r.name == "t_full");
  CHECK(r.replica_identity == ReplicaIdentity::kFull);
  REQUIRE(r.columns.size() == 3);
  CHECK(r.columns[0].name == "a");
  CHECK(r.columns[0].type_oid == pgtype::kInt4);
  CHECK(r.columns[1].name == "b");
  CHECK(r.columns[1].type_oid == pgtype::kText);
  CHECK(r.columns[2].name == "m");
  CHECK(r.columns[2].type_oid == s.facts.U32("oid.mood"));
  // Under FULL every column is part of the identity.
  for (const RelationColumn& c : r.columns) CHECK(c.is_key());

  CHECK(Texts(s.At(txn.first + 3).change.new_tuple) ==
        std::vector<std::string>{"1", "one", "happy"});
  CHECK(Texts(s.At(txn.first + 4).change.new_tuple) ==
        std::vector<std::string>{"2", "<null>", "sad"});
  const RowChange& u = s.At(txn.first + 5).change;
  CHECK(u.old_kind == OldTupleKind::kFull);
  CHECK(Texts(u.old_tuple) == std::vector<std::string>{"1", "one", "happy"});
  CHECK(Texts(u.new_tuple) == std::vector<std::string>{"1", "uno", "happy"});
  const RowChange& d = s.At(txn.first + 6).change;
  CHECK(d.old_kind == OldTupleKind::kFull);
  CHECK_FALSE(d.has_new_tuple);
  CHECK(Texts(d.old_tuple) == std::vector<std::string>{"2", "<null>", "sad"});
}

TEST_CASE("stream_v2 fixture: truncate", "[pgoutput]") {
  Stream s;
  auto t1 = s.Txn(s.facts.U32("xid.truncate"));
  REQUIRE(s.Types(t1) == "BYRTC");
  CheckBeginCommit(s, t1, s.facts.U32("xid.truncate"));
  const TruncateMessage& a = s.At(t1.first + 3).truncate;
  CHECK(a.options == 0);
  CHECK_FALSE(a.cascade());
  CHECK_FALSE(a.restart_identity());
  CHECK(a.relation_ids == std::vector<RelationId>{s.facts.U32("oid.t_full")});

  auto t2 = s.Txn(s.facts.U32("xid.truncate2"));
  REQUIRE(s.Types(t2) == "BRYRTC");
  CheckBeginCommit(s, t2, s.facts.U32("xid.truncate2"));
  const TruncateMessage& b = s.At(t2.first + 4).truncate;
  CHECK(b.cascade());
  CHECK(b.restart_identity());
  CHECK(b.relation_ids ==
        std::vector<RelationId>{s.facts.U32("oid.t_pk"), s.facts.U32("oid.t_full")});
}

TEST_CASE("stream_v2 fixture: logical decoding messages", "[pgoutput]") {
  Stream s;
  auto txn = s.Txn(s.facts.U32("xid.message"));
  REQUIRE(s.Types(txn) == "BMC");
  CheckBeginCommit(s, txn, s.facts.U32("xid.message"));
  const LogicalMessage& m = s.At(txn.first + 1).logical;
  CHECK(m.transactional());
  CHECK(m.lsn == s.facts.LsnOf("lsn.message_tx"));
  CHECK(m.prefix == "tally");
  CHECK(m.content == "transactional payload");

  // The non-transactional message stands alone, right after that commit, with xid 0.
  size_t i = txn.second + 1;
  REQUIRE(s.At(i).type == MessageType::kMessage);
  CHECK(s.raw.at(i).xid == 0);
  const LogicalMessage& nt = s.At(i).logical;
  CHECK_FALSE(nt.transactional());
  CHECK(nt.lsn == s.facts.LsnOf("lsn.message_nt"));
  CHECK(nt.prefix == "tally_nt");
  CHECK(nt.content == std::string("\x00\xff\n", 3));
}

TEST_CASE("stream_v2 fixture: unchanged TOASTed value", "[pgoutput]") {
  Stream s;
  auto ins = s.Txn(s.facts.U32("xid.toast_insert"));
  REQUIRE(s.Types(ins) == "BRIC");
  const RelationMessage& r = s.At(ins.first + 1).relation;
  CHECK(r.relation_id == s.facts.U32("oid.t_toast"));
  CHECK(r.columns.size() == 3);
  const RowChange& i = s.At(ins.first + 2).change;
  REQUIRE(i.new_tuple.fields.size() == 3);
  std::string_view big = i.new_tuple.fields[1].data;
  CHECK(big.size() == 3003);
  CHECK(big == std::string(3000, 'x') + "END");

  auto upd = s.Txn(s.facts.U32("xid.toast_update"));
  REQUIRE(s.Types(upd) == "BUC");
  CheckBeginCommit(s, upd, s.facts.U32("xid.toast_update"));
  const RowChange& u = s.At(upd.first + 1).change;
  CHECK(u.old_kind == OldTupleKind::kNone);
  CHECK(Texts(u.new_tuple) == std::vector<std::string>{"1", "<unchanged>", "2"});
  CHECK(u.new_tuple.fields[1].is_unchanged_toast());
  CHECK(u.new_tuple.fields[1].data.empty());
}

TEST_CASE("stream_v2 fixture: replication origin", "[pgoutput]") {
  Stream s;
  auto txn = s.Txn(s.facts.U32("xid.origin"));
  REQUIRE(s.Types(txn) == "BORIC");
  CheckBeginCommit(s, txn, s.facts.U32("xid.origin"));
  const OriginMessage& o = s.At(txn.first + 1).origin;
  CHECK(o.commit_lsn == Lsn(0xABCDEF));
  CHECK(o.name == "tally_origin");
  CHECK(Texts(s.At(txn.first + 3).change.new_tuple) ==
        std::vector<std::string>{"100", "1.00", "from origin", "<null>", "<null>", "<null>"});
}

TEST_CASE("stream_v2 fixture: last small transaction after the streams", "[pgoutput]") {
  Stream s;
  auto txn = s.Txn(s.facts.U32("xid.last"));
  REQUIRE(txn.second + 1 == s.msgs.size());
  // t_pk's Relation was sent before (and t_pk did not change), so no 'R' here.
  REQUIRE(s.Types(txn) == "BIC");
  CheckBeginCommit(s, txn, s.facts.U32("xid.last"));
  CHECK(Texts(s.At(txn.first + 1).change.new_tuple) ==
        std::vector<std::string>{"200", "2.50", "last", "2024-06-30 23:59:59.5+00", "0", "t"});
}

// Everything about one streamed top-level transaction.
struct StreamedTxn {
  std::vector<size_t> starts;  // indexes of its 'S' messages
  size_t stops = 0;
  std::map<uint32_t, std::vector<int>> insert_ids_by_xid;  // t_big ids, by stream xid
  std::vector<size_t> messages;                            // indexes of its 'M'
  std::vector<size_t> aborts;                              // indexes of its 'A'
  std::vector<size_t> commits;                             // indexes of its 'c'
};

StreamedTxn CollectStreamed(const Stream& s, uint32_t xid) {
  StreamedTxn t;
  bool in_block = false;
  for (size_t i = 0; i < s.msgs.size(); ++i) {
    const Message& m = s.At(i);
    switch (m.type) {
      case MessageType::kStreamStart:
        in_block = m.stream_start.xid == xid;
        if (in_block) t.starts.push_back(i);
        break;
      case MessageType::kStreamStop:
        if (in_block) ++t.stops;
        in_block = false;
        break;
      case MessageType::kStreamAbort:
        if (m.stream_abort.xid == xid) t.aborts.push_back(i);
        break;
      case MessageType::kStreamCommit:
        if (m.stream_commit.xid == xid) t.commits.push_back(i);
        break;
      case MessageType::kInsert:
        if (in_block) {
          CHECK(m.change.relation_id == s.facts.U32("oid.t_big"));
          REQUIRE(m.change.new_tuple.fields.size() == 2);
          int id = std::stoi(std::string(m.change.new_tuple.fields[0].data));
          CHECK(m.change.new_tuple.fields[1].data == "row " + std::to_string(id));
          t.insert_ids_by_xid[m.stream_xid].push_back(id);
        }
        break;
      case MessageType::kMessage:
        if (in_block) t.messages.push_back(i);
        break;
      case MessageType::kRelation:
        if (in_block) {
          CHECK(m.stream_xid == xid);
          CHECK(m.relation.relation_id == s.facts.U32("oid.t_big"));
        }
        break;
      default:
        // No Begin/Commit/Truncate etc. inside a stream block in this workload.
        CHECK_FALSE(in_block);
        break;
    }
  }
  return t;
}

std::vector<int> Range(int from, int to) {
  std::vector<int> v;
  for (int i = from; i <= to; ++i) v.push_back(i);
  return v;
}

bool IsNonEmptyPrefix(const std::vector<int>& got, const std::vector<int>& all) {
  UNSCOPED_INFO("got " << got.size() << " of " << all.size() << " rows");
  return !got.empty() && got.size() <= all.size() &&
         std::equal(got.begin(), got.end(), all.begin());
}

void CheckStreamBlocks(const Stream& s, const StreamedTxn& t) {
  // Big enough for logical_decoding_work_mem=64kB to stream it in several blocks.
  REQUIRE(t.starts.size() >= 2);
  CHECK(t.stops == t.starts.size());
  CHECK(s.At(t.starts.front()).stream_start.first_segment);
  for (size_t k = 1; k < t.starts.size(); ++k) {
    CHECK_FALSE(s.At(t.starts[k]).stream_start.first_segment);
  }
}

void CheckStreamCommit(const Stream& s, const StreamedTxn& t, uint32_t xid) {
  REQUIRE(t.commits.size() == 1);
  const StreamCommitMessage& c = s.At(t.commits[0]).stream_commit;
  CHECK(c.xid == xid);
  CHECK(c.flags == 0);
  CHECK(c.end_lsn > c.commit_lsn);
  CHECK(c.end_lsn == s.raw.at(t.commits[0]).lsn);
  CHECK(c.commit_time > int64_t{631152000} * 1000000);
  CHECK(t.commits[0] > t.starts.back());
}

TEST_CASE("stream_v2 fixture: big committed transaction is streamed", "[pgoutput]") {
  Stream s;
  uint32_t xid = s.facts.U32("xid.big_commit");
  StreamedTxn t = CollectStreamed(s, xid);
  CheckStreamBlocks(s, t);
  REQUIRE(t.insert_ids_by_xid.size() == 1);
  CHECK(t.insert_ids_by_xid[xid] == Range(1, 1200));
  REQUIRE(t.messages.size() == 1);
  const Message& m = s.At(t.messages[0]);
  CHECK(m.stream_xid == xid);
  CHECK(m.logical.transactional());
  CHECK(m.logical.lsn == s.facts.LsnOf("lsn.message_big"));
  CHECK(m.logical.prefix == "tally_big");
  CHECK(m.logical.content == "end of big");
  CHECK(t.aborts.empty());
  CheckStreamCommit(s, t, xid);
}

TEST_CASE("stream_v2 fixture: big rolled-back transaction ends in a stream abort", "[pgoutput]") {
  Stream s;
  uint32_t xid = s.facts.U32("xid.big_abort");
  StreamedTxn t = CollectStreamed(s, xid);
  CheckStreamBlocks(s, t);
  // Changes still in memory at the abort are dropped, never sent: a prefix arrives.
  CHECK(IsNonEmptyPrefix(t.insert_ids_by_xid[xid], Range(10001, 11200)));
  CHECK(t.commits.empty());
  REQUIRE(t.aborts.size() == 1);
  CHECK(s.At(t.aborts[0]).stream_abort.xid == xid);
  CHECK(s.At(t.aborts[0]).stream_abort.subxid == xid);
  CHECK(t.aborts[0] > t.starts.back());
}

TEST_CASE("stream_v2 fixture: streamed subtransaction abort, then commit", "[pgoutput]") {
  Stream s;
  uint32_t xid = s.facts.U32("xid.big_sub");
  uint32_t child = s.facts.U32("xid.big_sub_child");
  REQUIRE(child != xid);
  StreamedTxn t = CollectStreamed(s, xid);
  CheckStreamBlocks(s, t);
  REQUIRE(t.insert_ids_by_xid.size() == 2);
  // Changes carry the xid of the subtransaction that made them.
  std::vector<int> top = Range(20001, 20300);
  std::vector<int> after = Range(25001, 25300);
  top.insert(top.end(), after.begin(), after.end());
  CHECK(t.insert_ids_by_xid[xid] == top);
  // Only what was streamed before the ROLLBACK TO arrives (the rest is dropped, never sent).
  CHECK(IsNonEmptyPrefix(t.insert_ids_by_xid[child], Range(21001, 22200)));

  REQUIRE(t.aborts.size() == 1);
  const StreamAbortMessage& a = s.At(t.aborts[0]).stream_abort;
  CHECK(a.xid == xid);
  CHECK(a.subxid == child);
  // The abort comes between blocks, before the rest of the transaction and its commit.
  CHECK(t.aborts[0] > t.starts.front());
  CHECK(t.aborts[0] < t.starts.back());
  CheckStreamCommit(s, t, xid);
}

TEST_CASE("stream_v2 fixture: stream block xids match the server's xid column", "[pgoutput]") {
  Stream s;
  bool in_block = false;
  for (size_t i = 0; i < s.msgs.size(); ++i) {
    const Message& m = s.At(i);
    INFO("fixture line " << s.raw[i].line);
    if (m.type == MessageType::kStreamStart) {
      in_block = true;
      CHECK(m.stream_start.xid == s.raw[i].xid);
    } else if (m.type == MessageType::kStreamStop) {
      in_block = false;
    } else if (in_block) {
      CHECK(m.stream_xid != 0);
      // The SQL interface reports the top-level xid; changes of a subxact carry the subxid.
      if (m.stream_xid != s.facts.U32("xid.big_sub_child")) CHECK(m.stream_xid == s.raw[i].xid);
    } else if (m.type == MessageType::kStreamAbort) {
      CHECK(m.stream_abort.subxid == s.raw[i].xid);
    } else if (m.type == MessageType::kStreamCommit) {
      CHECK(m.stream_commit.xid == s.raw[i].xid);
    }
  }
}

// binary 'true': the same small transactions, with fields in the types' send format.
TEST_CASE("binary_v2 fixture: binary tuple fields", "[pgoutput]") {
  Stream s;
  std::vector<FixtureMessage> raw = LoadFixture("binary_v2.txt");
  std::vector<Message> msgs = DecodeAll(raw);
  // Same messages as the text capture up to the first big transaction.
  CHECK(TypeString(msgs, 0, msgs.size()) == TypeString(s.msgs, 0, msgs.size()));

  REQUIRE(msgs.size() > 3);
  REQUIRE(msgs[2].type == MessageType::kInsert);
  const TupleData& row = msgs[2].change.new_tuple;
  REQUIRE(row.fields.size() == 6);
  for (const TupleField& f : row.fields) CHECK(f.kind == TupleFieldKind::kBinary);
  CHECK(row.fields[0].data == std::string("\x00\x00\x00\x01", 4));  // int4 1
  // numeric 12.34: ndigits 2, weight 0, sign +, dscale 2, base-10000 digits 12, 3400.
  CHECK(row.fields[1].data == std::string("\x00\x02\x00\x00\x00\x00\x00\x02\x00\x0c\x0d\x48", 12));
  CHECK(row.fields[2].data == "hello");
  // timestamptz 2024-01-02 03:04:05+00: µs since 2000-01-01 UTC, int64 big-endian.
  int64_t micros = (int64_t{8767} * 86400 + 3 * 3600 + 4 * 60 + 5) * 1000000;
  std::string ts(8, '\0');
  for (int k = 0; k < 8; ++k) ts[k] = static_cast<char>((micros >> (56 - 8 * k)) & 0xff);
  CHECK(row.fields[3].data == ts);
  CHECK(row.fields[4].data == std::string("\x00\x00\x00\x07", 4));
  CHECK(row.fields[5].data == std::string("\x01", 1));

  const TupleData& row2 = msgs[3].change.new_tuple;
  REQUIRE(row2.fields.size() == 6);
  CHECK(row2.fields[1].is_null());
  CHECK(row2.fields[4].data == std::string("\xff\xff\xff\xfd", 4));  // int4 -3

  // The TOAST update: still 'u' in binary mode.
  Facts facts;
  bool found = false;
  for (size_t i = 0; i < msgs.size(); ++i) {
    if (msgs[i].type == MessageType::kBegin && msgs[i].begin.xid == facts.U32("xid.toast_update")) {
      const RowChange& u = msgs.at(i + 1).change;
      REQUIRE(u.new_tuple.fields.size() == 3);
      CHECK(u.new_tuple.fields[0].kind == TupleFieldKind::kBinary);
      CHECK(u.new_tuple.fields[1].is_unchanged_toast());
      CHECK(u.new_tuple.fields[2].data == std::string("\x00\x00\x00\x02", 4));
      found = true;
    }
  }
  CHECK(found);
}

}  // namespace
}  // namespace tally::pgoutput
