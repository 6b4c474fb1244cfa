#include "sql_text.h"

#include <cctype>

namespace tally::compiler::sqltext {

namespace {
bool IsIdentStart(unsigned char c) { return std::isalpha(c) || c == '_' || c >= 0x80; }
bool IsIdentChar(unsigned char c) { return std::isalnum(c) || c == '_' || c == '$' || c >= 0x80; }
}  // namespace

std::vector<Token> Tokenize(std::string_view s) {
  std::vector<Token> out;
  int depth = 0;
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (std::isspace(c)) {
      ++i;
      continue;
    }
    if (c == '-' && i + 1 < n && s[i + 1] == '-') {
      while (i < n && s[i] != '\n') ++i;
      continue;
    }
    if (c == '/' && i + 1 < n && s[i + 1] == '*') {
      int nest = 1;
      i += 2;
      while (i < n && nest > 0) {
        if (s[i] == '/' && i + 1 < n && s[i + 1] == '*') {
          ++nest;
          i += 2;
        } else if (s[i] == '*' && i + 1 < n && s[i + 1] == '/') {
          --nest;
          i += 2;
        } else {
          ++i;
        }
      }
      continue;
    }
    Token t;
    t.offset = static_cast<int>(i);
    t.depth = depth;
    if ((c == 'E' || c == 'e') && i + 1 < n && s[i + 1] == '\'') {
      i += 2;
      while (i < n) {
        if (s[i] == '\\') {
          i += 2;
        } else if (s[i] == '\'') {
          if (i + 1 < n && s[i + 1] == '\'') {
            i += 2;
          } else {
            ++i;
            break;
          }
        } else {
          ++i;
        }
      }
    } else if (c == '\'') {
      ++i;
      while (i < n) {
        if (s[i] == '\'') {
          if (i + 1 < n && s[i + 1] == '\'') {
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        ++i;
      }
    } else if (c == '"') {
      ++i;
      while (i < n) {
        if (s[i] == '"') {
          if (i + 1 < n && s[i + 1] == '"') {
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        ++i;
      }
    } else if (c == '$' && i + 1 < n && (s[i + 1] == '$' || IsIdentStart(s[i + 1]))) {
      size_t j = i + 1;
      while (j < n && s[j] != '$' && IsIdentChar(s[j])) ++j;
      if (j < n && s[j] == '$') {
        std::string_view tag = s.substr(i, j - i + 1);
        size_t close = s.find(tag, j + 1);
        i = close == std::string_view::npos ? n : close + tag.size();
      } else {
        i = j;
      }
    } else if (IsIdentStart(c)) {
      while (i < n && IsIdentChar(static_cast<unsigned char>(s[i]))) ++i;
      t.is_word = true;
      for (size_t k = static_cast<size_t>(t.offset); k < i; ++k) {
        t.word += static_cast<char>(std::toupper(static_cast<unsigned char>(s[k])));
      }
    } else if (std::isdigit(c)) {
      while (i < n && (std::isalnum(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
    } else {
      if (c == '(') {
        ++depth;
      } else if (c == ')') {
        --depth;
        t.depth = depth;
      }
      ++i;
    }
    t.end = static_cast<int>(i);
    if (!t.is_word) t.word = std::string(s.substr(static_cast<size_t>(t.offset), i - t.offset));
    out.push_back(std::move(t));
  }
  return out;
}

LineCol ToLineCol(std::string_view sql, int byte_offset) {
  LineCol lc{1, 1};
  if (byte_offset < 0) return LineCol{0, 0};
  size_t end = std::min(static_cast<size_t>(byte_offset), sql.size());
  for (size_t i = 0; i < end; ++i) {
    unsigned char c = static_cast<unsigned char>(sql[i]);
    if (c == '\n') {
      ++lc.line;
      lc.column = 1;
    } else if ((c & 0xC0) != 0x80) {
      ++lc.column;
    }
  }
  return lc;
}

int CharPosToByteOffset(std::string_view sql, int char_pos) {
  int chars = 0;
  for (size_t i = 0; i < sql.size(); ++i) {
    if ((static_cast<unsigned char>(sql[i]) & 0xC0) != 0x80) {
      if (++chars == char_pos) return static_cast<int>(i);
    }
  }
  return static_cast<int>(sql.size());
}

}  // namespace tally::compiler::sqltext
