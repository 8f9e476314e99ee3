#include "model/tokenizer_added_tokens.hpp"

#include <algorithm>
#include <unordered_set>

#include "model/unicode.hpp"

namespace magrq::model::detail {

namespace {

bool ends_with_word_character(std::string_view text) {
  return !text.empty() && unicode::is_word_character(unicode::last_code_point(text));
}

bool starts_with_word_character(std::string_view text) {
  std::size_t offset = 0;
  return !text.empty() && unicode::is_word_character(unicode::next_code_point(text, offset));
}

// Start of the run of white space that ends at `end`, not before `floor`.
std::size_t white_space_run_start(std::string_view text, std::size_t end, std::size_t floor) {
  std::size_t start = end;
  while (start > floor) {
    std::size_t previous = start - 1;
    while (previous > floor && (static_cast<unsigned char>(text[previous]) & 0xC0) == 0x80) {
      --previous;
    }
    std::size_t offset = previous;
    if (!unicode::is_white_space(unicode::next_code_point(text, offset))) {
      break;
    }
    start = previous;
  }
  return start;
}

// End of the run of white space that starts at `begin`.
std::size_t white_space_run_end(std::string_view text, std::size_t begin) {
  std::size_t end = begin;
  while (end < text.size()) {
    std::size_t offset = end;
    if (!unicode::is_white_space(unicode::next_code_point(text, offset))) {
      break;
    }
    end = offset;
  }
  return end;
}

}  // namespace

std::vector<AddedToken> parse_added_tokens(const nlohmann::json& node, const JsonPlace& place) {
  std::vector<AddedToken> tokens;
  if (node.is_null()) {
    return tokens;
  }
  if (!node.is_array()) {
    throw DataError(place.describe() + ": expected an array, found " +
                    std::string(node.type_name()));
  }
  std::unordered_set<int32_t> seen_ids;
  for (std::size_t i = 0; i < node.size(); ++i) {
    const JsonPlace item = place.item(i);
    const nlohmann::json& entry = node[i];
    const nlohmann::json& id = require_field(entry, "id", item);
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX - 1) {
      throw DataError(item.child("id").describe() + ": expected an id in [0, 2^31 - 1), found " +
                      id.dump());
    }
    AddedToken token;
    token.id = static_cast<int32_t>(id.get<int64_t>());
    token.content = require_string(entry, "content", item);
    token.special = optional_bool(entry, "special", false, item);
    token.lstrip = optional_bool(entry, "lstrip", false, item);
    token.rstrip = optional_bool(entry, "rstrip", false, item);
    token.single_word = optional_bool(entry, "single_word", false, item);
    token.normalized = optional_bool(entry, "normalized", !token.special, item);
    if (token.content.empty()) {
      throw DataError(item.child("content").describe() + ": the added token with id " +
                      std::to_string(token.id) + " has empty content");
    }
    if (!seen_ids.insert(token.id).second) {
      throw DataError(item.describe() + ": id " + std::to_string(token.id) +
                      " appears twice among the added tokens");
    }
    tokens.push_back(std::move(token));
  }
  return tokens;
}

AddedTokenMatcher::AddedTokenMatcher(std::vector<AddedToken> tokens,
                                     std::vector<std::string> patterns)
    : tokens_(std::move(tokens)), patterns_(std::move(patterns)) {
  MAGRQ_CHECK(tokens_.size() == patterns_.size(), "one pattern per token expected, got ",
              patterns_.size(), " for ", tokens_.size());
  for (std::size_t i = 0; i < patterns_.size(); ++i) {
    if (!patterns_[i].empty()) {
      by_first_byte_[static_cast<unsigned char>(patterns_[i][0])].push_back(i);
    }
  }
  for (auto& bucket : by_first_byte_) {
    std::stable_sort(bucket.begin(), bucket.end(), [this](std::size_t a, std::size_t b) {
      return patterns_[a].size() > patterns_[b].size();
    });
  }
}

std::optional<std::size_t> AddedTokenMatcher::longest_match_at(std::string_view text,
                                                               std::size_t offset) const {
  for (const std::size_t index : by_first_byte_[static_cast<unsigned char>(text[offset])]) {
    if (text.substr(offset).starts_with(patterns_[index])) {
      return index;
    }
  }
  return std::nullopt;
}

std::vector<Segment> AddedTokenMatcher::split(std::string_view text) const {
  std::vector<Segment> segments;
  std::size_t plain_start = 0;  // start of the plain text not yet emitted
  std::size_t offset = 0;
  while (offset < text.size()) {
    const auto index = longest_match_at(text, offset);
    if (!index) {
      ++offset;
      continue;
    }
    const AddedToken& token = tokens_[*index];
    std::size_t begin = offset;
    std::size_t end = offset + patterns_[*index].size();
    if (token.single_word && (ends_with_word_character(text.substr(0, begin)) ||
                              starts_with_word_character(text.substr(end)))) {
      // The match touches a word: it stays plain text, and the search resumes after it.
      offset = end;
      continue;
    }
    if (token.lstrip) {
      begin = white_space_run_start(text, begin, plain_start);
    }
    if (token.rstrip) {
      end = white_space_run_end(text, end);
    }
    if (begin > plain_start) {
      segments.push_back({text.substr(plain_start, begin - plain_start), plain_start, {}});
    }
    segments.push_back({text.substr(begin, end - begin), begin, token.id});
    plain_start = end;
    offset = end;
  }
  if (plain_start < text.size()) {
    segments.push_back({text.substr(plain_start), plain_start, {}});
  }
  return segments;
}

}  // namespace magrq::model::detail
