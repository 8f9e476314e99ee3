// A Hugging Face Llama checkpoint folder: config.json plus safetensors weights, loaded
// one decoder layer at a time.
#pragma once

#include <array>
#include <filesystem>
#include <span>
#include <string>

#include "core/types.hpp"
#include "model/llama_config.hpp"
#include "model/safetensors.hpp"

namespace magrq::model {

// The weights of one decoder layer as float32. A caller may replace the linear weights
// (for example with quantized and dequantized ones) before running the layer; the
// shapes must stay out_features x in_features.
struct DecoderLayerWeights {
  Index layer = 0;
  Vector input_norm;           // input_layernorm.weight, hidden_size
  Vector post_attention_norm;  // post_attention_layernorm.weight, hidden_size
  std::array<Matrix, kLinearKindCount> weights;
  // Empty (size 0) unless config.attention_bias (q, k, v, o) or config.mlp_bias (gate, up, down).
  std::array<Vector, kLinearKindCount> biases;

  Matrix& weight(LinearKind kind) { return weights[static_cast<size_t>(kind)]; }
  const Matrix& weight(LinearKind kind) const { return weights[static_cast<size_t>(kind)]; }
  Vector& bias(LinearKind kind) { return biases[static_cast<size_t>(kind)]; }
  const Vector& bias(LinearKind kind) const { return biases[static_cast<size_t>(kind)]; }
};

// Opens config.json and the safetensors files of a folder and checks, from the headers
// alone, that every tensor the forward pass needs is present with the shape that the
// config implies. Tensors are read on request, so memory holds only what a caller loads.
// Extra tensors (for example rotary_emb.inv_freq of old checkpoints) are ignored.
class Checkpoint {
 public:
  explicit Checkpoint(const std::filesystem::path& dir);

  const std::filesystem::path& directory() const { return tensors_.directory(); }
  const LlamaConfig& config() const { return config_; }
  const SafetensorsFolder& tensors() const { return tensors_; }

  DecoderLayerWeights load_layer(Index layer) const;
  // Rows [row_begin, row_end) of one linear weight: the output channels a worker owns.
  Matrix load_linear_rows(Index layer, LinearKind kind, Index row_begin, Index row_end) const;

  // Embedding rows of the tokens (tokens x hidden_size); reads only those rows. Throws
  // DataError for a token id outside [0, vocab_size).
  Matrix embed(std::span<const int32_t> tokens) const;
  Matrix embedding_matrix() const;  // vocab_size x hidden_size
  Vector final_norm() const;        // model.norm.weight
  // lm_head.weight, or the embedding matrix when the word embeddings are tied.
  Matrix lm_head() const;
  std::string lm_head_name() const;

 private:
  void check_tensor(const std::string& name, std::vector<int64_t> shape) const;
  void check_all_tensors() const;

  LlamaConfig config_;
  SafetensorsFolder tensors_;
};

// Tensor names: "model.layers.{layer}.{module}.weight" and ".bias".
std::string linear_weight_name(Index layer, LinearKind kind);
std::string linear_bias_name(Index layer, LinearKind kind);
bool has_bias(const LlamaConfig& config, LinearKind kind);

}  // namespace magrq::model
