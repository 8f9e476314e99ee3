#include "model/tokenizer_bpe.hpp"

#include <cstdio>
#include <queue>

#include "model/unicode.hpp"

namespace magrq::model::detail {

namespace {

// Words longer than this are encoded without the cache: they are rare, and a
// SentencePiece-style tokenizer without pre-tokenizer passes whole paragraphs as one word.
constexpr std::size_t kMaxCachedWordBytes = 256;
// The cache stops growing at this many words. The ids of a typical word take under 100
// bytes, so the cache stays below about 20 MB (an estimate).
constexpr std::size_t kCacheCapacity = 200'000;
// The SentencePiece word-start marker U+2581 in UTF-8.
constexpr std::string_view kMarker = "\xE2\x96\x81";

// Whether the marker at byte `at` of text comes right after another marker.
bool follows_marker(std::string_view text, std::size_t at) {
  return at >= kMarker.size() && text.substr(at - kMarker.size(), kMarker.size()) == kMarker;
}

uint64_t pair_key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
         static_cast<uint32_t>(right);
}

std::string byte_piece_name(int byte) {
  char name[8];
  std::snprintf(name, sizeof(name), "<0x%02X>", byte);
  return name;
}

std::string code_point_label(std::string_view character) {
  std::size_t offset = 0;
  char label[16];
  std::snprintf(label, sizeof(label), "U+%04X",
                static_cast<unsigned>(unicode::next_code_point(character, offset)));
  return label;
}

void reject_if_set(const nlohmann::json& node, std::string_view key, const JsonPlace& place) {
  const auto found = node.find(key);
  if (found == node.end() || found->is_null()) {
    return;
  }
  if (found->is_string() && found->get<std::string>().empty()) {
    return;
  }
  if (key == "dropout" && found->is_number() && found->get<double>() == 0.0) {
    return;
  }
  throw DataError(place.child(key).describe() + ": BPE " + std::string(key) + " = " +
                  found->dump() + " is not supported (Llama tokenizers leave it null)");
}

// One symbol of a word during merging: a doubly linked list over the initial symbols.
struct Symbol {
  int32_t id = 0;
  int32_t prev = -1;
  int32_t next = -1;
  bool alive = true;
};

// A candidate merge of the symbol at `left` with its right neighbour.
struct Candidate {
  int32_t rank = 0;
  int32_t left = 0;
  int32_t merged = 0;
  // Lowest rank first; among equal ranks the leftmost pair first.
  bool operator>(const Candidate& other) const {
    return rank != other.rank ? rank > other.rank : left > other.left;
  }
};

}  // namespace

BpeModel::BpeModel(const nlohmann::json& node, const JsonPlace& place) {
  const std::string type = component_type(node, place);
  if (type != "BPE") {
    throw DataError(place.describe() + ": unsupported model type \"" + type +
                    "\"; magrq supports only BPE (Llama, Mistral and Llama-3 tokenizers)");
  }
  for (const char* key : {"dropout", "continuing_subword_prefix", "end_of_word_suffix"}) {
    reject_if_set(node, key, place);
  }
  fuse_unk_ = optional_bool(node, "fuse_unk", false, place);
  byte_fallback_ = optional_bool(node, "byte_fallback", false, place);
  ignore_merges_ = optional_bool(node, "ignore_merges", false, place);

  parse_vocab(require_field(node, "vocab", place), place.child("vocab"));
  parse_merges(require_field(node, "merges", place), place.child("merges"));

  const auto unk = node.find("unk_token");
  if (unk != node.end() && !unk->is_null()) {
    const std::string unk_piece = require_string(node, "unk_token", place);
    unk_id_ = find(unk_piece);
    if (!unk_id_) {
      throw DataError(place.child("unk_token").describe() + ": the unknown token \"" +
                      unk_piece + "\" is not in the vocabulary");
    }
  }
  for (int byte = 0; byte < 256; ++byte) {
    byte_ids_[byte] = find(byte_piece_name(byte)).value_or(-1);
  }
  split_at_markers_ = marker_boundaries_are_safe();
}

// A SentencePiece-style tokenizer without pre-tokenizer hands BPE whole paragraphs (the
// whole text when it has no newline) as one word. Cutting such a word before each marker
// that follows a non-marker character gives the same ids if no piece contains a
// non-marker character followed by a marker. Then no merge can produce a piece that
// crosses the cut, and the merges on each side happen in the same relative order. The
// Mistral-7B vocabulary qualifies (its pieces with an inner marker are runs of markers
// only). The marker must be a piece itself, or else unknown-token fusion could join
// characters across the cut. The cut parts are short and repeat, so they also hit the
// cache.
bool BpeModel::marker_boundaries_are_safe() const {
  if (!find(kMarker)) {
    return false;
  }
  for (std::size_t id = 0; id < pieces_.size(); ++id) {
    const std::string_view text = pieces_[id];
    for (std::size_t at = text.find(kMarker, 1); at != std::string_view::npos;
         at = text.find(kMarker, at + 1)) {
      if (!follows_marker(text, at)) {
        return false;
      }
    }
  }
  return true;
}

void BpeModel::parse_vocab(const nlohmann::json& vocab, const JsonPlace& place) {
  if (!vocab.is_object()) {
    throw DataError(place.describe() + ": expected an object of piece -> id, found " +
                    std::string(vocab.type_name()));
  }
  vocab_.reserve(vocab.size());
  for (const auto& [piece, id_value] : vocab.items()) {
    if (!id_value.is_number_integer() || id_value.get<int64_t>() < 0 ||
        id_value.get<int64_t>() > INT32_MAX - 1) {
      throw DataError(place.describe() + ": piece \"" + piece +
                      "\" has id " + id_value.dump() + "; expected an integer in [0, 2^31 - 1)");
    }
    const auto id = static_cast<int32_t>(id_value.get<int64_t>());
    if (static_cast<std::size_t>(id) >= pieces_.size()) {
      pieces_.resize(id + 1);
      has_piece_.resize(id + 1, false);
    }
    if (has_piece_[id]) {
      throw DataError(place.describe() + ": id " + std::to_string(id) + " is given to both \"" +
                      pieces_[id] + "\" and \"" + piece + "\"");
    }
    pieces_[id] = piece;
    has_piece_[id] = true;
    vocab_.emplace(piece, id);
  }
}

void BpeModel::parse_merges(const nlohmann::json& merges, const JsonPlace& place) {
  if (!merges.is_array()) {
    throw DataError(place.describe() + ": expected an array of merges, found " +
                    std::string(merges.type_name()));
  }
  merges_.reserve(merges.size());
  for (std::size_t rank = 0; rank < merges.size(); ++rank) {
    const nlohmann::json& entry = merges[rank];
    std::string left;
    std::string right;
    // Two spellings: "left right" (older files) or ["left", "right"].
    if (entry.is_string()) {
      const std::string text = entry.get<std::string>();
      const std::size_t space = text.find(' ');
      if (space == std::string::npos || text.find(' ', space + 1) != std::string::npos) {
        throw DataError(place.item(rank).describe() + ": merge \"" + text +
                        "\" is not two pieces separated by one space");
      }
      left = text.substr(0, space);
      right = text.substr(space + 1);
    } else if (entry.is_array() && entry.size() == 2 && entry[0].is_string() &&
               entry[1].is_string()) {
      left = entry[0].get<std::string>();
      right = entry[1].get<std::string>();
    } else {
      throw DataError(place.item(rank).describe() +
                      ": expected \"left right\" or [\"left\", \"right\"], found " + entry.dump());
    }
    const auto left_id = find(left);
    const auto right_id = find(right);
    const auto merged_id = find(left + right);
    if (!left_id || !right_id || !merged_id) {
      throw DataError(place.item(rank).describe() + ": merge of \"" + left + "\" and \"" + right +
                      "\" needs all of them and \"" + left + right + "\" in the vocabulary");
    }
    // A repeated pair keeps the rank of its first occurrence.
    merges_.try_emplace(pair_key(*left_id, *right_id),
                        Merge{static_cast<int32_t>(rank), *merged_id});
  }
}

std::optional<int32_t> BpeModel::find(std::string_view piece) const {
  const auto found = vocab_.find(piece);
  if (found == vocab_.end()) {
    return std::nullopt;
  }
  return found->second;
}

const std::string* BpeModel::piece(int32_t id) const {
  if (id < 0 || id >= id_count() || !has_piece_[id]) {
    return nullptr;
  }
  return &pieces_[id];
}

const BpeModel::Merge* BpeModel::find_merge(int32_t left, int32_t right) const {
  const auto found = merges_.find(pair_key(left, right));
  return found == merges_.end() ? nullptr : &found->second;
}

void BpeModel::initial_symbols(std::string_view word, std::vector<int32_t>& symbols) const {
  std::optional<int32_t> pending_unk;
  std::size_t offset = 0;
  while (offset < word.size()) {
    const std::size_t start = offset;
    unicode::next_code_point(word, offset);
    const std::string_view character = word.substr(start, offset - start);

    if (const auto id = find(character)) {
      if (pending_unk) symbols.push_back(*std::exchange(pending_unk, std::nullopt));
      symbols.push_back(*id);
      continue;
    }
    if (byte_fallback_) {
      bool all_bytes_known = true;
      for (const char byte : character) {
        all_bytes_known = all_bytes_known && byte_ids_[static_cast<unsigned char>(byte)] >= 0;
      }
      if (all_bytes_known) {
        if (pending_unk) symbols.push_back(*std::exchange(pending_unk, std::nullopt));
        for (const char byte : character) {
          symbols.push_back(byte_ids_[static_cast<unsigned char>(byte)]);
        }
        continue;
      }
    }
    if (!unk_id_) {
      throw DataError("BPE: character " + code_point_label(character) +
                      " is not in the vocabulary, and the tokenizer has neither byte fallback "
                      "pieces for it nor an unknown token");
    }
    if (pending_unk && !fuse_unk_) {
      symbols.push_back(*pending_unk);
    }
    pending_unk = *unk_id_;
  }
  if (pending_unk) {
    symbols.push_back(*pending_unk);
  }
}

void BpeModel::merge_symbols(std::vector<int32_t>& ids) const {
  const auto count = static_cast<int32_t>(ids.size());
  std::vector<Symbol> symbols(ids.size());
  std::vector<Candidate> storage;
  storage.reserve(ids.size());
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue(
      std::greater<>{}, std::move(storage));
  for (int32_t i = 0; i < count; ++i) {
    symbols[i] = {ids[i], i - 1, i + 1 < count ? i + 1 : -1, true};
    if (i + 1 < count) {
      if (const Merge* merge = find_merge(ids[i], ids[i + 1])) {
        queue.push({merge->rank, i, merge->merged});
      }
    }
  }

  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[top.left];
    // Skip candidates made stale by an earlier merge: the left symbol was absorbed, has
    // no right neighbour any more, or the pair now merges into something else.
    if (!left.alive || left.next < 0) {
      continue;
    }
    Symbol& right = symbols[left.next];
    const Merge* merge = find_merge(left.id, right.id);
    if (merge == nullptr || merge->merged != top.merged) {
      continue;
    }
    left.id = merge->merged;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) {
      symbols[right.next].prev = top.left;
    }
    if (left.prev >= 0) {
      if (const Merge* before = find_merge(symbols[left.prev].id, left.id)) {
        queue.push({before->rank, left.prev, before->merged});
      }
    }
    if (left.next >= 0) {
      if (const Merge* after = find_merge(left.id, symbols[left.next].id)) {
        queue.push({after->rank, top.left, after->merged});
      }
    }
  }

  ids.clear();
  for (int32_t i = 0; i >= 0 && i < count; i = symbols[i].next) {
    ids.push_back(symbols[i].id);
  }
}

void BpeModel::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) {
    return;
  }
  if (ignore_merges_) {
    if (const auto id = find(word)) {
      out.push_back(*id);
      return;
    }
  }
  if (!split_at_markers_) {
    encode_chunk(word, out);
    return;
  }
  std::size_t chunk_start = 0;
  for (std::size_t at = word.find(kMarker, 1); at != std::string_view::npos;
       at = word.find(kMarker, at + kMarker.size())) {
    if (!follows_marker(word, at)) {
      encode_chunk(word.substr(chunk_start, at - chunk_start), out);
      chunk_start = at;
    }
  }
  encode_chunk(word.substr(chunk_start), out);
}

void BpeModel::encode_chunk(std::string_view word, std::vector<int32_t>& out) const {
  const bool cacheable = word.size() <= kMaxCachedWordBytes;
  if (cacheable) {
    std::lock_guard lock(cache_mutex_);
    const auto found = cache_.find(word);
    if (found != cache_.end()) {
      ++cache_stats_.hits;
      out.insert(out.end(), found->second.begin(), found->second.end());
      return;
    }
    ++cache_stats_.misses;
  }

  std::vector<int32_t> ids;
  ids.reserve(word.size());
  initial_symbols(word, ids);
  merge_symbols(ids);
  out.insert(out.end(), ids.begin(), ids.end());

  if (cacheable) {
    std::lock_guard lock(cache_mutex_);
    if (cache_.size() < kCacheCapacity) {
      cache_.emplace(std::string(word), std::move(ids));
      cache_stats_.entries = cache_.size();
    }
  }
}

BpeCacheStats BpeModel::cache_stats() const {
  std::lock_guard lock(cache_mutex_);
  return cache_stats_;
}

}  // namespace magrq::model::detail
