// The tokenizer of a Hugging Face Llama-family model folder: text to token ids and back,
// with the ids the model was trained with.
//
// Two BPE styles are supported, both read from tokenizer.json:
// - SentencePiece-style BPE (Llama 1 and 2, Mistral): a Prepend "▁" + Replace " " -> "▁"
//   normalizer or a Metaspace pre-tokenizer, merges by rank, <0xXX> byte fallback or an
//   unknown token, and the Replace/ByteFallback/Fuse/Strip decoder.
// - Byte-level BPE (Llama 3): a regex Split pre-tokenizer (run with PCRE2) followed by
//   ByteLevel, merges by rank with ignore_merges, and the ByteLevel decoder.
// Added tokens split the text before BPE runs. docs/tokenizer.md lists every supported
// component and what is rejected.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace magrq::model {

// Word-cache counters of one tokenizer, summed over all encode calls so far.
struct TokenizerCacheStats {
  std::size_t hits = 0;
  std::size_t misses = 0;
  std::size_t entries = 0;
};

class Tokenizer {
 public:
  // Loads dir/tokenizer.json and dir/tokenizer_config.json, and dir/generation_config.json
  // when present (for its eos_token_id list). Throws DataError naming the file for a
  // missing or unreadable file, invalid JSON, or an unsupported component type.
  static Tokenizer from_directory(const std::filesystem::path& dir);

  // Builds a tokenizer from parsed files. generation_config may be null. source names
  // the origin in error messages (for example the folder).
  static Tokenizer from_json(const nlohmann::json& tokenizer, const nlohmann::json& config,
                             const nlohmann::json& generation_config, const std::string& source);

  // Token ids of text (UTF-8), without the special tokens of the post-processor; with
  // add_bos the BOS id comes first. Text equal to an added token's content becomes that
  // token. Throws DataError for invalid UTF-8 (naming the byte offset) and for
  // add_bos on a tokenizer without a BOS token. Thread-safe.
  std::vector<int32_t> encode(std::string_view text, bool add_bos) const;

  // Token ids with the special tokens the tokenizer adds by default (Hugging Face
  // add_special_tokens=true): the prefix and suffix of add_bos_token/add_eos_token in
  // tokenizer_config.json, or else of the TemplateProcessing post-processor.
  std::vector<int32_t> encode_with_default_special_tokens(std::string_view text) const;

  // Whether the default special tokens start with BOS.
  bool adds_bos_by_default() const;

  // Text of ids through the tokenizer's decoder. With skip_special_tokens the added
  // tokens marked special (such as BOS and EOS) are left out. Throws DataError for an id
  // outside [0, vocab_size()) or an id that has no piece.
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens = true) const;

  // The BOS id from tokenizer_config.json, or -1 when the tokenizer defines none.
  int32_t bos_id() const;

  // The EOS ids: tokenizer_config.json's eos_token, then the eos_token_id values of
  // generation_config.json that differ from it. Empty when neither defines one.
  std::vector<int32_t> eos_ids() const;

  // One more than the largest id of the vocabulary and the added tokens.
  int32_t vocab_size() const;

  // The id of a piece of the vocabulary or an added token.
  std::optional<int32_t> piece_to_id(std::string_view piece) const;

  // The raw piece of an id (before decoding): "▁the", "<0x0A>", "Ġthe", "<s>".
  std::string id_to_piece(int32_t id) const;

  bool is_special(int32_t id) const;

  TokenizerCacheStats cache_stats() const;

  struct Impl;

 private:
  explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

  // Shared and immutable except for the word cache, which has its own mutex, so copies
  // of a Tokenizer are cheap and usable from several threads.
  std::shared_ptr<const Impl> impl_;
};

}  // namespace magrq::model
