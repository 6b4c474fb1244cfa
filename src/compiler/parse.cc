#include "parse.h"

#include <pg_query.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

namespace tally::compiler::internal {

const json* Field(const json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

std::string NodeName(const json& node) {
  if (!node.is_object() || node.empty()) return "";
  return node.begin().key();
}

const json& NodeBody(const json& node) { return node.begin().value(); }

int Location(const json& body) {
  // libpg_query leaves out fields holding their default, so a node at offset 0 has no
  // "location"; unknown positions are written as -1.
  const json* l = Field(body, "location");
  return l != nullptr && l->is_number_integer() ? l->get<int>() : 0;
}

int MinLocation(const json& node) {
  int best = -1;
  if (node.is_object()) {
    for (auto it = node.begin(); it != node.end(); ++it) {
      if (it.key() == "location" && it->is_number_integer()) {
        int l = it->get<int>();
        if (l >= 0 && (best < 0 || l < best)) best = l;
      } else if (it->is_structured()) {
        int l = MinLocation(*it);
        if (l >= 0 && (best < 0 || l < best)) best = l;
      }
    }
  } else if (node.is_array()) {
    for (const auto& e : node) {
      int l = MinLocation(e);
      if (l >= 0 && (best < 0 || l < best)) best = l;
    }
  }
  return best;
}

std::string StringValue(const json& n) {
  const json* s = Field(n, "String");
  if (s == nullptr) return "";
  const json* v = Field(*s, "sval");
  return v != nullptr ? v->get<std::string>() : "";
}

std::string FuncName(const json& body) {
  const json* names = Field(body, "funcname");
  if (names == nullptr || names->empty()) return "";
  return StringValue(names->back());
}

std::string PositionText(std::string_view sql, int byte_offset) {
  if (byte_offset < 0) return "?";
  auto lc = sqltext::ToLineCol(sql, byte_offset);
  return std::to_string(lc.line) + ":" + std::to_string(lc.column);
}

bool IsSupportedAggregate(std::string_view n) {
  return n == "count" || n == "sum" || n == "avg" || n == "min" || n == "max";
}

bool IsSupportedScalarFunction(std::string_view n) {
  static const std::set<std::string_view> kNames = {
      "date_trunc", "date_part", "extract",     "timezone",         "date",       "lower",
      "upper",      "length",    "char_length", "character_length", "abs",        "round",
      "trunc",      "floor",     "ceil",        "ceiling",          "substr",     "substring",
      "left",       "right",     "replace",     "strpos",           "position",   "btrim",
      "ltrim",      "rtrim",     "concat",      "concat_ws",        "like_escape"};
  return kNames.count(n) > 0;
}

namespace {

Status SyntaxError(std::string_view sql, const PgQueryError& e) {
  std::string msg = e.message != nullptr ? e.message : "syntax error";
  if (e.cursorpos > 0) {
    int off = sqltext::CharPosToByteOffset(sql, e.cursorpos);
    msg += " at " + PositionText(sql, off);
  }
  return Status::InvalidArgument(msg);
}

// The first token at or after byte offset `from`.
int FirstTokenAt(const std::vector<sqltext::Token>& tokens, int from) {
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i].offset >= from) return static_cast<int>(i);
  }
  return static_cast<int>(tokens.size());
}

}  // namespace

Result<ParsedView> ParseView(std::string_view sql) {
  std::string text(sql);
  PgQueryParseResult r = pg_query_parse(text.c_str());
  if (r.error != nullptr) {
    Status s = SyntaxError(sql, *r.error);
    pg_query_free_parse_result(r);
    return s;
  }
  ParsedView view;
  try {
    view.tree = json::parse(r.parse_tree);
  } catch (const std::exception& e) {
    pg_query_free_parse_result(r);
    return Status::Internal(std::string("cannot read libpg_query's parse tree: ") + e.what());
  }
  pg_query_free_parse_result(r);
  view.tokens = sqltext::Tokenize(sql);

  const json* stmts = Field(view.tree, "stmts");
  if (stmts == nullptr || stmts->empty()) {
    return Status::InvalidArgument("no SQL statement in the view definition");
  }
  for (const auto& raw : *stmts) {
    const json* stmt = Field(raw, "stmt");
    if (stmt == nullptr) continue;
    std::string type = NodeName(*stmt);
    int start = raw.value("stmt_location", 0);
    int len = raw.value("stmt_len", 0);
    int end = len > 0 ? start + len : static_cast<int>(sql.size());
    if (type == "IndexStmt") continue;
    if (view.select != nullptr) {
      return Status::InvalidArgument("more than one query in the view definition (at " +
                                     PositionText(sql, start) + ")");
    }
    const json& body = NodeBody(*stmt);
    if (type == "SelectStmt") {
      view.select = &body;
      view.query_start = start;
      view.query_end = end;
    } else if (type == "CreateTableAsStmt" &&
               body.value("objtype", std::string()) == "OBJECT_MATVIEW") {
      const json* query = Field(body, "query");
      if (query == nullptr || NodeName(*query) != "SelectStmt") {
        return Status::InvalidArgument("CREATE MATERIALIZED VIEW without a SELECT");
      }
      view.select = &NodeBody(*query);
      if (const json* into = Field(body, "into")) {
        if (const json* cols = Field(*into, "colNames")) {
          for (const auto& c : *cols) view.column_names.push_back(StringValue(c));
        }
      }
      // The query starts after the AS that follows the view's name (and its column list or
      // storage options, which sit inside parentheses or before AS).
      int rel_loc = -1;
      if (const json* into = Field(body, "into")) {
        if (const json* rel = Field(*into, "rel")) rel_loc = Location(*rel);
      }
      int i = FirstTokenAt(view.tokens, std::max(rel_loc, start));
      int base_depth = i < static_cast<int>(view.tokens.size()) ? view.tokens[i].depth : 0;
      int qs = -1;
      for (; i < static_cast<int>(view.tokens.size()) && view.tokens[i].offset < end; ++i) {
        const auto& t = view.tokens[i];
        if (t.is_word && t.word == "AS" && t.depth == base_depth) {
          if (i + 1 < static_cast<int>(view.tokens.size())) qs = view.tokens[i + 1].offset;
          break;
        }
      }
      if (qs < 0) return Status::InvalidArgument("cannot find the query of the materialized view");
      int qe = end;
      // Drop a trailing WITH [NO] DATA.
      std::vector<const sqltext::Token*> tail;
      for (const auto& t : view.tokens) {
        if (t.offset >= qs && t.offset < end && t.word != ";") tail.push_back(&t);
      }
      if (tail.size() >= 2 && tail.back()->word == "DATA") {
        size_t k = tail.size() - 2;
        if (tail[k]->word == "NO" && k > 0) --k;
        if (tail[k]->word == "WITH" && tail[k]->depth == tail.back()->depth) qe = tail[k]->offset;
      }
      view.query_start = qs;
      view.query_end = qe;
    } else {
      return Status::InvalidArgument(
          "expected a SELECT or CREATE MATERIALIZED VIEW ... AS SELECT, found " + type + " at " +
          PositionText(sql, start));
    }
  }
  if (view.select == nullptr) {
    return Status::InvalidArgument("no SELECT or CREATE MATERIALIZED VIEW in the view definition");
  }
  // Trim whitespace and a trailing semicolon.
  while (view.query_end > view.query_start &&
         (std::isspace(static_cast<unsigned char>(sql[view.query_end - 1])) ||
          sql[view.query_end - 1] == ';')) {
    --view.query_end;
  }
  while (view.query_start < view.query_end &&
         std::isspace(static_cast<unsigned char>(sql[view.query_start]))) {
    ++view.query_start;
  }
  return view;
}

namespace {

const std::set<std::string_view> kOtherAggregates = {"array_agg",
                                                     "string_agg",
                                                     "bool_and",
                                                     "bool_or",
                                                     "every",
                                                     "stddev",
                                                     "stddev_pop",
                                                     "stddev_samp",
                                                     "variance",
                                                     "var_pop",
                                                     "var_samp",
                                                     "bit_and",
                                                     "bit_or",
                                                     "bit_xor",
                                                     "json_agg",
                                                     "jsonb_agg",
                                                     "json_object_agg",
                                                     "jsonb_object_agg",
                                                     "xmlagg",
                                                     "corr",
                                                     "covar_pop",
                                                     "covar_samp",
                                                     "regr_avgx",
                                                     "regr_avgy",
                                                     "regr_count",
                                                     "regr_intercept",
                                                     "regr_r2",
                                                     "regr_slope",
                                                     "regr_sxx",
                                                     "regr_sxy",
                                                     "regr_syy",
                                                     "range_agg",
                                                     "range_intersect_agg",
                                                     "any_value",
                                                     "json_agg_strict",
                                                     "jsonb_agg_strict"};
const std::set<std::string_view> kOrderedSet = {"percentile_cont", "percentile_disc", "mode"};
const std::set<std::string_view> kWindowOnly = {
    "row_number", "rank", "dense_rank",  "percent_rank", "cume_dist", "ntile",
    "lag",        "lead", "first_value", "last_value",   "nth_value"};
const std::set<std::string_view> kTimeDependent = {"now",
                                                   "clock_timestamp",
                                                   "statement_timestamp",
                                                   "transaction_timestamp",
                                                   "timeofday",
                                                   "current_timestamp",
                                                   "localtimestamp",
                                                   "current_date",
                                                   "current_time",
                                                   "localtime",
                                                   "age"};
const std::set<std::string_view> kVolatile = {
    "random",  "setseed", "gen_random_uuid", "uuid_generate_v4",   "uuid_generate_v1", "nextval",
    "currval", "lastval", "txid_current",    "pg_current_xact_id", "random_normal"};
const std::set<std::string_view> kSupportedTypes = {"int2",        "int4",
                                                    "int8",        "smallint",
                                                    "integer",     "int",
                                                    "bigint",      "numeric",
                                                    "decimal",     "float4",
                                                    "float8",      "real",
                                                    "float",       "double precision",
                                                    "text",        "varchar",
                                                    "bpchar",      "char",
                                                    "character",   "character varying",
                                                    "date",        "timestamp",
                                                    "timestamptz", "bool",
                                                    "boolean",     "interval"};

class Scanner {
 public:
  Scanner(std::string_view sql, const ParsedView& view) : sql_(sql), tokens_(view.tokens) {}

  void Select(const json& s, int range_start, bool top) {
    int select_kw = SelectKeyword(s, range_start);
    std::string op = s.value("op", std::string("SETOP_NONE"));
    if (op != "SETOP_NONE") {
      const json* larg = Field(s, "larg");
      const json* rarg = Field(s, "rarg");
      std::string word = op == "SETOP_UNION"       ? "UNION"
                         : op == "SETOP_INTERSECT" ? "INTERSECT"
                                                   : "EXCEPT";
      int at = -1;
      if (rarg != nullptr) {
        int r_kw = SelectKeyword(*rarg, range_start);
        at = LastWordBefore(r_kw, {word});
      }
      Add(at, word + (s.value("all", false) ? " ALL" : ""));
      if (larg != nullptr) Select(*larg, range_start, false);
      if (rarg != nullptr) Select(*rarg, range_start, false);
      return;
    }
    if (const json* with = Field(s, "withClause")) {
      Add(Location(*with), "WITH (common table expression)");
      if (const json* ctes = Field(*with, "ctes")) {
        for (const auto& c : *ctes) {
          const json& body = NodeBody(c);
          if (const json* q = Field(body, "ctequery");
              q != nullptr && NodeName(*q) == "SelectStmt") {
            Select(NodeBody(*q), Location(body), false);
          }
        }
      }
    }
    if (const json* distinct = Field(s, "distinctClause"); distinct && !distinct->empty()) {
      bool on = !(*distinct)[0].empty();
      int at = NextWordAfter(select_kw, "DISTINCT");
      Add(at >= 0 ? at : select_kw, on ? "DISTINCT ON" : "DISTINCT");
    }
    if (Field(s, "intoClause")) Add(select_kw, "SELECT INTO");
    if (const json* values = Field(s, "valuesLists"); values && !values->empty()) {
      Add(MinLocation(*values), "VALUES");
    }
    const json* from = Field(s, "fromClause");
    if (from == nullptr || from->empty()) {
      if (Field(s, "valuesLists") == nullptr && top) Add(select_kw, "SELECT without FROM");
    } else {
      for (size_t i = 0; i < from->size(); ++i) {
        FromItem((*from)[i]);
        if (i == 1) Add(FromItemStart((*from)[i]), "more than one FROM item");
      }
    }
    if (const json* t = Field(s, "targetList")) Expr(*t);
    if (const json* w = Field(s, "whereClause")) Expr(*w);
    if (const json* g = Field(s, "groupClause")) {
      for (const auto& item : *g) {
        if (NodeName(item) == "GroupingSet") {
          const json& b = NodeBody(item);
          std::string kind = b.value("kind", std::string());
          std::string what = kind == "GROUPING_SET_ROLLUP" ? "ROLLUP"
                             : kind == "GROUPING_SET_CUBE" ? "CUBE"
                                                           : "GROUPING SETS";
          Add(Location(b), what);
        } else {
          Expr(item);
        }
      }
    }
    if (s.value("groupDistinct", false)) Add(select_kw, "GROUP BY DISTINCT");
    if (const json* h = Field(s, "havingClause")) Expr(*h);
    if (const json* w = Field(s, "windowClause"); w && !w->empty()) {
      Add(MinLocation(*w), "WINDOW clause");
    }
    if (Field(s, "limitCount") || Field(s, "limitOffset")) {
      bool has_limit = Field(s, "limitCount") != nullptr;
      std::string option = s.value("limitOption", std::string());
      int at = -1;
      std::string what;
      for (int i = TokenIndexAt(select_kw); i < static_cast<int>(tokens_.size()); ++i) {
        const auto& t = tokens_[i];
        if (t.depth < Depth(select_kw)) break;
        if (t.depth == Depth(select_kw) && t.is_word &&
            (t.word == "LIMIT" || t.word == "OFFSET" || t.word == "FETCH")) {
          at = t.offset;
          what = t.word == "FETCH" ? "FETCH FIRST" : t.word;
          break;
        }
      }
      if (what.empty()) what = has_limit ? "LIMIT" : "OFFSET";
      if (at < 0) at = MinLocation(has_limit ? *Field(s, "limitCount") : *Field(s, "limitOffset"));
      Add(at, what);
    }
    if (const json* l = Field(s, "lockingClause"); l && !l->empty()) {
      Add(select_kw, "FOR UPDATE/SHARE");
    }
    if (top) {
      bool has_group = Field(s, "groupClause") != nullptr && !Field(s, "groupClause")->empty();
      bool has_agg = false;
      if (const json* t = Field(s, "targetList")) has_agg = HasAggregate(*t);
      if (const json* h = Field(s, "havingClause")) has_agg = has_agg || HasAggregate(*h);
      if (!has_group && !has_agg && from != nullptr && !from->empty()) {
        Add(select_kw, "no aggregate and no GROUP BY (a plain projection)");
      }
    }
  }

  std::vector<FoundConstruct> Take() {
    std::stable_sort(found_.begin(), found_.end(), [](const auto& a, const auto& b) {
      int ao = a.offset < 0 ? INT32_MAX : a.offset;
      int bo = b.offset < 0 ? INT32_MAX : b.offset;
      return ao < bo;
    });
    std::vector<FoundConstruct> out;
    std::set<std::pair<int, std::string>> seen;
    for (auto& f : found_) {
      if (seen.insert({f.offset, f.what}).second) out.push_back(std::move(f));
    }
    return out;
  }

  static bool HasAggregate(const json& node) {
    if (node.is_object()) {
      if (NodeName(node) == "FuncCall" && node.size() == 1) {
        const json& b = NodeBody(node);
        std::string n = FuncName(b);
        if (Field(b, "over") == nullptr &&
            (IsSupportedAggregate(n) || kOtherAggregates.count(n) || kOrderedSet.count(n) ||
             b.value("agg_within_group", false))) {
          return true;
        }
      }
      if (NodeName(node) == "SubLink" && node.size() == 1) return false;
      for (auto it = node.begin(); it != node.end(); ++it) {
        if (it->is_structured() && HasAggregate(*it)) return true;
      }
    } else if (node.is_array()) {
      for (const auto& e : node) {
        if (HasAggregate(e)) return true;
      }
    }
    return false;
  }

 private:
  void Add(int offset, std::string what) { found_.push_back({offset, std::move(what)}); }

  int TokenIndexAt(int offset) const {
    for (size_t i = 0; i < tokens_.size(); ++i) {
      if (tokens_[i].offset >= offset) return static_cast<int>(i);
    }
    return static_cast<int>(tokens_.size());
  }
  int Depth(int offset) const {
    int i = TokenIndexAt(offset);
    return i < static_cast<int>(tokens_.size()) ? tokens_[i].depth : 0;
  }
  int LastWordBefore(int offset, std::initializer_list<std::string_view> words) const {
    int best = -1;
    for (const auto& t : tokens_) {
      if (t.offset >= offset) break;
      if (!t.is_word) continue;
      for (auto w : words) {
        if (t.word == w) best = t.offset;
      }
    }
    return best;
  }
  int NextWordAfter(int offset, std::string_view word) const {
    int i = TokenIndexAt(offset);
    if (i + 1 < static_cast<int>(tokens_.size()) && tokens_[i + 1].word == word) {
      return tokens_[i + 1].offset;
    }
    return -1;
  }
  // The SELECT keyword of a simple select: the last SELECT before its target list.
  int SelectKeyword(const json& s, int fallback) const {
    const json* t = Field(s, "targetList");
    int first = t != nullptr ? MinLocation(*t) : -1;
    if (first < 0) {
      if (const json* l = Field(s, "larg")) return SelectKeyword(*l, fallback);
      first = MinLocation(s);
    }
    int at = LastWordBefore(first >= 0 ? first + 1 : INT32_MAX, {"SELECT"});
    return at >= 0 ? at : fallback;
  }
  int FromItemStart(const json& item) const {
    std::string type = NodeName(item);
    int loc = MinLocation(item);
    if (type == "RangeSubselect" || type == "RangeFunction") {
      int paren = -1;
      for (const auto& t : tokens_) {
        if (t.offset >= loc) break;
        if (t.word == "(") paren = t.offset;
      }
      int at = paren >= 0 ? paren : loc;
      if (NodeBody(item).value("lateral", false)) {
        int li = LastWordBefore(at, {"LATERAL"});
        if (li >= 0) at = li;
      }
      return at;
    }
    return loc;
  }

  void FromItem(const json& item) {
    std::string type = NodeName(item);
    const json& b = NodeBody(item);
    if (type == "RangeVar") {
      return;
    }
    if (type == "JoinExpr") {
      std::string jt = b.value("jointype", std::string("JOIN_INNER"));
      const json* rarg = Field(b, "rarg");
      int r = rarg != nullptr ? MinLocation(*rarg) : -1;
      int join_at = LastWordBefore(r, {"JOIN"});
      // Back up over LEFT / OUTER / NATURAL ... to where the join is written.
      int at = join_at;
      int idx = TokenIndexAt(join_at);
      while (idx > 0) {
        const auto& p = tokens_[idx - 1];
        if (p.is_word &&
            (p.word == "LEFT" || p.word == "RIGHT" || p.word == "FULL" || p.word == "INNER" ||
             p.word == "OUTER" || p.word == "CROSS" || p.word == "NATURAL")) {
          at = p.offset;
          --idx;
        } else {
          break;
        }
      }
      std::string what = jt == "JOIN_LEFT"    ? "LEFT JOIN"
                         : jt == "JOIN_RIGHT" ? "RIGHT JOIN"
                         : jt == "JOIN_FULL"  ? "FULL JOIN"
                                              : "JOIN";
      Add(at, what);
      if (const json* l = Field(b, "larg")) FromItem(*l);
      if (rarg != nullptr) FromItem(*rarg);
      if (const json* q = Field(b, "quals")) Expr(*q);
      return;
    }
    if (type == "RangeSubselect") {
      int at = FromItemStart(item);
      bool lateral = b.value("lateral", false);
      Add(at, lateral ? "LATERAL subquery" : "subquery in FROM");
      if (const json* q = Field(b, "subquery"); q && NodeName(*q) == "SelectStmt") {
        Select(NodeBody(*q), at, false);
      }
      return;
    }
    if (type == "RangeFunction") {
      int at = FromItemStart(item);
      bool lateral = b.value("lateral", false);
      Add(at, lateral ? "LATERAL function in FROM" : "function in FROM");
      return;
    }
    if (type == "RangeTableSample") {
      Add(MinLocation(item), "TABLESAMPLE");
      return;
    }
    Add(MinLocation(item), type + " in FROM");
  }

  void Expr(const json& node) {
    if (node.is_array()) {
      for (const auto& e : node) Expr(e);
      return;
    }
    if (!node.is_object()) return;
    if (node.size() != 1) {
      for (auto it = node.begin(); it != node.end(); ++it) {
        if (it->is_structured()) Expr(*it);
      }
      return;
    }
    std::string type = NodeName(node);
    const json& b = NodeBody(node);
    if (!b.is_object()) return;
    int loc = Location(b);
    if (type == "SubLink") {
      std::string st = b.value("subLinkType", std::string());
      std::string what = st == "EXISTS_SUBLINK"  ? "EXISTS (subquery)"
                         : st == "ANY_SUBLINK"   ? "IN (subquery)"
                         : st == "ALL_SUBLINK"   ? "ALL (subquery)"
                         : st == "ARRAY_SUBLINK" ? "ARRAY (subquery)"
                                                 : "subquery";
      Add(loc, what);
      if (const json* q = Field(b, "subselect"); q && NodeName(*q) == "SelectStmt") {
        Select(NodeBody(*q), loc, false);
      }
      if (const json* t = Field(b, "testexpr")) Expr(*t);
      return;
    }
    if (type == "FuncCall") {
      std::string n = FuncName(b);
      std::string call = n + "()";
      if (Field(b, "over") != nullptr ||
          (kWindowOnly.count(n) && !b.value("agg_within_group", false))) {
        Add(loc, "window function " + call);
      } else if (b.value("agg_within_group", false) || kOrderedSet.count(n)) {
        Add(loc, "ordered-set aggregate " + call + " WITHIN GROUP");
      } else if (kOtherAggregates.count(n)) {
        Add(loc, "aggregate " + call);
      } else if (kTimeDependent.count(n)) {
        Add(loc, "time-dependent function " + call);
      } else if (kVolatile.count(n)) {
        Add(loc, "volatile function " + call);
      } else if (IsSupportedAggregate(n)) {
        if (b.value("agg_distinct", false) && (n == "sum" || n == "avg")) {
          Add(loc, n + "(DISTINCT ...)");
        }
        if (b.value("func_variadic", false)) Add(loc, "VARIADIC");
      } else if (!IsSupportedScalarFunction(n)) {
        Add(loc, "function " + call);
      }
      if (const json* a = Field(b, "args")) Expr(*a);
      if (const json* f = Field(b, "agg_filter")) Expr(*f);
      return;
    }
    if (type == "SQLValueFunction") {
      std::string op = b.value("op", std::string());
      std::string what = op.rfind("SVFOP_", 0) == 0 ? op.substr(6) : op;
      Add(loc, what);
      return;
    }
    if (type == "A_Expr") {
      std::string kind = b.value("kind", std::string());
      std::string op;
      if (const json* names = Field(b, "name"); names && !names->empty()) {
        op = StringValue(names->back());
      }
      static const std::set<std::string_view> kOps = {"+",  "-", "*",  "/", "%",  "=", "<>",
                                                      "!=", "<", "<=", ">", ">=", "||"};
      static const std::set<std::string_view> kCmpOps = {"=", "<>", "!=", "<", "<=", ">", ">="};
      if (kind == "AEXPR_OP" && !kOps.count(op)) {
        Add(loc, "operator " + op);
      } else if (kind == "AEXPR_OP_ANY" || kind == "AEXPR_OP_ALL") {
        if (!kCmpOps.count(op)) {
          static const std::map<std::string, std::string> kNames = {
              {"~~", "LIKE"}, {"!~~", "NOT LIKE"}, {"~~*", "ILIKE"}, {"!~~*", "NOT ILIKE"}};
          auto it = kNames.find(op);
          Add(loc, (it != kNames.end() ? it->second : "operator " + op) +
                       (kind == "AEXPR_OP_ANY" ? " ANY (array)" : " ALL (array)"));
        }
        if (const json* l = Field(b, "lexpr")) Expr(*l);
        if (const json* r = Field(b, "rexpr")) ArrayOperand(*r);
        return;
      } else if (kind == "AEXPR_SIMILAR") {
        Add(loc, "SIMILAR TO");
      } else if (kind == "AEXPR_BETWEEN_SYM" || kind == "AEXPR_NOT_BETWEEN_SYM") {
        Add(loc, "BETWEEN SYMMETRIC");
      }
      if (const json* l = Field(b, "lexpr")) Expr(*l);
      if (const json* r = Field(b, "rexpr")) Expr(*r);
      return;
    }
    if (type == "TypeCast") {
      if (const json* tn = Field(b, "typeName")) {
        std::string tname;
        if (const json* names = Field(*tn, "names"); names && !names->empty()) {
          tname = StringValue(names->back());
        }
        if (Field(*tn, "arrayBounds") != nullptr) {
          Add(Location(*tn), "array type " + tname + "[]");
        } else if (!kSupportedTypes.count(tname)) {
          Add(Location(*tn) >= 0 ? Location(*tn) : loc, "type " + tname);
        } else if (tname == "interval" && Field(*tn, "typmods") != nullptr) {
          Add(Location(*tn) >= 0 ? Location(*tn) : loc, "interval with fields or a precision");
        }
      }
      if (const json* a = Field(b, "arg")) Expr(*a);
      return;
    }
    if (type == "ColumnRef") {
      if (const json* f = Field(b, "fields")) {
        for (const auto& x : *f) {
          if (NodeName(x) == "A_Star") Add(loc, "*");
        }
      }
      return;
    }
    static const std::set<std::string_view> kOkNodes = {
        "A_Const",  "BoolExpr",     "NullTest",   "BooleanTest", "CaseExpr",
        "CaseWhen", "CoalesceExpr", "MinMaxExpr", "List",        "String",
        "Integer",  "Float",        "ResTarget",  "SortBy"};
    if (!kOkNodes.count(type)) {
      static const std::map<std::string_view, std::string_view> kNames = {
          {"CollateClause", "COLLATE"},    {"A_ArrayExpr", "ARRAY[...]"},
          {"RowExpr", "ROW(...)"},         {"A_Indirection", "subscript or field selection"},
          {"GroupingFunc", "GROUPING()"},  {"ParamRef", "parameter"},
          {"XmlExpr", "XML expression"},   {"XmlSerialize", "XMLSERIALIZE"},
          {"CurrentOfExpr", "CURRENT OF"}, {"MultiAssignRef", "multiple assignment"}};
      auto it = kNames.find(type);
      Add(loc >= 0 ? loc : MinLocation(node), it != kNames.end() ? std::string(it->second) : type);
    }
    for (auto it = b.begin(); it != b.end(); ++it) {
      if (it->is_structured()) Expr(*it);
    }
  }

  // The right operand of op ANY / ALL: ARRAY[...] and array literals (cast to an array type
  // or not) are supported; arrays from anything else are not.
  void ArrayOperand(const json& node) {
    std::string type = NodeName(node);
    if (type == "TypeCast") {
      const json& b = NodeBody(node);
      const json* tn = Field(b, "typeName");
      const json* arg = Field(b, "arg");
      if (tn != nullptr && Field(*tn, "arrayBounds") != nullptr && arg != nullptr) {
        std::string tname;
        if (const json* names = Field(*tn, "names"); names && !names->empty()) {
          tname = StringValue(names->back());
        }
        if (!kSupportedTypes.count(tname)) {
          Add(Location(*tn) >= 0 ? Location(*tn) : Location(b), "type " + tname);
        }
        std::string at = NodeName(*arg);
        if (at == "A_ArrayExpr" || at == "A_Const") {
          ArrayOperand(*arg);
          return;
        }
      }
      Add(MinLocation(node), "ANY/ALL over an array that is not a constant or ARRAY[...]");
      Expr(node);
      return;
    }
    if (type == "A_ArrayExpr") {
      if (const json* els = Field(NodeBody(node), "elements")) {
        for (const auto& el : *els) {
          if (NodeName(el) == "A_ArrayExpr") {
            Add(MinLocation(el), "multidimensional ARRAY[...]");
          } else {
            Expr(el);
          }
        }
      }
      return;
    }
    if (type == "A_Const") return;
    if (type == "SubLink") {
      Expr(node);
      return;
    }
    Add(MinLocation(node), "ANY/ALL over an array that is not a constant or ARRAY[...]");
    Expr(node);
  }

  std::string_view sql_;
  const std::vector<sqltext::Token>& tokens_;
  std::vector<FoundConstruct> found_;
};

}  // namespace

std::vector<FoundConstruct> FindUnsupported(std::string_view sql, const ParsedView& view) {
  Scanner scanner(sql, view);
  scanner.Select(*view.select, view.query_start, true);
  return scanner.Take();
}

}  // namespace tally::compiler::internal
