// LlamaConfig parsing: defaults, GQA shapes, RoPE spellings and rejected configs.
#include "model/llama_config.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "common/test_data.hpp"
#include "core/error.hpp"

namespace magrq::model {
namespace {

using ::testing::HasSubstr;
using Json = nlohmann::json;

// Llama-3-8B-like sizes with grouped-query attention (32 query heads, 8 key/value heads).
Json gqa_config() {
  return Json::parse(R"({
    "architectures": ["LlamaForCausalLM"], "model_type": "llama",
    "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
    "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256,
    "max_position_embeddings": 131072, "rms_norm_eps": 1e-05, "rope_theta": 500000.0,
    "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    "hidden_act": "silu", "tie_word_embeddings": false, "bos_token_id": 128000,
    "eos_token_id": [128001, 128008, 128009], "torch_dtype": "bfloat16"
  })");
}

std::string parse_error(const Json& json) {
  try {
    LlamaConfig::from_json(json, "test/config.json");
  } catch (const DataError& error) {
    return error.what();
  }
  return "";
}

TEST(LlamaConfig, ReadsGqaConfig) {
  const LlamaConfig config = LlamaConfig::from_json(gqa_config(), "config.json");
  EXPECT_EQ(config.hidden_size, 4096);
  EXPECT_EQ(config.num_key_value_heads, 8);
  EXPECT_EQ(config.head_dim, 128);
  EXPECT_EQ(config.kv_group_size(), 4);
  EXPECT_DOUBLE_EQ(config.rope_theta, 500000.0);
  EXPECT_DOUBLE_EQ(config.rms_norm_eps, 1e-5);
  EXPECT_EQ(config.rope_scaling.type, RopeScalingType::llama3);
  EXPECT_DOUBLE_EQ(config.rope_scaling.factor, 8.0);
  EXPECT_EQ(config.rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_EQ(config.bos_token_id, 128000);
  EXPECT_EQ(config.eos_token_ids, (std::vector<int32_t>{128001, 128008, 128009}));
  EXPECT_EQ(config.torch_dtype, "bfloat16");
  EXPECT_EQ(config.raw["rope_scaling"]["rope_type"], "llama3");
}

TEST(LlamaConfig, KeyValueShapesComeFromKvHeads) {
  const LlamaConfig config = LlamaConfig::from_json(gqa_config(), "config.json");
  const LinearShape k = linear_shape(config, LinearKind::k_proj);
  const LinearShape v = linear_shape(config, LinearKind::v_proj);
  EXPECT_EQ(k.out_features, 1024);  // 8 kv heads x 128, not hidden_size 4096
  EXPECT_EQ(k.in_features, 4096);
  EXPECT_EQ(v.out_features, 1024);
  EXPECT_EQ(linear_shape(config, LinearKind::q_proj).out_features, 4096);
  EXPECT_EQ(linear_shape(config, LinearKind::o_proj).in_features, 4096);
  EXPECT_EQ(linear_shape(config, LinearKind::gate_proj).out_features, 14336);
  EXPECT_EQ(linear_shape(config, LinearKind::down_proj).in_features, 14336);
}

TEST(LlamaConfig, ExplicitHeadDimOverridesQuotient) {
  Json json = gqa_config();
  json["hidden_size"] = 2048;
  json["head_dim"] = 64;
  json["num_attention_heads"] = 16;
  const LlamaConfig config = LlamaConfig::from_json(json, "config.json");
  EXPECT_EQ(config.head_dim, 64);
  EXPECT_EQ(config.q_size(), 1024);  // 16 x 64, not hidden_size
  EXPECT_EQ(linear_shape(config, LinearKind::o_proj).in_features, 1024);
}

TEST(LlamaConfig, AppliesTransformersDefaults) {
  const Json json = Json::parse(R"({"hidden_size": 64, "intermediate_size": 172,
    "num_hidden_layers": 2, "num_attention_heads": 8, "vocab_size": 512})");
  const LlamaConfig config = LlamaConfig::from_json(json, "config.json");
  EXPECT_EQ(config.num_key_value_heads, 8);
  EXPECT_EQ(config.head_dim, 8);
  EXPECT_DOUBLE_EQ(config.rms_norm_eps, 1e-6);
  EXPECT_DOUBLE_EQ(config.rope_theta, 10000.0);
  EXPECT_EQ(config.rope_scaling.type, RopeScalingType::none);
  EXPECT_EQ(config.max_position_embeddings, 2048);
  EXPECT_FALSE(config.tie_word_embeddings);
  EXPECT_FALSE(config.attention_bias);
  EXPECT_FALSE(config.bos_token_id.has_value());
  EXPECT_TRUE(config.eos_token_ids.empty());
}

TEST(LlamaConfig, ReadsOldTypeSpellingAndLinear) {
  Json json = gqa_config();
  json["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
  const LlamaConfig config = LlamaConfig::from_json(json, "config.json");
  EXPECT_EQ(config.rope_scaling.type, RopeScalingType::linear);
  EXPECT_DOUBLE_EQ(config.rope_scaling.factor, 2.0);

  json["rope_scaling"] = {{"type", "default"}};
  EXPECT_EQ(LlamaConfig::from_json(json, "config.json").rope_scaling.type, RopeScalingType::none);
}

TEST(LlamaConfig, ReadsRopeParametersObject) {
  Json json = gqa_config();
  json.erase("rope_theta");
  json.erase("rope_scaling");
  json["rope_parameters"] = {{"rope_type", "llama3"}, {"rope_theta", 500000.0}, {"factor", 32.0},
                             {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
                             {"original_max_position_embeddings", 8192}};
  const LlamaConfig config = LlamaConfig::from_json(json, "config.json");
  EXPECT_DOUBLE_EQ(config.rope_theta, 500000.0);
  EXPECT_EQ(config.rope_scaling.type, RopeScalingType::llama3);
  EXPECT_DOUBLE_EQ(config.rope_scaling.factor, 32.0);

  json["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 1234.0}};
  const LlamaConfig plain = LlamaConfig::from_json(json, "config.json");
  EXPECT_DOUBLE_EQ(plain.rope_theta, 1234.0);
  EXPECT_EQ(plain.rope_scaling.type, RopeScalingType::none);
}

TEST(LlamaConfig, RejectsUnsupportedRopeTypes) {
  for (const char* type : {"dynamic", "yarn", "longrope", "su"}) {
    Json json = gqa_config();
    json["rope_scaling"] = {{"rope_type", type}, {"factor", 2.0}};
    const std::string message = parse_error(json);
    EXPECT_THAT(message, HasSubstr(std::string("rope type \"") + type + "\" is not supported"));
    EXPECT_THAT(message, HasSubstr("test/config.json"));
  }
}

TEST(LlamaConfig, MissingKeyNamesFileAndKey) {
  for (const char* key : {"hidden_size", "intermediate_size", "num_hidden_layers",
                          "num_attention_heads", "vocab_size"}) {
    Json json = gqa_config();
    json.erase(key);
    const std::string message = parse_error(json);
    EXPECT_THAT(message, HasSubstr(std::string("\"") + key + "\" is missing"));
    EXPECT_THAT(message, HasSubstr("test/config.json"));
  }
}

TEST(LlamaConfig, MissingLlama3KeyIsRejected) {
  Json json = gqa_config();
  json["rope_scaling"].erase("low_freq_factor");
  EXPECT_THAT(parse_error(json), HasSubstr("\"low_freq_factor\" is missing"));
}

TEST(LlamaConfig, RejectsInconsistentOrInvalidValues) {
  struct Case {
    const char* key;
    Json value;
    const char* expected_text;
  };
  const std::vector<Case> cases = {
      {"num_key_value_heads", 5, "not divisible by num_key_value_heads 5"},
      {"hidden_size", 4001, "not divisible by num_attention_heads"},
      {"hidden_size", -1, "expected a positive integer"},
      {"vocab_size", "many", "expected a positive integer"},
      {"hidden_act", "gelu", "hidden_act \"gelu\" is not supported"},
      {"model_type", "mistral", "model_type \"mistral\" is not supported"},
      {"tie_word_embeddings", "yes", "expected true or false"},
      {"rms_norm_eps", 0, "expected a positive number"},
      {"rope_scaling", "llama3", "expected an object or null"},
      {"eos_token_id", "</s>", "a token id or a list of token ids"},
      {"head_dim", 127, "head_dim 127 is odd"},
  };
  for (const Case& bad : cases) {
    SCOPED_TRACE(bad.key);
    Json json = gqa_config();
    json[bad.key] = bad.value;
    EXPECT_THAT(parse_error(json), HasSubstr(bad.expected_text));
  }
}

TEST(LlamaConfig, RejectsLlama3WithInvertedFrequencyBand) {
  Json json = gqa_config();
  json["rope_scaling"]["high_freq_factor"] = 1.0;
  EXPECT_THAT(parse_error(json), HasSubstr("must be greater than low_freq_factor"));
}

TEST(LlamaConfig, NullKeysUseDefaults) {
  Json json = gqa_config();
  json["rope_scaling"] = nullptr;
  json["num_key_value_heads"] = nullptr;
  json["eos_token_id"] = 2;
  const LlamaConfig config = LlamaConfig::from_json(json, "config.json");
  EXPECT_EQ(config.rope_scaling.type, RopeScalingType::none);
  EXPECT_EQ(config.num_key_value_heads, 32);
  EXPECT_EQ(config.eos_token_ids, std::vector<int32_t>{2});
}

TEST(LlamaConfig, FileErrorsNameThePath) {
  const auto dir = testing::scratch_dir("llama_config_files");
  EXPECT_THROW(LlamaConfig::from_file(dir / "absent.json"), DataError);
  std::ofstream(dir / "broken.json") << "{\"hidden_size\": ";
  try {
    LlamaConfig::from_file(dir / "broken.json");
    FAIL() << "expected DataError";
  } catch (const DataError& error) {
    EXPECT_THAT(error.what(), HasSubstr("broken.json"));
  }
}

TEST(LinearKind, NamesAndInputsMatchCheckpoint) {
  EXPECT_EQ(linear_module_name(3, LinearKind::k_proj), "model.layers.3.self_attn.k_proj");
  EXPECT_EQ(linear_module_name(0, LinearKind::down_proj), "model.layers.0.mlp.down_proj");
  EXPECT_EQ(input_of(LinearKind::v_proj), LinearInput::attn_in);
  EXPECT_EQ(input_of(LinearKind::o_proj), LinearInput::attn_out);
  EXPECT_EQ(input_of(LinearKind::up_proj), LinearInput::mlp_in);
  EXPECT_EQ(input_of(LinearKind::down_proj), LinearInput::mlp_out);
  EXPECT_EQ(linear_input_name(LinearInput::mlp_out), "mlp_out");
}

TEST(LlamaConfigData, ReadsStoriesConfig) {
  MAGRQ_REQUIRE_DATA();
  const LlamaConfig config =
      LlamaConfig::from_file(testing::shared_data_dir() / "models" / "stories260K-hf" / "config.json");
  EXPECT_EQ(config.hidden_size, 64);
  EXPECT_EQ(config.intermediate_size, 172);
  EXPECT_EQ(config.num_hidden_layers, 5);
  EXPECT_EQ(config.kv_size(), 32);
  EXPECT_EQ(config.head_dim, 8);
  EXPECT_TRUE(config.tie_word_embeddings);
  EXPECT_EQ(config.bos_token_id, 1);
  EXPECT_EQ(config.eos_token_ids, std::vector<int32_t>{2});
}

}  // namespace
}  // namespace magrq::model
