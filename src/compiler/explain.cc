// ExprEquals, ExprToString and ExplainPlan: printing and comparing compiled plans.
#include <sstream>

#include "datetime.h"
#include "tally/compiler/eval.h"
#include "tally/compiler/plan.h"

namespace tally::compiler {

namespace {

std::string FormatType(Oid t, int32_t typmod) {
  std::string name(TypeName(t));
  if (t == pgtype::kBpchar && typmod < 4) return "bpchar";
  if (typmod < 0) return name;
  switch (t) {
    case pgtype::kNumeric: {
      if (typmod < 4) return name;
      int p = ((typmod - 4) >> 16) & 0xffff;
      int s = (typmod - 4) & 0x7ff;
      if (s & 0x400) s -= 0x800;
      return name + "(" + std::to_string(p) + "," + std::to_string(s) + ")";
    }
    case pgtype::kVarchar:
    case pgtype::kBpchar:
      if (typmod < 4) return name;
      return name + "(" + std::to_string(typmod - 4) + ")";
    case pgtype::kTimestamp:
      return "timestamp(" + std::to_string(typmod) + ") without time zone";
    case pgtype::kTimestampTz:
      return "timestamp(" + std::to_string(typmod) + ") with time zone";
    default:
      return name;
  }
}

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

const char* CmpText(CmpOp op) {
  switch (op) {
    case CmpOp::kEq:
      return "=";
    case CmpOp::kNe:
      return "<>";
    case CmpOp::kLt:
      return "<";
    case CmpOp::kLe:
      return "<=";
    case CmpOp::kGt:
      return ">";
    case CmpOp::kGe:
      return ">=";
  }
  return "?";
}

const char* ArithText(ArithOp op) {
  switch (op) {
    case ArithOp::kAdd:
      return "+";
    case ArithOp::kSub:
      return "-";
    case ArithOp::kMul:
      return "*";
    case ArithOp::kDiv:
      return "/";
    case ArithOp::kMod:
      return "%";
    case ArithOp::kConcat:
      return "||";
  }
  return "?";
}

std::string Join(const std::vector<ExprPtr>& args, size_t from, const ExprNames& names,
                 const char* sep) {
  std::string out;
  for (size_t i = from; i < args.size(); ++i) {
    if (i > from) out += sep;
    out += ExprToString(*args[i], names);
  }
  return out;
}

std::string ConstText(const Value& v) {
  if (v.is_null()) return "NULL";
  Oid t = v.type();
  std::string text = FormatValue(v, nullptr);
  switch (t) {
    case pgtype::kInt4:
    case pgtype::kBool:
      return text;
    case pgtype::kInt8:
      return text + "::bigint";
    case pgtype::kNumeric:
      return text;
    case pgtype::kText:
      return Quote(text);
    case pgtype::kUnknown:
      return Quote(text);
    default:
      return Quote(text) + "::" + std::string(TypeName(t));
  }
}

}  // namespace

bool ExprEquals(const Expr& a, const Expr& b) {
  if (a.kind != b.kind || a.type != b.type || a.typmod != b.typmod || a.op != b.op ||
      a.negated != b.negated || a.has_else != b.has_else || a.all != b.all || a.index != b.index ||
      a.zone != b.zone || a.args.size() != b.args.size()) {
    return false;
  }
  if (a.kind == ExprKind::kConst) {
    if (a.constant.is_null() != b.constant.is_null()) return false;
    if (a.constant.type() != b.constant.type()) return false;
    if (!a.constant.is_null() &&
        FormatValue(a.constant, nullptr) != FormatValue(b.constant, nullptr)) {
      return false;
    }
  }
  for (size_t i = 0; i < a.args.size(); ++i) {
    if (!ExprEquals(*a.args[i], *b.args[i])) return false;
  }
  return true;
}

std::string ExprToString(const Expr& e, const ExprNames& names) {
  auto arg = [&](size_t i) { return ExprToString(*e.args[i], names); };
  switch (e.kind) {
    case ExprKind::kInputColumn:
      if (e.index >= 0 && static_cast<size_t>(e.index) < names.input_columns.size()) {
        return names.input_columns[static_cast<size_t>(e.index)];
      }
      return "$" + std::to_string(e.index);
    case ExprKind::kGroupKeyRef:
      if (e.index >= 0 && static_cast<size_t>(e.index) < names.group_keys.size() &&
          !names.group_keys[static_cast<size_t>(e.index)].empty()) {
        return names.group_keys[static_cast<size_t>(e.index)];
      }
      return "key" + std::to_string(e.index);
    case ExprKind::kAggregateRef:
      if (e.index >= 0 && static_cast<size_t>(e.index) < names.aggregates.size() &&
          !names.aggregates[static_cast<size_t>(e.index)].empty()) {
        return names.aggregates[static_cast<size_t>(e.index)];
      }
      return "agg" + std::to_string(e.index);
    case ExprKind::kConst:
      return ConstText(e.constant);
    case ExprKind::kArith:
      return "(" + arg(0) + " " + ArithText(static_cast<ArithOp>(e.op)) + " " + arg(1) + ")";
    case ExprKind::kNegate:
      return "(-" + arg(0) + ")";
    case ExprKind::kCompare:
      return "(" + arg(0) + " " + CmpText(static_cast<CmpOp>(e.op)) + " " + arg(1) + ")";
    case ExprKind::kAnd:
      return "(" + Join(e.args, 0, names, " AND ") + ")";
    case ExprKind::kOr:
      return "(" + Join(e.args, 0, names, " OR ") + ")";
    case ExprKind::kNot:
      return "(NOT " + arg(0) + ")";
    case ExprKind::kIsNull:
      return "(" + arg(0) + (e.negated ? " IS NOT NULL)" : " IS NULL)");
    case ExprKind::kBoolTest: {
      static const char* kText[] = {" IS TRUE",      " IS NOT TRUE", " IS FALSE",
                                    " IS NOT FALSE", " IS UNKNOWN",  " IS NOT UNKNOWN"};
      return "(" + arg(0) + kText[e.op] + ")";
    }
    case ExprKind::kIsDistinctFrom:
      return "(" + arg(0) + (e.negated ? " IS NOT DISTINCT FROM " : " IS DISTINCT FROM ") + arg(1) +
             ")";
    case ExprKind::kIn:
      return "(" + arg(0) + (e.negated ? " NOT IN (" : " IN (") + Join(e.args, 1, names, ", ") +
             "))";
    case ExprKind::kCase: {
      std::string out = "CASE";
      size_t pairs = (e.args.size() - (e.has_else ? 1 : 0)) / 2;
      for (size_t i = 0; i < pairs; ++i) out += " WHEN " + arg(2 * i) + " THEN " + arg(2 * i + 1);
      if (e.has_else) out += " ELSE " + arg(e.args.size() - 1);
      return out + " END";
    }
    case ExprKind::kCoalesce:
      return "COALESCE(" + Join(e.args, 0, names, ", ") + ")";
    case ExprKind::kNullIf:
      return "NULLIF(" + Join(e.args, 0, names, ", ") + ")";
    case ExprKind::kGreatest:
      return "GREATEST(" + Join(e.args, 0, names, ", ") + ")";
    case ExprKind::kLeast:
      return "LEAST(" + Join(e.args, 0, names, ", ") + ")";
    case ExprKind::kCast:
      return "(" + arg(0) + ")::" + FormatType(e.type, e.typmod);
    case ExprKind::kFunc:
      switch (static_cast<FuncId>(e.op)) {
        case FuncId::kDateTrunc:
          return "date_trunc(" + Join(e.args, 0, names, ", ") + ")";
        case FuncId::kExtract:
          return "EXTRACT(" + FormatValue(e.args[0]->constant, nullptr) + " FROM " + arg(1) + ")";
        case FuncId::kDatePart:
          return "date_part(" + Join(e.args, 0, names, ", ") + ")";
        case FuncId::kTimezone:
          return "(" + arg(1) + " AT TIME ZONE " + arg(0) + ")";
        case FuncId::kLower:
          return "lower(" + arg(0) + ")";
        case FuncId::kUpper:
          return "upper(" + arg(0) + ")";
        case FuncId::kLength:
          return "length(" + arg(0) + ")";
        case FuncId::kAbs:
          return "abs(" + arg(0) + ")";
        case FuncId::kRound:
          return "round(" + Join(e.args, 0, names, ", ") + ")";
        case FuncId::kTrunc:
          return "trunc(" + Join(e.args, 0, names, ", ") + ")";
        case FuncId::kFloor:
          return "floor(" + arg(0) + ")";
        case FuncId::kCeil:
          return "ceil(" + arg(0) + ")";
        case FuncId::kSubstr:
          return "substr(" + Join(e.args, 0, names, ", ") + ")";
        case FuncId::kLeft:
          return "left(" + Join(e.args, 0, names, ", ") + ")";
        case FuncId::kRight:
          return "right(" + Join(e.args, 0, names, ", ") + ")";
        case FuncId::kReplace:
          return "replace(" + Join(e.args, 0, names, ", ") + ")";
        case FuncId::kStrpos:
          return "strpos(" + Join(e.args, 0, names, ", ") + ")";
        case FuncId::kBtrim:
          return "btrim(" + Join(e.args, 0, names, ", ") + ")";
        case FuncId::kLtrim:
          return "ltrim(" + Join(e.args, 0, names, ", ") + ")";
        case FuncId::kRtrim:
          return "rtrim(" + Join(e.args, 0, names, ", ") + ")";
        case FuncId::kConcat:
          return "concat(" + Join(e.args, 0, names, ", ") + ")";
        case FuncId::kConcatWs:
          return "concat_ws(" + Join(e.args, 0, names, ", ") + ")";
        case FuncId::kLikeEscape:
          return "like_escape(" + Join(e.args, 0, names, ", ") + ")";
        case FuncId::kOutput:
          return arg(0);
      }
      return "?func";
    case ExprKind::kAnyAll:
      return "(" + arg(0) + " " + CmpText(static_cast<CmpOp>(e.op)) +
             (e.all ? " ALL (ARRAY[" : " ANY (ARRAY[") + Join(e.args, 1, names, ", ") + "]))";
    case ExprKind::kLike: {
      bool ilike = static_cast<LikeOp>(e.op) == LikeOp::kILike;
      std::string op =
          e.negated ? (ilike ? " NOT ILIKE " : " NOT LIKE ") : (ilike ? " ILIKE " : " LIKE ");
      return "(" + arg(0) + op + arg(1) + ")";
    }
  }
  return "?";
}

ExprNames PlanExprNames(const ViewPlan& plan) {
  ExprNames names;
  for (int c : plan.input_columns) {
    names.input_columns.push_back(plan.source.columns[static_cast<size_t>(c)].name);
  }
  for (size_t i = 0; i < plan.group_keys.size(); ++i) {
    names.group_keys.push_back(ExprToString(*plan.group_keys[i], names));
  }
  for (size_t i = 0; i < plan.aggregates.size(); ++i) {
    const AggregateCall& a = plan.aggregates[i];
    std::string s(agg::AggName(a.kind));
    s += "(";
    if (a.kind == AggKind::kCountStar) {
      s += "*";
    } else {
      if (a.distinct) s += "DISTINCT ";
      s += ExprToString(*a.arg, names);
    }
    s += ")";
    if (a.filter) s += " FILTER (WHERE " + ExprToString(*a.filter, names) + ")";
    names.aggregates.push_back(s);
  }
  return names;
}

std::string ExplainPlan(const ViewPlan& plan) {
  ExprNames names = PlanExprNames(plan);
  std::ostringstream out;
  const TableInfo& t = plan.source;
  out << "view " << plan.name << "\n";
  out << "  scan " << t.QualifiedName();
  std::string ri;
  switch (t.replica_identity) {
    case 'd':
      ri = "default";
      break;
    case 'f':
      ri = "full";
      break;
    case 'n':
      ri = "nothing";
      break;
    case 'i':
      ri = "index";
      break;
    default:
      ri = std::string(1, t.replica_identity);
  }
  out << " (replica identity " << ri;
  if (!t.primary_key.empty()) {
    out << ", primary key (";
    for (size_t i = 0; i < t.primary_key.size(); ++i) {
      out << (i ? ", " : "") << t.columns[static_cast<size_t>(t.primary_key[i])].name;
    }
    out << ")";
  }
  out << ")\n";
  out << "    reads:";
  for (size_t i = 0; i < plan.input_columns.size(); ++i) {
    const ColumnInfo& c = t.columns[static_cast<size_t>(plan.input_columns[i])];
    out << (i ? ", " : " ") << c.name << " " << FormatType(c.type_oid, c.typmod);
  }
  if (plan.input_columns.empty()) out << " (no columns)";
  out << "\n";
  if (plan.where) out << "  filter " << ExprToString(*plan.where, names) << "\n";
  if (plan.has_group_by) {
    out << "  group by\n";
    for (size_t i = 0; i < plan.group_keys.size(); ++i) {
      const Expr& k = *plan.group_keys[i];
      out << "    key" << i << " = " << names.group_keys[i] << " : " << FormatType(k.type, k.typmod)
          << "\n";
    }
  } else {
    out << "  single group (no GROUP BY: one row, present even when the table is empty)\n";
  }
  out << "  aggregates\n";
  for (size_t i = 0; i < plan.aggregates.size(); ++i) {
    const AggregateCall& a = plan.aggregates[i];
    out << "    agg" << i << " = " << names.aggregates[i] << " : " << TypeName(a.result_type);
    std::string state;
    switch (a.kind) {
      case AggKind::kCountStar:
      case AggKind::kCount:
        state = a.distinct ? "per-group count of each distinct value" : "running count";
        break;
      case AggKind::kSum:
        state = "running sum and count of non-NULL inputs";
        break;
      case AggKind::kAvg:
        state = "running sum and count of non-NULL inputs";
        break;
      case AggKind::kMin:
      case AggKind::kMax:
        state = "per-group count of each value (the extreme survives deletes)";
        break;
    }
    out << "  [state: " << state << "]\n";
  }
  if (plan.aggregates.empty()) out << "    (none: groups only)\n";
  if (plan.having) out << "  having " << ExprToString(*plan.having, names) << "\n";
  out << "  output\n";
  for (const auto& o : plan.outputs) {
    out << "    " << o.name << " " << FormatType(o.type, o.typmod) << " = "
        << ExprToString(*o.expr, names);
    if (o.group_key_index >= 0) out << "  [key]";
    out << "\n";
  }
  out << "  state kept\n";
  out << "    per group: row count";
  if (!plan.aggregates.empty()) out << " + the accumulators above";
  out << "\n";
  out << "    per source row (by ";
  if (!t.primary_key.empty() && t.replica_identity != 'f') {
    out << "primary key";
  } else {
    out << "replica identity FULL: old rows arrive whole; no row store";
  }
  out << ")";
  if (!t.primary_key.empty() && t.replica_identity != 'f') {
    out << ": the columns read (";
    std::vector<int> stored = plan.input_columns;
    for (size_t i = 0; i < stored.size(); ++i) {
      out << (i ? ", " : "") << t.columns[static_cast<size_t>(stored[i])].name;
    }
    out << "), for the old row of UPDATE and DELETE";
  }
  out << "\n";
  return out.str();
}

}  // namespace tally::compiler
