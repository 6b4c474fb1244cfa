// CompileView: libpg_query's JSON tree -> ViewPlan. Mirrors the parts of Postgres's parse
// analysis (parse_expr.c, parse_agg.c, parse_oper.c, parse_coerce.c) that single-table
// aggregate views need: name resolution, operator and common-type resolution with casts,
// aggregate collection and the GROUP BY rules.
#include <algorithm>
#include <cctype>
#include <map>
#include <optional>
#include <set>
#include <unordered_set>

#include "datetime.h"
#include "eval_internal.h"
#include "parse.h"
#include "tally/compiler/eval.h"
#include "tally/compiler/plan.h"

namespace tally::compiler {

std::string Construct::ToString() const {
  if (line <= 0) return what;
  return what + " at " + std::to_string(line) + ":" + std::to_string(column);
}

namespace {

using internal::Field;
using internal::json;
using internal::Location;
using internal::MinLocation;
using internal::NodeBody;
using internal::NodeName;
using internal::StringValue;
using MExpr = std::shared_ptr<Expr>;

enum class Mode { kInput, kOutput };

MExpr NewExpr(ExprKind kind, Oid type, int32_t typmod = -1) {
  auto e = std::make_shared<Expr>();
  e->kind = kind;
  e->type = type;
  e->typmod = typmod;
  return e;
}

MExpr ConstExpr(Value v, int32_t typmod = -1) {
  auto e = NewExpr(ExprKind::kConst, v.type(), typmod);
  e->constant = std::move(v);
  return e;
}

bool IsUnknown(const Expr& e) { return e.type == pgtype::kUnknown; }

char Category(Oid t) {
  if (IsNumericCategory(t)) return 'N';
  if (IsTextType(t) || t == pgtype::kUnknown) return 'S';
  if (t == pgtype::kDate || t == pgtype::kTimestamp || t == pgtype::kTimestampTz) return 'D';
  if (t == pgtype::kBool) return 'B';
  if (t == pgtype::kInterval) return 'T';
  return 'X';
}

int IntRank(Oid t) { return t == pgtype::kInt2 ? 1 : t == pgtype::kInt4 ? 2 : 3; }

// Operator resolution's result for two numeric-category operands.
Oid NumericOperatorType(Oid a, Oid b) {
  bool af = a == pgtype::kFloat4 || a == pgtype::kFloat8;
  bool bf = b == pgtype::kFloat4 || b == pgtype::kFloat8;
  if (af || bf)
    return (a == pgtype::kFloat4 && b == pgtype::kFloat4) ? pgtype::kFloat4 : pgtype::kFloat8;
  if (a == pgtype::kNumeric || b == pgtype::kNumeric) return pgtype::kNumeric;
  return IntRank(a) >= IntRank(b) ? a : b;
}

std::string TypeText(Oid t) { return std::string(TypeName(t)); }

bool ReferencesInput(const Expr& e) {
  if (e.kind == ExprKind::kInputColumn || e.kind == ExprKind::kGroupKeyRef ||
      e.kind == ExprKind::kAggregateRef) {
    return true;
  }
  for (const auto& a : e.args) {
    if (ReferencesInput(*a)) return true;
  }
  return false;
}

bool ContainsAggregateCall(const json& node) {
  if (node.is_object()) {
    if (node.size() == 1 && NodeName(node) == "FuncCall") {
      const json& b = NodeBody(node);
      if (Field(b, "over") == nullptr && internal::IsSupportedAggregate(internal::FuncName(b))) {
        return true;
      }
    }
    for (auto it = node.begin(); it != node.end(); ++it) {
      if (it->is_structured() && ContainsAggregateCall(*it)) return true;
    }
  } else if (node.is_array()) {
    for (const auto& e : node) {
      if (ContainsAggregateCall(e)) return true;
    }
  }
  return false;
}

// Postgres's FigureColname: 2 = a strong name (column, function), 1 = weak ("case"), 0 = none.
int FigureColname(const json& node, std::string* name) {
  if (!node.is_object() || node.size() != 1) return 0;
  std::string type = NodeName(node);
  const json& b = NodeBody(node);
  if (type == "ColumnRef") {
    const json* f = Field(b, "fields");
    if (f != nullptr && !f->empty() && NodeName(f->back()) == "String") {
      *name = StringValue(f->back());
      return 2;
    }
    return 0;
  }
  if (type == "FuncCall") {
    *name = internal::FuncName(b);
    return 2;
  }
  if (type == "A_Expr") {
    if (b.value("kind", std::string()) == "AEXPR_NULLIF") {
      *name = "nullif";
      return 2;
    }
    return 0;
  }
  if (type == "TypeCast") {
    int strength = Field(b, "arg") ? FigureColname(*Field(b, "arg"), name) : 0;
    if (strength <= 1) {
      if (const json* tn = Field(b, "typeName")) {
        if (const json* names = Field(*tn, "names"); names && !names->empty()) {
          *name = StringValue(names->back());
          return 1;
        }
      }
    }
    return strength;
  }
  if (type == "CaseExpr") {
    *name = "case";
    return 1;
  }
  if (type == "CoalesceExpr") {
    *name = "coalesce";
    return 2;
  }
  if (type == "MinMaxExpr") {
    *name = b.value("op", std::string()) == "IS_GREATEST" ? "greatest" : "least";
    return 2;
  }
  if (type == "SQLValueFunction") {
    std::string op = b.value("op", std::string());
    std::string n = op.rfind("SVFOP_", 0) == 0 ? op.substr(6) : op;
    for (char& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    *name = n;
    return 2;
  }
  return 0;
}

class Compiler {
 public:
  Compiler(std::string_view sql, const Catalog& catalog, const internal::ParsedView& view)
      : sql_(sql), catalog_(catalog), view_(view) {}

  Result<ViewPlan> Run(std::string_view name);

 private:
  Status Error(int loc, const std::string& msg) const {
    if (loc < 0) return Status::InvalidArgument(msg);
    return Status::InvalidArgument(msg + " at " + internal::PositionText(sql_, loc));
  }
  Status Unsupported(int loc, const std::string& what) const {
    return Status::NotSupported(what + " at " + internal::PositionText(sql_, loc) +
                                " cannot be maintained incrementally");
  }

  Result<MExpr> Sub(const json& node, Mode mode);
  Result<MExpr> Node(const json& node, Mode mode);
  Result<MExpr> NodeUnfolded(const json& node, Mode mode);
  Result<MExpr> ColumnRef(const json& b, Mode mode);
  Result<MExpr> Const(const json& b);
  // An A_Const's integer (its "ival" object), from the query text where the JSON leaves it out.
  int64_t IntegerConstant(const json& ival, int loc) const;
  Result<MExpr> TypeCast(const json& b, Mode mode);
  Result<MExpr> AExpr(const json& b, Mode mode);
  Result<MExpr> FuncCall(const json& b, Mode mode);
  Result<MExpr> Aggregate(const json& b, const std::string& name, Mode mode);
  Result<MExpr> CaseExpr(const json& b, Mode mode);
  Result<MExpr> Variadic(const json& b, ExprKind kind, const char* what, Mode mode);

  Result<std::pair<Oid, int32_t>> ResolveType(const json& type_name);
  Result<MExpr> Coerce(MExpr e, Oid target, int32_t typmod, int loc);
  Result<MExpr> CoerceBool(MExpr e, const char* clause, int loc);
  Result<MExpr> Compare(CmpOp op, MExpr l, MExpr r, int loc, const std::string& op_text);
  Result<MExpr> Arith(const std::string& op, MExpr l, MExpr r, int loc);
  Result<MExpr> TextArg(MExpr e, const std::string& fn, int loc);
  Result<MExpr> IntArg(MExpr e, const std::string& fn, int loc);
  Result<MExpr> AnyAll(const json& b, const std::string& op, bool all, Mode mode);
  Result<std::vector<MExpr>> ArrayElements(const json& node, Oid* elem_type, bool* is_null,
                                           Mode mode);
  // LIKE / ILIKE (and their negations): `loc`, `kind` and `op` as AExpr read them.
  Result<MExpr> Like(const json& b, Mode mode, int loc, const std::string& kind,
                     const std::string& op);
  Result<std::pair<Oid, int32_t>> CommonType(const std::vector<MExpr>& es, const char* what,
                                             int loc);
  Result<MExpr> TimezoneArg(const json& node, MExpr fn, Mode mode);

  std::string_view sql_;
  const Catalog& catalog_;
  const internal::ParsedView& view_;
  TableInfo table_;
  std::string qualifier_;
  const char* input_clause_ = "WHERE";  // where aggregates are refused in input mode
  std::vector<MExpr> keys_;
  std::vector<AggregateCall> aggs_;
};

Result<MExpr> Compiler::Sub(const json& node, Mode mode) {
  if (mode == Mode::kOutput && !ContainsAggregateCall(node)) {
    // A sub-expression over the input that is a grouping expression is that key; one that reads
    // no input at all is a constant.
    auto attempt = Node(node, Mode::kInput);
    if (attempt.ok()) {
      const MExpr& e = *attempt;
      for (size_t i = 0; i < keys_.size(); ++i) {
        if (ExprEquals(*e, *keys_[i])) {
          auto ref = NewExpr(ExprKind::kGroupKeyRef, keys_[i]->type, keys_[i]->typmod);
          ref->index = static_cast<int>(i);
          return ref;
        }
      }
      if (!ReferencesInput(*e)) return e;
    }
  }
  return Node(node, mode);
}

bool ZoneDependent(Oid from, Oid to);

bool ZoneDependentNode(const Expr& e) {
  if (e.kind == ExprKind::kCast && !e.args.empty() && ZoneDependent(e.args[0]->type, e.type)) {
    return true;
  }
  if (e.kind == ExprKind::kArith && e.type == pgtype::kTimestampTz) {
    // Months and days are added in the session's local time.
    for (const auto& a : e.args) {
      if (a->type != pgtype::kInterval) continue;
      if (a->kind != ExprKind::kConst || a->constant.is_null()) return true;
      const Interval& iv = a->constant.as_interval();
      if (iv.months != 0 || iv.days != 0) return true;
    }
  }
  if (e.kind == ExprKind::kFunc && static_cast<FuncId>(e.op) == FuncId::kOutput &&
      e.args[0]->type == pgtype::kTimestampTz) {
    return true;
  }
  if (e.kind == ExprKind::kFunc) {
    auto id = static_cast<FuncId>(e.op);
    if (id == FuncId::kDateTrunc && e.type == pgtype::kTimestampTz && e.args.size() == 2) {
      return true;
    }
    if ((id == FuncId::kExtract || id == FuncId::kDatePart) &&
        e.args[1]->type == pgtype::kTimestampTz) {
      return true;
    }
  }
  return false;
}

// Evaluates a node whose operands are all constants, as Postgres's planner folds immutable
// expressions. A failing evaluation is left for run time.
MExpr Fold(MExpr e) {
  if (e->kind == ExprKind::kConst || e->kind == ExprKind::kInputColumn ||
      e->kind == ExprKind::kGroupKeyRef || e->kind == ExprKind::kAggregateRef ||
      ZoneDependentNode(*e)) {
    return e;
  }
  for (const auto& a : e->args) {
    if (a->kind != ExprKind::kConst) return e;
  }
  EvalContext ctx;
  auto v = Evaluate(*e, ctx);
  if (!v.ok()) return e;
  Value value = std::move(v).value();
  if (value.is_null()) value = Value::Null(e->type);
  return ConstExpr(std::move(value), e->typmod);
}

Result<MExpr> Compiler::Node(const json& node, Mode mode) {
  TALLY_ASSIGN_OR_RETURN(MExpr e, NodeUnfolded(node, mode));
  return Fold(std::move(e));
}

Result<MExpr> Compiler::NodeUnfolded(const json& node, Mode mode) {
  std::string type = NodeName(node);
  if (type.empty()) return Status::Internal("empty parse tree node");
  const json& b = NodeBody(node);
  int loc = Location(b);
  if (type == "ColumnRef") return ColumnRef(b, mode);
  if (type == "A_Const") return Const(b);
  if (type == "TypeCast") return TypeCast(b, mode);
  if (type == "A_Expr") return AExpr(b, mode);
  if (type == "FuncCall") return FuncCall(b, mode);
  if (type == "CaseExpr") return CaseExpr(b, mode);
  if (type == "CoalesceExpr") return Variadic(b, ExprKind::kCoalesce, "COALESCE", mode);
  if (type == "MinMaxExpr") {
    bool greatest = b.value("op", std::string()) == "IS_GREATEST";
    return Variadic(b, greatest ? ExprKind::kGreatest : ExprKind::kLeast,
                    greatest ? "GREATEST" : "LEAST", mode);
  }
  if (type == "BoolExpr") {
    std::string op = b.value("boolop", std::string());
    ExprKind kind = op == "AND_EXPR"  ? ExprKind::kAnd
                    : op == "OR_EXPR" ? ExprKind::kOr
                                      : ExprKind::kNot;
    auto e = NewExpr(kind, pgtype::kBool);
    const char* what = kind == ExprKind::kAnd ? "AND" : kind == ExprKind::kOr ? "OR" : "NOT";
    for (const auto& a : b.at("args")) {
      TALLY_ASSIGN_OR_RETURN(MExpr x, Sub(a, mode));
      TALLY_ASSIGN_OR_RETURN(x, CoerceBool(std::move(x), what, MinLocation(a)));
      e->args.push_back(std::move(x));
    }
    return e;
  }
  if (type == "NullTest") {
    TALLY_ASSIGN_OR_RETURN(MExpr x, Sub(b.at("arg"), mode));
    auto e = NewExpr(ExprKind::kIsNull, pgtype::kBool);
    e->negated = b.value("nulltesttype", std::string()) == "IS_NOT_NULL";
    e->args.push_back(std::move(x));
    return e;
  }
  if (type == "BooleanTest") {
    TALLY_ASSIGN_OR_RETURN(MExpr x, Sub(b.at("arg"), mode));
    TALLY_ASSIGN_OR_RETURN(x, CoerceBool(std::move(x), "IS TRUE", loc));
    static const std::map<std::string, BoolTestOp> kOps = {
        {"IS_TRUE", BoolTestOp::kIsTrue},       {"IS_NOT_TRUE", BoolTestOp::kIsNotTrue},
        {"IS_FALSE", BoolTestOp::kIsFalse},     {"IS_NOT_FALSE", BoolTestOp::kIsNotFalse},
        {"IS_UNKNOWN", BoolTestOp::kIsUnknown}, {"IS_NOT_UNKNOWN", BoolTestOp::kIsNotUnknown}};
    auto it = kOps.find(b.value("booltesttype", std::string()));
    if (it == kOps.end()) return Unsupported(loc, "boolean test");
    auto e = NewExpr(ExprKind::kBoolTest, pgtype::kBool);
    e->op = static_cast<uint8_t>(it->second);
    e->args.push_back(std::move(x));
    return e;
  }
  return Unsupported(loc >= 0 ? loc : MinLocation(node), type);
}

Result<MExpr> Compiler::ColumnRef(const json& b, Mode mode) {
  int loc = Location(b);
  std::vector<std::string> parts;
  for (const auto& f : b.at("fields")) {
    if (NodeName(f) != "String") return Unsupported(loc, "*");
    parts.push_back(StringValue(f));
  }
  std::string written;
  for (size_t i = 0; i < parts.size(); ++i) written += (i ? "." : "") + parts[i];
  const std::string& column = parts.back();
  if (parts.size() >= 2) {
    const std::string& rel = parts[parts.size() - 2];
    bool schema_ok = parts.size() < 3 || parts[parts.size() - 3] == table_.schema;
    if (rel != qualifier_ || !schema_ok) {
      return Error(loc, "missing FROM-clause entry for table \"" + rel + "\"");
    }
  }
  int idx = table_.FindColumn(column);
  if (idx < 0) {
    return Error(
        loc, "column " + (parts.size() > 1 ? written : "\"" + written + "\"") + " does not exist");
  }
  if (mode == Mode::kOutput) {
    return Error(loc, "column \"" + written +
                          "\" must appear in the GROUP BY clause or be used in an aggregate "
                          "function");
  }
  const ColumnInfo& c = table_.columns[static_cast<size_t>(idx)];
  auto e = NewExpr(ExprKind::kInputColumn, c.type_oid, c.typmod);
  e->index = idx;
  return e;
}

int64_t Compiler::IntegerConstant(const json& ival, int loc) const {
  if (const json* v = Field(ival, "ival")) return v->get<int64_t>();
  // libpg_query's JSON leaves out zero and (15-4.0.0) negative integers: read the text.
  int64_t v = 0;
  if (loc >= 0) {
    size_t i = static_cast<size_t>(loc);
    bool neg = false;
    if (i < sql_.size() && sql_[i] == '-') {
      neg = true;
      ++i;
      while (i < sql_.size() && std::isspace(static_cast<unsigned char>(sql_[i]))) ++i;
    }
    while (i < sql_.size() && std::isdigit(static_cast<unsigned char>(sql_[i]))) {
      v = v * 10 + (sql_[i] - '0');
      ++i;
    }
    if (neg) v = -v;
  }
  return v;
}

Result<MExpr> Compiler::Const(const json& b) {
  int loc = Location(b);
  if (b.value("isnull", false)) return ConstExpr(Value::Null(pgtype::kUnknown));
  if (const json* iv = Field(b, "ival")) {
    return ConstExpr(Value::Int(pgtype::kInt4, IntegerConstant(*iv, loc)));
  }
  if (const json* fv = Field(b, "fval")) {
    std::string s = fv->value("fval", std::string("0"));
    bool integral = !s.empty();
    for (size_t i = 0; i < s.size(); ++i) {
      if (!(std::isdigit(static_cast<unsigned char>(s[i])) || (i == 0 && s[i] == '-'))) {
        integral = false;
      }
    }
    if (integral && s.size() <= 20) {
      errno = 0;
      char* end = nullptr;
      long long v = std::strtoll(s.c_str(), &end, 10);
      if (errno == 0) {
        Oid t = (v >= INT32_MIN && v <= INT32_MAX) ? pgtype::kInt4 : pgtype::kInt8;
        return ConstExpr(Value::Int(t, v));
      }
    }
    auto n = Numeric::Parse(s);
    if (!n.ok()) return Error(loc, "invalid numeric constant " + s);
    return ConstExpr(Value::Num(std::move(n).value()));
  }
  if (const json* sv = Field(b, "sval")) {
    return ConstExpr(Value::Text(pgtype::kUnknown, sv->value("sval", std::string())));
  }
  if (const json* bv = Field(b, "boolval")) {
    return ConstExpr(Value::Bool(bv->value("boolval", false)));
  }
  return Unsupported(loc, "constant");
}

Result<std::pair<Oid, int32_t>> Compiler::ResolveType(const json& tn) {
  int loc = Location(tn);
  std::string name;
  if (const json* names = Field(tn, "names"); names && !names->empty()) {
    name = StringValue(names->back());
  }
  if (Field(tn, "arrayBounds") != nullptr) return Unsupported(loc, "array type " + name + "[]");
  std::vector<int64_t> mods;
  if (const json* tm = Field(tn, "typmods")) {
    for (const auto& m : *tm) {
      if (NodeName(m) != "A_Const") return Error(loc, "type modifiers must be simple constants");
      const json& mb = NodeBody(m);
      const json* iv = Field(mb, "ival");
      if (iv == nullptr) return Error(loc, "type modifiers must be simple constants");
      mods.push_back(IntegerConstant(*iv, Location(mb)));
    }
  }
  static const std::map<std::string, Oid> kTypes = {
      {"int2", pgtype::kInt2},           {"smallint", pgtype::kInt2},
      {"int4", pgtype::kInt4},           {"int", pgtype::kInt4},
      {"integer", pgtype::kInt4},        {"int8", pgtype::kInt8},
      {"bigint", pgtype::kInt8},         {"numeric", pgtype::kNumeric},
      {"decimal", pgtype::kNumeric},     {"float4", pgtype::kFloat4},
      {"real", pgtype::kFloat4},         {"float8", pgtype::kFloat8},
      {"text", pgtype::kText},           {"varchar", pgtype::kVarchar},
      {"bpchar", pgtype::kBpchar},       {"char", pgtype::kBpchar},
      {"character", pgtype::kBpchar},    {"date", pgtype::kDate},
      {"timestamp", pgtype::kTimestamp}, {"timestamptz", pgtype::kTimestampTz},
      {"bool", pgtype::kBool},           {"boolean", pgtype::kBool},
      {"interval", pgtype::kInterval}};
  auto it = kTypes.find(name);
  if (it == kTypes.end()) return Unsupported(loc, "type " + name);
  Oid t = it->second;
  if (t == pgtype::kInterval && !mods.empty()) {
    return Unsupported(loc, "interval with fields or a precision");
  }
  int32_t typmod = -1;
  switch (t) {
    case pgtype::kNumeric:
      if (mods.size() > 2) return Error(loc, "invalid NUMERIC type modifier");
      if (!mods.empty()) {
        int p = static_cast<int>(mods[0]);
        int s = mods.size() > 1 ? static_cast<int>(mods[1]) : 0;
        if (p < 1 || p > 1000) {
          return Error(loc,
                       "NUMERIC precision " + std::to_string(p) + " must be between 1 and 1000");
        }
        typmod = NumericTypmod(p, s);
      }
      break;
    case pgtype::kVarchar:
    case pgtype::kBpchar:
      if (mods.size() > 1) return Error(loc, "invalid type modifier");
      if (!mods.empty()) {
        if (mods[0] < 1) return Error(loc, "length for type " + name + " must be at least 1");
        typmod = VarcharTypmod(static_cast<int>(mods[0]));
      }
      break;
    case pgtype::kTimestamp:
    case pgtype::kTimestampTz:
      if (mods.size() > 1) return Error(loc, "invalid type modifier");
      if (!mods.empty()) typmod = static_cast<int32_t>(std::clamp<int64_t>(mods[0], 0, 6));
      break;
    default:
      if (!mods.empty()) return Error(loc, "type modifier is not allowed for type " + name);
  }
  return std::make_pair(t, typmod);
}

bool CanCast(Oid from, Oid to) {
  if (from == to || from == pgtype::kUnknown || IsTextType(to)) return true;
  char cf = Category(from), ct = Category(to);
  if (cf == 'S') return ct != 'X';
  if (cf == 'N' && ct == 'N') return true;
  if (cf == 'D' && ct == 'D') return !(from == pgtype::kDate && to == pgtype::kDate);
  if ((from == pgtype::kBool && to == pgtype::kInt4) ||
      (from == pgtype::kInt4 && to == pgtype::kBool)) {
    return true;
  }
  return false;
}

bool ZoneDependent(Oid from, Oid to) {
  if (from == to) return false;
  return from == pgtype::kTimestampTz || to == pgtype::kTimestampTz;
}

Result<MExpr> Compiler::Coerce(MExpr e, Oid target, int32_t typmod, int loc) {
  if (e->type == target && (typmod == e->typmod)) return e;
  if (e->type == target && typmod < 0) {
    auto copy = std::make_shared<Expr>(*e);
    copy->typmod = -1;
    return copy;
  }
  if (!CanCast(e->type, target)) {
    return Error(loc, "cannot cast type " + TypeText(e->type) + " to " + TypeText(target));
  }
  if (e->kind == ExprKind::kConst) {
    if (e->constant.is_null()) return ConstExpr(Value::Null(target), typmod);
    EvalContext ctx;
    auto v = internal::CastValue(e->constant, target, typmod, ctx);
    if (!v.ok()) {
      if (v.status().code() == StatusCode::kNotSupported) {
        return Unsupported(loc, v.status().message());
      }
      return Error(loc, v.status().message());
    }
    if (!ZoneDependent(e->type, target) &&
        !(e->type == pgtype::kUnknown &&
          (target == pgtype::kDate || target == pgtype::kTimestamp))) {
      return ConstExpr(std::move(v).value(), typmod);
    }
    // Literals such as 'today' or a timestamptz without offset depend on the session; the
    // cast stays and runs with the session's zone.
    if (e->type == pgtype::kUnknown && target != pgtype::kTimestampTz) {
      return ConstExpr(std::move(v).value(), typmod);
    }
    if (e->type == pgtype::kUnknown && target == pgtype::kTimestampTz) {
      auto parsed = dt::ParseTimestamp(e->constant.as_text(), "timestamp with time zone");
      if (parsed.ok() && (parsed->offset_seconds.has_value() || parsed->zone != nullptr ||
                          parsed->local == INT64_MAX || parsed->local == INT64_MIN)) {
        return ConstExpr(std::move(v).value(), typmod);
      }
    }
  }
  auto c = NewExpr(ExprKind::kCast, target, typmod);
  c->args.push_back(std::move(e));
  return c;
}

Result<MExpr> Compiler::CoerceBool(MExpr e, const char* clause, int loc) {
  if (e->type == pgtype::kBool) return e;
  if (IsUnknown(*e)) return Coerce(std::move(e), pgtype::kBool, -1, loc);
  return Error(loc, std::string("argument of ") + clause + " must be type boolean, not type " +
                        TypeText(e->type));
}

Result<MExpr> Compiler::Compare(CmpOp op, MExpr l, MExpr r, int loc, const std::string& op_text) {
  if (IsUnknown(*l) && IsUnknown(*r)) {
    TALLY_ASSIGN_OR_RETURN(l, Coerce(std::move(l), pgtype::kText, -1, loc));
    TALLY_ASSIGN_OR_RETURN(r, Coerce(std::move(r), pgtype::kText, -1, loc));
  } else if (IsUnknown(*l)) {
    TALLY_ASSIGN_OR_RETURN(l, Coerce(std::move(l), r->type, -1, loc));
  } else if (IsUnknown(*r)) {
    TALLY_ASSIGN_OR_RETURN(r, Coerce(std::move(r), l->type, -1, loc));
  }
  Oid lt = l->type, rt = r->type;
  char lc = Category(lt), rc = Category(rt);
  if (lt != rt) {
    if (lc == 'N' && rc == 'N') {
      Oid t = NumericOperatorType(lt, rt);
      if (!IsIntegerType(t)) {
        TALLY_ASSIGN_OR_RETURN(l, Coerce(std::move(l), t, -1, loc));
        TALLY_ASSIGN_OR_RETURN(r, Coerce(std::move(r), t, -1, loc));
      }
    } else if (lc == 'S' && rc == 'S') {
      if (lt == pgtype::kBpchar) {
        TALLY_ASSIGN_OR_RETURN(l, Coerce(std::move(l), pgtype::kText, -1, loc));
      }
      if (rt == pgtype::kBpchar) {
        TALLY_ASSIGN_OR_RETURN(r, Coerce(std::move(r), pgtype::kText, -1, loc));
      }
    } else if (lc == 'D' && rc == 'D') {
      Oid t = (lt == pgtype::kTimestampTz || rt == pgtype::kTimestampTz) ? pgtype::kTimestampTz
                                                                         : pgtype::kTimestamp;
      TALLY_ASSIGN_OR_RETURN(l, Coerce(std::move(l), t, -1, loc));
      TALLY_ASSIGN_OR_RETURN(r, Coerce(std::move(r), t, -1, loc));
    } else {
      return Error(loc,
                   "operator does not exist: " + TypeText(lt) + " " + op_text + " " + TypeText(rt));
    }
  } else if (lc == 'X' && ReprOf(lt) == Repr::kText && op != CmpOp::kEq && op != CmpOp::kNe) {
    return Unsupported(loc, "ordering comparison of type " + TypeText(lt));
  }
  auto e = NewExpr(ExprKind::kCompare, pgtype::kBool);
  e->op = static_cast<uint8_t>(op);
  e->args = {std::move(l), std::move(r)};
  return e;
}

Result<MExpr> Compiler::Arith(const std::string& op, MExpr l, MExpr r, int loc) {
  auto no_op = [&]() {
    return Error(
        loc, "operator does not exist: " + TypeText(l->type) + " " + op + " " + TypeText(r->type));
  };
  if (op == "||") {
    bool ls = Category(l->type) == 'S', rs = Category(r->type) == 'S';
    if (!ls && !rs) return no_op();
    // text || anynonarray is SQL's $1 || $2::text: a cast (true, not t).
    TALLY_ASSIGN_OR_RETURN(l, Coerce(std::move(l), pgtype::kText, -1, loc));
    TALLY_ASSIGN_OR_RETURN(r, Coerce(std::move(r), pgtype::kText, -1, loc));
    auto e = NewExpr(ExprKind::kArith, pgtype::kText);
    e->op = static_cast<uint8_t>(ArithOp::kConcat);
    e->args = {std::move(l), std::move(r)};
    return e;
  }
  if (IsUnknown(*l) && IsUnknown(*r)) {
    return Error(loc, "operator is not unique: unknown " + op + " unknown");
  }
  ArithOp aop = op == "+"   ? ArithOp::kAdd
                : op == "-" ? ArithOp::kSub
                : op == "*" ? ArithOp::kMul
                : op == "/" ? ArithOp::kDiv
                            : ArithOp::kMod;
  bool add_sub = aop == ArithOp::kAdd || aop == ArithOp::kSub;
  bool mul_div = aop == ArithOp::kMul || aop == ArithOp::kDiv;
  // An unknown literal takes the other operand's type when that operator exists; otherwise
  // the one operator Postgres's resolution finds (timestamp + '1 day' is + interval,
  // interval * '2' is * float8).
  auto resolve_unknown = [&](MExpr& unknown, const MExpr& known, bool unknown_left) -> Status {
    Oid k = known->type;
    Oid target = k;
    std::string pair =
        unknown_left ? "unknown " + op + " " + TypeText(k) : TypeText(k) + " " + op + " unknown";
    if (Category(k) == 'D') {
      if (!add_sub) return Error(loc, "operator does not exist: " + pair);
      if (k == pgtype::kDate && aop == ArithOp::kAdd) {
        return Error(loc, "operator is not unique: " + pair);
      }
      if (aop == ArithOp::kAdd) target = pgtype::kInterval;
    } else if (k == pgtype::kInterval) {
      if (aop == ArithOp::kMod || (unknown_left && aop == ArithOp::kDiv)) {
        return Error(loc, "operator does not exist: " + pair);
      }
      if (mul_div) target = pgtype::kFloat8;
    }
    TALLY_ASSIGN_OR_RETURN(unknown, Coerce(std::move(unknown), target, -1, loc));
    return Status::Ok();
  };
  if (IsUnknown(*l)) TALLY_RETURN_IF_ERROR(resolve_unknown(l, r, true));
  if (IsUnknown(*r)) TALLY_RETURN_IF_ERROR(resolve_unknown(r, l, false));
  Oid lt = l->type, rt = r->type;
  char lc = Category(lt), rc = Category(rt);
  Oid result;
  if (lc == 'N' && rc == 'N') {
    result = NumericOperatorType(lt, rt);
    if (aop == ArithOp::kMod && (result == pgtype::kFloat4 || result == pgtype::kFloat8)) {
      return no_op();
    }
    if (!IsIntegerType(result)) {
      TALLY_ASSIGN_OR_RETURN(l, Coerce(std::move(l), result, -1, loc));
      TALLY_ASSIGN_OR_RETURN(r, Coerce(std::move(r), result, -1, loc));
    }
  } else if (lt == pgtype::kDate && rt == pgtype::kDate) {
    if (aop != ArithOp::kSub) return no_op();
    result = pgtype::kInt4;
  } else if (lt == pgtype::kDate && (rt == pgtype::kInt2 || rt == pgtype::kInt4) && add_sub) {
    result = pgtype::kDate;
  } else if ((lt == pgtype::kInt2 || lt == pgtype::kInt4) && rt == pgtype::kDate &&
             aop == ArithOp::kAdd) {
    result = pgtype::kDate;
  } else if (lc == 'D' && rt == pgtype::kInterval && add_sub) {
    // date + interval is timestamp + interval.
    result = lt == pgtype::kDate ? pgtype::kTimestamp : lt;
    TALLY_ASSIGN_OR_RETURN(l, Coerce(std::move(l), result, -1, loc));
  } else if (lt == pgtype::kInterval && rc == 'D' && aop == ArithOp::kAdd) {
    result = rt == pgtype::kDate ? pgtype::kTimestamp : rt;
    TALLY_ASSIGN_OR_RETURN(r, Coerce(std::move(r), result, -1, loc));
  } else if (lc == 'D' && rc == 'D' && aop == ArithOp::kSub) {
    // timestamp - timestamp (a date side is cast, as operator resolution does).
    Oid t = (lt == pgtype::kTimestampTz || rt == pgtype::kTimestampTz) ? pgtype::kTimestampTz
                                                                       : pgtype::kTimestamp;
    TALLY_ASSIGN_OR_RETURN(l, Coerce(std::move(l), t, -1, loc));
    TALLY_ASSIGN_OR_RETURN(r, Coerce(std::move(r), t, -1, loc));
    result = pgtype::kInterval;
  } else if (lt == pgtype::kInterval && rt == pgtype::kInterval && add_sub) {
    result = pgtype::kInterval;
  } else if (lt == pgtype::kInterval && rc == 'N' && mul_div) {
    TALLY_ASSIGN_OR_RETURN(r, Coerce(std::move(r), pgtype::kFloat8, -1, loc));
    result = pgtype::kInterval;
  } else if (lc == 'N' && rt == pgtype::kInterval && aop == ArithOp::kMul) {
    TALLY_ASSIGN_OR_RETURN(l, Coerce(std::move(l), pgtype::kFloat8, -1, loc));
    result = pgtype::kInterval;
  } else {
    return no_op();
  }
  auto e = NewExpr(ExprKind::kArith, result);
  e->op = static_cast<uint8_t>(aop);
  e->args = {std::move(l), std::move(r)};
  return e;
}

Result<std::pair<Oid, int32_t>> Compiler::CommonType(const std::vector<MExpr>& es, const char* what,
                                                     int loc) {
  Oid t = pgtype::kUnknown;
  int32_t typmod = -1;
  bool first = true;
  bool same = true;
  for (const auto& e : es) {
    if (IsUnknown(*e)) continue;
    if (first) {
      t = e->type;
      typmod = e->typmod;
      first = false;
      continue;
    }
    if (e->type != t || e->typmod != typmod) same = false;
    if (Category(e->type) != Category(t) || (Category(t) == 'X' && e->type != t) ||
        (Category(t) == 'B' && e->type != t)) {
      return Error(loc, std::string(what) + " types " + TypeText(t) + " and " + TypeText(e->type) +
                            " cannot be matched");
    }
    t = t;  // refined below
  }
  if (first) return std::make_pair(pgtype::kText, -1);
  if (same) return std::make_pair(t, typmod);
  char cat = Category(t);
  bool any_f8 = false, any_f4 = false, any_num = false, all_same_type = true;
  int rank = 0;
  Oid best_int = pgtype::kInt2;
  bool any_tz = false, any_ts = false;
  for (const auto& e : es) {
    if (IsUnknown(*e)) continue;
    Oid x = e->type;
    if (x != t) all_same_type = false;
    any_f8 |= x == pgtype::kFloat8;
    any_f4 |= x == pgtype::kFloat4;
    any_num |= x == pgtype::kNumeric;
    any_tz |= x == pgtype::kTimestampTz;
    any_ts |= x == pgtype::kTimestamp;
    if (IsIntegerType(x) && IntRank(x) > rank) {
      rank = IntRank(x);
      best_int = x;
    }
  }
  if (all_same_type) return std::make_pair(t, -1);
  switch (cat) {
    case 'N':
      return std::make_pair(any_f8    ? pgtype::kFloat8
                            : any_f4  ? pgtype::kFloat4
                            : any_num ? pgtype::kNumeric
                                      : best_int,
                            -1);
    case 'S':
      return std::make_pair(pgtype::kText, -1);
    case 'D':
      return std::make_pair(any_tz   ? pgtype::kTimestampTz
                            : any_ts ? pgtype::kTimestamp
                                     : pgtype::kDate,
                            -1);
    default:
      return std::make_pair(t, -1);
  }
}

Result<MExpr> Compiler::TypeCast(const json& b, Mode mode) {
  int loc = Location(b);
  TALLY_ASSIGN_OR_RETURN(auto type, ResolveType(b.at("typeName")));
  TALLY_ASSIGN_OR_RETURN(MExpr arg, Sub(b.at("arg"), mode));
  return Coerce(std::move(arg), type.first, type.second, loc >= 0 ? loc : MinLocation(b));
}

Result<MExpr> Compiler::AExpr(const json& b, Mode mode) {
  int loc = Location(b);
  std::string kind = b.value("kind", std::string());
  std::string op;
  if (const json* names = Field(b, "name"); names && !names->empty()) {
    op = StringValue(names->back());
  }
  static const std::map<std::string, CmpOp> kCmp = {
      {"=", CmpOp::kEq},  {"<>", CmpOp::kNe}, {"!=", CmpOp::kNe}, {"<", CmpOp::kLt},
      {"<=", CmpOp::kLe}, {">", CmpOp::kGt},  {">=", CmpOp::kGe}};
  const json* lexpr = Field(b, "lexpr");
  const json* rexpr = Field(b, "rexpr");
  if (kind == "AEXPR_OP") {
    if (lexpr == nullptr) {  // prefix operator
      TALLY_ASSIGN_OR_RETURN(MExpr x, Sub(*rexpr, mode));
      if (op == "+") return x;
      if (op != "-") return Unsupported(loc, "operator " + op);
      if (IsUnknown(*x)) {
        TALLY_ASSIGN_OR_RETURN(x, Coerce(std::move(x), pgtype::kFloat8, -1, loc));
      }
      if (Category(x->type) != 'N' && x->type != pgtype::kInterval) {
        return Error(loc, "operator does not exist: - " + TypeText(x->type));
      }
      if (x->kind == ExprKind::kConst) {
        EvalContext ctx;
        auto neg = NewExpr(ExprKind::kNegate, x->type, x->typmod);
        neg->args.push_back(x);
        auto v = Evaluate(*neg, ctx);
        if (!v.ok()) return Error(loc, v.status().message());
        return ConstExpr(std::move(v).value(), x->typmod);
      }
      auto e = NewExpr(ExprKind::kNegate, x->type, x->typmod);
      e->args.push_back(std::move(x));
      return e;
    }
    TALLY_ASSIGN_OR_RETURN(MExpr l, Sub(*lexpr, mode));
    TALLY_ASSIGN_OR_RETURN(MExpr r, Sub(*rexpr, mode));
    auto it = kCmp.find(op);
    if (it != kCmp.end()) return Compare(it->second, std::move(l), std::move(r), loc, op);
    if (op == "+" || op == "-" || op == "*" || op == "/" || op == "%" || op == "||") {
      return Arith(op, std::move(l), std::move(r), loc);
    }
    return Unsupported(loc, "operator " + op);
  }
  if (kind == "AEXPR_IN") {
    TALLY_ASSIGN_OR_RETURN(MExpr x, Sub(*lexpr, mode));
    std::vector<MExpr> all = {x};
    const json* items = Field(*rexpr, "List");
    if (items == nullptr) return Unsupported(loc, "IN (subquery)");
    for (const auto& item : items->at("items")) {
      TALLY_ASSIGN_OR_RETURN(MExpr v, Sub(item, mode));
      all.push_back(std::move(v));
    }
    auto common = CommonType(all, "IN", loc);
    if (!common.ok()) {
      // Postgres falls back to one comparison per item; so do we (same result).
      auto e = NewExpr(ExprKind::kOr, pgtype::kBool);
      for (size_t i = 1; i < all.size(); ++i) {
        TALLY_ASSIGN_OR_RETURN(MExpr c, Compare(CmpOp::kEq, x, all[i], loc, "="));
        e->args.push_back(std::move(c));
      }
      if (op == "<>") {
        auto n = NewExpr(ExprKind::kNot, pgtype::kBool);
        n->args.push_back(std::move(e));
        return n;
      }
      return e;
    }
    Oid t = common->first;
    // The comparison runs in the common type; for text categories this is text.
    auto e = NewExpr(ExprKind::kIn, pgtype::kBool);
    e->negated = op == "<>";
    for (auto& a : all) {
      if (a->type != t && !(IsIntegerType(a->type) && IsIntegerType(t)) &&
          !(Category(a->type) == 'S' && Category(t) == 'S' && !IsUnknown(*a) &&
            a->type != pgtype::kBpchar)) {
        TALLY_ASSIGN_OR_RETURN(a, Coerce(std::move(a), t, -1, loc));
      }
      e->args.push_back(std::move(a));
    }
    if (Category(t) == 'X' && ReprOf(t) != Repr::kText) {
      return Unsupported(loc, "IN over type " + TypeText(t));
    }
    return e;
  }
  if (kind == "AEXPR_BETWEEN" || kind == "AEXPR_NOT_BETWEEN") {
    const json& bounds = rexpr->at("List").at("items");
    bool negated = kind == "AEXPR_NOT_BETWEEN";
    TALLY_ASSIGN_OR_RETURN(MExpr x1, Sub(*lexpr, mode));
    TALLY_ASSIGN_OR_RETURN(MExpr x2, Sub(*lexpr, mode));
    TALLY_ASSIGN_OR_RETURN(MExpr lo, Sub(bounds.at(0), mode));
    TALLY_ASSIGN_OR_RETURN(MExpr hi, Sub(bounds.at(1), mode));
    TALLY_ASSIGN_OR_RETURN(
        MExpr c1, Compare(negated ? CmpOp::kLt : CmpOp::kGe, x1, lo, loc, negated ? "<" : ">="));
    TALLY_ASSIGN_OR_RETURN(
        MExpr c2, Compare(negated ? CmpOp::kGt : CmpOp::kLe, x2, hi, loc, negated ? ">" : "<="));
    auto e = NewExpr(negated ? ExprKind::kOr : ExprKind::kAnd, pgtype::kBool);
    e->args = {std::move(c1), std::move(c2)};
    return e;
  }
  if (kind == "AEXPR_NULLIF") {
    TALLY_ASSIGN_OR_RETURN(MExpr l, Sub(*lexpr, mode));
    TALLY_ASSIGN_OR_RETURN(MExpr r, Sub(*rexpr, mode));
    Oid result_type = IsUnknown(*l) ? pgtype::kText : l->type;
    int32_t result_typmod = l->typmod;
    TALLY_ASSIGN_OR_RETURN(MExpr cmp, Compare(CmpOp::kEq, l, r, loc, "="));
    auto e = NewExpr(ExprKind::kNullIf, result_type, result_typmod);
    MExpr a = std::const_pointer_cast<Expr>(cmp->args[0]);
    MExpr c = std::const_pointer_cast<Expr>(cmp->args[1]);
    e->args = {a, c};
    if (a->type != result_type) {
      // NULLIF returns its first argument uncast; evaluate the comparison on the cast form but
      // the result from the original.
      return Unsupported(loc, "NULLIF over mixed types");
    }
    return e;
  }
  if (kind == "AEXPR_DISTINCT" || kind == "AEXPR_NOT_DISTINCT") {
    TALLY_ASSIGN_OR_RETURN(MExpr l, Sub(*lexpr, mode));
    TALLY_ASSIGN_OR_RETURN(MExpr r, Sub(*rexpr, mode));
    TALLY_ASSIGN_OR_RETURN(MExpr cmp, Compare(CmpOp::kEq, std::move(l), std::move(r), loc, "="));
    auto e = NewExpr(ExprKind::kIsDistinctFrom, pgtype::kBool);
    e->negated = kind == "AEXPR_NOT_DISTINCT";
    e->args = cmp->args;
    return e;
  }
  if (kind == "AEXPR_OP_ANY" || kind == "AEXPR_OP_ALL") {
    return AnyAll(b, op, kind == "AEXPR_OP_ALL", mode);
  }
  if (kind == "AEXPR_LIKE" || kind == "AEXPR_ILIKE") return Like(b, mode, loc, kind, op);
  return Unsupported(loc, kind == "AEXPR_SIMILAR" ? "SIMILAR TO" : "operator " + op);
}

namespace {

// array_in for a one-dimensional literal: elements as text, NULL for an unquoted NULL.
// NotSupported for several dimensions or explicit bounds.
Result<std::vector<std::optional<std::string>>> ParseArrayLiteral(const std::string& text) {
  auto malformed = [&]() {
    return Status::InvalidArgument("malformed array literal: \"" + text + "\"");
  };
  auto space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  size_t i = 0;
  while (i < text.size() && space(text[i])) ++i;
  if (i < text.size() && text[i] == '[') {
    return Status::NotSupported("array literal with explicit bounds");
  }
  if (i >= text.size() || text[i] != '{') return malformed();
  ++i;
  std::vector<std::optional<std::string>> out;
  while (i < text.size() && space(text[i])) ++i;
  if (i < text.size() && text[i] == '}') {
    ++i;
  } else {
    while (true) {
      while (i < text.size() && space(text[i])) ++i;
      if (i >= text.size()) return malformed();
      if (text[i] == '{') return Status::NotSupported("multidimensional array literal");
      std::string elem;
      bool quoted = false, any_escape = false;
      size_t trailing = 0;  // unescaped trailing whitespace of an unquoted element
      if (text[i] == '"') {
        quoted = true;
        ++i;
        while (true) {
          if (i >= text.size()) return malformed();
          char c = text[i++];
          if (c == '"') break;
          if (c == '\\') {
            if (i >= text.size()) return malformed();
            c = text[i++];
          }
          elem += c;
        }
        while (i < text.size() && space(text[i])) ++i;
      } else {
        while (true) {
          if (i >= text.size()) return malformed();
          char c = text[i];
          if (c == ',' || c == '}') break;
          if (c == '"' || c == '{') return malformed();
          ++i;
          if (c == '\\') {
            if (i >= text.size()) return malformed();
            elem += text[i++];
            any_escape = true;
            trailing = 0;
            continue;
          }
          elem += c;
          trailing = space(c) ? trailing + 1 : 0;
        }
        elem.resize(elem.size() - trailing);
        if (elem.empty() && !any_escape) return malformed();
      }
      if (i >= text.size()) return malformed();
      if (!quoted && !any_escape && elem.size() == 4 && (elem[0] == 'N' || elem[0] == 'n') &&
          (elem[1] == 'U' || elem[1] == 'u') && (elem[2] == 'L' || elem[2] == 'l') &&
          (elem[3] == 'L' || elem[3] == 'l')) {
        out.emplace_back(std::nullopt);
      } else {
        out.emplace_back(std::move(elem));
      }
      char c = text[i++];
      if (c == '}') break;
      if (c != ',') return malformed();
    }
  }
  while (i < text.size() && space(text[i])) ++i;
  if (i != text.size()) return malformed();
  return out;
}

}  // namespace

// The right operand of op ANY / ALL: ARRAY[...] (optionally cast to an array type), an array
// literal cast to an array type, or an untyped literal (typed from the left operand by the
// caller: *elem_type stays kUnknown). *is_null for a NULL array.
Result<std::vector<MExpr>> Compiler::ArrayElements(const json& node, Oid* elem_type, bool* is_null,
                                                   Mode mode) {
  *is_null = false;
  *elem_type = pgtype::kUnknown;
  std::string type = NodeName(node);
  const json& b = NodeBody(node);
  int loc = MinLocation(node);
  const json* cast_type = nullptr;
  const json* inner = &node;
  if (type == "TypeCast") {
    cast_type = &b.at("typeName");
    if (Field(*cast_type, "arrayBounds") == nullptr) {
      return Unsupported(loc, "ANY/ALL over a value that is not an array");
    }
    inner = &b.at("arg");
  }
  std::string inner_type = NodeName(*inner);
  const json& ib = NodeBody(*inner);
  Oid target = pgtype::kInvalid;
  int32_t target_typmod = -1;
  if (cast_type != nullptr) {
    json element_type = *cast_type;
    element_type.erase("arrayBounds");
    TALLY_ASSIGN_OR_RETURN(auto t, ResolveType(element_type));
    target = t.first;
    target_typmod = t.second;
  }
  std::vector<MExpr> elems;
  if (inner_type == "A_ArrayExpr") {
    if (const json* list = Field(ib, "elements")) {
      for (const auto& el : *list) {
        if (NodeName(el) == "A_ArrayExpr") {
          return Unsupported(MinLocation(el), "multidimensional ARRAY[...]");
        }
        TALLY_ASSIGN_OR_RETURN(MExpr x, Sub(el, mode));
        elems.push_back(std::move(x));
      }
    }
    if (target == pgtype::kInvalid) {
      if (elems.empty()) return Error(Location(ib), "cannot determine type of empty array");
      TALLY_ASSIGN_OR_RETURN(auto common, CommonType(elems, "ARRAY", Location(ib)));
      target = common.first;
      target_typmod = common.second;
    }
    for (auto& x : elems) {
      TALLY_ASSIGN_OR_RETURN(x, Coerce(std::move(x), target, target_typmod, Location(ib)));
    }
    *elem_type = target;
    return elems;
  }
  if (inner_type == "A_Const") {
    TALLY_ASSIGN_OR_RETURN(MExpr c, Const(ib));
    if (c->constant.is_null()) {
      *is_null = true;
      *elem_type = target == pgtype::kInvalid ? pgtype::kUnknown : target;
      return elems;
    }
    if (!IsUnknown(*c)) return Unsupported(loc, "ANY/ALL over a value that is not an array");
    auto items = ParseArrayLiteral(c->constant.as_text());
    if (!items.ok()) {
      if (items.status().code() == StatusCode::kNotSupported) {
        return Unsupported(Location(ib), items.status().message());
      }
      return Error(Location(ib), items.status().message());
    }
    for (auto& item : *items) {
      MExpr x = item ? ConstExpr(Value::Text(pgtype::kUnknown, std::move(*item)))
                     : ConstExpr(Value::Null(pgtype::kUnknown));
      if (target != pgtype::kInvalid) {
        TALLY_ASSIGN_OR_RETURN(x, Coerce(std::move(x), target, target_typmod, Location(ib)));
      }
      elems.push_back(std::move(x));
    }
    *elem_type = target == pgtype::kInvalid ? pgtype::kUnknown : target;
    return elems;
  }
  return Unsupported(loc, "ANY/ALL over an array that is not a constant or ARRAY[...]");
}

Result<MExpr> Compiler::AnyAll(const json& b, const std::string& op, bool all, Mode mode) {
  int loc = Location(b);
  static const std::map<std::string, CmpOp> kCmp = {
      {"=", CmpOp::kEq},  {"<>", CmpOp::kNe}, {"!=", CmpOp::kNe}, {"<", CmpOp::kLt},
      {"<=", CmpOp::kLe}, {">", CmpOp::kGt},  {">=", CmpOp::kGe}};
  auto it = kCmp.find(op);
  if (it == kCmp.end()) return Unsupported(loc, op + (all ? " ALL (array)" : " ANY (array)"));
  CmpOp cmp = it->second;
  TALLY_ASSIGN_OR_RETURN(MExpr x, Sub(b.at("lexpr"), mode));
  Oid elem_type;
  bool is_null;
  TALLY_ASSIGN_OR_RETURN(std::vector<MExpr> elems,
                         ArrayElements(b.at("rexpr"), &elem_type, &is_null, mode));
  // Resolve the operator on (x, element type) with a typed probe; an untyped literal array
  // takes x's type, as make_scalar_array_op does.
  MExpr probe_elem = ConstExpr(Value::Null(elem_type));
  TALLY_ASSIGN_OR_RETURN(MExpr probe, Compare(cmp, x, probe_elem, loc, op));
  if (is_null) return ConstExpr(Value::Null(pgtype::kBool));
  MExpr left = std::const_pointer_cast<Expr>(probe->args[0]);
  Oid right_type = probe->args[1]->type;
  if (elems.empty()) return ConstExpr(Value::Bool(all));  // ANY '{}' is false, ALL '{}' true
  bool as_in = (cmp == CmpOp::kEq && !all) || (cmp == CmpOp::kNe && all);
  auto e = NewExpr(as_in ? ExprKind::kIn : ExprKind::kAnyAll, pgtype::kBool);
  if (as_in) {
    e->negated = all;
  } else {
    e->op = static_cast<uint8_t>(cmp);
    e->all = all;
  }
  e->args.push_back(left);
  for (auto& el : elems) {
    if (el->type != right_type) {
      TALLY_ASSIGN_OR_RETURN(el, Coerce(std::move(el), right_type, -1, loc));
    }
    e->args.push_back(std::move(el));
  }
  return e;
}

Result<MExpr> Compiler::Like(const json& b, Mode mode, int loc, const std::string& kind,
                             const std::string& op) {
  bool ilike = kind == "AEXPR_ILIKE";
  bool negated = op.rfind("!", 0) == 0;
  TALLY_ASSIGN_OR_RETURN(MExpr x, Sub(b.at("lexpr"), mode));
  TALLY_ASSIGN_OR_RETURN(MExpr pattern, Sub(b.at("rexpr"), mode));
  if (Category(x->type) != 'S' || Category(pattern->type) != 'S') {
    return Error(loc, "operator does not exist: " + TypeText(x->type) + " " + op + " " +
                          TypeText(pattern->type));
  }
  // bpchar ~~ text keeps the padding (bpcharlike); other strings are compared as text.
  if (x->type != pgtype::kBpchar) {
    TALLY_ASSIGN_OR_RETURN(x, Coerce(std::move(x), pgtype::kText, -1, loc));
  }
  TALLY_ASSIGN_OR_RETURN(pattern, Coerce(std::move(pattern), pgtype::kText, -1, loc));
  auto e = NewExpr(ExprKind::kLike, pgtype::kBool);
  e->op = static_cast<uint8_t>(ilike ? LikeOp::kILike : LikeOp::kLike);
  e->negated = negated;
  e->args = {std::move(x), std::move(pattern)};
  return e;
}

Result<MExpr> Compiler::CaseExpr(const json& b, Mode mode) {
  int loc = Location(b);
  const json* arg = Field(b, "arg");
  std::vector<MExpr> conds, results;
  for (const auto& w : b.at("args")) {
    const json& wb = NodeBody(w);
    int wloc = Location(wb);
    TALLY_ASSIGN_OR_RETURN(MExpr cond, Sub(wb.at("expr"), mode));
    if (arg != nullptr) {
      TALLY_ASSIGN_OR_RETURN(MExpr test, Sub(*arg, mode));
      TALLY_ASSIGN_OR_RETURN(cond,
                             Compare(CmpOp::kEq, std::move(test), std::move(cond), wloc, "="));
    } else {
      TALLY_ASSIGN_OR_RETURN(cond, CoerceBool(std::move(cond), "CASE/WHEN", wloc));
    }
    conds.push_back(std::move(cond));
    TALLY_ASSIGN_OR_RETURN(MExpr res, Sub(wb.at("result"), mode));
    results.push_back(std::move(res));
  }
  const json* def = Field(b, "defresult");
  if (def != nullptr) {
    TALLY_ASSIGN_OR_RETURN(MExpr d, Sub(*def, mode));
    results.push_back(std::move(d));
  }
  TALLY_ASSIGN_OR_RETURN(auto common, CommonType(results, "CASE", loc));
  auto e = NewExpr(ExprKind::kCase, common.first, common.second);
  for (size_t i = 0; i < conds.size(); ++i) {
    TALLY_ASSIGN_OR_RETURN(MExpr r, Coerce(results[i], common.first, common.second, loc));
    e->args.push_back(conds[i]);
    e->args.push_back(std::move(r));
  }
  if (def != nullptr) {
    TALLY_ASSIGN_OR_RETURN(MExpr r, Coerce(results.back(), common.first, common.second, loc));
    e->args.push_back(std::move(r));
    e->has_else = true;
  }
  return e;
}

Result<MExpr> Compiler::Variadic(const json& b, ExprKind kind, const char* what, Mode mode) {
  int loc = Location(b);
  std::vector<MExpr> args;
  for (const auto& a : b.at("args")) {
    TALLY_ASSIGN_OR_RETURN(MExpr x, Sub(a, mode));
    args.push_back(std::move(x));
  }
  TALLY_ASSIGN_OR_RETURN(auto common, CommonType(args, what, loc));
  auto e = NewExpr(kind, common.first, common.second);
  for (auto& a : args) {
    TALLY_ASSIGN_OR_RETURN(MExpr c, Coerce(std::move(a), common.first, common.second, loc));
    e->args.push_back(std::move(c));
  }
  if ((kind == ExprKind::kGreatest || kind == ExprKind::kLeast) && Category(common.first) == 'X' &&
      ReprOf(common.first) == Repr::kText) {
    return Unsupported(loc, std::string(what) + " over type " + TypeText(common.first));
  }
  return e;
}

Result<MExpr> Compiler::TimezoneArg(const json& node, MExpr fn, Mode mode) {
  TALLY_ASSIGN_OR_RETURN(MExpr zone, Sub(node, mode));
  int loc = MinLocation(node);
  TALLY_ASSIGN_OR_RETURN(zone, Coerce(std::move(zone), pgtype::kText, -1, loc));
  if (zone->kind == ExprKind::kConst && !zone->constant.is_null()) {
    auto z = FindTimeZone(zone->constant.as_text());
    if (!z.ok()) return Error(loc, z.status().message());
    fn->zone = *z;
  }
  fn->args.push_back(std::move(zone));
  return fn;
}

Result<MExpr> Compiler::FuncCall(const json& b, Mode mode) {
  int loc = Location(b);
  std::string name = internal::FuncName(b);
  if (internal::IsSupportedAggregate(name) && Field(b, "over") == nullptr) {
    return Aggregate(b, name, mode);
  }
  if (Field(b, "over") != nullptr) return Unsupported(loc, "window function " + name + "()");
  if (Field(b, "agg_filter") != nullptr || b.value("agg_star", false) ||
      b.value("agg_distinct", false)) {
    return Error(loc, name + "() is not an aggregate function");
  }
  std::vector<const json*> raw;
  if (const json* a = Field(b, "args")) {
    for (const auto& x : *a) raw.push_back(&x);
  }
  auto nargs = [&](size_t lo, size_t hi) -> Status {
    if (raw.size() < lo || raw.size() > hi) {
      return Error(loc, "function " + name + " with " + std::to_string(raw.size()) +
                            " arguments does not exist");
    }
    return Status::Ok();
  };
  auto unit_of = [&](const json& node, const char* for_what) -> Result<dt::Unit> {
    TALLY_ASSIGN_OR_RETURN(MExpr f, Sub(node, mode));
    if (f->kind != ExprKind::kConst || f->constant.is_null() ||
        ReprOf(f->constant.type()) != Repr::kText) {
      return Unsupported(MinLocation(node), std::string(for_what) + " with a non-constant field");
    }
    auto u = dt::ParseUnit(f->constant.as_text());
    if (!u) {
      return Error(MinLocation(node), "unit \"" + f->constant.as_text() + "\" not recognized");
    }
    return *u;
  };
  auto field_const = [&](const json& node) -> Result<MExpr> {
    TALLY_ASSIGN_OR_RETURN(MExpr f, Sub(node, mode));
    return Coerce(std::move(f), pgtype::kText, -1, MinLocation(node));
  };
  if (name == "date_trunc") {
    TALLY_RETURN_IF_ERROR(nargs(2, 3));
    TALLY_ASSIGN_OR_RETURN(dt::Unit unit, unit_of(*raw[0], "date_trunc"));
    if (unit > dt::Unit::kMillennium) {
      return Error(MinLocation(*raw[0]), "unit is not supported by date_trunc");
    }
    TALLY_ASSIGN_OR_RETURN(MExpr ts, Sub(*raw[1], mode));
    Oid t = ts->type;
    if (raw.size() == 3 || t == pgtype::kDate || t == pgtype::kUnknown || IsTextType(t)) {
      t = pgtype::kTimestampTz;
    }
    if (t != pgtype::kTimestamp && t != pgtype::kTimestampTz) {
      if (t == pgtype::kInterval) return Unsupported(loc, "date_trunc on interval");
      return Error(loc, "function date_trunc(unknown, " + TypeText(t) + ") does not exist");
    }
    TALLY_ASSIGN_OR_RETURN(ts, Coerce(std::move(ts), t, -1, MinLocation(*raw[1])));
    auto e = NewExpr(ExprKind::kFunc, t);
    e->op = static_cast<uint8_t>(FuncId::kDateTrunc);
    e->index = static_cast<int>(unit);
    TALLY_ASSIGN_OR_RETURN(MExpr field, field_const(*raw[0]));
    e->args = {std::move(field), std::move(ts)};
    if (raw.size() == 3) return TimezoneArg(*raw[2], e, mode);
    return e;
  }
  if (name == "extract" || name == "date_part") {
    TALLY_RETURN_IF_ERROR(nargs(2, 2));
    bool is_extract = name == "extract";
    TALLY_ASSIGN_OR_RETURN(dt::Unit unit, unit_of(*raw[0], is_extract ? "EXTRACT" : "date_part"));
    TALLY_ASSIGN_OR_RETURN(MExpr x, Sub(*raw[1], mode));
    Oid t = x->type;
    if (t == pgtype::kUnknown || IsTextType(t)) t = pgtype::kTimestampTz;
    if (!is_extract && t == pgtype::kDate) t = pgtype::kTimestamp;
    if (t == pgtype::kInterval) {
      // Postgres refuses fields intervals lack when the query runs; a view would fail there.
      TALLY_ASSIGN_OR_RETURN(MExpr f, Sub(*raw[0], mode));
      auto probe = dt::IntervalField(unit, f->constant.as_text(), Interval());
      if (!probe.ok()) return Error(MinLocation(*raw[0]), probe.status().message());
      auto e = NewExpr(ExprKind::kFunc, is_extract ? pgtype::kNumeric : pgtype::kFloat8);
      e->op = static_cast<uint8_t>(is_extract ? FuncId::kExtract : FuncId::kDatePart);
      e->index = static_cast<int>(unit);
      TALLY_ASSIGN_OR_RETURN(MExpr field, field_const(*raw[0]));
      e->args = {std::move(field), std::move(x)};
      return e;
    }
    if (Category(t) != 'D') {
      return Error(loc, "function " + name + "(unknown, " + TypeText(t) + ") does not exist");
    }
    if (unit == dt::Unit::kJulian || unit == dt::Unit::kTimezone ||
        unit == dt::Unit::kTimezoneHour || unit == dt::Unit::kTimezoneMinute) {
      return Unsupported(MinLocation(*raw[0]), name + " of this field");
    }
    if (t == pgtype::kDate &&
        (unit == dt::Unit::kHour || unit == dt::Unit::kMinute || unit == dt::Unit::kSecond ||
         unit == dt::Unit::kMilliseconds || unit == dt::Unit::kMicroseconds)) {
      TALLY_ASSIGN_OR_RETURN(MExpr f, Sub(*raw[0], mode));
      std::string field = f->constant.as_text();
      for (char& ch : field) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      return Error(MinLocation(*raw[0]), "unit \"" + field + "\" not supported for type date");
    }
    TALLY_ASSIGN_OR_RETURN(x, Coerce(std::move(x), t, -1, MinLocation(*raw[1])));
    auto e = NewExpr(ExprKind::kFunc, is_extract ? pgtype::kNumeric : pgtype::kFloat8);
    e->op = static_cast<uint8_t>(is_extract ? FuncId::kExtract : FuncId::kDatePart);
    e->index = static_cast<int>(unit);
    TALLY_ASSIGN_OR_RETURN(MExpr field, field_const(*raw[0]));
    e->args = {std::move(field), std::move(x)};
    return e;
  }
  if (name == "timezone") {
    TALLY_RETURN_IF_ERROR(nargs(2, 2));
    TALLY_ASSIGN_OR_RETURN(MExpr x, Sub(*raw[1], mode));
    Oid t = x->type;
    if (t == pgtype::kDate || t == pgtype::kUnknown || IsTextType(t)) t = pgtype::kTimestampTz;
    if (t != pgtype::kTimestamp && t != pgtype::kTimestampTz) {
      return Error(loc, "function timezone(unknown, " + TypeText(t) + ") does not exist");
    }
    TALLY_ASSIGN_OR_RETURN(x, Coerce(std::move(x), t, -1, MinLocation(*raw[1])));
    auto e = NewExpr(ExprKind::kFunc,
                     t == pgtype::kTimestampTz ? pgtype::kTimestamp : pgtype::kTimestampTz);
    e->op = static_cast<uint8_t>(FuncId::kTimezone);
    TALLY_ASSIGN_OR_RETURN(e, TimezoneArg(*raw[0], e, mode));
    e->args.push_back(std::move(x));
    return e;
  }
  if (name == "date") {
    TALLY_RETURN_IF_ERROR(nargs(1, 1));
    TALLY_ASSIGN_OR_RETURN(MExpr x, Sub(*raw[0], mode));
    return Coerce(std::move(x), pgtype::kDate, -1, loc);
  }
  if (name == "lower" || name == "upper" || name == "length" || name == "char_length" ||
      name == "character_length") {
    TALLY_RETURN_IF_ERROR(nargs(1, 1));
    TALLY_ASSIGN_OR_RETURN(MExpr x, Sub(*raw[0], mode));
    if (Category(x->type) != 'S') {
      return Error(loc, "function " + name + "(" + TypeText(x->type) + ") does not exist");
    }
    bool is_len = name != "lower" && name != "upper";
    if (IsUnknown(*x) || (!is_len && x->type == pgtype::kBpchar)) {
      TALLY_ASSIGN_OR_RETURN(x, Coerce(std::move(x), pgtype::kText, -1, loc));
    }
    auto e = NewExpr(ExprKind::kFunc, is_len ? pgtype::kInt4 : pgtype::kText);
    e->op = static_cast<uint8_t>(name == "lower"   ? FuncId::kLower
                                 : name == "upper" ? FuncId::kUpper
                                                   : FuncId::kLength);
    e->args.push_back(std::move(x));
    return e;
  }
  if (name == "abs") {
    TALLY_RETURN_IF_ERROR(nargs(1, 1));
    TALLY_ASSIGN_OR_RETURN(MExpr x, Sub(*raw[0], mode));
    if (Category(x->type) != 'N') {
      return Error(loc, "function abs(" + TypeText(x->type) + ") does not exist");
    }
    auto e = NewExpr(ExprKind::kFunc, x->type);
    e->op = static_cast<uint8_t>(FuncId::kAbs);
    e->args.push_back(std::move(x));
    return e;
  }
  if (name == "substr" || name == "substring") {
    TALLY_RETURN_IF_ERROR(nargs(2, 3));
    TALLY_ASSIGN_OR_RETURN(MExpr x, Sub(*raw[0], mode));
    std::vector<MExpr> rest;
    for (size_t i = 1; i < raw.size(); ++i) {
      TALLY_ASSIGN_OR_RETURN(MExpr a, Sub(*raw[i], mode));
      // substring(text, text[, text]) is the regular-expression form.
      if (name == "substring" && Category(a->type) == 'S') {
        return Unsupported(loc, "substring() with a regular expression");
      }
      TALLY_ASSIGN_OR_RETURN(a, IntArg(std::move(a), name, loc));
      rest.push_back(std::move(a));
    }
    TALLY_ASSIGN_OR_RETURN(x, TextArg(std::move(x), name, loc));
    auto e = NewExpr(ExprKind::kFunc, pgtype::kText);
    e->op = static_cast<uint8_t>(FuncId::kSubstr);
    e->args.push_back(std::move(x));
    for (auto& a : rest) e->args.push_back(std::move(a));
    return e;
  }
  if (name == "left" || name == "right") {
    TALLY_RETURN_IF_ERROR(nargs(2, 2));
    TALLY_ASSIGN_OR_RETURN(MExpr x, Sub(*raw[0], mode));
    TALLY_ASSIGN_OR_RETURN(MExpr k, Sub(*raw[1], mode));
    TALLY_ASSIGN_OR_RETURN(x, TextArg(std::move(x), name, loc));
    TALLY_ASSIGN_OR_RETURN(k, IntArg(std::move(k), name, loc));
    auto e = NewExpr(ExprKind::kFunc, pgtype::kText);
    e->op = static_cast<uint8_t>(name == "left" ? FuncId::kLeft : FuncId::kRight);
    e->args = {std::move(x), std::move(k)};
    return e;
  }
  if (name == "replace" || name == "strpos" || name == "position" || name == "btrim" ||
      name == "ltrim" || name == "rtrim" || name == "like_escape") {
    size_t lo = 2, hi = 2;
    FuncId id = FuncId::kStrpos;
    Oid result = pgtype::kText;
    if (name == "replace") {
      lo = hi = 3;
      id = FuncId::kReplace;
    } else if (name == "strpos" || name == "position") {
      result = pgtype::kInt4;
    } else if (name == "like_escape") {
      id = FuncId::kLikeEscape;
    } else {
      lo = 1;
      id = name == "btrim" ? FuncId::kBtrim : name == "ltrim" ? FuncId::kLtrim : FuncId::kRtrim;
    }
    TALLY_RETURN_IF_ERROR(nargs(lo, hi));
    auto e = NewExpr(ExprKind::kFunc, result);
    e->op = static_cast<uint8_t>(id);
    for (const json* r : raw) {
      TALLY_ASSIGN_OR_RETURN(MExpr a, Sub(*r, mode));
      TALLY_ASSIGN_OR_RETURN(a, TextArg(std::move(a), name, loc));
      e->args.push_back(std::move(a));
    }
    return e;
  }
  if (name == "concat" || name == "concat_ws") {
    bool ws = name == "concat_ws";
    if (raw.empty() || (ws && raw.size() < 2)) {
      return Error(loc, "function " + name + "() does not exist");
    }
    auto e = NewExpr(ExprKind::kFunc, pgtype::kText);
    e->op = static_cast<uint8_t>(ws ? FuncId::kConcatWs : FuncId::kConcat);
    for (size_t i = 0; i < raw.size(); ++i) {
      TALLY_ASSIGN_OR_RETURN(MExpr a, Sub(*raw[i], mode));
      if (ws && i == 0) {
        TALLY_ASSIGN_OR_RETURN(a, TextArg(std::move(a), name, loc));
      } else if (IsUnknown(*a)) {
        TALLY_ASSIGN_OR_RETURN(a, Coerce(std::move(a), pgtype::kText, -1, loc));
      } else if (!IsTextType(a->type)) {
        // "any" arguments: each value's output function (bpchar keeps its padding).
        auto out = NewExpr(ExprKind::kFunc, pgtype::kText);
        out->op = static_cast<uint8_t>(FuncId::kOutput);
        out->args.push_back(std::move(a));
        a = std::move(out);
      }
      e->args.push_back(std::move(a));
    }
    return e;
  }
  if (name == "round" || name == "trunc" || name == "floor" || name == "ceil" ||
      name == "ceiling") {
    bool scaled = name == "round" || name == "trunc";
    TALLY_RETURN_IF_ERROR(nargs(1, scaled ? 2 : 1));
    TALLY_ASSIGN_OR_RETURN(MExpr x, Sub(*raw[0], mode));
    if (IsUnknown(*x)) {
      TALLY_ASSIGN_OR_RETURN(x, Coerce(std::move(x), pgtype::kFloat8, -1, loc));
    }
    if (Category(x->type) != 'N') {
      return Error(loc, "function " + name + "(" + TypeText(x->type) + ") does not exist");
    }
    Oid t = x->type == pgtype::kNumeric ? pgtype::kNumeric : pgtype::kFloat8;
    if (raw.size() == 2) {
      if (x->type == pgtype::kFloat4 || x->type == pgtype::kFloat8) {
        return Error(loc, "function " + name + "(double precision, integer) does not exist");
      }
      t = pgtype::kNumeric;
    }
    TALLY_ASSIGN_OR_RETURN(x, Coerce(std::move(x), t, -1, loc));
    auto e = NewExpr(ExprKind::kFunc, t);
    e->op = static_cast<uint8_t>(name == "round"   ? FuncId::kRound
                                 : name == "trunc" ? FuncId::kTrunc
                                 : name == "floor" ? FuncId::kFloor
                                                   : FuncId::kCeil);
    e->args.push_back(std::move(x));
    if (raw.size() == 2) {
      TALLY_ASSIGN_OR_RETURN(MExpr s, Sub(*raw[1], mode));
      if (!IsIntegerType(s->type) && !IsUnknown(*s)) {
        return Error(loc,
                     "function " + name + "(numeric, " + TypeText(s->type) + ") does not exist");
      }
      TALLY_ASSIGN_OR_RETURN(s, Coerce(std::move(s), pgtype::kInt4, -1, loc));
      e->args.push_back(std::move(s));
    }
    return e;
  }
  return Unsupported(loc, "function " + name + "()");
}

// A text argument of a string function: unknown literals and char(n) become text (the cast
// drops char's padding, as the implicit bpchar -> text cast does).
Result<MExpr> Compiler::TextArg(MExpr e, const std::string& fn, int loc) {
  if (Category(e->type) != 'S') {
    return Error(loc, "function " + fn + "(" + TypeText(e->type) + ", ...) does not exist");
  }
  if (e->type == pgtype::kText || e->type == pgtype::kVarchar) return e;
  return Coerce(std::move(e), pgtype::kText, -1, loc);
}

// An integer argument (int4 parameter): int2 and unknown literals are cast; int8 and others
// have no implicit cast.
Result<MExpr> Compiler::IntArg(MExpr e, const std::string& fn, int loc) {
  if (e->type == pgtype::kInt4) return e;
  if (e->type == pgtype::kInt2 || IsUnknown(*e)) {
    return Coerce(std::move(e), pgtype::kInt4, -1, loc);
  }
  return Error(loc, "function " + fn + "(text, " + TypeText(e->type) + ") does not exist");
}

Result<MExpr> Compiler::Aggregate(const json& b, const std::string& name, Mode mode) {
  int loc = Location(b);
  if (mode == Mode::kInput) {
    if (input_clause_ == nullptr) return Error(loc, "aggregate function calls cannot be nested");
    return Error(loc, std::string("aggregate functions are not allowed in ") + input_clause_);
  }
  if (b.value("agg_within_group", false)) {
    return Unsupported(loc, "ordered-set aggregate " + name + "() WITHIN GROUP");
  }
  AggregateCall call;
  bool star = b.value("agg_star", false);
  const json* args = Field(b, "args");
  size_t nargs = args != nullptr ? args->size() : 0;
  const char* saved = input_clause_;
  input_clause_ = nullptr;
  if (star) {
    if (name != "count") return Error(loc, name + "(*) must be used with count");
    call.kind = AggKind::kCountStar;
  } else {
    if (nargs != 1) {
      input_clause_ = saved;
      return Error(
          loc, "function " + name + " with " + std::to_string(nargs) + " arguments does not exist");
    }
    call.kind = name == "count" ? AggKind::kCount
                : name == "sum" ? AggKind::kSum
                : name == "avg" ? AggKind::kAvg
                : name == "min" ? AggKind::kMin
                                : AggKind::kMax;
    auto arg = Sub(args->at(0), Mode::kInput);
    if (!arg.ok()) {
      input_clause_ = saved;
      return arg.status();
    }
    MExpr a = std::move(arg).value();
    if (IsUnknown(*a)) {
      if (call.kind == AggKind::kSum || call.kind == AggKind::kAvg) {
        input_clause_ = saved;
        return Error(loc, "function " + name + "(unknown) is not unique");
      }
      auto c = Coerce(std::move(a), pgtype::kText, -1, loc);
      if (!c.ok()) {
        input_clause_ = saved;
        return c.status();
      }
      a = std::move(c).value();
    }
    call.input_type = a->type;
    call.input_typmod = a->typmod;
    call.arg = a;
  }
  call.distinct = b.value("agg_distinct", false);
  if (call.distinct && (call.kind == AggKind::kMin || call.kind == AggKind::kMax)) {
    call.distinct = false;  // same result
  }
  if (call.distinct && call.kind != AggKind::kCount) {
    input_clause_ = saved;
    return Unsupported(loc, name + "(DISTINCT ...)");
  }
  if (const json* f = Field(b, "agg_filter")) {
    input_clause_ = "FILTER";
    auto filter = Sub(*f, Mode::kInput);
    if (!filter.ok()) {
      input_clause_ = saved;
      return filter.status();
    }
    auto fb = CoerceBool(std::move(filter).value(), "FILTER", MinLocation(*f));
    if (!fb.ok()) {
      input_clause_ = saved;
      return fb.status();
    }
    call.filter = std::move(fb).value();
  }
  input_clause_ = saved;
  auto spec = agg::MakeAggSpec(call.kind, call.distinct, call.input_type);
  if (!spec.ok()) {
    if (spec.status().code() == StatusCode::kNotSupported) {
      return Unsupported(loc, spec.status().message());
    }
    return Error(loc, spec.status().message());
  }
  call.result_type = spec->result_type;
  size_t index = aggs_.size();
  for (size_t i = 0; i < aggs_.size(); ++i) {
    const AggregateCall& o = aggs_[i];
    bool same_arg = (o.arg == nullptr) == (call.arg == nullptr) &&
                    (o.arg == nullptr || ExprEquals(*o.arg, *call.arg));
    bool same_filter = (o.filter == nullptr) == (call.filter == nullptr) &&
                       (o.filter == nullptr || ExprEquals(*o.filter, *call.filter));
    if (o.kind == call.kind && o.distinct == call.distinct && same_arg && same_filter) {
      index = i;
      break;
    }
  }
  if (index == aggs_.size()) aggs_.push_back(std::move(call));
  auto e = NewExpr(ExprKind::kAggregateRef, aggs_[index].result_type);
  e->index = static_cast<int>(index);
  return e;
}

void CollectColumns(const Expr& e, std::set<int>* out) {
  if (e.kind == ExprKind::kInputColumn) out->insert(e.index);
  for (const auto& a : e.args) CollectColumns(*a, out);
}

void RemapColumns(const Expr& e, const std::map<int, int>& map,
                  std::unordered_set<const Expr*>* seen) {
  if (!seen->insert(&e).second) return;
  // The trees are private to this compilation until the plan is returned.
  if (e.kind == ExprKind::kInputColumn) const_cast<Expr&>(e).index = map.at(e.index);
  for (const auto& a : e.args) RemapColumns(*a, map, seen);
}

Result<ViewPlan> Compiler::Run(std::string_view name) {
  const json& s = *view_.select;
  auto constructs = internal::FindUnsupported(sql_, view_);
  if (!constructs.empty()) {
    std::string msg = constructs[0].what + " at " +
                      internal::PositionText(sql_, constructs[0].offset) +
                      " cannot be maintained incrementally";
    constexpr size_t kMaxListed = 3;
    for (size_t i = 1; i < constructs.size() && i <= kMaxListed; ++i) {
      msg += i == 1 ? " (also: " : ", ";
      msg += constructs[i].what + " at " + internal::PositionText(sql_, constructs[i].offset);
    }
    if (constructs.size() > kMaxListed + 1) {
      msg += " and " + std::to_string(constructs.size() - kMaxListed - 1) + " more";
    }
    if (constructs.size() > 1) msg += ")";
    return Status::NotSupported(msg);
  }

  // FROM: exactly one table (the scan above refused everything else).
  const json& rv = NodeBody(s.at("fromClause").at(0));
  std::string schema = rv.value("schemaname", std::string());
  std::string rel = rv.value("relname", std::string());
  auto table = catalog_.LookupTable(schema, rel);
  if (!table.ok()) {
    if (table.status().code() == StatusCode::kNotFound) {
      return Error(Location(rv), table.status().message());
    }
    return table.status();
  }
  table_ = std::move(table).value();
  qualifier_ = rel;
  if (const json* alias = Field(rv, "alias")) qualifier_ = alias->value("aliasname", rel);

  const json& targets = s.at("targetList");

  // GROUP BY: ordinals and output names resolve to select-list expressions (an input column of
  // the same name wins, as in Postgres).
  std::vector<int> key_locations;
  if (const json* group = Field(s, "groupClause")) {
    input_clause_ = "GROUP BY";
    for (const auto& item : *group) {
      const json* expr = &item;
      int loc = MinLocation(item);
      std::string type = NodeName(item);
      if (type == "A_Const" && Field(NodeBody(item), "ival") != nullptr) {
        TALLY_ASSIGN_OR_RETURN(MExpr c, Const(NodeBody(item)));
        int64_t pos = c->constant.as_int();
        if (pos < 1 || pos > static_cast<int64_t>(targets.size())) {
          return Error(loc, "GROUP BY position " + std::to_string(pos) + " is not in select list");
        }
        expr = &NodeBody(targets.at(static_cast<size_t>(pos - 1))).at("val");
      } else if (type == "ColumnRef") {
        const json& fields = NodeBody(item).at("fields");
        if (fields.size() == 1 && NodeName(fields[0]) == "String") {
          std::string n = StringValue(fields[0]);
          if (table_.FindColumn(n) < 0) {
            for (const auto& t : targets) {
              const json& tb = NodeBody(t);
              if (tb.value("name", std::string()) == n) {
                expr = &tb.at("val");
                break;
              }
            }
          }
        }
      }
      if (ContainsAggregateCall(*expr)) {
        return Error(loc, "aggregate functions are not allowed in GROUP BY");
      }
      TALLY_ASSIGN_OR_RETURN(MExpr key, Node(*expr, Mode::kInput));
      bool dup = false;
      for (const auto& k : keys_) dup = dup || ExprEquals(*k, *key);
      if (!dup) {
        keys_.push_back(std::move(key));
        key_locations.push_back(loc);
      }
    }
  }

  MExpr where;
  if (const json* w = Field(s, "whereClause")) {
    input_clause_ = "WHERE";
    TALLY_ASSIGN_OR_RETURN(where, Node(*w, Mode::kInput));
    TALLY_ASSIGN_OR_RETURN(where, CoerceBool(std::move(where), "WHERE", MinLocation(*w)));
  }

  std::vector<OutputColumn> outputs;
  for (const auto& t : targets) {
    const json& tb = NodeBody(t);
    const json& val = tb.at("val");
    TALLY_ASSIGN_OR_RETURN(MExpr e, Sub(val, Mode::kOutput));
    if (IsUnknown(*e)) {
      TALLY_ASSIGN_OR_RETURN(e, Coerce(std::move(e), pgtype::kText, -1, Location(tb)));
    }
    OutputColumn col;
    col.name = tb.value("name", std::string());
    if (col.name.empty() && FigureColname(val, &col.name) == 0) col.name = "?column?";
    col.type = e->type;
    col.typmod = e->typmod;
    if (e->kind == ExprKind::kGroupKeyRef) col.group_key_index = e->index;
    col.expr = std::move(e);
    outputs.push_back(std::move(col));
  }

  if (view_.column_names.size() > outputs.size()) {
    return Error(view_.query_start, "too many column names were specified");
  }
  for (size_t i = 0; i < view_.column_names.size(); ++i) outputs[i].name = view_.column_names[i];
  for (size_t i = 0; i < outputs.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (outputs[i].name == outputs[j].name) {
        int loc = Location(NodeBody(targets.at(i)));
        return Error(loc, "column \"" + outputs[i].name +
                              "\" specified more than once (the summary table needs distinct "
                              "column names)");
      }
    }
  }

  MExpr having;
  if (const json* h = Field(s, "havingClause")) {
    TALLY_ASSIGN_OR_RETURN(having, Sub(*h, Mode::kOutput));
    TALLY_ASSIGN_OR_RETURN(having, CoerceBool(std::move(having), "HAVING", MinLocation(*h)));
  }

  // Every grouping expression must be a column of the summary: it is the summary's key.
  std::set<int> columns;
  if (where) CollectColumns(*where, &columns);
  for (const auto& k : keys_) CollectColumns(*k, &columns);
  for (const auto& a : aggs_) {
    if (a.arg) CollectColumns(*a.arg, &columns);
    if (a.filter) CollectColumns(*a.filter, &columns);
  }
  ExprNames names;
  for (const auto& c : table_.columns) names.input_columns.push_back(c.name);
  for (size_t i = 0; i < keys_.size(); ++i) {
    bool present = false;
    for (const auto& o : outputs) present = present || o.group_key_index == static_cast<int>(i);
    if (!present) {
      return Error(key_locations[i], "grouping expression " + ExprToString(*keys_[i], names) +
                                         " must appear in the select list (it is the summary's "
                                         "key)");
    }
  }

  std::map<int, int> remap;
  ViewPlan plan;
  for (int c : columns) {
    remap[c] = static_cast<int>(plan.input_columns.size());
    plan.input_columns.push_back(c);
  }
  std::unordered_set<const Expr*> seen;
  if (where) RemapColumns(*where, remap, &seen);
  for (const auto& k : keys_) RemapColumns(*k, remap, &seen);
  for (const auto& a : aggs_) {
    if (a.arg) RemapColumns(*a.arg, remap, &seen);
    if (a.filter) RemapColumns(*a.filter, remap, &seen);
  }

  plan.name = std::string(name);
  plan.query_sql =
      std::string(sql_.substr(static_cast<size_t>(view_.query_start),
                              static_cast<size_t>(view_.query_end - view_.query_start)));
  plan.source = table_;
  plan.where = where;
  plan.group_keys.assign(keys_.begin(), keys_.end());
  plan.aggregates = aggs_;
  plan.having = having;
  plan.outputs = std::move(outputs);
  plan.has_group_by = Field(s, "groupClause") != nullptr && !Field(s, "groupClause")->empty();
  if (!plan.has_group_by && plan.aggregates.empty()) {
    return Unsupported(view_.query_start, "no aggregate and no GROUP BY (a plain projection)");
  }
  return plan;
}

}  // namespace

Result<ViewPlan> CompileView(std::string_view name, std::string_view sql, const Catalog& catalog) {
  try {
    TALLY_ASSIGN_OR_RETURN(internal::ParsedView view, internal::ParseView(sql));
    Compiler compiler(sql, catalog, view);
    return compiler.Run(name);
  } catch (const std::exception& e) {
    return Status::Internal(std::string("view compiler: unexpected parse tree: ") + e.what());
  }
}

Result<std::string> ExtractSelectSql(std::string_view sql) {
  try {
    TALLY_ASSIGN_OR_RETURN(internal::ParsedView view, internal::ParseView(sql));
    return std::string(sql.substr(static_cast<size_t>(view.query_start),
                                  static_cast<size_t>(view.query_end - view.query_start)));
  } catch (const std::exception& e) {
    return Status::Internal(std::string("view compiler: unexpected parse tree: ") + e.what());
  }
}

Result<std::vector<Construct>> ListUnsupportedConstructs(std::string_view sql) {
  try {
    TALLY_ASSIGN_OR_RETURN(internal::ParsedView view, internal::ParseView(sql));
    std::vector<Construct> out;
    for (const auto& f : internal::FindUnsupported(sql, view)) {
      Construct c;
      c.what = f.what;
      if (f.offset >= 0) {
        auto lc = sqltext::ToLineCol(sql, f.offset);
        c.line = lc.line;
        c.column = lc.column;
      }
      out.push_back(std::move(c));
    }
    return out;
  } catch (const std::exception& e) {
    return Status::Internal(std::string("view compiler: unexpected parse tree: ") + e.what());
  }
}

}  // namespace tally::compiler
