// Random-weight Llama checkpoints of any shape, for tests, demos and full-shape
// rehearsals. Weights are seeded Gaussians (std 0.02, norms 1) with a few input channels
// of each linear weight scaled up, as real models have outlier channels.
#pragma once

#include <cstdint>
#include <filesystem>
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

// A small Llama config: hidden 64, intermediate 128, 2 layers, 4 heads, 2 key/value heads,
// vocabulary 256; every linear dimension is a multiple of 32, so all bit widths pack.
nlohmann::json small_llama_config();

}  // namespace magrq::model
