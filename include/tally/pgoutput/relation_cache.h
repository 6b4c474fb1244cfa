// RelationCache: the relation definitions ('R' messages) a replication stream has announced.
//
// pgoutput sends a Relation message before the first change of a relation in a session, again
// at the start of every streamed block and after any change of the relation's definition; the
// change messages then carry only the relation oid. A new 'R' REPLACES the cached entry, and
// Apply() says whether the definition actually changed, so callers can tell a harmless re-send
// from a schema change.
//
// Ownership: unlike the decoder's Message, entries own their strings (copied once per 'R', not
// per row). Pointers returned by Find/Get stay valid until that relation is applied again,
// erased or the cache cleared. Thread safety: none; one thread.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tally/core/status.h"
#include "tally/core/types.h"
#include "tally/pgoutput/decoder.h"

namespace tally::pgoutput {

struct ColumnInfo {
  std::string name;
  Oid type_oid = 0;
  int32_t type_modifier = -1;
  bool is_key = false;  // part of the replica identity (all columns under REPLICA IDENTITY FULL)

  friend bool operator==(const ColumnInfo&, const ColumnInfo&) = default;
};

struct RelationInfo {
  RelationId relation_id = 0;
  std::string namespace_name;
  std::string name;
  ReplicaIdentity replica_identity = ReplicaIdentity::kDefault;
  std::vector<ColumnInfo> columns;

  // "namespace.name" (just "name" when the namespace is empty), for messages.
  std::string QualifiedName() const;
  // Index of the column called `column`, if any.
  std::optional<size_t> FindColumn(std::string_view column) const;

  friend bool operator==(const RelationInfo&, const RelationInfo&) = default;
};

enum class RelationChange {
  kNew,        // first definition seen for this oid
  kUnchanged,  // identical re-send
  kChanged,    // name, namespace, replica identity or columns differ: a schema change
};

class RelationCache {
 public:
  // Stores (replaces) the definition of m.relation_id.
  RelationChange Apply(const RelationMessage& m);

  // nullptr when the relation was never announced.
  const RelationInfo* Find(RelationId id) const;
  // As Find, but a missing relation is Corruption: a change message referred to a relation the
  // stream never described.
  Result<const RelationInfo*> Get(RelationId id) const;

  // Checks that a decoded tuple has one field per column of its relation.
  static Status CheckTuple(const RelationInfo& relation, const TupleData& tuple);

  void Erase(RelationId id) { relations_.erase(id); }
  void Clear() { relations_.clear(); }
  size_t size() const { return relations_.size(); }

 private:
  // unique_ptr keeps entries at stable addresses across rehashes.
  std::unordered_map<RelationId, std::unique_ptr<RelationInfo>> relations_;
};

}  // namespace tally::pgoutput
