#include "model/gptq_checkpoint.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <random>

#include "common/test_data.hpp"
#include "core/error.hpp"
#include "model/safetensors.hpp"
#include "model/synthetic_checkpoint.hpp"

namespace magrq::model {
namespace {

// Random codes, zeros and scales for every module of a synthetic checkpoint.
std::vector<QuantizedModule> random_modules(const Checkpoint& checkpoint, int bits, Index group_size,
                                            bool sym, uint32_t seed) {
  std::mt19937 engine(seed);
  const int32_t maxq = (1 << bits) - 1;
  std::uniform_int_distribution<int32_t> code(0, maxq);
  std::uniform_real_distribution<float> scale(0.001f, 0.05f);
  std::vector<QuantizedModule> modules;
  for (Index layer = 0; layer < checkpoint.config().num_hidden_layers; ++layer) {
    for (const LinearKind kind : kAllLinearKinds) {
      const LinearShape shape = linear_shape(checkpoint.config(), kind);
      QuantizedModule m;
      m.name = linear_module_name(layer, kind);
      m.bits = bits;
      m.group_size = group_size;
      const Index groups = group_size > 0 ? shape.in_features / group_size : 1;
      m.codes.resize(shape.out_features, shape.in_features);
      m.codes = m.codes.unaryExpr([&](int32_t) { return code(engine); });
      m.scales.resize(groups, shape.out_features);
      m.scales = m.scales.unaryExpr([&](float) { return scale(engine); });
      m.zeros.resize(groups, shape.out_features);
      m.zeros = sym ? MatrixI::Constant(groups, shape.out_features, (maxq + 1) / 2)
                    : MatrixI(m.zeros.unaryExpr([&](int32_t) { return code(engine); }));
      m.g_idx.resize(shape.in_features);
      for (Index i = 0; i < shape.in_features; ++i) {
        m.g_idx(i) = static_cast<int32_t>(group_size > 0 ? i / group_size : 0);
      }
      modules.push_back(m);
    }
  }
  return modules;
}

struct Exported {
  std::filesystem::path gptq;
  std::filesystem::path dequantized;
};

Exported export_both(const std::string& name, int bits, Index group_size, bool sym) {
  const auto dir = testing::scratch_dir(name);
  write_synthetic_checkpoint(dir / "source", small_llama_config(), {});
  std::ofstream(dir / "source" / "tokenizer.json") << "{}";
  const Checkpoint source(dir / "source");
  const auto modules = random_modules(source, bits, group_size, sym, 7);
  GptqExportOptions options;
  options.bits = bits;
  options.group_size = group_size;
  options.sym = sym;
  write_gptq_checkpoint(source, modules, options, dir / "gptq");
  std::vector<std::pair<std::string, Matrix>> weights;
  for (const QuantizedModule& m : modules) {
    weights.emplace_back(m.name + ".weight", dequantize_module(m));
  }
  write_replaced_checkpoint(source, weights, dir / "dequantized", uint64_t{1} << 30);
  return {dir / "gptq", dir / "dequantized"};
}

TEST(GptqCheckpoint, VerifiesForEveryBitWidthAndGroup) {
  for (const int bits : {2, 3, 4, 8}) {
    for (const Index group : {Index{-1}, Index{32}}) {
      const auto out = export_both("gptq_ckpt_" + std::to_string(bits) + "_" + std::to_string(group),
                                   bits, group, true);
      const VerifyReport report = verify_gptq_checkpoint(out.gptq, out.dequantized);
      EXPECT_TRUE(report.problems.empty()) << bits << "-bit group " << group << ": "
                                           << (report.problems.empty() ? "" : report.problems[0]);
      EXPECT_EQ(report.modules, 14);
      EXPECT_GT(report.weights, 0);
    }
  }
}

TEST(GptqCheckpoint, LayoutMatchesLoaderShapes) {
  const auto out = export_both("gptq_ckpt_shapes", 4, 32, true);
  const SafetensorsFolder tensors(out.gptq);
  const std::string k = "model.layers.0.self_attn.k_proj";
  EXPECT_FALSE(tensors.contains(k + ".weight"));
  EXPECT_EQ(tensors.info(k + ".qweight").shape, (std::vector<int64_t>{8, 32}));  // in 64 * 4 / 32, out 32
  EXPECT_EQ(tensors.info(k + ".qzeros").shape, (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(tensors.info(k + ".scales").shape, (std::vector<int64_t>{2, 32}));
  EXPECT_EQ(tensors.info(k + ".scales").dtype, Dtype::F16);
  EXPECT_EQ(tensors.info(k + ".g_idx").shape, (std::vector<int64_t>{64}));
  EXPECT_TRUE(tensors.contains("model.embed_tokens.weight"));
  EXPECT_TRUE(std::filesystem::exists(out.gptq / "tokenizer.json"));
  std::ifstream config_file(out.gptq / "config.json");
  const auto config = nlohmann::json::parse(config_file);
  EXPECT_EQ(config["quantization_config"]["quant_method"], "gptq");
  EXPECT_EQ(config["quantization_config"]["checkpoint_format"], "gptq");
  EXPECT_EQ(config["quantization_config"]["bits"], 4);
  EXPECT_EQ(config["hidden_size"], 64);
}

TEST(GptqCheckpoint, SymmetricZerosAreStoredMinusOne) {
  const auto out = export_both("gptq_ckpt_v1_zero", 4, -1, true);
  const SafetensorsFolder tensors(out.gptq);
  const std::string q = "model.layers.0.self_attn.q_proj.qzeros";
  const MatrixI qzeros = tensors.file_of(q).read_i32_matrix(q);
  // Zero point 8 is stored as 7 in each nibble.
  EXPECT_EQ(static_cast<uint32_t>(qzeros(0, 0)), 0x77777777u);
}

TEST(GptqCheckpoint, AsymmetricIsWrittenAsV2) {
  const auto out = export_both("gptq_ckpt_v2", 3, 32, false);
  std::ifstream config_file(out.gptq / "quantize_config.json");
  EXPECT_EQ(nlohmann::json::parse(config_file)["checkpoint_format"], "gptq_v2");
  const VerifyReport report = verify_gptq_checkpoint(out.gptq, out.dequantized);
  EXPECT_TRUE(report.problems.empty()) << (report.problems.empty() ? "" : report.problems[0]);
}

TEST(GptqCheckpoint, CorruptedWordFailsVerification) {
  const auto out = export_both("gptq_ckpt_corrupt", 4, -1, true);
  const SafetensorsFolder tensors(out.gptq);
  const std::string name = "model.layers.1.mlp.down_proj.qweight";
  const auto path = tensors.file_of(name).path();
  const uint64_t begin = tensors.info(name).begin;
  uint64_t header = 0;
  std::fstream stream(path, std::ios::in | std::ios::out | std::ios::binary);
  stream.read(reinterpret_cast<char*>(&header), 8);
  stream.seekp(static_cast<std::streamoff>(8 + header + begin));
  const char flipped = 0x5a;
  stream.write(&flipped, 1);
  stream.close();
  const VerifyReport report = verify_gptq_checkpoint(out.gptq, out.dequantized);
  ASSERT_FALSE(report.problems.empty());
  EXPECT_NE(report.problems[0].find("model.layers.1.mlp.down_proj"), std::string::npos)
      << report.problems[0];
}

TEST(GptqCheckpoint, ScaleOutsideFloat16IsRejected) {
  QuantizedModule m;
  m.name = "model.layers.0.self_attn.q_proj";
  m.bits = 4;
  m.codes = MatrixI::Zero(32, 32);
  m.zeros = MatrixI::Constant(1, 32, 8);
  m.g_idx = VectorI::Zero(32);
  m.scales = Matrix::Constant(1, 32, 1e6f);
  EXPECT_THROW(dequantize_module(m), DataError);
  m.scales = Matrix::Constant(1, 32, 1e-9f);
  try {
    dequantize_module(m);
    FAIL() << "expected DataError";
  } catch (const DataError& error) {
    EXPECT_NE(std::string(error.what()).find("q_proj"), std::string::npos);
  }
}

TEST(GptqCheckpoint, MixedPrecisionModulesGetDynamicEntries) {
  const auto dir = testing::scratch_dir("gptq_ckpt_mixed");
  write_synthetic_checkpoint(dir / "source", small_llama_config(), {});
  const Checkpoint source(dir / "source");
  auto modules = random_modules(source, 4, 32, true, 3);
  const auto eight_bit = random_modules(source, 8, -1, true, 4);
  modules[6] = eight_bit[6];  // model.layers.0.mlp.down_proj at 8 bits, per channel
  GptqExportOptions options;
  options.bits = 4;
  options.group_size = 32;
  write_gptq_checkpoint(source, modules, options, dir / "gptq");
  std::vector<std::pair<std::string, Matrix>> weights;
  for (const QuantizedModule& m : modules) {
    weights.emplace_back(m.name + ".weight", dequantize_module(m));
  }
  write_replaced_checkpoint(source, weights, dir / "dequantized", uint64_t{1} << 30);
  std::ifstream config_file(dir / "gptq" / "quantize_config.json");
  const auto config = nlohmann::json::parse(config_file);
  const auto& rule = config["dynamic"]["+:^model\\.layers\\.0\\.mlp\\.down_proj$"];
  EXPECT_EQ(rule["bits"], 8);
  EXPECT_EQ(rule["group_size"], -1);
  const VerifyReport report = verify_gptq_checkpoint(dir / "gptq", dir / "dequantized");
  EXPECT_TRUE(report.problems.empty()) << (report.problems.empty() ? "" : report.problems[0]);
  EXPECT_EQ(report.modules, 14);
}

TEST(GptqCheckpoint, UnquantizedModulesAreListedForLoaders) {
  GptqExportOptions options;
  options.unquantized_modules = {"model.layers.0.mlp.down_proj"};
  const auto config = gptq_quantization_config(options);
  ASSERT_TRUE(config.contains("dynamic"));
  EXPECT_TRUE(config["dynamic"].contains("-:^model\\.layers\\.0\\.mlp\\.down_proj$"));
  EXPECT_EQ(config["meta"]["quantizer"][0], std::string("magrq:") + MAGRQ_VERSION);
}

}  // namespace
}  // namespace magrq::model
