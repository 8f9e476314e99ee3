// The decoders of tokenizer.json, which turn the pieces of decoded ids back into text
// with Hugging Face tokenizers semantics. Each decoder maps a list of strings to a list
// of strings, and the decoded text is the concatenation of the final list.
//
// Supported: Sequence, Replace (string pattern), ByteFallback, Fuse, Strip, ByteLevel,
// Metaspace. Any other type is rejected with a DataError naming the file and the type.
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

#include "model/tokenizer_json.hpp"

namespace magrq::model::detail {

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void decode(std::vector<std::string>& tokens) const = 0;
};

// Parses the "decoder" value of tokenizer.json; null gives nullptr.
std::unique_ptr<Decoder> parse_decoder(const nlohmann::json& node, const JsonPlace& place);

}  // namespace magrq::model::detail
