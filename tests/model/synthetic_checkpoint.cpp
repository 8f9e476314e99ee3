#include "model/synthetic_checkpoint.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>

#include "common/test_data.hpp"
#include "core/error.hpp"
#include "model/checkpoint.hpp"
#include "model/llama_config.hpp"
#include "model/safetensors.hpp"

namespace magrq::model {
namespace {

struct PublishedShape {
  std::string name;
  int64_t hidden;
  int64_t intermediate;
  int64_t heads;
  int64_t kv_heads;
  int64_t vocab;
  int64_t layers;
  double rope_theta;
  int64_t max_positions;
};

// The published shapes of Llama 2 7B, Llama 3 8B, Llama 2 70B and Llama 3 70B.
const PublishedShape kPublished[] = {
    {"llama2-7b", 4096, 11008, 32, 32, 32000, 32, 10000.0, 4096},
    {"llama3-8b", 4096, 14336, 32, 8, 128256, 32, 500000.0, 8192},
    {"llama2-70b", 8192, 28672, 64, 8, 32000, 80, 10000.0, 4096},
    {"llama3-70b", 8192, 28672, 64, 8, 128256, 80, 500000.0, 8192},
};

TEST(SyntheticCheckpoint, PresetsMatchPublishedConfigs) {
  for (const PublishedShape& shape : kPublished) {
    SCOPED_TRACE(shape.name);
    const nlohmann::json json = published_llama_config(shape.name, 0);
    EXPECT_EQ(json.at("hidden_size").get<int64_t>(), shape.hidden);
    EXPECT_EQ(json.at("intermediate_size").get<int64_t>(), shape.intermediate);
    EXPECT_EQ(json.at("num_attention_heads").get<int64_t>(), shape.heads);
    EXPECT_EQ(json.at("num_key_value_heads").get<int64_t>(), shape.kv_heads);
    EXPECT_EQ(json.at("vocab_size").get<int64_t>(), shape.vocab);
    EXPECT_EQ(json.at("num_hidden_layers").get<int64_t>(), shape.layers);
    EXPECT_EQ(json.at("rope_theta").get<double>(), shape.rope_theta);
    EXPECT_EQ(json.at("max_position_embeddings").get<int64_t>(), shape.max_positions);
    EXPECT_EQ(json.at("rms_norm_eps").get<double>(), 1e-5);
    EXPECT_FALSE(json.at("tie_word_embeddings").get<bool>());
    EXPECT_FALSE(json.contains("rope_scaling"));

    const LlamaConfig config = LlamaConfig::from_json(json, shape.name);
    EXPECT_EQ(config.head_dim, 128);
    EXPECT_EQ(config.kv_size(), shape.kv_heads * 128);
  }
}

TEST(SyntheticCheckpoint, LayersOverrideKeepsShape) {
  const nlohmann::json json = published_llama_config("llama3-70b", 1);
  EXPECT_EQ(json.at("num_hidden_layers").get<int64_t>(), 1);
  EXPECT_EQ(json.at("intermediate_size").get<int64_t>(), 28672);
  EXPECT_THROW(published_llama_config("llama4-400b", 0), ConfigError);
}

// A reduced Llama-3-like config: grouped-query attention, 3 layers.
nlohmann::json reduced_config() {
  nlohmann::json json = small_llama_config();
  json.update({{"hidden_size", 256}, {"intermediate_size", 704}, {"num_hidden_layers", 3},
               {"num_attention_heads", 8}, {"num_key_value_heads", 2}, {"vocab_size", 1000},
               {"rope_theta", 500000.0}});
  return json;
}

uint64_t expected_parameters(const LlamaConfig& c) {
  const uint64_t h = c.hidden_size;
  const uint64_t layer = h * c.q_size() * 2 + h * c.kv_size() * 2 + 3 * h * c.intermediate_size + 2 * h;
  const uint64_t embeddings = c.vocab_size * h * (c.tie_word_embeddings ? 1 : 2);
  return embeddings + layer * c.num_hidden_layers + h;
}

TEST(SyntheticCheckpoint, WritesEveryTensorWithItsShapeAndDtype) {
  const auto dir = testing::scratch_dir("synthetic_every_tensor");
  SyntheticCheckpointOptions options;
  options.dtype = Dtype::BF16;
  write_synthetic_checkpoint(dir, reduced_config(), options);

  const SafetensorsFolder folder(dir);
  const LlamaConfig config = LlamaConfig::from_file(dir / "config.json");
  EXPECT_EQ(config.torch_dtype, "bfloat16");
  uint64_t parameters = 0;
  for (const std::string& name : folder.tensor_names()) {
    EXPECT_EQ(folder.info(name).dtype, Dtype::BF16) << name;
    parameters += static_cast<uint64_t>(folder.info(name).numel());
  }
  EXPECT_EQ(parameters, expected_parameters(config));
  EXPECT_EQ(folder.tensor_names().size(), 2u + 9u * 3u + 1u);
  EXPECT_EQ(folder.info("model.layers.2.self_attn.k_proj.weight").shape, (std::vector<int64_t>{64, 256}));
  EXPECT_EQ(folder.info("model.layers.0.mlp.down_proj.weight").shape, (std::vector<int64_t>{256, 704}));
  EXPECT_EQ(folder.info("lm_head.weight").shape, (std::vector<int64_t>{1000, 256}));

  // The single file is the 8-byte length, the header and exactly the tensors' bytes.
  const SafetensorsFile& file = folder.file_of("lm_head.weight");
  uint64_t header_length = 0;
  std::ifstream(dir / "model.safetensors", std::ios::binary)
      .read(reinterpret_cast<char*>(&header_length), sizeof header_length);
  EXPECT_EQ(header_length % 8, 0u);
  EXPECT_EQ(std::filesystem::file_size(file.path()), 8 + header_length + 2 * parameters);
}

TEST(SyntheticCheckpoint, LargeCheckpointIsShardedWithIndex) {
  const auto dir = testing::scratch_dir("synthetic_sharded");
  SyntheticCheckpointOptions options;
  options.max_shard_bytes = 1u << 20;  // 1 MiB: the 4 MiB of float32 tensors need several
  write_synthetic_checkpoint(dir, reduced_config(), options);
  EXPECT_FALSE(std::filesystem::exists(dir / "model.safetensors"));
  ASSERT_TRUE(std::filesystem::exists(dir / "model.safetensors.index.json"));

  const SafetensorsFolder folder(dir);
  EXPECT_GT(folder.files().size(), 2u);
  EXPECT_EQ(folder.tensor_names().size(), 2u + 9u * 3u + 1u);
  nlohmann::json index;
  std::ifstream(dir / "model.safetensors.index.json") >> index;
  EXPECT_EQ(index.at("metadata").at("total_size").get<uint64_t>(),
            4 * expected_parameters(LlamaConfig::from_json(reduced_config(), "reduced")));

  // A later single-file write replaces the shards instead of leaving them beside it.
  write_synthetic_checkpoint(dir, reduced_config(), SyntheticCheckpointOptions{});
  EXPECT_FALSE(std::filesystem::exists(dir / "model.safetensors.index.json"));
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    EXPECT_FALSE(entry.path().filename().string().starts_with("model-")) << entry.path();
  }
  EXPECT_EQ(SafetensorsFolder(dir).files().size(), 1u);
}

double column_rms(const Matrix& m, Index column) {
  return std::sqrt(m.col(column).squaredNorm() / static_cast<double>(m.rows()));
}

TEST(SyntheticCheckpoint, OutlierColumnsAreScaled) {
  const auto dir = testing::scratch_dir("synthetic_outliers");
  SyntheticCheckpointOptions options;
  options.outlier_channels = 3;
  options.outlier_scale = 30.0;
  options.norm_outlier_channels = 2;
  options.norm_outlier_scale = 12.0;
  write_synthetic_checkpoint(dir, reduced_config(), options);
  const SafetensorsFolder folder(dir);

  const auto mlp_out = synthetic_outlier_channels(704, 3, 0, LinearInput::mlp_out);
  ASSERT_EQ(mlp_out.size(), 3u);
  const Matrix down = folder.file_of("model.layers.1.mlp.down_proj.weight")
                          .read_matrix("model.layers.1.mlp.down_proj.weight");
  double typical = 0.0;
  for (Index c = 0; c < down.cols(); ++c) {
    if (std::find(mlp_out.begin(), mlp_out.end(), c) == mlp_out.end()) {
      typical += column_rms(down, c) / static_cast<double>(down.cols() - 3);
    }
  }
  // 256 rows: a column's RMS is within 15% of weight_std = 0.02 with overwhelming odds.
  EXPECT_NEAR(typical, 0.02, 0.02 * 0.15);
  for (const Index c : mlp_out) {
    EXPECT_NEAR(column_rms(down, c) / typical, 30.0, 30.0 * 0.15) << "column " << c;
  }

  // q/k/v read the same input, so they share the outlier channels.
  const auto attn_in = synthetic_outlier_channels(256, 3, 0, LinearInput::attn_in);
  const Matrix q = folder.file_of("model.layers.0.self_attn.q_proj.weight")
                       .read_matrix("model.layers.0.self_attn.q_proj.weight");
  const Matrix v = folder.file_of("model.layers.0.self_attn.v_proj.weight")
                       .read_matrix("model.layers.0.self_attn.v_proj.weight");
  for (const Index c : attn_in) {
    EXPECT_GT(column_rms(q, c), 10 * 0.02) << "column " << c;
    EXPECT_GT(column_rms(v, c), 10 * 0.02) << "column " << c;
  }

  const Vector norm = folder.file_of("model.layers.0.input_layernorm.weight")
                          .read_vector("model.layers.0.input_layernorm.weight");
  const auto norm_channels = synthetic_outlier_channels(256, 2, 0, LinearInput::attn_in);
  EXPECT_EQ((norm.array() == 12.0f).count(), 2);
  EXPECT_EQ((norm.array() == 1.0f).count(), 254);
  for (const Index c : norm_channels) {
    EXPECT_EQ(norm(c), 12.0f) << "channel " << c;
  }
}

TEST(SyntheticCheckpoint, OutlierChannelsAreDistinctAndSeeded) {
  const auto a = synthetic_outlier_channels(8192, 8, 5, LinearInput::mlp_in);
  EXPECT_EQ(a.size(), 8u);
  EXPECT_TRUE(std::is_sorted(a.begin(), a.end()));
  EXPECT_EQ(std::adjacent_find(a.begin(), a.end()), a.end());
  EXPECT_EQ(a, synthetic_outlier_channels(8192, 8, 5, LinearInput::mlp_in));
  EXPECT_NE(a, synthetic_outlier_channels(8192, 8, 6, LinearInput::mlp_in));
  EXPECT_NE(a, synthetic_outlier_channels(8192, 8, 5, LinearInput::attn_in));
  EXPECT_EQ(synthetic_outlier_channels(4, 4, 0, LinearInput::attn_in), (std::vector<Index>{0, 1, 2, 3}));
  EXPECT_THROW(synthetic_outlier_channels(4, 5, 0, LinearInput::attn_in), ConfigError);
}

TEST(SyntheticCheckpoint, SameSeedWritesSameBytes) {
  const auto dir = testing::scratch_dir("synthetic_seed");
  write_synthetic_checkpoint(dir / "a", small_llama_config(), {.seed = 3});
  write_synthetic_checkpoint(dir / "b", small_llama_config(), {.seed = 3});
  write_synthetic_checkpoint(dir / "c", small_llama_config(), {.seed = 4});
  const std::string name = "model.layers.1.mlp.up_proj.weight";
  const Matrix a = SafetensorsFile(dir / "a/model.safetensors").read_matrix(name);
  EXPECT_EQ(a, SafetensorsFile(dir / "b/model.safetensors").read_matrix(name));
  EXPECT_NE(a, SafetensorsFile(dir / "c/model.safetensors").read_matrix(name));
}

TEST(SyntheticCheckpoint, CheckpointLoadsAndEmbeds) {
  const auto dir = testing::scratch_dir("synthetic_loads");
  SyntheticCheckpointOptions options;
  options.dtype = Dtype::F16;
  write_synthetic_checkpoint(dir, small_llama_config(), options);
  const Checkpoint checkpoint(dir);
  const DecoderLayerWeights layer = checkpoint.load_layer(1);
  EXPECT_EQ(layer.weight(LinearKind::down_proj).cols(), 128);
  const std::vector<int32_t> tokens = {1, 5, 9};
  const Matrix hidden = checkpoint.embed(tokens);
  EXPECT_EQ(hidden.rows(), 3);
  EXPECT_TRUE(hidden.allFinite());
}

TEST(SyntheticCheckpoint, InvalidOptionsAreRejected) {
  const auto expect_rejected = [](SyntheticCheckpointOptions options, const std::string& key) {
    try {
      options.validate();
      ADD_FAILURE() << "expected ConfigError for " << key;
    } catch (const ConfigError& error) {
      EXPECT_NE(std::string(error.what()).find(key), std::string::npos) << error.what();
    }
  };
  expect_rejected({.dtype = Dtype::I32}, "dtype");
  expect_rejected({.weight_std = 0.0}, "weight_std");
  expect_rejected({.outlier_channels = -1}, "outlier_channels");
  expect_rejected({.outlier_scale = 0.5}, "outlier_scale");
  expect_rejected({.norm_outlier_channels = -2}, "norm_outlier_channels");
  expect_rejected({.norm_outlier_scale = std::nan("")}, "norm_outlier_scale");
  expect_rejected({.max_shard_bytes = 0}, "max_shard_bytes");
  EXPECT_NO_THROW(SyntheticCheckpointOptions{}.validate());

  const auto dir = testing::scratch_dir("synthetic_too_many_outliers");
  SyntheticCheckpointOptions options;
  options.norm_outlier_channels = 65;  // hidden_size is 64
  EXPECT_THROW(write_synthetic_checkpoint(dir, small_llama_config(), options), ConfigError);
}

}  // namespace
}  // namespace magrq::model
