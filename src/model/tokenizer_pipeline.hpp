// The text side of encoding: the normalizers and pre-tokenizers of tokenizer.json that
// Llama-family tokenizers use, with Hugging Face tokenizers semantics.
//
// Supported normalizers: Sequence, Prepend, Replace (string pattern).
// Supported pre-tokenizers: Sequence, Split (regex or string pattern, every split
// behaviour, invert), ByteLevel, Metaspace.
// Any other type is rejected with a DataError naming the file and the type.
#pragma once

#include <nlohmann/json.hpp>

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "model/tokenizer_json.hpp"

namespace magrq::model::detail {

// One piece of text on its way through normalization and pre-tokenization.
struct Piece {
  std::string text;
  // True when the piece begins at byte 0 of the text given to encode (the Metaspace
  // "first" prepend scheme adds its marker only there).
  bool at_input_start = false;
};

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void normalize(std::string& text) const = 0;
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Replaces each piece by its sub-pieces, in order. Empty pieces are dropped.
  virtual void pre_tokenize(std::vector<Piece>& pieces) const = 0;
};

// Parses the "normalizer" value of tokenizer.json; null gives nullptr.
std::unique_ptr<Normalizer> parse_normalizer(const nlohmann::json& node, const JsonPlace& place);

// Parses the "pre_tokenizer" value of tokenizer.json; null gives nullptr.
std::unique_ptr<PreTokenizer> parse_pre_tokenizer(const nlohmann::json& node,
                                                  const JsonPlace& place);

// The GPT-2 byte-to-character map of byte-level BPE: the printable bytes '!'..'~',
// U+00A1..U+00AC and U+00AE..U+00FF map to themselves, and the other 68 bytes map to
// U+0100, U+0101, ... in byte order, so every byte becomes a visible character.
const std::array<char32_t, 256>& byte_level_alphabet();

// Maps every byte of text to its byte-level character (UTF-8 encoded).
std::string to_byte_level(std::string_view text);

// Replaces every non-overlapping occurrence of pattern (not empty), left to right.
void replace_all(std::string& text, std::string_view pattern, std::string_view content);

}  // namespace magrq::model::detail
