// Random-weight Llama checkpoints of any shape, for tests, demos and full-shape
// rehearsals. Weights are seeded Gaussians (std 0.02, norms 1) with a few input channels
// of each linear weight scaled up, as real models have outlier channels.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <nlohmann/json.hpp>

namespace magrq::model {

struct SyntheticCheckpointOptions {
  uint64_t seed = 0;
  int outlier_channels = 2;     // input channels per linear weight scaled by outlier_scale
  double outlier_scale = 8.0;
  double weight_std = 0.02;
};

// Writes config.json (the given Llama config, checked by LlamaConfig::from_json) and
// model.safetensors (F32) into dir, which is created if needed.
void write_synthetic_checkpoint(const std::filesystem::path& dir, const nlohmann::json& config,
                                const SyntheticCheckpointOptions& options);

// Writes a byte-level tokenizer (tokenizer.json, tokenizer_config.json) in the Llama 1/2
// style: ids 0-2 are <unk>, <s>, </s>, ids 3-258 the byte pieces <0x00>..<0xFF>, with no
// merges, so any UTF-8 text encodes one token per byte after a BOS. Needs vocab_size >= 259.
void write_byte_tokenizer(const std::filesystem::path& dir);

// Writes `bytes` bytes of seeded random English-like words (lines of a few sentences).
void write_random_text(const std::filesystem::path& path, size_t bytes, uint64_t seed);

// The config of a published shape: llama2-7b, llama3-8b, llama2-70b or llama3-70b, with
// num_hidden_layers replaced by `layers` when it is positive. Throws ConfigError for an
// unknown name.
nlohmann::json published_llama_config(const std::string& shape, int layers);

// A small Llama config: hidden 64, intermediate 128, 2 layers, 4 heads, 2 key/value heads,
// vocabulary 320 (room for the byte tokenizer); every linear dimension is a multiple of 32, so all bit widths pack.
nlohmann::json small_llama_config();

}  // namespace magrq::model
