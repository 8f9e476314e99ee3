// The layer-streamed forward pass, RoPE, checkpoint loading and greedy generation,
// checked against a plain double-precision reference written independently below.
#include "model/forward.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <map>
#include <numbers>
#include <random>

#include "common/test_data.hpp"
#include "core/error.hpp"
#include "model/rope.hpp"

namespace magrq::model {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;
using Json = nlohmann::json;

// A small GQA model: 4 query heads share 2 key/value heads, and head_dim 6 is given
// explicitly, so q_size 24 differs from hidden_size 16. Llama3 rope scaling with
// original_max_position_embeddings 256 puts the three frequencies in the three bands:
// wavelengths are about 6, 135 and 2900 against band edges 64 and 256.
Json small_config(bool biases, bool tied) {
  return {{"model_type", "llama"},
          {"hidden_size", 16},
          {"intermediate_size", 24},
          {"num_hidden_layers", 2},
          {"num_attention_heads", 4},
          {"num_key_value_heads", 2},
          {"head_dim", 6},
          {"vocab_size", 40},
          {"max_position_embeddings", 64},
          {"rms_norm_eps", 1e-5},
          {"rope_theta", 10000.0},
          {"rope_scaling",
           {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
            {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 256}}},
          {"hidden_act", "silu"},
          {"tie_word_embeddings", tied},
          {"attention_bias", biases},
          {"mlp_bias", biases},
          {"bos_token_id", 1},
          {"eos_token_id", 2}};
}

Matrix random_matrix(std::mt19937& rng, Index rows, Index cols, float scale, float offset = 0) {
  std::normal_distribution<float> normal(0.0f, scale);
  Matrix m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) {
    m.data()[i] = offset + normal(rng);
  }
  return m;
}

Vector random_vector(std::mt19937& rng, Index size, float scale, float offset = 0) {
  return random_matrix(rng, size, 1, scale, offset).col(0);
}

struct ModelFiles {
  bool biases = false;
  bool tied = false;
  Dtype dtype = Dtype::F32;
  uint64_t max_shard_bytes = uint64_t{1} << 30;
  std::optional<Json> config;
};

// Writes config.json and random weights for small_config into a fresh folder.
fs::path write_model(const std::string& name, const ModelFiles& files = {}) {
  const fs::path dir = testing::scratch_dir(name);
  const Json config_json = files.config.value_or(small_config(files.biases, files.tied));
  std::ofstream(dir / "config.json") << config_json.dump(2);
  const LlamaConfig config = LlamaConfig::from_json(config_json, "config.json");

  std::mt19937 rng(20240601);
  std::vector<TensorData> tensors;
  auto add_matrix = [&](const std::string& tensor, Index rows, Index cols, float scale) {
    tensors.push_back(TensorData::from_matrix(tensor, random_matrix(rng, rows, cols, scale), files.dtype));
  };
  auto add_vector = [&](const std::string& tensor, Index size, float scale, float offset) {
    tensors.push_back(TensorData::from_vector(tensor, random_vector(rng, size, scale, offset), files.dtype));
  };
  add_matrix("model.embed_tokens.weight", config.vocab_size, config.hidden_size, 1.0f);
  for (Index layer = 0; layer < config.num_hidden_layers; ++layer) {
    const std::string prefix = "model.layers." + std::to_string(layer) + ".";
    add_vector(prefix + "input_layernorm.weight", config.hidden_size, 0.1f, 1.0f);
    add_vector(prefix + "post_attention_layernorm.weight", config.hidden_size, 0.1f, 1.0f);
    for (LinearKind kind : kAllLinearKinds) {
      const LinearShape shape = linear_shape(config, kind);
      add_matrix(linear_weight_name(layer, kind), shape.out_features, shape.in_features,
                 1.0f / std::sqrt(static_cast<float>(shape.in_features)));
      if (has_bias(config, kind)) {
        add_vector(linear_bias_name(layer, kind), shape.out_features, 0.2f, 0.0f);
      }
    }
  }
  add_vector("model.norm.weight", config.hidden_size, 0.1f, 1.0f);
  if (!config.tie_word_embeddings) {
    add_matrix("lm_head.weight", config.vocab_size, config.hidden_size, 0.3f);
  }
  ShardOptions options;
  options.max_shard_bytes = files.max_shard_bytes;
  write_sharded_safetensors(dir, tensors, options);
  return dir;
}

// ---- The reference: loops in double precision, written from the formulas ---------------

using Rows = std::vector<std::vector<double>>;

std::vector<double> to_vector(const Vector& v) { return {v.data(), v.data() + v.size()}; }

Rows to_rows(const Matrix& m) {
  Rows rows(static_cast<size_t>(m.rows()), std::vector<double>(static_cast<size_t>(m.cols())));
  for (Index i = 0; i < m.rows(); ++i) {
    for (Index j = 0; j < m.cols(); ++j) {
      rows[i][j] = m(i, j);
    }
  }
  return rows;
}

std::vector<double> matvec(const Rows& w, const std::vector<double>& x, const std::vector<double>& b) {
  std::vector<double> y(w.size(), 0.0);
  for (size_t o = 0; o < w.size(); ++o) {
    for (size_t i = 0; i < x.size(); ++i) {
      y[o] += w[o][i] * x[i];
    }
    if (!b.empty()) {
      y[o] += b[o];
    }
  }
  return y;
}

std::vector<double> reference_rms_norm(const std::vector<double>& x, const std::vector<double>& w, double eps) {
  double sum = 0;
  for (double v : x) {
    sum += v * v;
  }
  const double scale = 1.0 / std::sqrt(sum / x.size() + eps);
  std::vector<double> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    y[i] = x[i] * scale * w[i];
  }
  return y;
}

// Inverse frequency i of plain or llama3 rope, straight from the published rule.
double reference_frequency(size_t i, const LlamaConfig& c) {
  const double base = std::pow(c.rope_theta, -2.0 * i / c.head_dim);
  if (c.rope_scaling.type == RopeScalingType::none) {
    return base;
  }
  const double wavelength = 2 * std::numbers::pi / base;
  const double factor = c.rope_scaling.factor;
  const double low = c.rope_scaling.low_freq_factor;
  const double high = c.rope_scaling.high_freq_factor;
  const double original = c.rope_scaling.original_max_position_embeddings;
  if (wavelength < original / high) {
    return base;
  }
  if (wavelength > original / low) {
    return base / factor;
  }
  const double smooth = (original / wavelength - low) / (high - low);
  return (1 - smooth) * base / factor + smooth * base;
}

void reference_rope(std::vector<double>& v, size_t heads, const LlamaConfig& c, size_t position) {
  const size_t head_dim = c.head_dim;
  const size_t half = head_dim / 2;
  for (size_t h = 0; h < heads; ++h) {
    for (size_t i = 0; i < half; ++i) {
      const double angle = position * reference_frequency(i, c);
      const double a = v[h * head_dim + i];
      const double b = v[h * head_dim + i + half];
      v[h * head_dim + i] = a * std::cos(angle) - b * std::sin(angle);
      v[h * head_dim + i + half] = b * std::cos(angle) + a * std::sin(angle);
    }
  }
}

struct ReferenceLayer {
  std::vector<double> norm1, norm2;
  std::map<LinearKind, Rows> w;
  std::map<LinearKind, std::vector<double>> b;
};

// Logits (tokens x vocab) of the checkpoint for one sequence.
Rows reference_logits(const Checkpoint& checkpoint, const std::vector<int32_t>& tokens) {
  const LlamaConfig& c = checkpoint.config();
  const size_t n = tokens.size(), heads = c.num_attention_heads, kv_heads = c.num_key_value_heads;
  const size_t d = c.head_dim;
  const Rows embedding = to_rows(checkpoint.embedding_matrix());

  Rows x(n);
  for (size_t t = 0; t < n; ++t) {
    x[t] = embedding[tokens[t]];
  }
  for (Index layer = 0; layer < c.num_hidden_layers; ++layer) {
    const DecoderLayerWeights loaded = checkpoint.load_layer(layer);
    ReferenceLayer L;
    L.norm1 = to_vector(loaded.input_norm);
    L.norm2 = to_vector(loaded.post_attention_norm);
    for (LinearKind kind : kAllLinearKinds) {
      L.w[kind] = to_rows(loaded.weight(kind));
      L.b[kind] = to_vector(loaded.bias(kind));
    }

    Rows q(n), k(n), v(n);
    for (size_t t = 0; t < n; ++t) {
      const auto normed = reference_rms_norm(x[t], L.norm1, c.rms_norm_eps);
      q[t] = matvec(L.w[LinearKind::q_proj], normed, L.b[LinearKind::q_proj]);
      k[t] = matvec(L.w[LinearKind::k_proj], normed, L.b[LinearKind::k_proj]);
      v[t] = matvec(L.w[LinearKind::v_proj], normed, L.b[LinearKind::v_proj]);
      reference_rope(q[t], heads, c, t);
      reference_rope(k[t], kv_heads, c, t);
    }
    for (size_t t = 0; t < n; ++t) {
      std::vector<double> attended(heads * d, 0.0);
      for (size_t h = 0; h < heads; ++h) {
        const size_t g = h / (heads / kv_heads);
        std::vector<double> weights(t + 1);
        double maximum = -1e300, total = 0;
        for (size_t j = 0; j <= t; ++j) {
          double dot = 0;
          for (size_t i = 0; i < d; ++i) {
            dot += q[t][h * d + i] * k[j][g * d + i];
          }
          weights[j] = dot / std::sqrt(double(d));
          maximum = std::max(maximum, weights[j]);
        }
        for (double& w : weights) {
          w = std::exp(w - maximum);
          total += w;
        }
        for (size_t j = 0; j <= t; ++j) {
          for (size_t i = 0; i < d; ++i) {
            attended[h * d + i] += weights[j] / total * v[j][g * d + i];
          }
        }
      }
      const auto projected = matvec(L.w[LinearKind::o_proj], attended, L.b[LinearKind::o_proj]);
      for (size_t i = 0; i < x[t].size(); ++i) {
        x[t][i] += projected[i];
      }
      const auto normed = reference_rms_norm(x[t], L.norm2, c.rms_norm_eps);
      auto gate = matvec(L.w[LinearKind::gate_proj], normed, L.b[LinearKind::gate_proj]);
      const auto up = matvec(L.w[LinearKind::up_proj], normed, L.b[LinearKind::up_proj]);
      for (size_t i = 0; i < gate.size(); ++i) {
        gate[i] = gate[i] / (1 + std::exp(-gate[i])) * up[i];
      }
      const auto down = matvec(L.w[LinearKind::down_proj], gate, L.b[LinearKind::down_proj]);
      for (size_t i = 0; i < x[t].size(); ++i) {
        x[t][i] += down[i];
      }
    }
  }
  const auto final_norm = to_vector(checkpoint.final_norm());
  const Rows head = to_rows(checkpoint.lm_head());
  Rows logits(n);
  for (size_t t = 0; t < n; ++t) {
    logits[t] = matvec(head, reference_rms_norm(x[t], final_norm, c.rms_norm_eps), {});
  }
  return logits;
}

// Float32 against double on logits of size 1 to 10: 1e-4 absolute leaves room for float32
// rounding through the layers and still fails on a formula error such as a wrong
// key/value head mapping.
constexpr double kLogitTolerance = 1e-4;

void expect_matches_reference(const Checkpoint& checkpoint, const std::vector<std::vector<int32_t>>& sequences) {
  const std::vector<Matrix> logits = compute_logits(checkpoint, sequences);
  ASSERT_EQ(logits.size(), sequences.size());
  for (size_t s = 0; s < sequences.size(); ++s) {
    const Rows expected = reference_logits(checkpoint, sequences[s]);
    ASSERT_EQ(logits[s].rows(), static_cast<Index>(sequences[s].size()));
    ASSERT_EQ(logits[s].cols(), checkpoint.config().vocab_size);
    double worst = 0;
    for (Index t = 0; t < logits[s].rows(); ++t) {
      for (Index j = 0; j < logits[s].cols(); ++j) {
        worst = std::max(worst, std::abs(logits[s](t, j) - expected[t][j]));
      }
    }
    EXPECT_LT(worst, kLogitTolerance) << "sequence " << s;
  }
}

const std::vector<std::vector<int32_t>> kSequences = {{1, 5, 9, 33, 2, 17, 4},
                                                      {1, 39, 0, 12, 12, 12, 7, 30, 21, 3, 8}};

TEST(Forward, MatchesDoubleReferenceOnGqaModel) {
  const Checkpoint checkpoint(write_model("forward_gqa"));
  expect_matches_reference(checkpoint, kSequences);
}

TEST(Forward, MatchesReferenceWithBiasesAndTiedEmbedding) {
  ModelFiles files;
  files.biases = true;
  files.tied = true;
  const Checkpoint checkpoint(write_model("forward_bias_tied", files));
  EXPECT_EQ(checkpoint.lm_head_name(), "model.embed_tokens.weight");
  EXPECT_EQ(checkpoint.load_layer(0).bias(LinearKind::k_proj).size(), 12);
  expect_matches_reference(checkpoint, kSequences);
}

TEST(Forward, MatchesReferenceOnShardedBf16Checkpoint) {
  ModelFiles files;
  files.dtype = Dtype::BF16;
  files.max_shard_bytes = 2000;
  const fs::path dir = write_model("forward_bf16_shards", files);
  ASSERT_TRUE(fs::exists(dir / "model.safetensors.index.json"));
  const Checkpoint checkpoint(dir);
  EXPECT_GT(checkpoint.tensors().files().size(), 2u);
  expect_matches_reference(checkpoint, kSequences);
}

TEST(Forward, HookSeesFourInputsPerLayerInOrder) {
  const Checkpoint checkpoint(write_model("forward_hook"));
  struct Call {
    Index layer;
    LinearInput input;
    Index rows;
    Index cols;
  };
  std::vector<Call> calls;
  Matrix first_attention_input;
  ForwardHooks hooks;
  hooks.activations = [&](Index layer, LinearInput input, const Matrix& x) {
    calls.push_back({layer, input, x.rows(), x.cols()});
    if (calls.size() == 1) {
      first_attention_input = x;
    }
  };
  run_decoder(checkpoint, kSequences, hooks);

  ASSERT_EQ(calls.size(), 2u * 4u * 2u);  // layers x inputs x sequences
  const LinearInput order[] = {LinearInput::attn_in, LinearInput::attn_out, LinearInput::mlp_in,
                               LinearInput::mlp_out};
  const Index widths[] = {16, 24, 16, 24};  // hidden, q_size, hidden, intermediate
  for (size_t i = 0; i < calls.size(); ++i) {
    const size_t layer = i / 8;
    const size_t sequence = (i / 4) % 2;
    EXPECT_EQ(calls[i].layer, static_cast<Index>(layer)) << i;
    EXPECT_EQ(calls[i].input, order[i % 4]) << i;
    EXPECT_EQ(calls[i].rows, static_cast<Index>(kSequences[sequence].size())) << i;
    EXPECT_EQ(calls[i].cols, widths[i % 4]) << i;
  }
  const Matrix expected = rms_norm(checkpoint.embed(kSequences[0]), checkpoint.load_layer(0).input_norm,
                                   checkpoint.config().rms_norm_eps);
  EXPECT_TRUE(first_attention_input.isApprox(expected, 1e-6f));
}

TEST(Forward, PreparedLayerWeightsAreUsed) {
  const Checkpoint checkpoint(write_model("forward_prepare"));
  ForwardHooks hooks;
  std::vector<Index> prepared;
  hooks.prepare_layer = [&](DecoderLayerWeights& weights) {
    prepared.push_back(weights.layer);
    weights.weight(LinearKind::o_proj).setZero();
    weights.weight(LinearKind::down_proj).setZero();
  };
  // With both output projections zero, every layer passes its input through unchanged.
  const std::vector<Matrix> hidden = run_decoder(checkpoint, kSequences, hooks);
  EXPECT_EQ(prepared, (std::vector<Index>{0, 1}));
  const Matrix expected = rms_norm(checkpoint.embed(kSequences[1]), checkpoint.final_norm(),
                                   checkpoint.config().rms_norm_eps);
  EXPECT_TRUE(hidden[1].isApprox(expected, 1e-6f));
}

TEST(Forward, ReplacedWeightWithWrongShapeIsRejected) {
  const Checkpoint checkpoint(write_model("forward_bad_prepare"));
  ForwardHooks hooks;
  hooks.prepare_layer = [](DecoderLayerWeights& weights) {
    weights.weight(LinearKind::k_proj) = Matrix::Zero(16, 16);
  };
  try {
    run_decoder(checkpoint, kSequences, hooks);
    FAIL() << "expected DataError";
  } catch (const DataError& error) {
    EXPECT_THAT(error.what(), HasSubstr("layer 0 k_proj weight is 16 x 16; expected 12 x 16"));
  }
}

TEST(Forward, LogProbsAreLogSoftmaxOfLogits) {
  const Checkpoint checkpoint(write_model("forward_log_probs"));
  const std::vector<Matrix> logits = compute_logits(checkpoint, kSequences);
  const std::vector<VectorD> log_probs = next_token_log_probs(checkpoint, kSequences);
  for (size_t s = 0; s < kSequences.size(); ++s) {
    ASSERT_EQ(log_probs[s].size(), static_cast<Index>(kSequences[s].size() - 1));
    for (Index t = 0; t + 1 < static_cast<Index>(kSequences[s].size()); ++t) {
      const Eigen::RowVectorXd row = logits[s].row(t).cast<double>();
      const double expected = row(kSequences[s][t + 1]) - std::log(row.array().exp().sum());
      EXPECT_NEAR(log_probs[s](t), expected, 1e-5);
    }
  }
}

TEST(Forward, TokenOutsideVocabularyIsRejected) {
  const Checkpoint checkpoint(write_model("forward_bad_token"));
  try {
    compute_logits(checkpoint, {{1, 40}});
    FAIL() << "expected DataError";
  } catch (const DataError& error) {
    EXPECT_THAT(error.what(), HasSubstr("token id 40 at position 1"));
  }
}

TEST(Forward, CachedStepsMatchFullPass) {
  const Checkpoint checkpoint(write_model("forward_cache"));
  const ResidentModel model = ResidentModel::load(checkpoint);
  const Rope rope(model.config);
  const std::vector<int32_t>& tokens = kSequences[1];
  const Matrix full = compute_logits(checkpoint, {tokens})[0];

  // Feed the first three tokens at once, then one at a time.
  std::vector<LayerKvCache> caches(model.layers.size());
  Index done = 0;
  for (Index count : {3, 1, 1, 1, 1, 1, 1, 1, 1}) {
    Matrix x = checkpoint.embed(std::span(tokens).subspan(done, count));
    for (size_t layer = 0; layer < model.layers.size(); ++layer) {
      forward_layer_cached(model.config, model.layers[layer], rope, x, caches[layer]);
    }
    const Matrix logits = rms_norm(x, model.final_norm, model.config.rms_norm_eps) * model.lm_head.transpose();
    EXPECT_LT((logits - full.middleRows(done, count)).cwiseAbs().maxCoeff(), 1e-5f) << "step at " << done;
    done += count;
  }
  EXPECT_EQ(caches[0].length, static_cast<Index>(tokens.size()));
}

// ---- Generation --------------------------------------------------------------------------

TEST(Generate, EachTokenIsArgmaxOfFullPass) {
  const Checkpoint checkpoint(write_model("generate_argmax"));
  const ResidentModel model = ResidentModel::load(checkpoint);
  GenerationOptions options;
  options.max_new_tokens = 12;
  const GenerationResult result = generate_greedy(model, std::vector<int32_t>{1, 7}, options);
  ASSERT_EQ(result.new_tokens.size(), 12u);
  EXPECT_EQ(result.reason, StopReason::max_new_tokens);

  std::vector<int32_t> sequence = {1, 7};
  for (int32_t token : result.new_tokens) {
    const Matrix logits = compute_logits(checkpoint, {sequence})[0];
    Index best = 0;
    logits.row(logits.rows() - 1).maxCoeff(&best);
    EXPECT_EQ(token, best);
    sequence.push_back(token);
  }
}

TEST(Generate, StopsOnStopTokenWithoutEmittingIt) {
  const Checkpoint checkpoint(write_model("generate_stop"));
  const ResidentModel model = ResidentModel::load(checkpoint);
  GenerationOptions options;
  options.max_new_tokens = 12;
  const std::vector<int32_t> free_run = generate_greedy(model, std::vector<int32_t>{1}, options).new_tokens;
  ASSERT_GE(free_run.size(), 4u);

  options.stop_tokens = {free_run[3]};
  const GenerationResult result = generate_greedy(model, std::vector<int32_t>{1}, options);
  EXPECT_EQ(result.reason, StopReason::stop_token);
  EXPECT_EQ(result.stop_token, free_run[3]);
  const auto first = std::find(free_run.begin(), free_run.end(), free_run[3]);
  EXPECT_EQ(result.new_tokens, std::vector<int32_t>(free_run.begin(), first));
}

TEST(Generate, StopsWhenContextIsFull) {
  const Checkpoint checkpoint(write_model("generate_context"));
  ResidentModel model = ResidentModel::load(checkpoint);
  model.config.max_position_embeddings = 10;
  GenerationOptions options;
  options.max_new_tokens = 50;
  const GenerationResult result = generate_greedy(model, std::vector<int32_t>{1, 2, 3}, options);
  EXPECT_EQ(result.reason, StopReason::context_full);
  EXPECT_EQ(result.new_tokens.size(), 7u);  // 3 prompt + 7 new = 10 positions
  EXPECT_THROW(generate_greedy(model, std::vector<int32_t>{}, options), ConfigError);
  options.max_new_tokens = -1;
  EXPECT_THROW(generate_greedy(model, std::vector<int32_t>{1}, options), ConfigError);
}

// ---- Checkpoint and RoPE -----------------------------------------------------------------

TEST(Checkpoint, WrongKvShapeNamesTensor) {
  Json config = small_config(false, false);
  const fs::path dir = write_model("checkpoint_bad_shape");
  config["num_key_value_heads"] = 4;  // the file's k_proj has 2 heads x 6 rows
  std::ofstream(dir / "config.json") << config.dump();
  try {
    Checkpoint checkpoint(dir);
    FAIL() << "expected DataError";
  } catch (const DataError& error) {
    EXPECT_THAT(error.what(), HasSubstr("\"model.layers.0.self_attn.k_proj.weight\""));
    EXPECT_THAT(error.what(), HasSubstr("[12, 16]; config.json implies [24, 16]"));
  }
}

TEST(Checkpoint, MissingLmHeadIsRejectedUnlessTied) {
  ModelFiles files;
  files.tied = true;
  const fs::path dir = write_model("checkpoint_no_lm_head", files);
  std::ofstream(dir / "config.json") << small_config(false, false).dump();
  try {
    Checkpoint checkpoint(dir);
    FAIL() << "expected DataError";
  } catch (const DataError& error) {
    EXPECT_THAT(error.what(), HasSubstr("no lm_head.weight"));
  }
}

TEST(Checkpoint, LinearRowsMatchFullWeight) {
  const Checkpoint checkpoint(write_model("checkpoint_rows"));
  const Matrix full = checkpoint.load_layer(1).weight(LinearKind::gate_proj);
  EXPECT_EQ(checkpoint.load_linear_rows(1, LinearKind::gate_proj, 5, 17), full.middleRows(5, 12));
}

TEST(Rope, Llama3FrequenciesFollowBands) {
  const LlamaConfig config = LlamaConfig::from_json(small_config(false, false), "config.json");
  const VectorD frequencies = rope_inverse_frequencies(config);
  ASSERT_EQ(frequencies.size(), 3);
  for (Index i = 0; i < 3; ++i) {
    EXPECT_NEAR(frequencies(i), reference_frequency(static_cast<size_t>(i), config), 1e-15) << i;
  }
  EXPECT_DOUBLE_EQ(frequencies(0), 1.0);                                  // short wavelength kept
  EXPECT_DOUBLE_EQ(frequencies(2), std::pow(10000.0, -4.0 / 6.0) / 8.0);  // long: divided by 8
}

TEST(Rope, LinearScalingDividesEveryFrequency) {
  Json json = small_config(false, false);
  json["rope_scaling"] = {{"rope_type", "linear"}, {"factor", 4.0}};
  const VectorD frequencies = rope_inverse_frequencies(LlamaConfig::from_json(json, "config.json"));
  for (Index i = 0; i < 3; ++i) {
    EXPECT_DOUBLE_EQ(frequencies(i), std::pow(10000.0, -2.0 * i / 6.0) / 4.0);
  }
}

TEST(Rope, PositionZeroIsIdentityAndNormsArePreserved) {
  const LlamaConfig config = LlamaConfig::from_json(small_config(false, false), "config.json");
  const Rope rope(config);
  std::mt19937 rng(3);
  const Matrix original = random_matrix(rng, 5, 24, 1.0f);
  Matrix rotated = original;
  rope.apply(rotated, 4, 0);
  EXPECT_EQ(rotated.row(0), original.row(0));
  for (Index t = 1; t < 5; ++t) {
    for (Index head = 0; head < 4; ++head) {
      for (Index i = 0; i < 3; ++i) {  // each (i, i + 3) pair is rotated, so its norm stays
        const float before = std::hypot(original(t, head * 6 + i), original(t, head * 6 + i + 3));
        const float after = std::hypot(rotated(t, head * 6 + i), rotated(t, head * 6 + i + 3));
        EXPECT_NEAR(before, after, 1e-5f);
      }
    }
  }
}

// ---- Real checkpoint -----------------------------------------------------------------------

TEST(ForwardData, StoriesFullPassMatchesReference) {
  MAGRQ_REQUIRE_DATA();
  const Checkpoint checkpoint(testing::shared_data_dir() / "models" / "stories260K-hf");
  expect_matches_reference(checkpoint, {{1, 400, 261, 300, 410, 259, 266, 11, 500}});
}

}  // namespace
}  // namespace magrq::model
