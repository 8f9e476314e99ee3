#include "model/tokenizer_pipeline.hpp"

#include <algorithm>
#include <optional>
#include <utility>

#include "model/tokenizer_regex.hpp"
#include "model/unicode.hpp"

namespace magrq::model::detail {

namespace {

// The split pattern of GPT-2, which the ByteLevel pre-tokenizer applies when its
// use_regex flag is set (Radford et al. 2019, the released encoder.py).
constexpr std::string_view kGpt2SplitPattern =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

// The treatment of pattern matches in a split (Hugging Face SplitDelimiterBehavior).
enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

SplitBehavior parse_split_behavior(const nlohmann::json& node, const JsonPlace& place) {
  const std::string name = require_string(node, "behavior", place);
  if (name == "Removed") return SplitBehavior::kRemoved;
  if (name == "Isolated") return SplitBehavior::kIsolated;
  if (name == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (name == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (name == "Contiguous") return SplitBehavior::kContiguous;
  throw DataError(place.child("behavior").describe() + ": unknown split behavior \"" + name +
                  "\"; expected Removed, Isolated, MergedWithPrevious, MergedWithNext or "
                  "Contiguous");
}

// A part of a string and whether it is a match of the split pattern.
struct Part {
  Span span;
  bool is_match = false;
};

// Cuts [0, size) into the matches and the gaps between them.
std::vector<Part> cover_with_parts(const std::vector<Span>& matches, std::size_t size) {
  std::vector<Part> parts;
  parts.reserve(matches.size() * 2 + 1);
  std::size_t previous_end = 0;
  for (const Span& match : matches) {
    if (match.begin > previous_end) {
      parts.push_back({{previous_end, match.begin}, false});
    }
    parts.push_back({match, true});
    previous_end = match.end;
  }
  if (previous_end < size) {
    parts.push_back({{previous_end, size}, false});
  }
  return parts;
}

// Applies a split behavior to the parts; returns the spans of the resulting pieces.
std::vector<Span> apply_behavior(const std::vector<Part>& parts, SplitBehavior behavior) {
  std::vector<Span> pieces;
  switch (behavior) {
    case SplitBehavior::kRemoved:
      for (const Part& part : parts) {
        if (!part.is_match) pieces.push_back(part.span);
      }
      break;
    case SplitBehavior::kIsolated:
      for (const Part& part : parts) pieces.push_back(part.span);
      break;
    case SplitBehavior::kMergedWithPrevious: {
      bool previous_was_match = false;
      for (const Part& part : parts) {
        if (part.is_match && !previous_was_match && !pieces.empty()) {
          pieces.back().end = part.span.end;
        } else {
          pieces.push_back(part.span);
        }
        previous_was_match = part.is_match;
      }
      break;
    }
    case SplitBehavior::kMergedWithNext: {
      // The mirror image of kMergedWithPrevious: walk from the end.
      bool next_was_match = false;
      for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
        if (it->is_match && !next_was_match && !pieces.empty()) {
          pieces.back().begin = it->span.begin;
        } else {
          pieces.push_back(it->span);
        }
        next_was_match = it->is_match;
      }
      std::reverse(pieces.begin(), pieces.end());
      break;
    }
    case SplitBehavior::kContiguous: {
      std::optional<bool> previous_kind;
      for (const Part& part : parts) {
        if (previous_kind == part.is_match) {
          pieces.back().end = part.span.end;
        } else {
          pieces.push_back(part.span);
        }
        previous_kind = part.is_match;
      }
      break;
    }
  }
  return pieces;
}

// Splits every piece at the matches found by find_matches, keeping what behavior keeps.
template <typename FindMatches>
void split_pieces(std::vector<Piece>& pieces, SplitBehavior behavior, bool invert,
                  const FindMatches& find_matches) {
  std::vector<Piece> result;
  result.reserve(pieces.size());
  for (Piece& piece : pieces) {
    std::vector<Part> parts = cover_with_parts(find_matches(piece.text), piece.text.size());
    if (invert) {
      for (Part& part : parts) part.is_match = !part.is_match;
    }
    bool first = true;
    for (const Span& span : apply_behavior(parts, behavior)) {
      if (span.end > span.begin) {
        result.push_back({piece.text.substr(span.begin, span.end - span.begin),
                          piece.at_input_start && first && span.begin == 0});
        first = false;
      }
    }
  }
  pieces = std::move(result);
}

std::vector<Span> find_literal(std::string_view text, std::string_view needle) {
  std::vector<Span> spans;
  std::size_t at = text.find(needle);
  while (at != std::string_view::npos) {
    spans.push_back({at, at + needle.size()});
    at = text.find(needle, at + needle.size());
  }
  return spans;
}

// ---- normalizers ----

class SequenceNormalizer final : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> steps)
      : steps_(std::move(steps)) {}
  void normalize(std::string& text) const override {
    for (const auto& step : steps_) step->normalize(text);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> steps_;
};

// Prepends a fixed string to non-empty text.
class PrependNormalizer final : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  void normalize(std::string& text) const override {
    if (!text.empty()) text.insert(0, prefix_);
  }

 private:
  std::string prefix_;
};

class ReplaceNormalizer final : public Normalizer {
 public:
  ReplaceNormalizer(std::string pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void normalize(std::string& text) const override { replace_all(text, pattern_, content_); }

 private:
  std::string pattern_;
  std::string content_;
};

// ---- pre-tokenizers ----

class SequencePreTokenizer final : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> steps)
      : steps_(std::move(steps)) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    for (const auto& step : steps_) step->pre_tokenize(pieces);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

class RegexSplitPreTokenizer final : public PreTokenizer {
 public:
  RegexSplitPreTokenizer(SplitRegex regex, SplitBehavior behavior, bool invert)
      : regex_(std::move(regex)), behavior_(behavior), invert_(invert) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    split_pieces(pieces, behavior_, invert_,
                 [this](std::string_view text) { return regex_.find_all(text); });
  }

 private:
  SplitRegex regex_;
  SplitBehavior behavior_;
  bool invert_;
};

class LiteralSplitPreTokenizer final : public PreTokenizer {
 public:
  LiteralSplitPreTokenizer(std::string needle, SplitBehavior behavior, bool invert)
      : needle_(std::move(needle)), behavior_(behavior), invert_(invert) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    split_pieces(pieces, behavior_, invert_,
                 [this](std::string_view text) { return find_literal(text, needle_); });
  }

 private:
  std::string needle_;
  SplitBehavior behavior_;
  bool invert_;
};

// Optionally prefixes a space and splits with the GPT-2 pattern. Then maps every byte to
// its byte-level character, so that BPE works on a string of visible characters.
class ByteLevelPreTokenizer final : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, std::optional<SplitRegex> gpt2_split)
      : add_prefix_space_(add_prefix_space), gpt2_split_(std::move(gpt2_split)) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    if (add_prefix_space_) {
      for (Piece& piece : pieces) {
        if (!piece.text.starts_with(' ')) piece.text = " " + piece.text;
      }
    }
    if (gpt2_split_) {
      split_pieces(pieces, SplitBehavior::kIsolated, false,
                   [this](std::string_view text) { return gpt2_split_->find_all(text); });
    }
    for (Piece& piece : pieces) piece.text = to_byte_level(piece.text);
  }

 private:
  bool add_prefix_space_;
  std::optional<SplitRegex> gpt2_split_;
};

// When the marker is prepended (Hugging Face PrependScheme).
enum class PrependScheme { kAlways, kFirst, kNever };

// Replaces every space by the marker (U+2581 in Llama), prepends the marker per the
// scheme unless the piece already starts with it, and optionally splits before each
// marker.
class MetaspacePreTokenizer final : public PreTokenizer {
 public:
  MetaspacePreTokenizer(std::string marker, PrependScheme scheme, bool split)
      : marker_(std::move(marker)), scheme_(scheme), split_(split) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    for (Piece& piece : pieces) {
      replace_all(piece.text, " ", marker_);
      const bool prepend = scheme_ == PrependScheme::kAlways ||
                           (scheme_ == PrependScheme::kFirst && piece.at_input_start);
      if (prepend && !piece.text.starts_with(marker_)) piece.text = marker_ + piece.text;
    }
    if (split_) {
      split_pieces(pieces, SplitBehavior::kMergedWithNext, false,
                   [this](std::string_view text) { return find_literal(text, marker_); });
    }
  }

 private:
  std::string marker_;
  PrependScheme scheme_;
  bool split_;
};

std::unique_ptr<PreTokenizer> parse_split(const nlohmann::json& node, const JsonPlace& place) {
  const SplitBehavior behavior = parse_split_behavior(node, place);
  const bool invert = optional_bool(node, "invert", false, place);
  const nlohmann::json& pattern = require_field(node, "pattern", place);
  if (pattern.is_object() && pattern.contains("Regex") && pattern["Regex"].is_string()) {
    SplitRegex regex(pattern["Regex"].get<std::string>(), place.child("pattern").describe());
    return std::make_unique<RegexSplitPreTokenizer>(std::move(regex), behavior, invert);
  }
  const std::string needle = require_string_pattern(node, place, "Split");
  if (needle.empty()) {
    throw DataError(place.child("pattern").describe() + ": the split pattern is empty");
  }
  return std::make_unique<LiteralSplitPreTokenizer>(needle, behavior, invert);
}

std::unique_ptr<PreTokenizer> parse_byte_level(const nlohmann::json& node,
                                               const JsonPlace& place) {
  const bool add_prefix_space = optional_bool(node, "add_prefix_space", true, place);
  std::optional<SplitRegex> gpt2_split;
  if (optional_bool(node, "use_regex", true, place)) {
    gpt2_split.emplace(kGpt2SplitPattern, place.describe() + " (GPT-2 split pattern)");
  }
  return std::make_unique<ByteLevelPreTokenizer>(add_prefix_space, std::move(gpt2_split));
}

// Reads the Metaspace prepend scheme from either spelling: prepend_scheme
// ("always", "first", "never") or the older add_prefix_space flag.
PrependScheme parse_prepend_scheme(const nlohmann::json& node, const JsonPlace& place) {
  PrependScheme scheme = PrependScheme::kAlways;
  const auto found = node.find("prepend_scheme");
  if (found != node.end() && !found->is_null()) {
    const std::string name = found->is_string() ? found->get<std::string>() : found->dump();
    if (name == "always") {
      scheme = PrependScheme::kAlways;
    } else if (name == "first") {
      scheme = PrependScheme::kFirst;
    } else if (name == "never") {
      scheme = PrependScheme::kNever;
    } else {
      throw DataError(place.child("prepend_scheme").describe() + ": unknown value " + name +
                      "; expected \"always\", \"first\" or \"never\"");
    }
  }
  if (!optional_bool(node, "add_prefix_space", true, place)) {
    if (scheme != PrependScheme::kNever && found != node.end() && !found->is_null()) {
      throw DataError(place.describe() + ": add_prefix_space is false but prepend_scheme is " +
                      found->dump() + "; the two settings contradict each other");
    }
    scheme = PrependScheme::kNever;
  }
  return scheme;
}

std::string require_single_character(const nlohmann::json& node, std::string_view key,
                                     const JsonPlace& place) {
  const std::string value = require_string(node, key, place);
  if (value.empty() || unicode::valid_sequence_length(value, 0) != value.size()) {
    throw DataError(place.child(key).describe() + ": expected exactly one character, found \"" +
                    value + "\"");
  }
  return value;
}

std::unique_ptr<PreTokenizer> parse_metaspace(const nlohmann::json& node,
                                              const JsonPlace& place) {
  return std::make_unique<MetaspacePreTokenizer>(
      require_single_character(node, "replacement", place), parse_prepend_scheme(node, place),
      optional_bool(node, "split", true, place));
}

}  // namespace

std::unique_ptr<Normalizer> parse_normalizer(const nlohmann::json& node, const JsonPlace& place) {
  if (node.is_null()) {
    return nullptr;
  }
  const std::string type = component_type(node, place);
  if (type == "Sequence") {
    const nlohmann::json& list = require_field(node, "normalizers", place);
    std::vector<std::unique_ptr<Normalizer>> steps;
    for (std::size_t i = 0; i < list.size(); ++i) {
      steps.push_back(parse_normalizer(list[i], place.child("normalizers").item(i)));
    }
    return std::make_unique<SequenceNormalizer>(std::move(steps));
  }
  if (type == "Prepend") {
    return std::make_unique<PrependNormalizer>(require_string(node, "prepend", place));
  }
  if (type == "Replace") {
    std::string pattern = require_string_pattern(node, place, "the Replace normalizer");
    if (pattern.empty()) {
      throw DataError(place.child("pattern").describe() + ": the Replace pattern is empty");
    }
    return std::make_unique<ReplaceNormalizer>(std::move(pattern),
                                               require_string(node, "content", place));
  }
  throw DataError(place.describe() + ": unsupported normalizer type \"" + type +
                  "\"; magrq supports Sequence, Prepend and Replace");
}

std::unique_ptr<PreTokenizer> parse_pre_tokenizer(const nlohmann::json& node,
                                                  const JsonPlace& place) {
  if (node.is_null()) {
    return nullptr;
  }
  const std::string type = component_type(node, place);
  if (type == "Sequence") {
    const nlohmann::json& list = require_field(node, "pretokenizers", place);
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    for (std::size_t i = 0; i < list.size(); ++i) {
      steps.push_back(parse_pre_tokenizer(list[i], place.child("pretokenizers").item(i)));
    }
    return std::make_unique<SequencePreTokenizer>(std::move(steps));
  }
  if (type == "Split") {
    return parse_split(node, place);
  }
  if (type == "ByteLevel") {
    return parse_byte_level(node, place);
  }
  if (type == "Metaspace") {
    return parse_metaspace(node, place);
  }
  throw DataError(place.describe() + ": unsupported pre-tokenizer type \"" + type +
                  "\"; magrq supports Sequence, Split, ByteLevel and Metaspace");
}

const std::array<char32_t, 256>& byte_level_alphabet() {
  static const std::array<char32_t, 256> alphabet = [] {
    std::array<char32_t, 256> table{};
    char32_t next_substitute = 0x100;
    for (int byte = 0; byte < 256; ++byte) {
      const bool printable = (byte >= '!' && byte <= '~') || (byte >= 0xA1 && byte <= 0xAC) ||
                             (byte >= 0xAE && byte <= 0xFF);
      table[byte] = printable ? static_cast<char32_t>(byte) : next_substitute++;
    }
    return table;
  }();
  return alphabet;
}

std::string to_byte_level(std::string_view text) {
  // Each byte-level character is one or two UTF-8 bytes; cache their encodings.
  static const std::array<std::string, 256> encoded = [] {
    std::array<std::string, 256> table;
    for (int byte = 0; byte < 256; ++byte) {
      unicode::append_utf8(table[byte], byte_level_alphabet()[byte]);
    }
    return table;
  }();
  std::string out;
  out.reserve(text.size() * 2);
  for (const char c : text) {
    out += encoded[static_cast<unsigned char>(c)];
  }
  return out;
}

void replace_all(std::string& text, std::string_view pattern, std::string_view content) {
  if (text.find(pattern) == std::string::npos) {
    return;
  }
  std::string out;
  out.reserve(text.size() + text.size() / 4);
  std::size_t start = 0;
  for (std::size_t at = text.find(pattern); at != std::string::npos;
       at = text.find(pattern, start)) {
    out.append(text, start, at - start);
    out.append(content);
    start = at + pattern.size();
  }
  out.append(text, start, std::string::npos);
  text = std::move(out);
}

}  // namespace magrq::model::detail
