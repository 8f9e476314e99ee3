// The architecture of a Llama checkpoint, read from its Hugging Face config.json, and
// the seven linear modules of a decoder layer with their shapes.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/types.hpp"

namespace magrq::model {

// RoPE frequency scaling. dynamic, yarn and longrope are rejected when a config is read.
enum class RopeScalingType {
  none,    // plain RoPE ("default" in transformers)
  linear,  // every inverse frequency divided by factor (position interpolation)
  llama3,  // Llama 3.1 band-wise scaling of long wavelengths
};

struct RopeScaling {
  RopeScalingType type = RopeScalingType::none;
  double factor = 1.0;  // > 0; linear and llama3
  // llama3 only: wavelengths above original_max_position_embeddings / low_freq_factor are
  // divided by factor, those below original / high_freq_factor are kept, and the band in
  // between is interpolated.
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
};

// A Llama decoder as transformers' LlamaConfig describes it. Defaults are those of
// LlamaConfig where a key may be absent.
struct LlamaConfig {
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;  // default num_attention_heads
  int64_t head_dim = 0;             // default hidden_size / num_attention_heads
  int64_t vocab_size = 0;
  int64_t max_position_embeddings = 2048;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // biases on q, k, v and o projections
  bool mlp_bias = false;        // biases on gate, up and down projections
  std::optional<int32_t> bos_token_id;
  std::vector<int32_t> eos_token_ids;  // config.json may give one id or a list
  std::string torch_dtype;             // "torch_dtype" or "dtype"; informational
  // The whole config.json as read, so that an exporter can copy it and add keys.
  nlohmann::json raw;

  // Parses a config object. source names the file in error messages. Throws DataError
  // for a missing or invalid key, an unsupported rope type or hidden_act, or sizes that
  // do not fit together (for example heads not divisible by key/value heads).
  static LlamaConfig from_json(const nlohmann::json& json, const std::string& source);
  static LlamaConfig from_file(const std::filesystem::path& path);

  Index q_size() const { return num_attention_heads * head_dim; }
  Index kv_size() const { return num_key_value_heads * head_dim; }
  // Query heads per key/value head (1 without grouped-query attention).
  Index kv_group_size() const { return num_attention_heads / num_key_value_heads; }
};

// The linear modules of one decoder layer, in the order the forward pass uses them.
enum class LinearKind { q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj };
inline constexpr int kLinearKindCount = 7;
inline constexpr LinearKind kAllLinearKinds[kLinearKindCount] = {
    LinearKind::q_proj,    LinearKind::k_proj,  LinearKind::v_proj,   LinearKind::o_proj,
    LinearKind::gate_proj, LinearKind::up_proj, LinearKind::down_proj};

// The four distinct inputs of a layer's linear modules: q/k/v share attn_in (the
// normalized hidden state), o_proj reads attn_out (the attention output), gate/up share
// mlp_in, and down_proj reads mlp_out (silu(gate) * up).
enum class LinearInput { attn_in, attn_out, mlp_in, mlp_out };

// Module name inside a layer ("q_proj") and the full prefix ("model.layers.3.self_attn.q_proj").
std::string linear_name(LinearKind kind);
std::string linear_module_name(Index layer, LinearKind kind);
std::string linear_input_name(LinearInput input);
LinearInput input_of(LinearKind kind);

// Weight shape of a linear module, out_features x in_features. k_proj and v_proj have
// num_key_value_heads * head_dim rows, never hidden_size.
struct LinearShape {
  Index out_features = 0;
  Index in_features = 0;
};
LinearShape linear_shape(const LlamaConfig& config, LinearKind kind);

}  // namespace magrq::model
