#include "model/tokenizer.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "core/error.hpp"
#include "model/tokenizer_added_tokens.hpp"
#include "model/tokenizer_bpe.hpp"
#include "model/tokenizer_decode.hpp"
#include "model/tokenizer_pipeline.hpp"
#include "model/unicode.hpp"

namespace magrq::model {

using detail::JsonPlace;

// The special tokens that encode_with_default_special_tokens puts around the ids.
struct DefaultSpecialTokens {
  std::vector<int32_t> prefix;
  std::vector<int32_t> suffix;
};

struct Tokenizer::Impl {
  std::string source;
  std::unique_ptr<detail::BpeModel> model;
  std::unique_ptr<detail::Normalizer> normalizer;
  std::unique_ptr<detail::PreTokenizer> pre_tokenizer;
  std::unique_ptr<detail::Decoder> decoder;
  std::vector<detail::AddedToken> added_tokens;
  detail::AddedTokenMatcher raw_matcher;         // tokens with normalized = false
  detail::AddedTokenMatcher normalized_matcher;  // tokens with normalized = true
  int32_t bos = -1;
  std::vector<int32_t> eos;
  DefaultSpecialTokens defaults;
  int32_t vocab_size = 0;
  // Index into added_tokens for each id below vocab_size, or -1.
  std::vector<int32_t> added_index_by_id;

  const detail::AddedToken* added_token(int32_t id) const {
    if (id < 0 || id >= vocab_size || added_index_by_id[id] < 0) {
      return nullptr;
    }
    return &added_tokens[added_index_by_id[id]];
  }

  std::optional<int32_t> find_piece(std::string_view piece) const {
    for (const auto& token : added_tokens) {
      if (token.content == piece) return token.id;
    }
    return model->find(piece);
  }

  void encode_normalized(std::string_view text, bool at_input_start,
                         std::vector<int32_t>& ids) const;
  std::vector<int32_t> encode(std::string_view text) const;
};

namespace {

nlohmann::json read_json_file(const std::filesystem::path& path) {
  std::ifstream stream(path, std::ios::binary);
  if (!stream) {
    throw DataError("failed to open " + path.string() + ": the file is missing or unreadable");
  }
  std::ostringstream contents;
  contents << stream.rdbuf();
  try {
    return nlohmann::json::parse(contents.str());
  } catch (const nlohmann::json::parse_error& error) {
    throw DataError(path.string() + " is not valid JSON: " + error.what());
  }
}

// A special token of tokenizer_config.json: a string, or an object with "content"
// (the AddedToken spelling). Absent or null gives nullopt.
std::optional<std::string> config_token(const nlohmann::json& config, std::string_view key,
                                        const JsonPlace& place) {
  const auto found = config.find(key);
  if (found == config.end() || found->is_null()) {
    return std::nullopt;
  }
  if (found->is_string()) {
    return found->get<std::string>();
  }
  return detail::require_string(*found, "content", place.child(key));
}

int32_t require_token_id(const Tokenizer::Impl& impl, const std::string& piece,
                         const JsonPlace& place) {
  const auto id = impl.find_piece(piece);
  if (!id) {
    throw DataError(place.describe() + ": the token \"" + piece +
                    "\" is neither in the vocabulary nor an added token");
  }
  return *id;
}

// Checks that added tokens agree with the vocabulary and builds the two matchers.
void install_added_tokens(Tokenizer::Impl& impl, std::vector<detail::AddedToken> tokens,
                          const JsonPlace& place) {
  std::vector<detail::AddedToken> raw;
  std::vector<detail::AddedToken> normalized;
  std::vector<std::string> normalized_patterns;
  for (const auto& token : tokens) {
    const auto in_vocab = impl.model->find(token.content);
    if (in_vocab && *in_vocab != token.id) {
      throw DataError(place.describe() + ": added token \"" + token.content + "\" has id " +
                      std::to_string(token.id) + " but the vocabulary gives it id " +
                      std::to_string(*in_vocab));
    }
    if (token.normalized) {
      // Hugging Face matches a normalized token by its normalized content.
      std::string pattern = token.content;
      if (impl.normalizer) impl.normalizer->normalize(pattern);
      normalized.push_back(token);
      normalized_patterns.push_back(std::move(pattern));
    } else {
      raw.push_back(token);
    }
  }
  std::vector<std::string> raw_patterns;
  for (const auto& token : raw) raw_patterns.push_back(token.content);
  impl.raw_matcher = detail::AddedTokenMatcher(std::move(raw), std::move(raw_patterns));
  impl.normalized_matcher =
      detail::AddedTokenMatcher(std::move(normalized), std::move(normalized_patterns));
  impl.added_tokens = std::move(tokens);
}

// The special ids around the sequence "A" in the "single" template of a
// TemplateProcessing post-processor, appended to `out`.
void read_template(const nlohmann::json& node, const JsonPlace& place,
                   DefaultSpecialTokens& out) {
  const nlohmann::json& single = detail::require_field(node, "single", place);
  const nlohmann::json& specials = detail::require_field(node, "special_tokens", place);
  bool after_sequence = false;
  for (std::size_t i = 0; i < single.size(); ++i) {
    const JsonPlace item = place.child("single").item(i);
    if (single[i].contains("Sequence")) {
      after_sequence = true;
      continue;
    }
    const std::string name =
        detail::require_string(detail::require_field(single[i], "SpecialToken", item), "id",
                               item.child("SpecialToken"));
    const nlohmann::json& special =
        detail::require_field(specials, name, place.child("special_tokens"));
    for (const auto& id : detail::require_field(special, "ids", place.child("special_tokens"))) {
      if (!id.is_number_integer()) {
        throw DataError(place.child("special_tokens").child(name).describe() +
                        ": expected integer ids, found " + id.dump());
      }
      (after_sequence ? out.suffix : out.prefix).push_back(id.get<int32_t>());
    }
  }
}

// Reads the special tokens that the post-processor adds around a single sequence.
void read_post_processor(const nlohmann::json& node, const JsonPlace& place,
                         DefaultSpecialTokens& out) {
  if (node.is_null()) {
    return;
  }
  const std::string type = detail::component_type(node, place);
  if (type == "TemplateProcessing") {
    read_template(node, place, out);
  } else if (type == "Sequence") {
    const nlohmann::json& list = detail::require_field(node, "processors", place);
    for (std::size_t i = 0; i < list.size(); ++i) {
      read_post_processor(list[i], place.child("processors").item(i), out);
    }
  } else if (type != "ByteLevel") {
    // ByteLevel only trims offsets, so it adds no ids.
    throw DataError(place.describe() + ": unsupported post-processor type \"" + type +
                    "\"; magrq supports TemplateProcessing, ByteLevel and Sequence");
  }
}

void read_special_tokens(Tokenizer::Impl& impl, const nlohmann::json& tokenizer,
                         const nlohmann::json& config, const nlohmann::json& generation,
                         const std::string& source) {
  const JsonPlace config_place(source + "/tokenizer_config.json", "");
  if (const auto bos = config_token(config, "bos_token", config_place)) {
    impl.bos = require_token_id(impl, *bos, config_place.child("bos_token"));
  }
  if (const auto eos = config_token(config, "eos_token", config_place)) {
    impl.eos.push_back(require_token_id(impl, *eos, config_place.child("eos_token")));
  }
  if (generation.is_object() && generation.contains("eos_token_id")) {
    nlohmann::json values = generation["eos_token_id"];
    if (!values.is_array()) values = nlohmann::json::array({values});
    for (const auto& value : values) {
      if (!value.is_number_integer() || value.get<int64_t>() < 0 ||
          value.get<int64_t>() >= impl.vocab_size) {
        throw DataError(source + "/generation_config.json at eos_token_id: expected ids in [0, " +
                        std::to_string(impl.vocab_size) + "), found " +
                        generation["eos_token_id"].dump());
      }
      const auto id = value.get<int32_t>();
      if (std::find(impl.eos.begin(), impl.eos.end(), id) == impl.eos.end()) {
        impl.eos.push_back(id);
      }
    }
  }

  DefaultSpecialTokens from_template;
  read_post_processor(tokenizer.value("post_processor", nlohmann::json()),
                      JsonPlace(source + "/tokenizer.json", "post_processor"), from_template);
  // LlamaTokenizer(Fast) reads add_bos_token/add_eos_token from tokenizer_config.json and
  // rebuilds its template from them; without those keys the template decides.
  impl.defaults = from_template;
  if (config.contains("add_bos_token")) {
    impl.defaults.prefix.clear();
    if (detail::optional_bool(config, "add_bos_token", false, config_place)) {
      if (impl.bos < 0) {
        throw DataError(config_place.describe() + ": add_bos_token is true but bos_token is "
                        "not set");
      }
      impl.defaults.prefix.push_back(impl.bos);
    }
  }
  if (config.contains("add_eos_token")) {
    impl.defaults.suffix.clear();
    if (detail::optional_bool(config, "add_eos_token", false, config_place)) {
      if (impl.eos.empty()) {
        throw DataError(config_place.describe() + ": add_eos_token is true but eos_token is "
                        "not set");
      }
      impl.defaults.suffix.push_back(impl.eos.front());
    }
  }
}

}  // namespace

void Tokenizer::Impl::encode_normalized(std::string_view text, bool at_input_start,
                                        std::vector<int32_t>& ids) const {
  std::vector<detail::Piece> pieces{{std::string(text), at_input_start}};
  if (pre_tokenizer) {
    pre_tokenizer->pre_tokenize(pieces);
  }
  for (const detail::Piece& piece : pieces) {
    model->encode_word(piece.text, ids);
  }
}

std::vector<int32_t> Tokenizer::Impl::encode(std::string_view text) const {
  if (const auto bad = unicode::first_invalid_utf8_offset(text)) {
    throw DataError("tokenizer " + source + ": the text to encode is not valid UTF-8 at byte " +
                    std::to_string(*bad) + " (of " + std::to_string(text.size()) + ")");
  }
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 1);
  for (const detail::Segment& segment : raw_matcher.split(text)) {
    if (segment.token) {
      ids.push_back(*segment.token);
      continue;
    }
    std::string normalized(segment.text);
    if (normalizer) {
      normalizer->normalize(normalized);
    }
    if (normalized_matcher.empty()) {
      encode_normalized(normalized, segment.offset == 0, ids);
      continue;
    }
    for (const detail::Segment& part : normalized_matcher.split(normalized)) {
      if (part.token) {
        ids.push_back(*part.token);
      } else {
        encode_normalized(part.text, segment.offset == 0 && part.offset == 0, ids);
      }
    }
  }
  return ids;
}

Tokenizer Tokenizer::from_directory(const std::filesystem::path& dir) {
  const nlohmann::json tokenizer = read_json_file(dir / "tokenizer.json");
  const nlohmann::json config = read_json_file(dir / "tokenizer_config.json");
  nlohmann::json generation;
  if (std::filesystem::exists(dir / "generation_config.json")) {
    generation = read_json_file(dir / "generation_config.json");
  }
  return from_json(tokenizer, config, generation, dir.string());
}

Tokenizer Tokenizer::from_json(const nlohmann::json& tokenizer, const nlohmann::json& config,
                               const nlohmann::json& generation_config,
                               const std::string& source) {
  const JsonPlace root(source + "/tokenizer.json", "");
  if (!tokenizer.is_object()) {
    throw DataError(root.describe() + ": expected a JSON object at the top level");
  }
  if (!config.is_object()) {
    throw DataError(source + "/tokenizer_config.json: expected a JSON object at the top level");
  }
  auto impl = std::make_shared<Impl>();
  impl->source = source;
  impl->model = std::make_unique<detail::BpeModel>(detail::require_field(tokenizer, "model", root),
                                                   root.child("model"));
  impl->normalizer = detail::parse_normalizer(tokenizer.value("normalizer", nlohmann::json()),
                                              root.child("normalizer"));
  impl->pre_tokenizer = detail::parse_pre_tokenizer(
      tokenizer.value("pre_tokenizer", nlohmann::json()), root.child("pre_tokenizer"));
  impl->decoder =
      detail::parse_decoder(tokenizer.value("decoder", nlohmann::json()), root.child("decoder"));
  install_added_tokens(*impl,
                       detail::parse_added_tokens(tokenizer.value("added_tokens", nlohmann::json()),
                                                  root.child("added_tokens")),
                       root.child("added_tokens"));
  impl->vocab_size = impl->model->id_count();
  for (const auto& token : impl->added_tokens) {
    impl->vocab_size = std::max(impl->vocab_size, token.id + 1);
  }
  impl->added_index_by_id.assign(impl->vocab_size, -1);
  for (std::size_t i = 0; i < impl->added_tokens.size(); ++i) {
    impl->added_index_by_id[impl->added_tokens[i].id] = static_cast<int32_t>(i);
  }
  read_special_tokens(*impl, tokenizer, config, generation_config, source);
  return Tokenizer(std::move(impl));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_bos) const {
  std::vector<int32_t> ids;
  if (add_bos) {
    if (impl_->bos < 0) {
      throw DataError("tokenizer " + impl_->source + " has no BOS token (bos_token is not set "
                      "in tokenizer_config.json); encode with add_bos = false");
    }
    ids.push_back(impl_->bos);
  }
  const std::vector<int32_t> body = impl_->encode(text);
  ids.insert(ids.end(), body.begin(), body.end());
  return ids;
}

std::vector<int32_t> Tokenizer::encode_with_default_special_tokens(std::string_view text) const {
  std::vector<int32_t> ids = impl_->defaults.prefix;
  const std::vector<int32_t> body = impl_->encode(text);
  ids.insert(ids.end(), body.begin(), body.end());
  ids.insert(ids.end(), impl_->defaults.suffix.begin(), impl_->defaults.suffix.end());
  return ids;
}

bool Tokenizer::adds_bos_by_default() const {
  return impl_->bos >= 0 && !impl_->defaults.prefix.empty() &&
         impl_->defaults.prefix.front() == impl_->bos;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (const int32_t id : ids) {
    if (const detail::AddedToken* added = impl_->added_token(id)) {
      if (!(skip_special_tokens && added->special)) {
        tokens.push_back(added->content);
      }
      continue;
    }
    tokens.push_back(id_to_piece(id));
  }
  if (!impl_->decoder) {
    // Without a decoder, Hugging Face joins the pieces with spaces.
    std::string joined;
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      joined += (i == 0 ? "" : " ") + tokens[i];
    }
    return joined;
  }
  impl_->decoder->decode(tokens);
  std::string text;
  for (const std::string& token : tokens) text += token;
  return text;
}

int32_t Tokenizer::bos_id() const { return impl_->bos; }

std::vector<int32_t> Tokenizer::eos_ids() const { return impl_->eos; }

int32_t Tokenizer::vocab_size() const { return impl_->vocab_size; }

std::optional<int32_t> Tokenizer::piece_to_id(std::string_view piece) const {
  return impl_->find_piece(piece);
}

std::string Tokenizer::id_to_piece(int32_t id) const {
  if (id < 0 || id >= impl_->vocab_size) {
    throw DataError("tokenizer " + impl_->source + ": token id " + std::to_string(id) +
                    " is outside the vocabulary [0, " + std::to_string(impl_->vocab_size) + ")");
  }
  if (const detail::AddedToken* added = impl_->added_token(id)) {
    return added->content;
  }
  const std::string* piece = impl_->model->piece(id);
  if (piece == nullptr) {
    throw DataError("tokenizer " + impl_->source + ": token id " + std::to_string(id) +
                    " has no piece in the vocabulary");
  }
  return *piece;
}

bool Tokenizer::is_special(int32_t id) const {
  const detail::AddedToken* added = impl_->added_token(id);
  return added != nullptr && added->special;
}

TokenizerCacheStats Tokenizer::cache_stats() const {
  const detail::BpeCacheStats stats = impl_->model->cache_stats();
  return {stats.hits, stats.misses, stats.entries};
}

}  // namespace magrq::model
