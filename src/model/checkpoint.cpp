#include "model/checkpoint.hpp"

#include "core/error.hpp"

namespace magrq::model {
namespace {

using detail::concat;

constexpr const char* kEmbeddingName = "model.embed_tokens.weight";
constexpr const char* kFinalNormName = "model.norm.weight";
constexpr const char* kLmHeadName = "lm_head.weight";

std::string layer_prefix(Index layer) { return concat("model.layers.", layer, "."); }

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    text += (i == 0 ? "" : ", ") + std::to_string(shape[i]);
  }
  return text + "]";
}

}  // namespace

std::string linear_weight_name(Index layer, LinearKind kind) {
  return linear_module_name(layer, kind) + ".weight";
}

std::string linear_bias_name(Index layer, LinearKind kind) {
  return linear_module_name(layer, kind) + ".bias";
}

bool has_bias(const LlamaConfig& config, LinearKind kind) {
  const LinearInput input = input_of(kind);
  const bool attention = input == LinearInput::attn_in || input == LinearInput::attn_out;
  return attention ? config.attention_bias : config.mlp_bias;
}

Checkpoint::Checkpoint(const std::filesystem::path& dir)
    : config_(LlamaConfig::from_file(dir / "config.json")), tensors_(dir) {
  check_all_tensors();
}

void Checkpoint::check_tensor(const std::string& name, std::vector<int64_t> shape) const {
  const TensorInfo& info = tensors_.info(name);
  if (info.shape != shape) {
    throw DataError(concat("tensor \"", name, "\" in ", directory(), " has shape ",
                           shape_text(info.shape), "; config.json implies ", shape_text(shape)));
  }
}

void Checkpoint::check_all_tensors() const {
  const int64_t hidden = config_.hidden_size;
  check_tensor(kEmbeddingName, {config_.vocab_size, hidden});
  check_tensor(kFinalNormName, {hidden});
  if (!config_.tie_word_embeddings) {
    if (!tensors_.contains(kLmHeadName)) {
      throw DataError(concat("checkpoint ", directory(), " has no lm_head.weight and config.json "
                             "sets tie_word_embeddings to false"));
    }
    check_tensor(kLmHeadName, {config_.vocab_size, hidden});
  }
  for (Index layer = 0; layer < config_.num_hidden_layers; ++layer) {
    check_tensor(layer_prefix(layer) + "input_layernorm.weight", {hidden});
    check_tensor(layer_prefix(layer) + "post_attention_layernorm.weight", {hidden});
    for (LinearKind kind : kAllLinearKinds) {
      const LinearShape shape = linear_shape(config_, kind);
      check_tensor(linear_weight_name(layer, kind), {shape.out_features, shape.in_features});
      if (has_bias(config_, kind)) {
        check_tensor(linear_bias_name(layer, kind), {shape.out_features});
      }
    }
  }
}

DecoderLayerWeights Checkpoint::load_layer(Index layer) const {
  MAGRQ_CHECK(layer >= 0 && layer < config_.num_hidden_layers, "layer ", layer, " of ",
              config_.num_hidden_layers);
  DecoderLayerWeights weights;
  weights.layer = layer;
  const std::string prefix = layer_prefix(layer);
  weights.input_norm = tensors_.file_of(prefix + "input_layernorm.weight")
                           .read_vector(prefix + "input_layernorm.weight");
  weights.post_attention_norm = tensors_.file_of(prefix + "post_attention_layernorm.weight")
                                    .read_vector(prefix + "post_attention_layernorm.weight");
  for (LinearKind kind : kAllLinearKinds) {
    const std::string name = linear_weight_name(layer, kind);
    weights.weight(kind) = tensors_.file_of(name).read_matrix(name);
    if (has_bias(config_, kind)) {
      const std::string bias = linear_bias_name(layer, kind);
      weights.bias(kind) = tensors_.file_of(bias).read_vector(bias);
    }
  }
  return weights;
}

Matrix Checkpoint::load_linear_rows(Index layer, LinearKind kind, Index row_begin, Index row_end) const {
  const std::string name = linear_weight_name(layer, kind);
  return tensors_.file_of(name).read_rows(name, row_begin, row_end);
}

Matrix Checkpoint::embed(std::span<const int32_t> tokens) const {
  const SafetensorsFile& file = tensors_.file_of(kEmbeddingName);
  Matrix rows(static_cast<Index>(tokens.size()), config_.hidden_size);
  for (size_t i = 0; i < tokens.size(); ++i) {
    const int32_t token = tokens[i];
    if (token < 0 || token >= config_.vocab_size) {
      throw DataError(concat("token id ", token, " at position ", i, " is outside the vocabulary [0, ",
                             config_.vocab_size, ") of ", directory()));
    }
    rows.row(static_cast<Index>(i)) = file.read_rows(kEmbeddingName, token, token + 1);
  }
  return rows;
}

Matrix Checkpoint::embedding_matrix() const {
  return tensors_.file_of(kEmbeddingName).read_matrix(kEmbeddingName);
}

Vector Checkpoint::final_norm() const {
  return tensors_.file_of(kFinalNormName).read_vector(kFinalNormName);
}

std::string Checkpoint::lm_head_name() const {
  return config_.tie_word_embeddings ? kEmbeddingName : kLmHeadName;
}

Matrix Checkpoint::lm_head() const {
  const std::string name = lm_head_name();
  return tensors_.file_of(name).read_matrix(name);
}

}  // namespace magrq::model
