#include "tally/core/types.h"

namespace tally {

Repr ReprOf(Oid type) {
  switch (type) {
    case pgtype::kBool:
      return Repr::kBool;
    case pgtype::kInt2:
    case pgtype::kInt4:
    case pgtype::kInt8:
    case pgtype::kOid:
      return Repr::kInt;
    case pgtype::kFloat4:
    case pgtype::kFloat8:
      return Repr::kFloat;
    case pgtype::kNumeric:
      return Repr::kNumeric;
    case pgtype::kDate:
      return Repr::kDate;
    case pgtype::kTimestamp:
    case pgtype::kTimestampTz:
      return Repr::kTimestamp;
    case pgtype::kInterval:
      return Repr::kInterval;
    default:
      // Text types and every type tally only carries as its text form.
      return Repr::kText;
  }
}

std::string_view TypeName(Oid type) {
  switch (type) {
    case pgtype::kBool:
      return "boolean";
    case pgtype::kBytea:
      return "bytea";
    case pgtype::kName:
      return "name";
    case pgtype::kInt8:
      return "bigint";
    case pgtype::kInt2:
      return "smallint";
    case pgtype::kInt4:
      return "integer";
    case pgtype::kText:
      return "text";
    case pgtype::kOid:
      return "oid";
    case pgtype::kJson:
      return "json";
    case pgtype::kFloat4:
      return "real";
    case pgtype::kFloat8:
      return "double precision";
    case pgtype::kUnknown:
      return "unknown";
    case pgtype::kBpchar:
      return "character";
    case pgtype::kVarchar:
      return "character varying";
    case pgtype::kDate:
      return "date";
    case pgtype::kTime:
      return "time without time zone";
    case pgtype::kTimestamp:
      return "timestamp without time zone";
    case pgtype::kTimestampTz:
      return "timestamp with time zone";
    case pgtype::kInterval:
      return "interval";
    case pgtype::kNumeric:
      return "numeric";
    case pgtype::kUuid:
      return "uuid";
    case pgtype::kJsonb:
      return "jsonb";
    default:
      return "???";  // what format_type prints for an OID it does not know
  }
}

bool IsIntegerType(Oid t) { return t == pgtype::kInt2 || t == pgtype::kInt4 || t == pgtype::kInt8; }

bool IsNumericCategory(Oid t) {
  return IsIntegerType(t) || t == pgtype::kNumeric || t == pgtype::kFloat4 || t == pgtype::kFloat8;
}

bool IsTextType(Oid t) {
  return t == pgtype::kText || t == pgtype::kVarchar || t == pgtype::kBpchar || t == pgtype::kName;
}

}  // namespace tally
