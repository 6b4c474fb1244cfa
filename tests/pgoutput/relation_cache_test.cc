#include "tally/pgoutput/relation_cache.h"

#include <string>
#include <vector>

#include "fixture.h"

namespace tally::pgoutput {
namespace {

using testing::DecodeAll;
using testing::Facts;
using testing::LoadFixture;

TEST_CASE("RelationCache: every change in the fixture finds its relation", "[pgoutput]") {
  std::vector<testing::FixtureMessage> raw = LoadFixture("stream_v2.txt");
  std::vector<Message> msgs = DecodeAll(raw);
  RelationCache cache;
  size_t news = 0, unchanged = 0, changes = 0;
  for (const Message& m : msgs) {
    if (m.type == MessageType::kRelation) {
      switch (cache.Apply(m.relation)) {
        case RelationChange::kNew:
          ++news;
          break;
        case RelationChange::kUnchanged:
          ++unchanged;
          break;
        case RelationChange::kChanged:
          FAIL("the workload changes no relation definition");
      }
    } else if (m.type == MessageType::kInsert || m.type == MessageType::kUpdate ||
               m.type == MessageType::kDelete) {
      Result<const RelationInfo*> rel = cache.Get(m.change.relation_id);
      REQUIRE(rel.ok());
      if (m.change.has_new_tuple)
        REQUIRE(RelationCache::CheckTuple(**rel, m.change.new_tuple).ok());
      if (m.change.old_kind != OldTupleKind::kNone) {
        REQUIRE(RelationCache::CheckTuple(**rel, m.change.old_tuple).ok());
      }
      ++changes;
    }
  }
  CHECK(news == 4);      // t_pk, t_full, t_toast, t_big
  CHECK(unchanged > 0);  // re-sent at every stream block and after truncates
  CHECK(changes > 3600);
  CHECK(cache.size() == 4);

  Facts facts;
  const RelationInfo* t_pk = cache.Find(facts.U32("oid.t_pk"));
  REQUIRE(t_pk != nullptr);
  CHECK(t_pk->QualifiedName() == "public.t_pk");
  CHECK(t_pk->replica_identity == ReplicaIdentity::kDefault);
  REQUIRE(t_pk->columns.size() == 6);
  CHECK(t_pk->columns[0].is_key);
  CHECK_FALSE(t_pk->columns[1].is_key);
  CHECK(t_pk->columns[1].type_oid == pgtype::kNumeric);
  CHECK(t_pk->FindColumn("ts") == std::optional<size_t>(3));
  CHECK_FALSE(t_pk->FindColumn("nope").has_value());
  const RelationInfo* t_full = cache.Find(facts.U32("oid.t_full"));
  REQUIRE(t_full != nullptr);
  CHECK(t_full->replica_identity == ReplicaIdentity::kFull);
}

TEST_CASE("RelationCache: a new Relation message replaces the entry", "[pgoutput]") {
  RelationMessage r;
  r.relation_id = 42;
  r.namespace_name = "public";
  r.name = "t";
  r.columns = {{RelationColumn::kFlagKey, "a", pgtype::kInt4, -1}, {0, "b", pgtype::kText, -1}};

  RelationCache cache;
  CHECK(cache.Apply(r) == RelationChange::kNew);
  const RelationInfo* before = cache.Find(42);
  REQUIRE(before != nullptr);
  CHECK(cache.Apply(r) == RelationChange::kUnchanged);
  CHECK(cache.Find(42) == before);  // stable address

  // The cache owns its strings: the message's views may die.
  {
    std::string temp_name = "renamed";
    RelationMessage renamed = r;
    renamed.name = temp_name;
    CHECK(cache.Apply(renamed) == RelationChange::kChanged);
  }
  CHECK(cache.Find(42)->name == "renamed");

  RelationMessage added = r;
  added.columns.push_back({0, "c", pgtype::kNumeric, ((10 << 16) | 2) + 4});
  CHECK(cache.Apply(added) == RelationChange::kChanged);
  REQUIRE(cache.Find(42)->columns.size() == 3);
  CHECK(cache.Find(42)->columns[2].type_modifier == ((10 << 16) | 2) + 4);
  CHECK(cache.Find(42)->name == "t");

  RelationMessage retyped = added;
  retyped.columns[1].type_oid = pgtype::kVarchar;
  CHECK(cache.Apply(retyped) == RelationChange::kChanged);
  CHECK(cache.Find(42)->columns[1].type_oid == pgtype::kVarchar);

  RelationMessage full = retyped;
  full.replica_identity = ReplicaIdentity::kFull;
  CHECK(cache.Apply(full) == RelationChange::kChanged);
  CHECK(cache.Find(42)->replica_identity == ReplicaIdentity::kFull);

  TupleData two;
  two.fields.resize(2);
  Status s = RelationCache::CheckTuple(*cache.Find(42), two);
  CHECK(s.code() == StatusCode::kCorruption);
  CHECK(s.message().find("public.t (oid 42) has 2 fields, relation has 3 columns") !=
        std::string::npos);

  Result<const RelationInfo*> missing = cache.Get(7);
  CHECK(missing.status().code() == StatusCode::kCorruption);
  CHECK(missing.status().message().find("relation oid 7") != std::string::npos);
  CHECK(cache.Find(7) == nullptr);

  cache.Erase(42);
  CHECK(cache.Find(42) == nullptr);
  CHECK(cache.Apply(r) == RelationChange::kNew);
  cache.Clear();
  CHECK(cache.size() == 0);
}

}  // namespace
}  // namespace tally::pgoutput
