// Collation: how Postgres orders text under a deterministic libc collation.
//
// Compare() is varstr_cmp for a database (or column) collation: "C" and "POSIX" compare
// bytes (memcmp, then length); any other name is a glibc locale (newlocale) compared with
// strcoll_l, and a strcoll tie between different strings is broken with strcmp, as
// Postgres does for deterministic collations. AppendSortKey() appends a memcomparable key:
// memcmp order of two keys equals Compare() order, equal keys mean byte-equal strings, and
// keys are prefix-free, so they can be concatenated into composite keys.
//
// Key layout (frozen: stored in RocksDB keys):
//   C/POSIX:  escape(s) 0x00
//   libc:     strxfrm_l(s) 0x00 escape(s) 0x00
// where escape() maps byte 0x00 to 0x01 0x01 and 0x01 to 0x01 0x02 (text has no NUL, so
// this is nearly always a plain copy). strxfrm output never contains 0x00.
// A locale whose LC_COLLATE has no rules (glibc's C.UTF-8, for one) orders by code point:
// its strcoll_l is strcmp and its strxfrm_l a copy, so both are done here without glibc
// (the same keys, at a fraction of the cost).
// Caveat: the key relies on glibc's strxfrm_l agreeing with strcoll_l, which glibc
// documents; Postgres itself does not trust that for abbreviated keys. Compare() is exact.
//
// Ownership: a Collation owns its locale_t (freed on destruction); movable, not copyable.
// Thread safety: const methods may be called from several threads at once.
#pragma once

#include <locale.h>

#include <string>
#include <string_view>

#include "tally/core/status.h"

namespace tally {

class Collation {
 public:
  // The "C" collation.
  Collation() = default;
  // name: a collation's collcollate / a database's datcollate ("C", "POSIX", "C.UTF-8",
  // "en_US.UTF-8", ...). NotFound when this machine's glibc has no such locale.
  static Result<Collation> Open(std::string_view name);

  Collation(Collation&& o) noexcept;
  Collation& operator=(Collation&& o) noexcept;
  Collation(const Collation&) = delete;
  Collation& operator=(const Collation&) = delete;
  ~Collation();

  const std::string& name() const { return name_; }
  // True for "C"/"POSIX": plain byte order.
  bool is_c() const { return locale_ == nullptr; }
  // True for a glibc locale without collation rules: code point order, done without glibc.
  bool is_code_point_order() const { return code_point_order_; }

  // <0, 0, >0 as Postgres's text comparison (bttextcmp) under this collation.
  int Compare(std::string_view a, std::string_view b) const;
  void AppendSortKey(std::string_view s, std::string* out) const;

 private:
  std::string name_ = "C";
  locale_t locale_ = nullptr;
  bool code_point_order_ = false;  // locale_ has no collation rules
};

}  // namespace tally
