#include "tally/pgoutput/relation_cache.h"

#include <utility>

namespace tally::pgoutput {

std::string RelationInfo::QualifiedName() const {
  if (namespace_name.empty()) return name;
  return namespace_name + "." + name;
}

std::optional<size_t> RelationInfo::FindColumn(std::string_view column) const {
  for (size_t i = 0; i < columns.size(); ++i) {
    if (columns[i].name == column) return i;
  }
  return std::nullopt;
}

RelationChange RelationCache::Apply(const RelationMessage& m) {
  RelationInfo info;
  info.relation_id = m.relation_id;
  info.namespace_name = std::string(m.namespace_name);
  info.name = std::string(m.name);
  info.replica_identity = m.replica_identity;
  info.columns.reserve(m.columns.size());
  for (const RelationColumn& c : m.columns) {
    info.columns.push_back(
        ColumnInfo{std::string(c.name), c.type_oid, c.type_modifier, c.is_key()});
  }

  std::unique_ptr<RelationInfo>& slot = relations_[m.relation_id];
  if (slot == nullptr) {
    slot = std::make_unique<RelationInfo>(std::move(info));
    return RelationChange::kNew;
  }
  if (*slot == info) return RelationChange::kUnchanged;
  *slot = std::move(info);
  return RelationChange::kChanged;
}

const RelationInfo* RelationCache::Find(RelationId id) const {
  auto it = relations_.find(id);
  return it == relations_.end() ? nullptr : it->second.get();
}

Result<const RelationInfo*> RelationCache::Get(RelationId id) const {
  const RelationInfo* info = Find(id);
  if (info == nullptr) {
    return Status::Corruption("pgoutput: change for relation oid " + std::to_string(id) +
                              " before any Relation message for it");
  }
  return info;
}

Status RelationCache::CheckTuple(const RelationInfo& relation, const TupleData& tuple) {
  if (tuple.fields.size() == relation.columns.size()) return Status::Ok();
  return Status::Corruption("pgoutput: tuple of relation " + relation.QualifiedName() + " (oid " +
                            std::to_string(relation.relation_id) + ") has " +
                            std::to_string(tuple.fields.size()) + " fields, relation has " +
                            std::to_string(relation.columns.size()) + " columns");
}

}  // namespace tally::pgoutput
