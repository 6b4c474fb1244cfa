#include "tally/core/collation.h"

#include <langinfo.h>

#include <cstring>
#include <string>
#include <utility>

namespace tally {
namespace {

// NUL-terminated copies for strcoll_l/strxfrm_l; per thread so Compare stays const and
// allocation-free after warm-up.
struct Buffers {
  std::string a;
  std::string b;
};

Buffers& ThreadBuffers() {
  thread_local Buffers buffers;
  return buffers;
}

void AppendEscaped(std::string_view s, std::string* out) {
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u <= 0x01) {
      out->push_back('\x01');
      out->push_back(static_cast<char>(u + 1));
    } else {
      out->push_back(c);
    }
  }
  out->push_back('\0');
}

bool HasNul(std::string_view s) {
  return !s.empty() && std::memchr(s.data(), '\0', s.size()) != nullptr;
}

int ByteCompare(std::string_view a, std::string_view b) {
  size_t n = std::min(a.size(), b.size());
  int c = n == 0 ? 0 : std::memcmp(a.data(), b.data(), n);
  if (c != 0) return c < 0 ? -1 : 1;
  if (a.size() == b.size()) return 0;
  return a.size() < b.size() ? -1 : 1;
}

}  // namespace

Result<Collation> Collation::Open(std::string_view name) {
  Collation c;
  c.name_ = std::string(name);
  if (name == "C" || name == "POSIX") return c;
  std::string n(name);
  // Postgres opens libc collations with LC_COLLATE and LC_CTYPE from the same name.
  locale_t loc = newlocale(LC_COLLATE_MASK | LC_CTYPE_MASK, n.c_str(), static_cast<locale_t>(0));
  if (loc == static_cast<locale_t>(0)) {
    return Status::NotFound("collation \"" + n +
                            "\" is not available on this machine (no such glibc locale; see "
                            "`locale -a`)");
  }
  c.locale_ = loc;
#ifdef __GLIBC__
  // glibc: no rules means strcoll is strcmp and strxfrm copies (string/strcoll_l.c). The
  // item is a 32-bit word, returned in the low half of the pointer (the rest is not zeroed).
  const auto nrules =
      static_cast<uint32_t>(reinterpret_cast<uintptr_t>(nl_langinfo_l(_NL_COLLATE_NRULES, loc)));
  c.code_point_order_ = nrules == 0;
#endif
  return c;
}

Collation::Collation(Collation&& o) noexcept
    : name_(std::move(o.name_)),
      locale_(std::exchange(o.locale_, nullptr)),
      code_point_order_(o.code_point_order_) {}

Collation& Collation::operator=(Collation&& o) noexcept {
  if (this != &o) {
    if (locale_ != nullptr) freelocale(locale_);
    name_ = std::move(o.name_);
    locale_ = std::exchange(o.locale_, nullptr);
    code_point_order_ = o.code_point_order_;
  }
  return *this;
}

Collation::~Collation() {
  if (locale_ != nullptr) freelocale(locale_);
}

int Collation::Compare(std::string_view a, std::string_view b) const {
  if (locale_ == nullptr) return ByteCompare(a, b);
  if (code_point_order_ && !HasNul(a) && !HasNul(b)) return ByteCompare(a, b);
  // varstr_cmp: equal bytes are equal without asking strcoll.
  if (a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0)) {
    return 0;
  }
  Buffers& buf = ThreadBuffers();
  buf.a.assign(a.data(), a.size());
  buf.b.assign(b.data(), b.size());
  int r = strcoll_l(buf.a.c_str(), buf.b.c_str(), locale_);
  if (r == 0) r = std::strcmp(buf.a.c_str(), buf.b.c_str());  // deterministic tie-break
  return r < 0 ? -1 : (r > 0 ? 1 : 0);
}

void Collation::AppendSortKey(std::string_view s, std::string* out) const {
  if (locale_ != nullptr && code_point_order_ && !HasNul(s)) {
    out->append(s);  // what strxfrm_l writes for a locale without rules
    out->push_back('\0');
  } else if (locale_ != nullptr) {
    Buffers& buf = ThreadBuffers();
    buf.a.assign(s.data(), s.size());
    size_t start = out->size();
    size_t room = s.size() * 4 + 16;
    while (true) {
      out->resize(start + room);
      size_t n = strxfrm_l(out->data() + start, buf.a.c_str(), room, locale_);
      if (n < room) {
        out->resize(start + n);
        break;
      }
      room = n + 1;
    }
    out->push_back('\0');
  }
  AppendEscaped(s, out);
}

}  // namespace tally
