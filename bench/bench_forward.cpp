// Forward-pass throughput of the decoder layers against bare GEMMs of the same shapes.
//
// Model: hidden 2048, intermediate 5632, 16 query heads and 4 key/value heads of
// head_dim 128 (grouped-query attention, Llama-style sizes), 2 layers, random float32
// weights held in memory. One sequence of 2048 tokens goes through both layers with
// forward_layer. The baselines time, in the same run, Eigen/BLAS products of the same
// shapes: the seven linear GEMMs per layer, and those plus the per-head attention
// products Q K^T and P V (computed as full square GEMMs). Embedding and lm_head are
// left out because they do not depend on the layer code.
//
// Usage: bench_forward [repeats]   (default 2; the best of the repeats is reported)
#include <cstdlib>
#include <random>

#include "bench_common.hpp"
#include "model/forward.hpp"

namespace {

using magrq::Index;
using magrq::Matrix;
using magrq::Vector;
namespace model = magrq::model;

constexpr Index kSeqlen = 2048;

model::LlamaConfig bench_config() {
  model::LlamaConfig config;
  config.hidden_size = 2048;
  config.intermediate_size = 5632;
  config.num_hidden_layers = 2;
  config.num_attention_heads = 16;
  config.num_key_value_heads = 4;
  config.head_dim = 128;
  config.vocab_size = 32000;
  config.max_position_embeddings = 4096;
  config.rms_norm_eps = 1e-5;
  return config;
}

model::DecoderLayerWeights random_layer(const model::LlamaConfig& config, Index layer) {
  model::DecoderLayerWeights weights;
  weights.layer = layer;
  weights.input_norm = Vector::Ones(config.hidden_size);
  weights.post_attention_norm = Vector::Ones(config.hidden_size);
  for (model::LinearKind kind : model::kAllLinearKinds) {
    const model::LinearShape shape = model::linear_shape(config, kind);
    // Scaled by 1/sqrt(in_features) so activations stay of order one through the layers.
    weights.weight(kind) = Matrix::Random(shape.out_features, shape.in_features) /
                           std::sqrt(static_cast<float>(shape.in_features));
  }
  return weights;
}

double linear_gemm_seconds(const model::LlamaConfig& config, int repeats) {
  double total = 0;
  for (model::LinearKind kind : model::kAllLinearKinds) {
    const model::LinearShape shape = model::linear_shape(config, kind);
    total += magrq::bench::gemm_seconds(kSeqlen, shape.in_features, shape.out_features, repeats);
  }
  return total * static_cast<double>(config.num_hidden_layers);
}

double attention_gemm_seconds(const model::LlamaConfig& config, int repeats) {
  const double scores = magrq::bench::gemm_seconds(kSeqlen, config.head_dim, kSeqlen, repeats);
  const double mix = magrq::bench::gemm_seconds(kSeqlen, kSeqlen, config.head_dim, repeats);
  return (scores + mix) * static_cast<double>(config.num_attention_heads * config.num_hidden_layers);
}

}  // namespace

int main(int argc, char** argv) {
  const int repeats = argc > 1 ? std::max(1, std::atoi(argv[1])) : 2;
  const model::LlamaConfig config = bench_config();
  const model::Rope rope(config);
  std::vector<model::DecoderLayerWeights> layers;
  for (Index layer = 0; layer < config.num_hidden_layers; ++layer) {
    layers.push_back(random_layer(config, layer));
  }
  const Matrix input = Matrix::Random(kSeqlen, config.hidden_size);

  const double forward = magrq::bench::best_seconds(
      [&] {
        std::vector<Matrix> hidden = {input};
        for (const auto& weights : layers) {
          model::forward_layer(config, weights, rope, hidden);
        }
      },
      repeats);
  const double linear = linear_gemm_seconds(config, repeats);
  const double attention = attention_gemm_seconds(config, repeats);
  const double tokens_per_second = static_cast<double>(kSeqlen) / forward;

  const nlohmann::json shape = {{"hidden", 2048}, {"intermediate", 5632}, {"heads", 16},
                                {"kv_heads", 4},  {"head_dim", 128},      {"layers", 2},
                                {"seqlen", kSeqlen}, {"tokens_per_second", tokens_per_second}};
  magrq::bench::print_results({
      {"forward_2_layers_vs_linear_gemms", forward, linear, shape},
      {"forward_2_layers_vs_all_gemms", forward, linear + attention, shape},
  });
  std::printf("tokens per second: %.1f\n", tokens_per_second);
  return 0;
}
