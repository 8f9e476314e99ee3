// Random-weight Llama checkpoints of any shape, for tests, demos and full-shape
// rehearsals. Weights are seeded Gaussians with a few outlier input channels per linear
// weight. RMSNorm weights are 1 except on a few outlier hidden channels. So both the
// weights and the calibration Hessians have a handful of large channels, as real Llama
// models do.
//
// Tensors are generated and written in row blocks straight to the file: memory stays at
// a few blocks (tens of MiB) whatever the model size, so a 70B-shaped checkpoint can be
// written on a machine that could not hold it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/types.hpp"
#include "model/llama_config.hpp"
#include "model/safetensors.hpp"

namespace magrq::model {

struct SyntheticCheckpointOptions {
  uint64_t seed = 0;
  // Element type of every tensor: F32, F16 or BF16. F32 keeps tests exact; published
  // Llama checkpoints ship in BF16 (`magrq synth` defaults to it).
  Dtype dtype = Dtype::F32;
  // Standard deviation of the Gaussian weights (embeddings, linears, lm_head), > 0.
  double weight_std = 0.02;
  // Input channels per linear weight whose column is scaled by outlier_scale, in
  // [0, in_features]. Modules that read the same input (q/k/v, gate/up) share the
  // channels, as the outlier features of the hidden state do in real models.
  int outlier_channels = 4;
  // Factor of the outlier weight columns, >= 1. The default of 20 is an order of
  // magnitude for the outlier channels of Llama-family models, not a measured value.
  double outlier_scale = 20.0;
  // Hidden channels whose input_layernorm and post_attention_layernorm weight is
  // norm_outlier_scale instead of 1, in [0, hidden_size]. They make the activations, and
  // so H = X^T X, carry large diagonal entries on those channels.
  int norm_outlier_channels = 4;
  // RMSNorm weight of the outlier hidden channels, >= 1.
  double norm_outlier_scale = 10.0;
  // Maximum tensor bytes per safetensors shard, > 0. A larger checkpoint is written as
  // model-0000i-of-0000N.safetensors plus model.safetensors.index.json.
  uint64_t max_shard_bytes = uint64_t{5} << 30;  // 5 GiB, as Hugging Face writers default

  // Throws ConfigError naming the first invalid option and its value.
  void validate() const;
};

// Writes config.json (the given Llama config, checked by LlamaConfig::from_json, with
// torch_dtype set to the tensors' dtype) and the safetensors file or shards into dir,
// which is created if needed. Each file appears under its final name only when complete.
// Time O(parameters); memory O(rows per block * width), independent of the model size.
void write_synthetic_checkpoint(const std::filesystem::path& dir, const nlohmann::json& config,
                                const SyntheticCheckpointOptions& options);

// The input channels that get outliers for a linear input (or RMSNorm) of `width`
// channels: `count` distinct indices in increasing order, fixed by seed and input.
std::vector<Index> synthetic_outlier_channels(Index width, int count, uint64_t seed,
                                              LinearInput input);

// Writes a byte-level tokenizer (tokenizer.json, tokenizer_config.json) in the Llama 1/2
// style: ids 0-2 are <unk>, <s>, </s>, ids 3-258 the byte pieces <0x00>..<0xFF>, with no
// merges, so any UTF-8 text encodes one token per byte after a BOS. Needs vocab_size >= 259.
void write_byte_tokenizer(const std::filesystem::path& dir);

// Writes `bytes` bytes of seeded random English-like words (lines of a few sentences).
void write_random_text(const std::filesystem::path& path, size_t bytes, uint64_t seed);

// The config of a published shape: llama2-7b, llama3-8b, llama2-70b or llama3-70b (or
// small), with num_hidden_layers replaced by `layers` when it is positive. Sizes, heads,
// vocabulary, rope_theta, max_position_embeddings and rms_norm_eps are the published
// ones. The bos and eos ids are 1 and 2, because the byte tokenizer uses those. Throws
// ConfigError for an unknown name.
nlohmann::json published_llama_config(const std::string& shape, int layers);

// A small Llama config: hidden 64, intermediate 128, 2 layers, 4 heads, 2 key/value
// heads, vocabulary 320 (room for the byte tokenizer). Every linear dimension is a
// multiple of 32, so all bit widths pack.
nlohmann::json small_llama_config();

}  // namespace magrq::model
