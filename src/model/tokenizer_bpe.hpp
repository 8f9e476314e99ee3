// The BPE model of tokenizer.json: vocabulary, ranked merges, byte fallback, the unknown
// token and a cache of encoded words.
#pragma once

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "model/tokenizer_json.hpp"

namespace magrq::model::detail {

// Hash that lets an unordered_map<std::string, ...> be searched with a string_view.
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view text) const {
    return std::hash<std::string_view>{}(text);
  }
};

template <typename Value>
using StringMap = std::unordered_map<std::string, Value, StringHash, std::equal_to<>>;

// Counters of the word cache, for benchmarks.
struct BpeCacheStats {
  std::size_t hits = 0;
  std::size_t misses = 0;
  std::size_t entries = 0;
};

class BpeModel {
 public:
  // Parses the "model" object of tokenizer.json. Rejects a model type other than BPE,
  // BPE options that Llama tokenizers do not use (dropout, continuing_subword_prefix,
  // end_of_word_suffix), duplicate ids, and merges whose parts or result are not in the
  // vocabulary.
  BpeModel(const nlohmann::json& node, const JsonPlace& place);

  // Appends the ids of one pre-tokenized word (a non-empty UTF-8 string).
  //
  // Each character becomes its vocabulary piece; a character outside the vocabulary
  // becomes its <0xXX> byte pieces (byte fallback) or the unknown token, consecutive
  // unknowns fused into one when fuse_unk is set. Then the adjacent pair with the lowest
  // merge rank is merged, leftmost first among equal ranks, until no pair has a merge.
  // With ignore_merges a word that is itself a piece is emitted whole. Throws DataError
  // for a character that none of these can represent. O(n log n) in the characters of
  // the word. Repeated words up to 256 bytes come from the cache. A SentencePiece-style
  // word is first cut at its "▁" markers when the cut cannot change the result.
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;

  std::optional<int32_t> find(std::string_view piece) const;

  // The piece of an id, or nullptr for an id with no piece in the vocabulary.
  const std::string* piece(int32_t id) const;

  // One more than the largest id of the vocabulary.
  int32_t id_count() const { return static_cast<int32_t>(pieces_.size()); }

  BpeCacheStats cache_stats() const;

 private:
  // A merge of an adjacent pair into the piece `merged`, applied in order of `rank`.
  struct Merge {
    int32_t rank = 0;
    int32_t merged = 0;
  };

  void parse_vocab(const nlohmann::json& vocab, const JsonPlace& place);
  bool marker_boundaries_are_safe() const;
  void encode_chunk(std::string_view chunk, std::vector<int32_t>& out) const;
  void parse_merges(const nlohmann::json& merges, const JsonPlace& place);
  void initial_symbols(std::string_view word, std::vector<int32_t>& symbols) const;
  void merge_symbols(std::vector<int32_t>& symbols) const;
  const Merge* find_merge(int32_t left, int32_t right) const;

  StringMap<int32_t> vocab_;
  std::vector<std::string> pieces_;
  std::vector<bool> has_piece_;
  std::unordered_map<uint64_t, Merge> merges_;
  std::optional<int32_t> unk_id_;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  // Whether a word may be cut before each SentencePiece marker that follows another
  // character (see marker_boundaries_are_safe).
  bool split_at_markers_ = false;
  std::array<int32_t, 256> byte_ids_{};  // id of <0xXX>, or -1

  mutable std::mutex cache_mutex_;
  mutable StringMap<std::vector<int32_t>> cache_;
  mutable BpeCacheStats cache_stats_;
};

}  // namespace magrq::model::detail
