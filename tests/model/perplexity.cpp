// Perplexity under the GPTQ protocol: per-window losses, their batching, the final
// exp(mean), and the stories260K-hf value on held-out TinyStories text.
#include "model/perplexity.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <fstream>
#include <random>

#include "common/test_data.hpp"
#include "core/error.hpp"
#include "model/forward.hpp"
#include "model/text_source.hpp"
#include "model/tokenizer.hpp"

namespace magrq::model {
namespace {

namespace fs = std::filesystem;

// A random 2-layer model with 2 query heads per key/value head.
fs::path write_random_model(const std::string& name) {
  const fs::path dir = testing::scratch_dir(name);
  const nlohmann::json config_json = {
      {"hidden_size", 8},   {"intermediate_size", 12}, {"num_hidden_layers", 2},
      {"num_attention_heads", 2}, {"num_key_value_heads", 1}, {"vocab_size", 20},
      {"tie_word_embeddings", true}};
  std::ofstream(dir / "config.json") << config_json.dump();
  const LlamaConfig config = LlamaConfig::from_json(config_json, "config.json");

  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 0.5f);
  auto random = [&](Index rows, Index cols) {
    Matrix m(rows, cols);
    for (Index i = 0; i < m.size(); ++i) {
      m.data()[i] = normal(rng);
    }
    return m;
  };
  std::vector<TensorData> tensors;
  tensors.push_back(TensorData::from_matrix("model.embed_tokens.weight", random(20, 8), Dtype::F32));
  tensors.push_back(TensorData::from_vector("model.norm.weight", Vector::Ones(8), Dtype::F32));
  for (Index layer = 0; layer < 2; ++layer) {
    const std::string prefix = "model.layers." + std::to_string(layer) + ".";
    tensors.push_back(TensorData::from_vector(prefix + "input_layernorm.weight", Vector::Ones(8), Dtype::F32));
    tensors.push_back(TensorData::from_vector(prefix + "post_attention_layernorm.weight", Vector::Ones(8), Dtype::F32));
    for (LinearKind kind : kAllLinearKinds) {
      const LinearShape shape = linear_shape(config, kind);
      tensors.push_back(TensorData::from_matrix(linear_weight_name(layer, kind),
                                                random(shape.out_features, shape.in_features), Dtype::F32));
    }
  }
  write_safetensors(dir / "model.safetensors", tensors);
  return dir;
}

std::vector<std::vector<int32_t>> random_windows(int count, int length) {
  std::mt19937 rng(4);
  std::uniform_int_distribution<int32_t> token(0, 19);
  std::vector<std::vector<int32_t>> windows(static_cast<size_t>(count));
  for (auto& window : windows) {
    for (int i = 0; i < length; ++i) {
      window.push_back(token(rng));
    }
  }
  return windows;
}

TEST(Perplexity, WindowLossIsMeanCrossEntropyOfLogits) {
  const Checkpoint checkpoint(write_random_model("perplexity_loss"));
  const auto windows = random_windows(3, 9);
  const std::vector<double> losses = window_losses(checkpoint, windows);
  const std::vector<Matrix> logits = compute_logits(checkpoint, windows);
  ASSERT_EQ(losses.size(), 3u);
  for (size_t w = 0; w < windows.size(); ++w) {
    double total = 0;
    for (Index t = 0; t < 8; ++t) {
      const Eigen::RowVectorXd row = logits[w].row(t).cast<double>();
      total += std::log(row.array().exp().sum()) - row(windows[w][t + 1]);
    }
    EXPECT_NEAR(losses[w], total / 8, 1e-6) << "window " << w;
  }
}

TEST(Perplexity, LossesDoNotDependOnBatchSize) {
  const Checkpoint checkpoint(write_random_model("perplexity_batch"));
  const auto windows = random_windows(7, 6);
  PerplexityOptions one;
  one.batch_windows = 1;
  PerplexityOptions three;
  three.batch_windows = 3;
  EXPECT_EQ(window_losses(checkpoint, windows, one), window_losses(checkpoint, windows, three));
}

TEST(Perplexity, IsExpOfMeanWindowLoss) {
  const std::vector<double> losses = {1.0, 2.0, 4.0};
  const PerplexityResult result = perplexity_from_losses(losses);
  EXPECT_EQ(result.windows, 3);
  EXPECT_DOUBLE_EQ(result.mean_loss, 7.0 / 3.0);
  EXPECT_DOUBLE_EQ(result.perplexity, std::exp(7.0 / 3.0));
  EXPECT_THROW(perplexity_from_losses({}), DataError);
}

TEST(Perplexity, RejectsShortWindowsAndBadOptions) {
  const Checkpoint checkpoint(write_random_model("perplexity_invalid"));
  EXPECT_THROW(window_losses(checkpoint, {{1, 2, 3}, {4}}), DataError);
  PerplexityOptions options;
  options.batch_windows = 0;
  EXPECT_THROW(window_losses(checkpoint, random_windows(1, 4), options), ConfigError);
}

// The reference value comes from an independent PyTorch forward pass with Hugging Face
// Llama semantics on the same files: 5.5965 over 618 windows of 256 tokens.
TEST(PerplexityData, StoriesOnHeldOutTinystoriesMatchesReference) {
  MAGRQ_REQUIRE_DATA();
  const fs::path model_dir = testing::shared_data_dir() / "models" / "stories260K-hf";
  const fs::path text = testing::shared_data_dir() / "text" / "tinystories" / "tinystories_val.txt";
  const Checkpoint checkpoint(model_dir);
  const Tokenizer tokenizer = Tokenizer::from_directory(model_dir);

  WindowOptions options;
  options.seqlen = 256;
  const TokenWindows windows = make_windows(
      TextSpec::parse("text:" + text.string() + "@0.6:1.0"),
      [&](std::string_view part) { return tokenizer.encode(part, /*add_bos=*/true); }, options);
  ASSERT_EQ(windows.windows.size(), 618u);

  const PerplexityResult result = perplexity_from_losses(window_losses(checkpoint, windows.windows));
  EXPECT_NEAR(result.perplexity, 5.5965, 5.5965 * 1e-3);
  EXPECT_EQ(result.windows, 618);
}

}  // namespace
}  // namespace magrq::model
