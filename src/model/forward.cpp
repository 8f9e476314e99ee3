#include "model/forward.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.hpp"

namespace magrq::model {
namespace {

using detail::concat;

// Rows of logits computed at once by next_token_log_probs: bounds the logits buffer to
// kLogitBlockRows * vocab_size floats (128 MB for a 128k vocabulary).
constexpr Index kLogitBlockRows = 256;

// y = x W^T + b, with W out x in. One GEMM through BLAS: O(tokens * in * out).
Matrix linear(const Matrix& x, const Matrix& weight, const Vector& bias) {
  Matrix y(x.rows(), weight.rows());
  y.noalias() = x * weight.transpose();
  if (bias.size() != 0) {
    y.rowwise() += bias.transpose();
  }
  return y;
}

Matrix linear(const Matrix& x, const DecoderLayerWeights& weights, LinearKind kind) {
  return linear(x, weights.weight(kind), weights.bias(kind));
}

// Softmax over the first `valid` entries of a row after scaling. Entries past `valid`
// (future positions under the causal mask) are left as they are: the caller multiplies
// only the lower-triangular part. Subtracting the maximum keeps exp from overflowing,
// and Eigen's array exp is vectorized, which matters because attention evaluates
// tokens^2 / 2 exponentials per head.
void masked_softmax_row(float* row, Index valid, float scale) {
  Eigen::Map<Eigen::ArrayXf> values(row, valid);
  values *= scale;
  const float maximum = values.maxCoeff();
  values = (values - maximum).exp();
  values *= 1.0f / values.sum();
}

// Causal grouped-query attention for one sequence. queries: tokens x q_size; keys and
// values: key_count x kv_size, where query row t has position first_position + t and
// may attend keys 0 .. first_position + t. Per head O(tokens * key_count * head_dim).
Matrix attention(const LlamaConfig& config, const Matrix& queries,
                 const Eigen::Ref<const Matrix>& keys, const Eigen::Ref<const Matrix>& values,
                 Index first_position) {
  const Index tokens = queries.rows();
  const Index key_count = keys.rows();
  const Index head_dim = config.head_dim;
  const Index group = config.kv_group_size();
  const auto scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(head_dim)));
  MAGRQ_CHECK(first_position + tokens == key_count, "first position ", first_position, " + ",
              tokens, " tokens != ", key_count, " keys");

  Matrix output(tokens, config.q_size());
  Matrix scores(tokens, key_count);
  Matrix head_output(tokens, head_dim);
  for (Index head = 0; head < config.num_attention_heads; ++head) {
    const Index kv_head = head / group;
    scores.noalias() = queries.middleCols(head * head_dim, head_dim) *
                       keys.middleCols(kv_head * head_dim, head_dim).transpose();
    for (Index t = 0; t < tokens; ++t) {
      masked_softmax_row(scores.row(t).data(), first_position + t + 1, scale);
    }
    // Keys before first_position are visible to every query; among the new tokens the
    // mask is lower triangular, so the triangular product skips the masked entries.
    const auto head_values = values.middleCols(kv_head * head_dim, head_dim);
    head_output.noalias() = scores.rightCols(tokens).triangularView<Eigen::Lower>() *
                            head_values.bottomRows(tokens);
    if (first_position > 0) {
      head_output.noalias() += scores.leftCols(first_position) * head_values.topRows(first_position);
    }
    output.middleCols(head * head_dim, head_dim) = head_output;
  }
  return output;
}

void call_hook(const ActivationHook& hook, Index layer, LinearInput input, const Matrix& x) {
  if (hook) {
    hook(layer, input, x);
  }
}

void append_to_cache(LayerKvCache& cache, const Matrix& keys, const Matrix& values) {
  const Index needed = cache.length + keys.rows();
  if (cache.keys.rows() < needed) {
    // Doubling keeps appends amortized O(1) per token.
    const Index capacity = std::max(needed, 2 * cache.keys.rows());
    cache.keys.conservativeResize(capacity, keys.cols());
    cache.values.conservativeResize(capacity, values.cols());
  }
  cache.keys.middleRows(cache.length, keys.rows()) = keys;
  cache.values.middleRows(cache.length, values.rows()) = values;
  cache.length = needed;
}

// One decoder layer on one sequence. With a cache, earlier tokens' keys and values come
// from it and the new ones are appended; without, positions start at 0.
void run_sequence(const LlamaConfig& config, const DecoderLayerWeights& weights, const Rope& rope,
                  Matrix& x, const ActivationHook& hook, LayerKvCache* cache) {
  const Index layer = weights.layer;
  const Index first_position = cache != nullptr ? cache->length : 0;

  const Matrix attention_input = rms_norm(x, weights.input_norm, config.rms_norm_eps);
  call_hook(hook, layer, LinearInput::attn_in, attention_input);
  Matrix queries = linear(attention_input, weights, LinearKind::q_proj);
  Matrix keys = linear(attention_input, weights, LinearKind::k_proj);
  Matrix values = linear(attention_input, weights, LinearKind::v_proj);
  rope.apply(queries, config.num_attention_heads, first_position);
  rope.apply(keys, config.num_key_value_heads, first_position);

  Matrix attended;
  if (cache != nullptr) {
    append_to_cache(*cache, keys, values);
    attended = attention(config, queries, cache->keys.topRows(cache->length),
                         cache->values.topRows(cache->length), first_position);
  } else {
    attended = attention(config, queries, keys, values, 0);
  }
  call_hook(hook, layer, LinearInput::attn_out, attended);
  x += linear(attended, weights, LinearKind::o_proj);

  const Matrix mlp_input = rms_norm(x, weights.post_attention_norm, config.rms_norm_eps);
  call_hook(hook, layer, LinearInput::mlp_in, mlp_input);
  Matrix gated = linear(mlp_input, weights, LinearKind::gate_proj);
  const Matrix up = linear(mlp_input, weights, LinearKind::up_proj);
  // silu(g) * up = g / (1 + exp(-g)) * up, with Eigen's vectorized exp.
  gated.array() = gated.array() / (1.0f + (-gated.array()).exp()) * up.array();
  call_hook(hook, layer, LinearInput::mlp_out, gated);
  x += linear(gated, weights, LinearKind::down_proj);
}

void check_layer_shapes(const LlamaConfig& config, const DecoderLayerWeights& weights) {
  for (LinearKind kind : kAllLinearKinds) {
    const LinearShape shape = linear_shape(config, kind);
    const Matrix& weight = weights.weight(kind);
    if (weight.rows() != shape.out_features || weight.cols() != shape.in_features) {
      throw DataError(concat("layer ", weights.layer, " ", linear_name(kind), " weight is ",
                             weight.rows(), " x ", weight.cols(), "; expected ",
                             shape.out_features, " x ", shape.in_features));
    }
  }
}

int32_t argmax(const Eigen::Ref<const Eigen::RowVectorXf>& logits) {
  Index best = 0;
  for (Index i = 1; i < logits.size(); ++i) {
    if (logits(i) > logits(best)) {
      best = i;
    }
  }
  return static_cast<int32_t>(best);
}

}  // namespace

Matrix rms_norm(const Matrix& x, const Vector& weight, double eps) {
  MAGRQ_CHECK(weight.size() == x.cols(), "norm weight has ", weight.size(), " entries, x has ",
              x.cols(), " columns");
  Matrix normalized(x.rows(), x.cols());
  const auto epsilon = static_cast<float>(eps);
  for (Index t = 0; t < x.rows(); ++t) {
    const float mean_square = x.row(t).squaredNorm() / static_cast<float>(x.cols());
    const float inverse_rms = 1.0f / std::sqrt(mean_square + epsilon);
    normalized.row(t) = (x.row(t) * inverse_rms).cwiseProduct(weight.transpose());
  }
  return normalized;
}

void forward_layer(const LlamaConfig& config, const DecoderLayerWeights& weights, const Rope& rope,
                   std::vector<Matrix>& hidden, const ActivationHook& hook) {
  check_layer_shapes(config, weights);
  for (Matrix& x : hidden) {
    MAGRQ_CHECK(x.cols() == config.hidden_size, "hidden state has ", x.cols(), " columns");
    run_sequence(config, weights, rope, x, hook, nullptr);
  }
}

void forward_layer_cached(const LlamaConfig& config, const DecoderLayerWeights& weights,
                          const Rope& rope, Matrix& hidden, LayerKvCache& cache) {
  check_layer_shapes(config, weights);
  run_sequence(config, weights, rope, hidden, {}, &cache);
}

// ---- Layer-streamed driver ---------------------------------------------------------------

std::vector<Matrix> run_decoder(const Checkpoint& checkpoint,
                                const std::vector<std::vector<int32_t>>& sequences,
                                const ForwardHooks& hooks) {
  const LlamaConfig& config = checkpoint.config();
  const Rope rope(config);

  std::vector<Matrix> hidden;
  hidden.reserve(sequences.size());
  for (const auto& tokens : sequences) {
    hidden.push_back(checkpoint.embed(tokens));
  }

  for (Index layer = 0; layer < config.num_hidden_layers; ++layer) {
    DecoderLayerWeights weights = checkpoint.load_layer(layer);
    if (hooks.prepare_layer) {
      hooks.prepare_layer(weights);
    }
    forward_layer(config, weights, rope, hidden, hooks.activations);
  }

  const Vector norm = checkpoint.final_norm();
  for (Matrix& x : hidden) {
    x = rms_norm(x, norm, config.rms_norm_eps);
  }
  return hidden;
}

std::vector<Matrix> compute_logits(const Checkpoint& checkpoint,
                                   const std::vector<std::vector<int32_t>>& sequences,
                                   const ForwardHooks& hooks) {
  std::vector<Matrix> hidden = run_decoder(checkpoint, sequences, hooks);
  const Matrix lm_head = checkpoint.lm_head();
  for (Matrix& x : hidden) {
    Matrix logits(x.rows(), lm_head.rows());
    logits.noalias() = x * lm_head.transpose();
    x = std::move(logits);
  }
  return hidden;
}

VectorD target_log_probs(const Matrix& hidden, const Matrix& lm_head, std::span<const int32_t> targets) {
  MAGRQ_CHECK(static_cast<Index>(targets.size()) <= hidden.rows(), targets.size(), " targets for ",
              hidden.rows(), " rows");
  const auto count = static_cast<Index>(targets.size());
  VectorD result(count);
  Matrix logits;
  Eigen::ArrayXXf exponentials;
  for (Index begin = 0; begin < count; begin += kLogitBlockRows) {
    const Index rows = std::min(kLogitBlockRows, count - begin);
    logits.noalias() = hidden.middleRows(begin, rows) * lm_head.transpose();
    for (Index r = 0; r < rows; ++r) {
      const auto row = logits.row(r);
      const float maximum = row.maxCoeff();
      exponentials = (row.array() - maximum).exp();
      const double sum = exponentials.cast<double>().sum();
      const int32_t target = targets[static_cast<size_t>(begin + r)];
      MAGRQ_CHECK(target >= 0 && target < row.size(), "target ", target);
      result(begin + r) = static_cast<double>(row(target) - maximum) - std::log(sum);
    }
  }
  return result;
}

std::vector<VectorD> next_token_log_probs(const Checkpoint& checkpoint,
                                          const std::vector<std::vector<int32_t>>& sequences,
                                          const ForwardHooks& hooks) {
  const std::vector<Matrix> hidden = run_decoder(checkpoint, sequences, hooks);
  const Matrix lm_head = checkpoint.lm_head();
  std::vector<VectorD> result;
  result.reserve(sequences.size());
  for (size_t s = 0; s < sequences.size(); ++s) {
    const auto& tokens = sequences[s];
    const std::span<const int32_t> targets =
        tokens.empty() ? std::span<const int32_t>() : std::span<const int32_t>(tokens).subspan(1);
    result.push_back(target_log_probs(hidden[s], lm_head, targets));
  }
  return result;
}

// ---- Generation ------------------------------------------------------------------------

ResidentModel ResidentModel::load(const Checkpoint& checkpoint) {
  ResidentModel model;
  model.config = checkpoint.config();
  model.embedding = checkpoint.embedding_matrix();
  for (Index layer = 0; layer < model.config.num_hidden_layers; ++layer) {
    model.layers.push_back(checkpoint.load_layer(layer));
  }
  model.final_norm = checkpoint.final_norm();
  model.lm_head = model.config.tie_word_embeddings ? model.embedding : checkpoint.lm_head();
  return model;
}

void GenerationOptions::validate() const {
  if (max_new_tokens < 0) {
    throw ConfigError(concat("max_new_tokens is ", max_new_tokens, "; expected 0 or more"));
  }
}

namespace {

// Runs new tokens through every layer with the caches and returns the logits of the
// last one.
Eigen::RowVectorXf step_logits(const ResidentModel& model, const Rope& rope,
                               std::span<const int32_t> tokens, std::vector<LayerKvCache>& caches) {
  Matrix x(static_cast<Index>(tokens.size()), model.config.hidden_size);
  for (size_t i = 0; i < tokens.size(); ++i) {
    const int32_t token = tokens[i];
    if (token < 0 || token >= model.config.vocab_size) {
      throw DataError(concat("token id ", token, " is outside the vocabulary [0, ",
                             model.config.vocab_size, ")"));
    }
    x.row(static_cast<Index>(i)) = model.embedding.row(token);
  }
  for (size_t layer = 0; layer < model.layers.size(); ++layer) {
    forward_layer_cached(model.config, model.layers[layer], rope, x, caches[layer]);
  }
  const Matrix last = rms_norm(x.bottomRows(1), model.final_norm, model.config.rms_norm_eps);
  return last * model.lm_head.transpose();
}

}  // namespace

GenerationResult generate_greedy(const ResidentModel& model, std::span<const int32_t> prompt,
                                 const GenerationOptions& options) {
  options.validate();
  if (prompt.empty()) {
    throw ConfigError("the prompt is empty; expected at least one token (usually BOS)");
  }
  const Index max_length = model.config.max_position_embeddings;
  if (static_cast<Index>(prompt.size()) > max_length) {
    throw ConfigError(concat("the prompt has ", prompt.size(), " tokens; the model accepts at most ",
                             max_length, " positions"));
  }

  const Rope rope(model.config);
  std::vector<LayerKvCache> caches(model.layers.size());
  GenerationResult result;
  Index length = static_cast<Index>(prompt.size());
  std::vector<int32_t> pending(prompt.begin(), prompt.end());
  while (static_cast<Index>(result.new_tokens.size()) < options.max_new_tokens) {
    if (length >= max_length) {
      result.reason = StopReason::context_full;
      return result;
    }
    const int32_t next = argmax(step_logits(model, rope, pending, caches));
    if (std::find(options.stop_tokens.begin(), options.stop_tokens.end(), next) !=
        options.stop_tokens.end()) {
      result.reason = StopReason::stop_token;
      result.stop_token = next;
      return result;
    }
    result.new_tokens.push_back(next);
    pending.assign(1, next);
    ++length;
  }
  result.reason = StopReason::max_new_tokens;
  return result;
}

}  // namespace magrq::model
