// The Llama forward pass in float32, streamed one decoder layer at a time, plus greedy
// generation with a key/value cache.
//
// Per layer (transformers modeling_llama semantics):
//   h = x + o_proj(attention(rope(q_proj(n)), rope(k_proj(n)), v_proj(n))),  n = rmsnorm(x)
//   y = h + down_proj(silu(gate_proj(m)) * up_proj(m)),                      m = rmsnorm(h)
// Attention is causal with scale 1/sqrt(head_dim); key/value head j serves query heads
// [j * r, (j + 1) * r) with r = num_attention_heads / num_key_value_heads. Linear
// products go through Eigen to BLAS.
#pragma once

#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "core/types.hpp"
#include "model/checkpoint.hpp"
#include "model/llama_config.hpp"
#include "model/rope.hpp"

namespace magrq::model {

// Receives the input of a layer's linear modules: activations is tokens x in_features
// for one sequence. Called once per sequence for each of the four inputs of every layer,
// in the order attn_in, attn_out, mlp_in, mlp_out.
using ActivationHook =
    std::function<void(Index layer, LinearInput input, const Matrix& activations)>;

// x * rsqrt(mean(x^2) + eps) * weight for every row, in float32.
Matrix rms_norm(const Matrix& x, const Vector& weight, double eps);

// Runs one decoder layer on every sequence of hidden (each tokens x hidden_size, position
// ids starting at 0) and replaces it with the layer's output. hook may be empty.
// Memory: the layer's weights plus O(tokens * max(intermediate_size, tokens)) per sequence.
void forward_layer(const LlamaConfig& config, const DecoderLayerWeights& weights, const Rope& rope,
                   std::vector<Matrix>& hidden, const ActivationHook& hook = {});

// Keys and values of one layer for the tokens processed so far (rows 0 .. length-1).
struct LayerKvCache {
  Matrix keys;    // rows >= length, kv_size columns, keys after RoPE
  Matrix values;  // rows >= length, kv_size columns
  Index length = 0;
};

// Runs one decoder layer on new tokens of a single sequence whose earlier tokens are in
// cache, appends the new keys and values, and replaces hidden with the layer's output.
// The new tokens have positions cache.length, cache.length + 1, ...
void forward_layer_cached(const LlamaConfig& config, const DecoderLayerWeights& weights,
                          const Rope& rope, Matrix& hidden, LayerKvCache& cache);

// Called with each layer's weights after loading and before running it, so a caller
// can replace the linear weights (for example with quantized ones).
using LayerPreparer = std::function<void(DecoderLayerWeights& weights)>;

struct ForwardHooks {
  ActivationHook activations;  // may be empty
  LayerPreparer prepare_layer;  // may be empty
};

// The layer-streamed driver: embeds every sequence, runs the layers in order holding one
// layer's weights at a time, and applies the final norm. Returns the normalized final
// hidden states (tokens x hidden_size per sequence). Sequences may differ in length.
std::vector<Matrix> run_decoder(const Checkpoint& checkpoint,
                                const std::vector<std::vector<int32_t>>& sequences,
                                const ForwardHooks& hooks = {});

// Logits (tokens x vocab_size per sequence) through the layer-streamed driver.
std::vector<Matrix> compute_logits(const Checkpoint& checkpoint,
                                   const std::vector<std::vector<int32_t>>& sequences,
                                   const ForwardHooks& hooks = {});

// Log-probabilities of each sequence's own next tokens: entry t of sequence s is
// log p(s[t + 1] | s[0 .. t]), so a sequence of n tokens gives n - 1 values. Logits are
// computed in blocks of rows, so memory stays O(block * vocab_size) per sequence.
// The log-softmax computes exponentials in float32 and sums them in double.
std::vector<VectorD> next_token_log_probs(const Checkpoint& checkpoint,
                                          const std::vector<std::vector<int32_t>>& sequences,
                                          const ForwardHooks& hooks = {});

// Log-probabilities of targets under the logits rows of normalized hidden states.
// hidden is tokens x hidden_size; targets[t] is scored by row t.
VectorD target_log_probs(const Matrix& hidden, const Matrix& lm_head, std::span<const int32_t> targets);

// Every weight of a checkpoint held in memory, for generation with a key/value cache.
// Memory: the whole model in float32, so this is meant for small models and checks.
struct ResidentModel {
  LlamaConfig config;
  Matrix embedding;  // vocab_size x hidden_size
  std::vector<DecoderLayerWeights> layers;
  Vector final_norm;
  Matrix lm_head;  // a copy of embedding when the word embeddings are tied

  static ResidentModel load(const Checkpoint& checkpoint);
};

struct GenerationOptions {
  // Maximum number of tokens to generate after the prompt, >= 0. Default 256.
  Index max_new_tokens = 256;
  // Token ids that end generation when they are the argmax; the stop token is not
  // returned. The generate command passes BOS (llama2.c ends a story at BOS) and every
  // EOS id of config.json and generation_config.json.
  std::vector<int32_t> stop_tokens;

  void validate() const;
};

enum class StopReason { max_new_tokens, stop_token, context_full };

struct GenerationResult {
  std::vector<int32_t> new_tokens;  // generated after the prompt, stop token excluded
  StopReason reason = StopReason::max_new_tokens;
  std::optional<int32_t> stop_token;  // set when reason is stop_token
};

// Greedy decoding: at each step the argmax of the logits (the lowest id on ties) becomes
// the next token. The prompt (at least one token, usually BOS) is processed in one pass,
// then one token per step with a key/value cache, so each step costs O(layers * (weights
// + position * kv_size)) instead of recomputing the prefix. Generation also stops when
// the sequence reaches max_position_embeddings tokens (reason context_full).
GenerationResult generate_greedy(const ResidentModel& model, std::span<const int32_t> prompt,
                                 const GenerationOptions& options);

}  // namespace magrq::model
