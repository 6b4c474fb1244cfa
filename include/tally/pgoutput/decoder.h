// Decoder of pgoutput logical replication messages (protocol versions 1 and 2, PostgreSQL 15).
//
// Input is ONE pgoutput message: the payload of an XLogData ('w') frame (see
// replication_protocol.h) or one row of pg_logical_slot_{get,peek}_binary_changes. Output is a
// caller-owned `Message` that is overwritten on each call and reused: every string and tuple
// field is a std::string_view INTO THE INPUT BUFFER (nothing is copied), and the vectors keep
// their capacity, so steady-state decoding allocates nothing. The views are valid until the
// input buffer is freed or changed; copy what must outlive it (RelationCache does for 'R').
//
// Wire format (all integers big-endian; String = bytes up to a NUL; see the PostgreSQL docs,
// "Logical Replication Message Formats"). "[xid]" is an Int32 present only between Stream Start
// and Stream Stop (protocol 2):
//   'B' Begin          Int64 final_lsn, Int64 commit_time, Int32 xid
//   'C' Commit         Int8 flags, Int64 commit_lsn, Int64 end_lsn, Int64 commit_time
//   'O' Origin         Int64 commit_lsn, String name
//   'R' Relation       [xid] Int32 oid, String namespace, String name, Int8 replica_identity,
//                      Int16 ncols, ncols × (Int8 flags, String name, Int32 type_oid, Int32 typmod)
//   'Y' Type           [xid] Int32 oid, String namespace, String name
//   'I' Insert         [xid] Int32 oid, 'N' TupleData
//   'U' Update         [xid] Int32 oid, optional ('K' | 'O') TupleData, 'N' TupleData
//   'D' Delete         [xid] Int32 oid, ('K' | 'O') TupleData
//   'T' Truncate       [xid] Int32 nrels, Int8 options, nrels × Int32 oid
//   'M' Message        [xid] Int8 flags, Int64 lsn, String prefix, Int32 length, Byte[length]
//   'S' Stream Start   Int32 xid, Int8 first_segment
//   'E' Stream Stop    (nothing)
//   'c' Stream Commit  Int32 xid, Int8 flags, Int64 commit_lsn, Int64 end_lsn, Int64 commit_time
//   'A' Stream Abort   Int32 xid, Int32 subxid
//   TupleData          Int16 ncols, ncols × ('n' | 'u' | 't' Int32 len Byte[len] | 'b' Int32 len
//                      Byte[len])
// 'O' Origin carries no xid even inside a stream (pgoutput writes it without one).
// Protocol 3/4 messages (two-phase commit, parallel apply) are not decoded: Corruption.
//
// Errors: any short, overlong or malformed buffer, and any unknown message or tuple kind,
// returns Status::Corruption naming the message type and the byte offset. The decoder never
// reads outside the buffer. After an error `out` holds partial data and must not be used.
//
// Thread safety: the free functions are pure; a Decoder and a Message belong to one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "tally/core/lsn.h"
#include "tally/core/status.h"
#include "tally/core/types.h"

namespace tally::pgoutput {

using Xid = uint32_t;  // a PostgreSQL TransactionId; 0 is InvalidTransactionId
using RelationId = tally::Oid;
// A PostgreSQL TimestampTz on the wire: microseconds since 2000-01-01 00:00:00 UTC.
using PgTimestamp = int64_t;

// Wire bytes; DO NOT renumber.
enum class MessageType : char {
  kBegin = 'B',
  kCommit = 'C',
  kOrigin = 'O',
  kRelation = 'R',
  kType = 'Y',
  kInsert = 'I',
  kUpdate = 'U',
  kDelete = 'D',
  kTruncate = 'T',
  kMessage = 'M',
  kStreamStart = 'S',
  kStreamStop = 'E',
  kStreamCommit = 'c',
  kStreamAbort = 'A',
};

// "Begin", "Insert", "StreamCommit", ...; "Unknown" for other values.
std::string_view MessageTypeName(MessageType type);

enum class ReplicaIdentity : char {
  kDefault = 'd',  // primary key
  kNothing = 'n',
  kFull = 'f',   // all columns
  kIndex = 'i',  // a chosen unique index
};

enum class TupleFieldKind : char {
  kNull = 'n',
  kUnchangedToast = 'u',  // an unchanged TOASTed value the server did not send
  kText = 't',            // data is the type's text output
  kBinary = 'b',          // data is the type's binary send format (option binary 'true')
};

struct TupleField {
  TupleFieldKind kind = TupleFieldKind::kNull;
  std::string_view data;  // empty unless kind is kText or kBinary

  bool is_null() const { return kind == TupleFieldKind::kNull; }
  bool is_unchanged_toast() const { return kind == TupleFieldKind::kUnchangedToast; }
};

// One row image: one field per column of the relation, in the Relation message's order.
struct TupleData {
  std::vector<TupleField> fields;
};

struct BeginMessage {
  Lsn final_lsn;  // LSN of the commit record
  PgTimestamp commit_time = 0;
  Xid xid = 0;
};

struct CommitMessage {
  uint8_t flags = 0;  // unused by PG 15 (always 0)
  Lsn commit_lsn;     // LSN of the commit record (== Begin's final_lsn)
  Lsn end_lsn;        // end of the commit record: the position to acknowledge
  PgTimestamp commit_time = 0;
};

struct OriginMessage {
  Lsn commit_lsn;  // commit LSN on the origin server
  std::string_view name;
};

struct RelationColumn {
  static constexpr uint8_t kFlagKey = 1;  // part of the replica identity

  uint8_t flags = 0;
  std::string_view name;
  Oid type_oid = 0;
  int32_t type_modifier = -1;  // atttypmod; -1 when none

  bool is_key() const { return (flags & kFlagKey) != 0; }
};

struct RelationMessage {
  RelationId relation_id = 0;
  std::string_view namespace_name;  // empty for pg_catalog
  std::string_view name;
  ReplicaIdentity replica_identity = ReplicaIdentity::kDefault;
  std::vector<RelationColumn> columns;
};

struct TypeMessage {
  Oid type_oid = 0;
  std::string_view namespace_name;
  std::string_view name;
};

// Which old row image an Update or Delete carries.
enum class OldTupleKind : char {
  kNone = 0,    // Update under REPLICA IDENTITY DEFAULT/INDEX that kept the key: no old image
  kKey = 'K',   // only the replica identity columns are set; the others are kNull
  kFull = 'O',  // the whole old row (REPLICA IDENTITY FULL)
};

// Insert, Update and Delete share this shape.
struct RowChange {
  RelationId relation_id = 0;
  OldTupleKind old_kind = OldTupleKind::kNone;
  TupleData old_tuple;         // meaningful when old_kind != kNone
  bool has_new_tuple = false;  // Insert and Update: true; Delete: false
  TupleData new_tuple;
};

struct TruncateMessage {
  static constexpr uint8_t kOptionCascade = 1;
  static constexpr uint8_t kOptionRestartIdentity = 2;

  uint8_t options = 0;
  std::vector<RelationId> relation_ids;

  bool cascade() const { return (options & kOptionCascade) != 0; }
  bool restart_identity() const { return (options & kOptionRestartIdentity) != 0; }
};

// pg_logical_emit_message output (sent only with the pgoutput option messages 'true').
struct LogicalMessage {
  static constexpr uint8_t kFlagTransactional = 1;

  uint8_t flags = 0;
  Lsn lsn;  // the message's own LSN
  std::string_view prefix;
  std::string_view content;  // arbitrary bytes, may contain NULs

  bool transactional() const { return (flags & kFlagTransactional) != 0; }
};

struct StreamStartMessage {
  Xid xid = 0;
  bool first_segment = false;  // the first block of this transaction
};

struct StreamCommitMessage {
  Xid xid = 0;
  uint8_t flags = 0;  // unused by PG 15 (always 0)
  Lsn commit_lsn;
  Lsn end_lsn;
  PgTimestamp commit_time = 0;
};

// A streamed (sub)transaction aborted: if subxid == xid the whole transaction, otherwise only
// the changes of subtransaction subxid (they carried subxid as their stream xid).
struct StreamAbortMessage {
  Xid xid = 0;
  Xid subxid = 0;
};

// One decoded message. Only the member matching `type` is set; the others keep stale data from
// earlier calls (on purpose: their buffers are reused). Insert, Update and Delete use `change`.
struct Message {
  MessageType type = MessageType::kBegin;
  // Xid of the (sub)transaction a streamed R/Y/I/U/D/T/M belongs to; 0 outside a stream.
  Xid stream_xid = 0;

  BeginMessage begin;
  CommitMessage commit;
  OriginMessage origin;
  RelationMessage relation;
  TypeMessage type_info;
  RowChange change;
  TruncateMessage truncate;
  LogicalMessage logical;
  StreamStartMessage stream_start;
  StreamCommitMessage stream_commit;
  StreamAbortMessage stream_abort;
};

// Decodes one message. `in_stream` says whether it lies between a Stream Start and a Stream
// Stop, where change messages carry an extra xid. Trailing bytes are an error.
Status DecodeMessage(std::string_view payload, bool in_stream, Message& out);

inline Status DecodeMessage(std::span<const std::byte> payload, bool in_stream, Message& out) {
  return DecodeMessage(
      std::string_view(reinterpret_cast<const char*>(payload.data()), payload.size()), in_stream,
      out);
}

// Decodes a sequence of messages of one replication stream, tracking Stream Start / Stream Stop
// itself; a nested Stream Start or a Stream Stop outside a stream is Corruption.
class Decoder {
 public:
  Status Decode(std::string_view payload, Message& out);

  bool in_stream() const { return in_stream_; }
  // Forget the stream state, e.g. when a new replication connection starts.
  void Reset() { in_stream_ = false; }

 private:
  bool in_stream_ = false;
};

}  // namespace tally::pgoutput
