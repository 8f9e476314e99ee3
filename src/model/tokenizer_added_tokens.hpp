// The added tokens of tokenizer.json (special tokens such as <s> and <|eot_id|>) and the
// split of text at their occurrences, which comes before the BPE model.
#pragma once

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/tokenizer_json.hpp"

namespace magrq::model::detail {

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool special = false;
  bool lstrip = false;       // the match also takes the white space on its left
  bool rstrip = false;       // the match also takes the white space on its right
  bool single_word = false;  // matches only when no word character touches it
  bool normalized = false;   // matched in the normalized text instead of the input
};

// Parses the "added_tokens" array of tokenizer.json.
std::vector<AddedToken> parse_added_tokens(const nlohmann::json& node, const JsonPlace& place);

// A part of a text: either plain text or one added token.
struct Segment {
  std::string_view text;
  std::size_t offset = 0;        // byte offset of text in the string that was split
  std::optional<int32_t> token;  // the added token's id, for a match
};

// Finds added tokens in text: at the leftmost position where any token's content
// occurs, the longest such token wins (the Aho-Corasick leftmost-longest rule of
// Hugging Face tokenizers). O(n) over the text plus the candidate comparisons at bytes
// that begin some token.
class AddedTokenMatcher {
 public:
  AddedTokenMatcher() = default;
  // patterns[i] is the text to find for tokens[i] (its content, or its normalized form).
  AddedTokenMatcher(std::vector<AddedToken> tokens, std::vector<std::string> patterns);

  bool empty() const { return tokens_.empty(); }

  // Cuts text into plain segments and token segments covering all of it in order. Empty
  // plain segments are left out; an empty text gives no segments.
  std::vector<Segment> split(std::string_view text) const;

 private:
  // The longest token whose pattern occurs at offset, as an index into tokens_.
  std::optional<std::size_t> longest_match_at(std::string_view text, std::size_t offset) const;

  std::vector<AddedToken> tokens_;
  std::vector<std::string> patterns_;
  // For each first byte, the tokens whose pattern starts with it, longest first.
  std::array<std::vector<std::size_t>, 256> by_first_byte_;
};

}  // namespace magrq::model::detail
