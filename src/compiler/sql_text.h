// Private: a minimal SQL tokenizer over the original text, used to find keyword positions
// that libpg_query's tree does not record (DISTINCT, LIMIT, UNION, JOIN, the AS of a CREATE
// MATERIALIZED VIEW), and byte offset -> line:column conversion.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace tally::compiler::sqltext {

struct Token {
  int offset = 0;    // byte offset of the token's first byte
  int end = 0;       // one past its last byte
  int depth = 0;     // parenthesis depth at the token ("(" has the outer depth)
  std::string word;  // upper-cased for bare words; the text for anything else
  bool is_word = false;
};

std::vector<Token> Tokenize(std::string_view sql);

struct LineCol {
  int line = 0;
  int column = 0;
};
// Byte offset -> 1-based line and 1-based column (counted in characters).
LineCol ToLineCol(std::string_view sql, int byte_offset);
// 1-based character position (libpg_query's cursorpos) -> byte offset.
int CharPosToByteOffset(std::string_view sql, int char_pos);

}  // namespace tally::compiler::sqltext
