// tally_state_dump DIR: what a state directory holds, for integration tests. One line per
// view ("V id group_id name", the name last: it may hold spaces), then per key kind and id the number of keys ("g 3 120";
// "Mgroup 2 1"; other meta keys by name). Opens the state like tally does: not while a tally
// process holds it.
#include <cstdio>
#include <map>
#include <string>
#include <tuple>

#include "tally/store/kv.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: tally_state_dump STATE_DIR\n");
    return 2;
  }
  auto state = tally::store::OpenRocksDb(argv[1]);
  if (!state.ok()) {
    std::fprintf(stderr, "%s\n", state.status().message().c_str());
    return 1;
  }
  std::map<std::tuple<std::string, uint32_t>, long> counts;
  auto it = (*state)->NewIterator();
  for (it->Seek(""); it->Valid(); it->Next()) {
    std::string key(it->key());
    if (key[0] == 'M') {
      size_t digits = 1;
      while (digits < key.size() && key[digits] >= 'a' && key[digits] <= 'z') ++digits;
      std::string name = key.substr(0, digits);
      if (key.size() == digits + 4 && (name == "Mgroup" || name == "Mrewrite" || name == "Mrel")) {
        ++counts[{name, tally::store::ReadU32(std::string_view(key).substr(digits))}];
      } else {
        ++counts[{key, 0}];
      }
      continue;
    }
    const uint32_t id = key.size() >= 5 ? tally::store::ReadU32(std::string_view(key).substr(1)) : 0;
    if (key[0] == 'V') {
      std::string meta(it->value());
      size_t a = meta.find('\n'), b = meta.find('\n', a + 1);
      size_t c = meta.find('\n', b + 1), d = meta.find('\n', c + 1), e = meta.find('\n', d + 1);
      std::printf("V %u %s %s\n", id, meta.substr(d + 1, e - d - 1).c_str(),
                  meta.substr(a + 1, b - a - 1).c_str());
    }
    ++counts[{key.substr(0, 1), id}];
  }
  if (!it->status().ok()) {
    std::fprintf(stderr, "%s\n", it->status().message().c_str());
    return 1;
  }
  for (const auto& [k, n] : counts) {
    std::printf("%s %u %ld\n", std::get<0>(k).c_str(), std::get<1>(k), n);
  }
  return 0;
}
