#include "model/tokenizer_decode.hpp"

#include <array>
#include <optional>
#include <unordered_map>

#include "model/tokenizer_pipeline.hpp"
#include "model/unicode.hpp"

namespace magrq::model::detail {

namespace {

class SequenceDecoder final : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> steps)
      : steps_(std::move(steps)) {}
  void decode(std::vector<std::string>& tokens) const override {
    for (const auto& step : steps_) step->decode(tokens);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> steps_;
};

class ReplaceDecoder final : public Decoder {
 public:
  ReplaceDecoder(std::string pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void decode(std::vector<std::string>& tokens) const override {
    for (std::string& token : tokens) replace_all(token, pattern_, content_);
  }

 private:
  std::string pattern_;
  std::string content_;
};

// The byte of a "<0xXX>" piece (exactly six characters, two hex digits), if it is one.
std::optional<unsigned char> byte_of_piece(const std::string& token) {
  if (token.size() != 6 || !token.starts_with("<0x") || token[5] != '>') {
    return std::nullopt;
  }
  unsigned value = 0;
  for (int i = 3; i < 5; ++i) {
    const char c = token[i];
    unsigned digit = 0;
    if (c >= '0' && c <= '9') {
      digit = c - '0';
    } else if (c >= 'A' && c <= 'F') {
      digit = c - 'A' + 10;
    } else if (c >= 'a' && c <= 'f') {
      digit = c - 'a' + 10;
    } else {
      return std::nullopt;
    }
    value = value * 16 + digit;
  }
  return static_cast<unsigned char>(value);
}

// Joins each run of <0xXX> pieces into the text of its bytes. A run that is not valid
// UTF-8 becomes one U+FFFD per byte, as in Hugging Face tokenizers.
class ByteFallbackDecoder final : public Decoder {
 public:
  void decode(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    out.reserve(tokens.size());
    std::string bytes;
    for (std::string& token : tokens) {
      if (const auto byte = byte_of_piece(token)) {
        bytes.push_back(static_cast<char>(*byte));
        continue;
      }
      flush(bytes, out);
      out.push_back(std::move(token));
    }
    flush(bytes, out);
    tokens = std::move(out);
  }

 private:
  static void flush(std::string& bytes, std::vector<std::string>& out) {
    if (!bytes.empty()) {
      out.push_back(unicode::decode_utf8_or_replace_each_byte(bytes));
      bytes.clear();
    }
  }
};

class FuseDecoder final : public Decoder {
 public:
  void decode(std::vector<std::string>& tokens) const override {
    std::string joined;
    for (const std::string& token : tokens) joined += token;
    tokens.assign(1, std::move(joined));
  }
};

// Removes up to `start` leading and `stop` trailing copies of one character from every
// token.
class StripDecoder final : public Decoder {
 public:
  StripDecoder(char32_t character, std::size_t start, std::size_t stop)
      : character_(character), start_(start), stop_(stop) {}
  void decode(std::vector<std::string>& tokens) const override {
    for (std::string& token : tokens) token = strip(token);
  }

 private:
  std::string strip(const std::string& token) const {
    std::vector<std::size_t> boundaries;  // byte offset of every character, then the end
    std::vector<char32_t> characters;
    std::size_t offset = 0;
    while (offset < token.size()) {
      boundaries.push_back(offset);
      characters.push_back(unicode::next_code_point(token, offset));
    }
    boundaries.push_back(token.size());
    std::size_t first = 0;
    while (first < start_ && first < characters.size() && characters[first] == character_) {
      ++first;
    }
    std::size_t last = characters.size();
    for (std::size_t removed = 0;
         removed < stop_ && last > first && characters[last - 1] == character_; ++removed) {
      --last;
    }
    return token.substr(boundaries[first], boundaries[last] - boundaries[first]);
  }

  char32_t character_;
  std::size_t start_;
  std::size_t stop_;
};

// Maps byte-level characters back to bytes and decodes the bytes as UTF-8, one U+FFFD
// per maximal invalid subsequence. A token with a character outside the byte-level
// alphabet (an added token such as "<|eot_id|>" is inside it) contributes its own UTF-8.
class ByteLevelDecoder final : public Decoder {
 public:
  ByteLevelDecoder() {
    const auto& alphabet = byte_level_alphabet();
    for (int byte = 0; byte < 256; ++byte) {
      byte_of_character_.emplace(alphabet[byte], static_cast<unsigned char>(byte));
    }
  }
  void decode(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const std::string& token : tokens) append_bytes(token, bytes);
    tokens.assign(1, unicode::decode_utf8_lossy(bytes));
  }

 private:
  void append_bytes(const std::string& token, std::string& bytes) const {
    const std::size_t mark = bytes.size();
    std::size_t offset = 0;
    while (offset < token.size()) {
      const auto found = byte_of_character_.find(unicode::next_code_point(token, offset));
      if (found == byte_of_character_.end()) {
        bytes.resize(mark);
        bytes += token;
        return;
      }
      bytes.push_back(static_cast<char>(found->second));
    }
  }

  std::unordered_map<char32_t, unsigned char> byte_of_character_;
};

// Turns the marker back into spaces. In the first token the markers are dropped instead
// (the one the pre-tokenizer prepended), unless the prepend scheme is "never".
class MetaspaceDecoder final : public Decoder {
 public:
  MetaspaceDecoder(std::string marker, bool drops_first_marker)
      : marker_(std::move(marker)), drops_first_marker_(drops_first_marker) {}
  void decode(std::vector<std::string>& tokens) const override {
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      replace_all(tokens[i], marker_, i == 0 && drops_first_marker_ ? "" : " ");
    }
  }

 private:
  std::string marker_;
  bool drops_first_marker_;
};

std::size_t require_count(const nlohmann::json& node, std::string_view key,
                          const JsonPlace& place) {
  const nlohmann::json& value = require_field(node, key, place);
  if (!value.is_number_unsigned() && !(value.is_number_integer() && value.get<int64_t>() >= 0)) {
    throw DataError(place.child(key).describe() + ": expected a count >= 0, found " +
                    value.dump());
  }
  return value.get<std::size_t>();
}

std::unique_ptr<Decoder> parse_strip(const nlohmann::json& node, const JsonPlace& place) {
  const std::string content = require_string(node, "content", place);
  if (content.empty() || unicode::valid_sequence_length(content, 0) != content.size()) {
    throw DataError(place.child("content").describe() +
                    ": expected exactly one character, found \"" + content + "\"");
  }
  std::size_t offset = 0;
  const char32_t character = unicode::next_code_point(content, offset);
  return std::make_unique<StripDecoder>(character, require_count(node, "start", place),
                                        require_count(node, "stop", place));
}

std::unique_ptr<Decoder> parse_metaspace_decoder(const nlohmann::json& node,
                                                 const JsonPlace& place) {
  const std::string marker = require_string(node, "replacement", place);
  if (marker.empty()) {
    throw DataError(place.child("replacement").describe() + ": the marker is empty");
  }
  bool drops_first_marker = optional_bool(node, "add_prefix_space", true, place);
  const auto scheme = node.find("prepend_scheme");
  if (scheme != node.end() && scheme->is_string()) {
    drops_first_marker = scheme->get<std::string>() != "never";
  }
  return std::make_unique<MetaspaceDecoder>(marker, drops_first_marker);
}

}  // namespace

std::unique_ptr<Decoder> parse_decoder(const nlohmann::json& node, const JsonPlace& place) {
  if (node.is_null()) {
    return nullptr;
  }
  const std::string type = component_type(node, place);
  if (type == "Sequence") {
    const nlohmann::json& list = require_field(node, "decoders", place);
    std::vector<std::unique_ptr<Decoder>> steps;
    for (std::size_t i = 0; i < list.size(); ++i) {
      steps.push_back(parse_decoder(list[i], place.child("decoders").item(i)));
    }
    return std::make_unique<SequenceDecoder>(std::move(steps));
  }
  if (type == "Replace") {
    std::string pattern = require_string_pattern(node, place, "the Replace decoder");
    if (pattern.empty()) {
      throw DataError(place.child("pattern").describe() + ": the Replace pattern is empty");
    }
    return std::make_unique<ReplaceDecoder>(std::move(pattern),
                                            require_string(node, "content", place));
  }
  if (type == "ByteFallback") {
    return std::make_unique<ByteFallbackDecoder>();
  }
  if (type == "Fuse") {
    return std::make_unique<FuseDecoder>();
  }
  if (type == "Strip") {
    return parse_strip(node, place);
  }
  if (type == "ByteLevel") {
    return std::make_unique<ByteLevelDecoder>();
  }
  if (type == "Metaspace") {
    return parse_metaspace_decoder(node, place);
  }
  throw DataError(place.describe() + ": unsupported decoder type \"" + type +
                  "\"; magrq supports Sequence, Replace, ByteFallback, Fuse, Strip, "
                  "ByteLevel and Metaspace");
}

}  // namespace magrq::model::detail
