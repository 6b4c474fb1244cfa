#include "tally/pgoutput/decoder.h"

#include <string>

#include "wire_reader.h"

namespace tally::pgoutput {

namespace {

using internal::WireReader;

// Every reader failure funnels through here so all messages name the type and the offset.
class MessageDecoder {
 public:
  MessageDecoder(std::string_view payload, bool in_stream, Message& out)
      : r_(payload), in_stream_(in_stream), out_(out) {}

  Status Decode() {
    if (r_.size() == 0) return Status::Corruption("pgoutput: empty message at byte offset 0");
    uint8_t type_byte = 0;
    r_.ReadU8(type_byte);
    out_.type = static_cast<MessageType>(type_byte);
    out_.stream_xid = 0;
    switch (out_.type) {
      case MessageType::kBegin:
        return Finish(DecodeBegin());
      case MessageType::kCommit:
        return Finish(DecodeCommit());
      case MessageType::kOrigin:
        return Finish(DecodeOrigin());
      case MessageType::kRelation:
        return Finish(ReadStreamXid() && DecodeRelation());
      case MessageType::kType:
        return Finish(ReadStreamXid() && DecodeType());
      case MessageType::kInsert:
      case MessageType::kUpdate:
      case MessageType::kDelete:
        return Finish(ReadStreamXid() && DecodeChange());
      case MessageType::kTruncate:
        return Finish(ReadStreamXid() && DecodeTruncate());
      case MessageType::kMessage:
        return Finish(ReadStreamXid() && DecodeLogicalMessage());
      case MessageType::kStreamStart:
        return Finish(DecodeStreamStart());
      case MessageType::kStreamStop:
        return Finish(true);
      case MessageType::kStreamCommit:
        return Finish(DecodeStreamCommit());
      case MessageType::kStreamAbort:
        return Finish(DecodeStreamAbort());
    }
    return Status::Corruption("pgoutput: unknown message type " + DescribeByte(type_byte) +
                              " at byte offset 0");
  }

 private:
  static std::string DescribeByte(uint8_t b) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string s;
    if (b >= 0x20 && b < 0x7f) {
      s += '\'';
      s += static_cast<char>(b);
      s += "' ";
    }
    s += "(0x";
    s += kHex[b >> 4];
    s += kHex[b & 0xf];
    s += ')';
    return s;
  }

  // ok == false means a Fail() already recorded the reason, or the reader ran out of bytes.
  Status Finish(bool ok) {
    if (ok && r_.remaining() != 0) {
      Fail(std::to_string(r_.remaining()) + " trailing bytes");
      ok = false;
    }
    if (ok) return Status::Ok();
    std::string msg = "pgoutput ";
    msg += MessageTypeName(out_.type);
    msg += " message: ";
    if (!error_.empty()) {
      msg += error_;
      msg += " at byte offset ";
      msg += std::to_string(error_offset_);
    } else {
      msg += "truncated at byte offset ";
      msg += std::to_string(r_.failed_offset());
      msg += " (message is ";
      msg += std::to_string(r_.size());
      msg += " bytes)";
    }
    return Status::Corruption(std::move(msg));
  }

  bool Fail(std::string what) {
    if (error_.empty()) {
      error_ = std::move(what);
      error_offset_ = r_.offset();
    }
    return false;
  }

  bool ReadLsn(Lsn& lsn) {
    uint64_t v = 0;
    if (!r_.ReadU64(v)) return false;
    lsn = Lsn(v);
    return true;
  }

  bool ReadStreamXid() { return !in_stream_ || r_.ReadU32(out_.stream_xid); }

  bool DecodeBegin() {
    BeginMessage& m = out_.begin;
    return ReadLsn(m.final_lsn) && r_.ReadI64(m.commit_time) && r_.ReadU32(m.xid);
  }

  bool DecodeCommit() {
    CommitMessage& m = out_.commit;
    return r_.ReadU8(m.flags) && ReadLsn(m.commit_lsn) && ReadLsn(m.end_lsn) &&
           r_.ReadI64(m.commit_time);
  }

  bool DecodeOrigin() {
    OriginMessage& m = out_.origin;
    return ReadLsn(m.commit_lsn) && r_.ReadString(m.name);
  }

  bool DecodeRelation() {
    RelationMessage& m = out_.relation;
    uint8_t identity = 0;
    if (!(r_.ReadU32(m.relation_id) && r_.ReadString(m.namespace_name) && r_.ReadString(m.name))) {
      return false;
    }
    size_t identity_offset = r_.offset();
    if (!r_.ReadU8(identity)) return false;
    switch (static_cast<ReplicaIdentity>(identity)) {
      case ReplicaIdentity::kDefault:
      case ReplicaIdentity::kNothing:
      case ReplicaIdentity::kFull:
      case ReplicaIdentity::kIndex:
        m.replica_identity = static_cast<ReplicaIdentity>(identity);
        break;
      default:
        r_.Seek(identity_offset);
        return Fail("unknown replica identity " + DescribeByte(identity));
    }
    int16_t ncols = 0;
    if (!r_.ReadI16(ncols)) return false;
    // Each column takes at least 10 bytes: refuse counts the buffer cannot hold before looping.
    if (ncols < 0 || static_cast<size_t>(ncols) * 10 > r_.remaining()) {
      return Fail("bad column count " + std::to_string(ncols));
    }
    m.columns.clear();
    for (int16_t i = 0; i < ncols; ++i) {
      RelationColumn& c = m.columns.emplace_back();
      if (!(r_.ReadU8(c.flags) && r_.ReadString(c.name) && r_.ReadU32(c.type_oid) &&
            r_.ReadI32(c.type_modifier))) {
        return false;
      }
    }
    return true;
  }

  bool DecodeType() {
    TypeMessage& m = out_.type_info;
    return r_.ReadU32(m.type_oid) && r_.ReadString(m.namespace_name) && r_.ReadString(m.name);
  }

  bool DecodeTuple(TupleData& tuple) {
    int16_t ncols = 0;
    if (!r_.ReadI16(ncols)) return false;
    // Each field takes at least its kind byte.
    if (ncols < 0 || static_cast<size_t>(ncols) > r_.remaining()) {
      return Fail("bad tuple column count " + std::to_string(ncols));
    }
    tuple.fields.clear();
    for (int16_t i = 0; i < ncols; ++i) {
      TupleField& f = tuple.fields.emplace_back();
      size_t kind_offset = r_.offset();
      uint8_t kind = 0;
      if (!r_.ReadU8(kind)) return false;
      f.kind = static_cast<TupleFieldKind>(kind);
      f.data = {};
      switch (f.kind) {
        case TupleFieldKind::kNull:
        case TupleFieldKind::kUnchangedToast:
          break;
        case TupleFieldKind::kText:
        case TupleFieldKind::kBinary: {
          int32_t len = 0;
          if (!r_.ReadI32(len)) return false;
          if (len < 0) return Fail("negative field length " + std::to_string(len));
          if (!r_.ReadBytes(static_cast<size_t>(len), f.data)) return false;
          break;
        }
        default:
          r_.Seek(kind_offset);
          return Fail("unknown tuple field kind " + DescribeByte(kind) + " in column " +
                      std::to_string(i));
      }
    }
    return true;
  }

  // Reads the sub-message byte that introduces a tuple ('K', 'O' or 'N').
  bool ReadTupleTag(uint8_t& tag, size_t& tag_offset) {
    tag_offset = r_.offset();
    return r_.ReadU8(tag);
  }

  bool DecodeChange() {
    RowChange& m = out_.change;
    m.old_kind = OldTupleKind::kNone;
    m.has_new_tuple = false;
    if (!r_.ReadU32(m.relation_id)) return false;
    uint8_t tag = 0;
    size_t tag_offset = 0;
    if (!ReadTupleTag(tag, tag_offset)) return false;

    if (out_.type != MessageType::kInsert && (tag == 'K' || tag == 'O')) {
      m.old_kind = static_cast<OldTupleKind>(tag);
      if (!DecodeTuple(m.old_tuple)) return false;
      if (out_.type == MessageType::kDelete) return true;
      if (!ReadTupleTag(tag, tag_offset)) return false;
    }
    if (out_.type == MessageType::kDelete) {
      r_.Seek(tag_offset);
      return Fail("expected 'K' or 'O', got " + DescribeByte(tag));
    }
    if (tag != 'N') {
      r_.Seek(tag_offset);
      return Fail(std::string("expected ") +
                  (out_.type == MessageType::kUpdate && m.old_kind == OldTupleKind::kNone
                       ? "'K', 'O' or 'N'"
                       : "'N'") +
                  ", got " + DescribeByte(tag));
    }
    m.has_new_tuple = true;
    return DecodeTuple(m.new_tuple);
  }

  bool DecodeTruncate() {
    TruncateMessage& m = out_.truncate;
    int32_t nrels = 0;
    if (!r_.ReadI32(nrels)) return false;
    size_t options_offset = r_.offset();
    if (!r_.ReadU8(m.options)) return false;
    if ((m.options &
         ~(TruncateMessage::kOptionCascade | TruncateMessage::kOptionRestartIdentity)) != 0) {
      r_.Seek(options_offset);
      return Fail("unknown truncate options " + DescribeByte(m.options));
    }
    if (nrels < 0 || static_cast<size_t>(nrels) > r_.remaining() / 4) {
      return Fail("bad relation count " + std::to_string(nrels));
    }
    m.relation_ids.clear();
    for (int32_t i = 0; i < nrels; ++i) {
      if (!r_.ReadU32(m.relation_ids.emplace_back())) return false;
    }
    return true;
  }

  bool DecodeLogicalMessage() {
    LogicalMessage& m = out_.logical;
    size_t flags_offset = r_.offset();
    if (!r_.ReadU8(m.flags)) return false;
    if ((m.flags & ~LogicalMessage::kFlagTransactional) != 0) {
      r_.Seek(flags_offset);
      return Fail("unknown message flags " + DescribeByte(m.flags));
    }
    int32_t len = 0;
    if (!(ReadLsn(m.lsn) && r_.ReadString(m.prefix) && r_.ReadI32(len))) return false;
    if (len < 0) return Fail("negative content length " + std::to_string(len));
    return r_.ReadBytes(static_cast<size_t>(len), m.content);
  }

  bool DecodeStreamStart() {
    StreamStartMessage& m = out_.stream_start;
    uint8_t first = 0;
    if (!r_.ReadU32(m.xid)) return false;
    size_t first_offset = r_.offset();
    if (!r_.ReadU8(first)) return false;
    if (first > 1) {
      r_.Seek(first_offset);
      return Fail("bad first-segment flag " + DescribeByte(first));
    }
    m.first_segment = first == 1;
    return true;
  }

  bool DecodeStreamCommit() {
    StreamCommitMessage& m = out_.stream_commit;
    return r_.ReadU32(m.xid) && r_.ReadU8(m.flags) && ReadLsn(m.commit_lsn) && ReadLsn(m.end_lsn) &&
           r_.ReadI64(m.commit_time);
  }

  bool DecodeStreamAbort() {
    StreamAbortMessage& m = out_.stream_abort;
    return r_.ReadU32(m.xid) && r_.ReadU32(m.subxid);
  }

  WireReader r_;
  bool in_stream_;
  Message& out_;
  std::string error_;
  size_t error_offset_ = 0;
};

}  // namespace

std::string_view MessageTypeName(MessageType type) {
  switch (type) {
    case MessageType::kBegin:
      return "Begin";
    case MessageType::kCommit:
      return "Commit";
    case MessageType::kOrigin:
      return "Origin";
    case MessageType::kRelation:
      return "Relation";
    case MessageType::kType:
      return "Type";
    case MessageType::kInsert:
      return "Insert";
    case MessageType::kUpdate:
      return "Update";
    case MessageType::kDelete:
      return "Delete";
    case MessageType::kTruncate:
      return "Truncate";
    case MessageType::kMessage:
      return "Message";
    case MessageType::kStreamStart:
      return "StreamStart";
    case MessageType::kStreamStop:
      return "StreamStop";
    case MessageType::kStreamCommit:
      return "StreamCommit";
    case MessageType::kStreamAbort:
      return "StreamAbort";
  }
  return "Unknown";
}

Status DecodeMessage(std::string_view payload, bool in_stream, Message& out) {
  return MessageDecoder(payload, in_stream, out).Decode();
}

Status Decoder::Decode(std::string_view payload, Message& out) {
  TALLY_RETURN_IF_ERROR(DecodeMessage(payload, in_stream_, out));
  if (out.type == MessageType::kStreamStart) {
    if (in_stream_) {
      return Status::Corruption("pgoutput StreamStart message for xid " +
                                std::to_string(out.stream_start.xid) +
                                " inside a stream that was not stopped");
    }
    in_stream_ = true;
  } else if (out.type == MessageType::kStreamStop) {
    if (!in_stream_) {
      return Status::Corruption("pgoutput StreamStop message outside a stream");
    }
    in_stream_ = false;
  }
  return Status::Ok();
}

}  // namespace tally::pgoutput
