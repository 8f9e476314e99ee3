#include "model/synthetic_checkpoint.hpp"

#include <cstdio>
#include <fstream>
#include <random>

#include "core/error.hpp"
#include "core/synthetic.hpp"
#include "model/llama_config.hpp"
#include "model/safetensors.hpp"

namespace magrq::model {

namespace {

Matrix random_matrix(Index rows, Index cols, const SyntheticCheckpointOptions& options,
                     NormalSampler& normal, bool outliers) {
  Matrix m(rows, cols);
  for (Index r = 0; r < rows; ++r) {
    for (Index c = 0; c < cols; ++c) {
      m(r, c) = static_cast<float>(normal.next() * options.weight_std);
    }
  }
  if (outliers) {
    for (int k = 0; k < options.outlier_channels && k < cols; ++k) {
      const Index channel = (static_cast<Index>(k) * cols) / std::max(1, options.outlier_channels);
      m.col(channel) *= static_cast<float>(options.outlier_scale);
    }
  }
  return m;
}

}  // namespace

void write_byte_tokenizer(const std::filesystem::path& dir) {
  nlohmann::ordered_json vocab = nlohmann::ordered_json::object();
  vocab["<unk>"] = 0;
  vocab["<s>"] = 1;
  vocab["</s>"] = 2;
  for (int byte = 0; byte < 256; ++byte) {
    char piece[8];
    std::snprintf(piece, sizeof(piece), "<0x%02X>", byte);
    vocab[piece] = byte + 3;
  }
  nlohmann::ordered_json added = nlohmann::ordered_json::array();
  const char* specials[] = {"<unk>", "<s>", "</s>"};
  for (int id = 0; id < 3; ++id) {
    added.push_back({{"id", id}, {"content", specials[id]}, {"single_word", false}, {"lstrip", false},
                     {"rstrip", false}, {"normalized", false}, {"special", true}});
  }
  const nlohmann::ordered_json tokenizer = {
      {"version", "1.0"},
      {"added_tokens", added},
      {"normalizer", {{"type", "Sequence"},
                      {"normalizers", {{{"type", "Prepend"}, {"prepend", "\u2581"}},
                                       {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\u2581"}}}}}},
      {"pre_tokenizer", nullptr},
      {"post_processor", nullptr},
      {"decoder", {{"type", "Sequence"},
                   {"decoders", {{{"type", "Replace"}, {"pattern", {{"String", "\u2581"}}}, {"content", " "}},
                                 {{"type", "ByteFallback"}},
                                 {{"type", "Fuse"}},
                                 {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}}},
      {"model", {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", "<unk>"},
                 {"continuing_subword_prefix", nullptr}, {"end_of_word_suffix", nullptr}, {"fuse_unk", true},
                 {"byte_fallback", true}, {"vocab", vocab}, {"merges", nlohmann::ordered_json::array()}}}};
  // "\u2581" (the SentencePiece word marker) is a universal character name, written as UTF-8.
  std::ofstream(dir / "tokenizer.json") << tokenizer.dump(2) << "\n";
  const nlohmann::ordered_json config = {{"tokenizer_class", "LlamaTokenizer"}, {"bos_token", "<s>"},
                                         {"eos_token", "</s>"}, {"unk_token", "<unk>"},
                                         {"add_bos_token", true}, {"add_eos_token", false}};
  std::ofstream(dir / "tokenizer_config.json") << config.dump(2) << "\n";
}

void write_random_text(const std::filesystem::path& path, size_t bytes, uint64_t seed) {
  static const char* syllables[] = {"ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "da", "po",
                                    "en", "ar", "is", "on", "ul", "be", "fi", "go", "he", "ju"};
  std::mt19937_64 engine(seed);
  std::string text;
  while (text.size() < bytes) {
    const int words = 5 + static_cast<int>(engine() % 10);
    for (int w = 0; w < words; ++w) {
      const int parts = 1 + static_cast<int>(engine() % 3);
      for (int p = 0; p < parts; ++p) {
        text += syllables[engine() % 20];
      }
      text += w + 1 < words ? " " : ".";
    }
    text += engine() % 4 == 0 ? "\n\n" : " ";
  }
  std::ofstream(path) << text;
}

nlohmann::json published_llama_config(const std::string& shape, int layers) {
  nlohmann::json config = small_llama_config();
  config["tie_word_embeddings"] = false;
  config["max_position_embeddings"] = 4096;
  if (shape == "llama2-7b") {
    config.update({{"hidden_size", 4096}, {"intermediate_size", 11008}, {"num_hidden_layers", 32},
                   {"num_attention_heads", 32}, {"num_key_value_heads", 32}, {"vocab_size", 32000}});
  } else if (shape == "llama3-8b") {
    config.update({{"hidden_size", 4096}, {"intermediate_size", 14336}, {"num_hidden_layers", 32},
                   {"num_attention_heads", 32}, {"num_key_value_heads", 8}, {"vocab_size", 128256},
                   {"rope_theta", 500000.0}, {"max_position_embeddings", 8192}});
  } else if (shape == "llama2-70b") {
    config.update({{"hidden_size", 8192}, {"intermediate_size", 28672}, {"num_hidden_layers", 80},
                   {"num_attention_heads", 64}, {"num_key_value_heads", 8}, {"vocab_size", 32000}});
  } else if (shape == "llama3-70b") {
    config.update({{"hidden_size", 8192}, {"intermediate_size", 28672}, {"num_hidden_layers", 80},
                   {"num_attention_heads", 64}, {"num_key_value_heads", 8}, {"vocab_size", 128256},
                   {"rope_theta", 500000.0}, {"max_position_embeddings", 8192}});
  } else if (shape != "small") {
    throw ConfigError("unknown shape '" + shape +
                      "'; expected small, llama2-7b, llama3-8b, llama2-70b, llama3-70b or a config.json path");
  }
  if (layers > 0) {
    config["num_hidden_layers"] = layers;
  }
  return config;
}

nlohmann::json small_llama_config() {
  return {{"architectures", {"LlamaForCausalLM"}},
          {"model_type", "llama"},
          {"hidden_size", 64},
          {"intermediate_size", 128},
          {"num_hidden_layers", 2},
          {"num_attention_heads", 4},
          {"num_key_value_heads", 2},
          {"vocab_size", 320},
          {"max_position_embeddings", 512},
          {"rms_norm_eps", 1e-5},
          {"rope_theta", 10000.0},
          {"hidden_act", "silu"},
          {"tie_word_embeddings", false},
          {"bos_token_id", 1},
          {"eos_token_id", 2},
          {"torch_dtype", "float32"}};
}

void write_synthetic_checkpoint(const std::filesystem::path& dir, const nlohmann::json& config_json,
                                const SyntheticCheckpointOptions& options) {
  const LlamaConfig config = LlamaConfig::from_json(config_json, "synthetic config");
  if (config.attention_bias || config.mlp_bias) {
    throw ConfigError("synthetic checkpoints do not write biases; set attention_bias and mlp_bias false");
  }
  std::filesystem::create_directories(dir);
  NormalSampler normal(options.seed);
  std::vector<TensorData> tensors;
  const Vector ones = Vector::Ones(config.hidden_size);
  tensors.push_back(TensorData::from_matrix(
      "model.embed_tokens.weight",
      random_matrix(config.vocab_size, config.hidden_size, options, normal, false), Dtype::F32));
  for (Index layer = 0; layer < config.num_hidden_layers; ++layer) {
    const std::string prefix = "model.layers." + std::to_string(layer);
    tensors.push_back(TensorData::from_vector(prefix + ".input_layernorm.weight", ones, Dtype::F32));
    tensors.push_back(
        TensorData::from_vector(prefix + ".post_attention_layernorm.weight", ones, Dtype::F32));
    for (const LinearKind kind : kAllLinearKinds) {
      const LinearShape shape = linear_shape(config, kind);
      tensors.push_back(TensorData::from_matrix(
          linear_module_name(layer, kind) + ".weight",
          random_matrix(shape.out_features, shape.in_features, options, normal, true), Dtype::F32));
    }
  }
  tensors.push_back(TensorData::from_vector("model.norm.weight", ones, Dtype::F32));
  if (!config.tie_word_embeddings) {
    tensors.push_back(TensorData::from_matrix(
        "lm_head.weight", random_matrix(config.vocab_size, config.hidden_size, options, normal, false),
        Dtype::F32));
  }
  write_safetensors(dir / "model.safetensors", tensors);
  std::ofstream stream(dir / "config.json");
  stream << config_json.dump(2) << "\n";
  if (!stream) {
    throw DataError("writing " + (dir / "config.json").string() + " failed");
  }
}

}  // namespace magrq::model
