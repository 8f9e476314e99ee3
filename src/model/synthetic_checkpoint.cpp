#include "model/synthetic_checkpoint.hpp"

#include <fstream>

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

nlohmann::json small_llama_config() {
  return {{"architectures", {"LlamaForCausalLM"}},
          {"model_type", "llama"},
          {"hidden_size", 64},
          {"intermediate_size", 128},
          {"num_hidden_layers", 2},
          {"num_attention_heads", 4},
          {"num_key_value_heads", 2},
          {"vocab_size", 256},
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
