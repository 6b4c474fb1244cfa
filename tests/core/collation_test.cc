#include "tally/core/collation.h"

#include <catch2/catch.hpp>
#include <cstring>
#include <random>
#include <string>
#include <vector>

using tally::Collation;

namespace {

int KeyCompare(const Collation& c, const std::string& a, const std::string& b) {
  std::string ka, kb;
  c.AppendSortKey(a, &ka);
  c.AppendSortKey(b, &kb);
  int r = ka.compare(kb);
  return r < 0 ? -1 : (r > 0 ? 1 : 0);
}

std::string RandomUtf8(std::mt19937_64& rng) {
  static const std::vector<std::string> kPieces = {
      "a", "b",  "A",  "B",    "z", " ",  "-",  "0",   "9", "é", "É", "e", "ß",
      "ø", "日", "本", "\x01", "_", "ab", "Ab", "a b", "ä", "Z", ".", "~"};
  std::string s;
  size_t n = rng() % 6;
  for (size_t i = 0; i < n; ++i) s += kPieces[rng() % kPieces.size()];
  return s;
}

}  // namespace

TEST_CASE("C and POSIX collations compare bytes") {
  for (const char* name : {"C", "POSIX"}) {
    auto c = Collation::Open(name);
    REQUIRE(c.ok());
    CHECK(c->is_c());
    CHECK(c->Compare("B", "a") < 0);
    CHECK(c->Compare("a", "ab") < 0);
    CHECK(c->Compare("", "") == 0);
    CHECK(c->Compare("é", "f") > 0);
  }
}

TEST_CASE("Unknown locales are reported, not guessed") {
  auto c = Collation::Open("xx_NOPE.UTF-8");
  REQUIRE_FALSE(c.ok());
  CHECK(c.status().message().find("xx_NOPE.UTF-8") != std::string::npos);
}

TEST_CASE("Sort keys order exactly as Compare, for every available collation") {
  std::vector<std::string> names = {"C",           "POSIX",       "C.UTF-8",    "C.utf8",
                                    "en_US.UTF-8", "de_DE.UTF-8", "sv_SE.UTF-8"};
  std::mt19937_64 rng(3);
  int opened = 0;
  for (const auto& name : names) {
    auto c = Collation::Open(name);
    if (!c.ok()) continue;  // not every machine has every locale
    ++opened;
    INFO("collation " << name);
    for (int i = 0; i < 3000; ++i) {
      std::string a = RandomUtf8(rng), b = RandomUtf8(rng);
      if (rng() % 8 == 0) b = a;
      int cmp = c->Compare(a, b);
      CHECK(cmp == -c->Compare(b, a));
      CHECK(KeyCompare(*c, a, b) == cmp);
      CHECK((cmp == 0) == (a == b));  // deterministic: only equal bytes tie
    }
  }
  CHECK(opened >= 3);
}

TEST_CASE("Sort keys are prefix-free, so they compose") {
  auto c = Collation::Open("C");
  REQUIRE(c.ok());
  std::string k1, k2;
  c->AppendSortKey("ab", &k1);
  c->AppendSortKey("c", &k1);
  c->AppendSortKey("abc", &k2);
  c->AppendSortKey("", &k2);
  CHECK(k1 < k2);  // ("ab","c") < ("abc","")
  Collation moved = std::move(*c);
  CHECK(moved.Compare("a", "b") < 0);
}

TEST_CASE("A locale without collation rules gives glibc's own keys and order, without glibc") {
  // C.UTF-8 has no LC_COLLATE rules: Collation skips strcoll_l and strxfrm_l for it. The
  // stored keys must stay byte for byte what strxfrm_l wrote before.
  auto c = Collation::Open("C.UTF-8");
  if (!c.ok()) {
    WARN("no C.UTF-8 locale on this machine");
    return;
  }
#ifdef __GLIBC__
  CHECK(c->is_code_point_order());
#endif
  auto en = Collation::Open("en_US.UTF-8");
  if (en.ok()) CHECK_FALSE(en->is_code_point_order());
  locale_t loc = newlocale(LC_COLLATE_MASK | LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(0));
  REQUIRE(loc != static_cast<locale_t>(0));
  std::mt19937_64 rng(11);
  for (int i = 0; i < 3000; ++i) {
    std::string a = RandomUtf8(rng), b = RandomUtf8(rng);
    INFO("a = " << a << ", b = " << b);
    std::string expected(a.size() * 4 + 16, '\0');
    expected.resize(strxfrm_l(expected.data(), a.c_str(), expected.size(), loc));
    expected.push_back('\0');
    std::string key;
    c->AppendSortKey(a, &key);
    CHECK(key.substr(0, expected.size()) == expected);
    int r = strcoll_l(a.c_str(), b.c_str(), loc);
    if (r == 0) r = std::strcmp(a.c_str(), b.c_str());
    CHECK(c->Compare(a, b) == (r < 0 ? -1 : (r > 0 ? 1 : 0)));
  }
  freelocale(loc);
  // Escaped bytes ride after the strxfrm part, as for any libc collation.
  std::string key;
  c->AppendSortKey(std::string_view("a\x01", 2), &key);
  CHECK(key == std::string("a\x01\0a\x01\x02\0", 7));
}
