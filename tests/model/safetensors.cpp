// Safetensors reader, writer, sharded folders and the half/bfloat16 conversions.
#include "model/safetensors.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <random>

#include "common/test_data.hpp"
#include "core/error.hpp"

namespace magrq::model {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

// Writes a file made of an 8-byte little-endian length, the header text and data bytes.
// declared_length overrides the length field so a test can declare a wrong length.
fs::path write_raw(const fs::path& path, const std::string& header, const std::string& data,
                   std::optional<uint64_t> declared_length = std::nullopt) {
  const uint64_t length = declared_length.value_or(header.size());
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(&length), 8);
  out << header << data;
  return path;
}

// Returns the DataError message of opening path, or "" when it opens.
std::string open_error(const fs::path& path) {
  try {
    SafetensorsFile file(path);
  } catch (const DataError& error) {
    return error.what();
  }
  return "";
}

std::string folder_error(const fs::path& dir) {
  try {
    SafetensorsFolder folder(dir);
  } catch (const DataError& error) {
    return error.what();
  }
  return "";
}

// ---- half and bfloat16 -------------------------------------------------------------------

TEST(Half, EveryBitPatternRoundTrips) {
  for (uint32_t bits = 0; bits < 0x10000; ++bits) {
    const float value = half_to_float(static_cast<uint16_t>(bits));
    const uint16_t back = float_to_half(value);
    if (std::isnan(value)) {
      EXPECT_TRUE(std::isnan(half_to_float(back))) << bits;
      EXPECT_EQ(back & 0x8000u, bits & 0x8000u) << "NaN sign of " << bits;
    } else {
      EXPECT_EQ(back, bits) << "value " << value;
    }
  }
}

TEST(Half, DecodesSpecialValues) {
  EXPECT_EQ(half_to_float(0x3c00), 1.0f);
  EXPECT_EQ(half_to_float(0xc000), -2.0f);
  EXPECT_EQ(half_to_float(0x7bff), 65504.0f);
  EXPECT_EQ(half_to_float(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(half_to_float(0x03ff), std::ldexp(1023.0f, -24));  // largest subnormal
  EXPECT_EQ(half_to_float(0x0400), std::ldexp(1.0f, -14));  // smallest normal
  EXPECT_EQ(std::bit_cast<uint32_t>(half_to_float(0x8000)), 0x80000000u);  // -0
  EXPECT_EQ(half_to_float(0x7c00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(half_to_float(0xfc00), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(half_to_float(0x7e00)));
  EXPECT_TRUE(std::isnan(half_to_float(0x7c01)));  // signalling NaN stays NaN
}

TEST(Half, RoundsToNearestEven) {
  EXPECT_EQ(float_to_half(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // tie, 1.0 is even
  EXPECT_EQ(float_to_half(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);  // tie, rounds up to even
  EXPECT_EQ(float_to_half(1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -20)), 0x3c01);
  EXPECT_EQ(float_to_half(65519.0f), 0x7bff);
  EXPECT_EQ(float_to_half(65520.0f), 0x7c00);  // tie between 65504 and 65536: Inf
  EXPECT_EQ(float_to_half(1e10f), 0x7c00);
  EXPECT_EQ(float_to_half(-1e10f), 0xfc00);
  EXPECT_EQ(float_to_half(std::numeric_limits<float>::infinity()), 0x7c00);
}

TEST(Half, RoundsSubnormalsToNearestEven) {
  const float tiny = std::ldexp(1.0f, -24);
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -25)), 0x0000);  // tie between 0 and tiny: 0
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -25) * 1.0001f), 0x0001);
  EXPECT_EQ(float_to_half(1.5f * tiny), 0x0002);  // tie between 1 and 2: 2
  EXPECT_EQ(float_to_half(2.5f * tiny), 0x0002);  // tie between 2 and 3: 2
  EXPECT_EQ(float_to_half(-3.0f * tiny), 0x8003);
  EXPECT_EQ(float_to_half(1023.5f * tiny), 0x0400);  // rounds up into the smallest normal
  EXPECT_EQ(float_to_half(std::numeric_limits<float>::denorm_min()), 0x0000);
  EXPECT_EQ(float_to_half(-std::numeric_limits<float>::denorm_min()), 0x8000);
}

// An independent check: no half value is closer to x than the chosen one, and ties pick
// the even bit pattern. Covers normals, subnormals and the overflow edge.
TEST(Half, ChoosesNearestHalfValue) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> log_magnitude(-27.0, 16.1);
  for (int trial = 0; trial < 200000; ++trial) {
    const float x = static_cast<float>(std::exp2(log_magnitude(rng)));
    const uint16_t chosen = float_to_half(x);
    if (chosen == 0x7c00) {
      EXPECT_GE(x, 65520.0f);
      continue;
    }
    const double error = std::abs(double(half_to_float(chosen)) - x);
    for (int step : {-1, 1}) {
      const int neighbour = chosen + step;
      if (neighbour < 0 || neighbour > 0x7bff) {
        continue;
      }
      const double other = std::abs(double(half_to_float(static_cast<uint16_t>(neighbour))) - x);
      ASSERT_LE(error, other) << "x = " << x;
      if (error == other) {
        ASSERT_EQ(chosen % 2, 0) << "tie at x = " << x << " must pick the even pattern";
      }
    }
  }
}

TEST(Bfloat16, EveryBitPatternRoundTrips) {
  for (uint32_t bits = 0; bits < 0x10000; ++bits) {
    const float value = bfloat16_to_float(static_cast<uint16_t>(bits));
    const uint16_t back = float_to_bfloat16(value);
    if (std::isnan(value)) {
      EXPECT_TRUE(std::isnan(bfloat16_to_float(back))) << bits;
    } else {
      EXPECT_EQ(back, bits);
    }
  }
}

TEST(Bfloat16, RoundsToNearestEven) {
  EXPECT_EQ(float_to_bfloat16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);  // tie, 1.0 is even
  EXPECT_EQ(float_to_bfloat16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);
  EXPECT_EQ(float_to_bfloat16(std::numeric_limits<float>::max()), 0x7f80);  // rounds to Inf
  EXPECT_EQ(float_to_bfloat16(std::numeric_limits<float>::denorm_min()), 0x0000);
  EXPECT_EQ(float_to_bfloat16(std::ldexp(1.0f, -133)), 0x0001);  // bfloat16 subnormal kept
  EXPECT_TRUE(std::isnan(bfloat16_to_float(float_to_bfloat16(std::nanf("")))));
  // A NaN whose payload sits only in the low 16 bits must not become Inf.
  EXPECT_TRUE(std::isnan(bfloat16_to_float(float_to_bfloat16(std::bit_cast<float>(0x7f800001u)))));
}

// ---- writer and reader round trip ------------------------------------------------------

TEST(Safetensors, WriterRoundTripsEveryDtype) {
  const fs::path dir = testing::scratch_dir("safetensors_round_trip");
  const Matrix weights = Matrix::Random(5, 3);
  const Vector norm = Vector::Random(7);
  MatrixI packed(2, 4);
  packed << -1, 0, 1, 2147483647, -2147483647 - 1, 5, 6, 7;

  const fs::path path = dir / "model.safetensors";
  write_safetensors(path,
                    {TensorData::from_matrix("w.f32", weights, Dtype::F32),
                     TensorData::from_matrix("w.f16", weights, Dtype::F16),
                     TensorData::from_matrix("w.bf16", weights, Dtype::BF16),
                     TensorData::from_vector("norm", norm, Dtype::F32),
                     TensorData::from_i32("qweight", packed)},
                    {{"tool", "magrq-test"}});

  const SafetensorsFile file(path);
  EXPECT_EQ(file.metadata().at("format"), "pt");
  EXPECT_EQ(file.metadata().at("tool"), "magrq-test");
  EXPECT_EQ(file.read_matrix("w.f32"), weights);
  EXPECT_EQ(file.read_vector("norm"), norm);
  EXPECT_EQ(file.read_i32_matrix("qweight"), packed);

  const Matrix as_half = file.read_matrix("w.f16");
  const Matrix as_bfloat = file.read_matrix("w.bf16");
  const std::vector<uint16_t> half_bits = file.read_f16_bits("w.f16");
  ASSERT_EQ(half_bits.size(), 15u);
  for (Index i = 0; i < weights.size(); ++i) {
    EXPECT_EQ(as_half.data()[i], half_to_float(float_to_half(weights.data()[i])));
    EXPECT_EQ(as_bfloat.data()[i], bfloat16_to_float(float_to_bfloat16(weights.data()[i])));
    EXPECT_EQ(half_bits[i], float_to_half(weights.data()[i]));
  }
  EXPECT_EQ(file.info("w.bf16").shape, (std::vector<int64_t>{5, 3}));
  EXPECT_EQ(file.tensor_names().size(), 5u);
}

TEST(Safetensors, HeaderIsPaddedWithSpacesToEightBytes) {
  const fs::path dir = testing::scratch_dir("safetensors_padding");
  const fs::path path = dir / "a.safetensors";
  for (int length = 1; length <= 9; ++length) {
    write_safetensors(path, {TensorData::from_vector(std::string(length, 'x'), Vector::Ones(3),
                                                     Dtype::F32)});
    std::ifstream in(path, std::ios::binary);
    uint64_t header_length = 0;
    in.read(reinterpret_cast<char*>(&header_length), 8);
    std::string header(header_length, '\0');
    in.read(header.data(), static_cast<std::streamsize>(header_length));
    EXPECT_EQ(header_length % 8, 0u) << "tensor name length " << length;
    EXPECT_EQ(header.find_last_not_of(' '), header.find_last_of('}'));
    EXPECT_NO_THROW(SafetensorsFile{path});
  }
  EXPECT_FALSE(fs::exists(path.string() + ".tmp-" + std::to_string(::getpid())));
}

TEST(Safetensors, WriterOrdersByElementSizeThenName) {
  const fs::path dir = testing::scratch_dir("safetensors_order");
  const fs::path path = dir / "a.safetensors";
  write_safetensors(path, {TensorData::from_vector("b", Vector::Ones(3), Dtype::F16),
                           TensorData::from_vector("a", Vector::Ones(3), Dtype::F16),
                           TensorData::from_vector("c", Vector::Ones(1), Dtype::F32)});
  const SafetensorsFile file(path);
  EXPECT_EQ(file.info("c").begin, 0u);  // F32 first
  EXPECT_EQ(file.info("a").begin, 4u);
  EXPECT_EQ(file.info("b").begin, 10u);
}

TEST(Safetensors, ReadRowsReturnsRequestedRows) {
  const fs::path dir = testing::scratch_dir("safetensors_rows");
  const Matrix weights = Matrix::Random(6, 4);
  write_safetensors(dir / "a.safetensors", {TensorData::from_matrix("w", weights, Dtype::BF16)});
  const SafetensorsFile file(dir / "a.safetensors");
  const Matrix all = file.read_matrix("w");
  EXPECT_EQ(file.read_rows("w", 2, 5), all.middleRows(2, 3));
  EXPECT_EQ(file.read_rows("w", 6, 6).rows(), 0);
  EXPECT_THROW(file.read_rows("w", 4, 7), DataError);
  EXPECT_THROW(file.read_rows("w", 3, 2), DataError);
}

TEST(Safetensors, ReadRejectsWrongRankAndDtype) {
  const fs::path dir = testing::scratch_dir("safetensors_types");
  write_safetensors(dir / "a.safetensors",
                    {TensorData::from_vector("v", Vector::Ones(3), Dtype::F32),
                     TensorData::from_i32("i", MatrixI(MatrixI::Ones(2, 2)))});
  const SafetensorsFile file(dir / "a.safetensors");
  EXPECT_THROW(file.read_matrix("v"), DataError);
  EXPECT_THROW(file.read_vector("i"), DataError);
  EXPECT_THROW(file.read_matrix("i"), DataError);
  EXPECT_THROW(file.read_i32_matrix("v"), DataError);
  EXPECT_THROW(file.read_f16_bits("v"), DataError);
  try {
    file.read_vector("missing");
    FAIL() << "expected DataError";
  } catch (const DataError& error) {
    EXPECT_THAT(error.what(), HasSubstr("\"missing\""));
    EXPECT_THAT(error.what(), HasSubstr("a.safetensors"));
  }
}

TEST(Safetensors, AcceptsScalarsEmptyTensorsAndOtherDtypes) {
  const fs::path dir = testing::scratch_dir("safetensors_scalars");
  const std::string header =
      R"({"s":{"dtype":"F32","shape":[],"data_offsets":[0,4]},)"
      R"("e":{"dtype":"F16","shape":[0,3],"data_offsets":[4,4]},)"
      R"("n":{"dtype":"F4","shape":[2],"data_offsets":[4,5]},)"
      R"("l":{"dtype":"I64","shape":[1],"data_offsets":[5,13]}}   )";
  const fs::path path = write_raw(dir / "a.safetensors", header, std::string(13, '\0'));
  const SafetensorsFile file(path);
  EXPECT_EQ(file.info("s").numel(), 1);
  EXPECT_EQ(file.read_floats("s").size(), 1u);
  EXPECT_EQ(file.info("e").numel(), 0);
  EXPECT_EQ(file.info("n").dtype, Dtype::F4);
  EXPECT_EQ(file.bytes("l").size(), 8u);
  EXPECT_TRUE(file.metadata().empty());
}

// ---- hostile and truncated files ----------------------------------------------------------

struct BadFile {
  const char* label;
  std::string header;
  std::string data;
  std::optional<uint64_t> declared_length;
  const char* expected_text;  // part of the error message
  const char* tensor;         // tensor that the message must name, or nullptr
};

TEST(Safetensors, RejectsHostileFilesNamingFileAndTensor) {
  const fs::path dir = testing::scratch_dir("safetensors_hostile");
  const std::string ok_entry = R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  const std::vector<BadFile> cases = {
      {"header_longer_than_file", "{" + ok_entry + "}", std::string(8, '\0'), 5000,
       "truncated", nullptr},
      {"header_over_limit", "{}", "", 100'000'001, "at most 100000000", nullptr},
      {"overlap",
       R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
       R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
       std::string(8, '\0'), std::nullopt, "overlaps", "b"},
      {"gap",
       R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
       R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
       std::string(12, '\0'), std::nullopt, "gap", "b"},
      {"gap_at_start", R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
       std::string(8, '\0'), std::nullopt, "gap", "a"},
      {"unknown_dtype", R"({"a":{"dtype":"F12","shape":[1],"data_offsets":[0,4]}})",
       std::string(4, '\0'), std::nullopt, "unknown dtype \"F12\"", "a"},
      {"wrong_byte_size", R"({"a":{"dtype":"F16","shape":[3],"data_offsets":[0,8]}})",
       std::string(8, '\0'), std::nullopt, "need 6", "a"},
      {"truncated_data", "{" + ok_entry + "}", std::string(5, '\0'), std::nullopt,
       "truncated data", nullptr},
      {"trailing_bytes", "{" + ok_entry + "}", std::string(9, '\0'), std::nullopt,
       "trailing bytes", nullptr},
      {"non_object_json", R"([1, 2, 3])", "", std::nullopt, "expected an object", nullptr},
      {"invalid_json", R"({"a": )", "", std::nullopt, "invalid JSON", nullptr},
      {"duplicate_key", "{" + ok_entry + "," + ok_entry + "}", std::string(8, '\0'),
       std::nullopt, "duplicate key \"a\"", nullptr},
      {"duplicate_nested_key",
       R"({"a":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
       std::string(8, '\0'), std::nullopt, "duplicate key \"dtype\"", nullptr},
      {"metadata_not_string", R"({"__metadata__":{"format":1}})", "", std::nullopt,
       "expected a string", "__metadata__"},
      {"offsets_reversed", R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}})", "",
       std::nullopt, "end before", "a"},
      {"negative_shape", R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})",
       std::string(4, '\0'), std::nullopt, "non-negative", "a"},
      {"missing_offsets", R"({"a":{"dtype":"F32","shape":[1]}})", std::string(4, '\0'),
       std::nullopt, "no \"data_offsets\"", "a"},
      {"shape_overflow",
       R"({"a":{"dtype":"F32","shape":[4611686018427387904,4611686018427387904],"data_offsets":[0,4]}})",
       std::string(4, '\0'), std::nullopt, "overflows", "a"},
      {"too_short", "", "", 0, "at least", nullptr},
  };
  for (const BadFile& bad : cases) {
    SCOPED_TRACE(bad.label);
    const fs::path path = dir / (std::string(bad.label) + ".safetensors");
    if (std::string(bad.label) == "too_short") {
      std::ofstream(path, std::ios::binary) << "abc";
    } else {
      write_raw(path, bad.header, bad.data, bad.declared_length);
    }
    const std::string message = open_error(path);
    ASSERT_FALSE(message.empty()) << "file was accepted";
    EXPECT_THAT(message, HasSubstr(path.filename().string()));
    EXPECT_THAT(message, HasSubstr(bad.expected_text));
    if (bad.tensor != nullptr) {
      EXPECT_THAT(message, HasSubstr(std::string("\"") + bad.tensor + "\""));
    }
  }
}

TEST(Safetensors, RejectsMissingFile) {
  const fs::path dir = testing::scratch_dir("safetensors_missing");
  EXPECT_THAT(open_error(dir / "absent.safetensors"), HasSubstr("absent.safetensors"));
}

// ---- sharded writing and reading ---------------------------------------------------------

std::vector<TensorData> layer_tensors(int layers) {
  std::vector<TensorData> tensors;
  for (int layer = 0; layer < layers; ++layer) {
    const std::string prefix = "model.layers." + std::to_string(layer) + ".";
    tensors.push_back(TensorData::from_matrix(prefix + "w", Matrix::Constant(4, 4, float(layer)),
                                              Dtype::F32));  // 64 bytes
    tensors.push_back(TensorData::from_vector(prefix + "norm", Vector::Constant(4, float(layer)),
                                              Dtype::F32));  // 16 bytes
  }
  return tensors;
}

TEST(SafetensorsShards, SplitsByByteLimitInNaturalOrder) {
  const fs::path dir = testing::scratch_dir("shards_split");
  ShardOptions options;
  options.max_shard_bytes = 160;  // two layers of 80 bytes per shard
  const auto written = write_sharded_safetensors(dir, layer_tensors(12), options);

  ASSERT_EQ(written.size(), 7u);  // 6 shards and the index
  EXPECT_EQ(written.front().filename(), "model-00001-of-00006.safetensors");
  EXPECT_EQ(written.back().filename(), "model.safetensors.index.json");

  const nlohmann::json index = nlohmann::json::parse(std::ifstream(written.back()));
  EXPECT_EQ(index["metadata"]["total_size"], 12 * 80);
  EXPECT_EQ(index["weight_map"]["model.layers.2.w"], "model-00002-of-00006.safetensors");
  EXPECT_EQ(index["weight_map"]["model.layers.10.norm"], "model-00006-of-00006.safetensors");

  const SafetensorsFolder folder(dir);
  EXPECT_EQ(folder.files().size(), 6u);
  EXPECT_EQ(folder.tensor_names().size(), 24u);
  EXPECT_EQ(folder.file_of("model.layers.11.w").read_matrix("model.layers.11.w"),
            Matrix::Constant(4, 4, 11.0f));
  EXPECT_EQ(folder.file_of("model.layers.3.norm").metadata().at("format"), "pt");
  for (const auto& entry : fs::directory_iterator(dir)) {
    EXPECT_THAT(entry.path().string(), ::testing::Not(HasSubstr(".tmp")));
  }
}

TEST(SafetensorsShards, KeepsGroupInOneShard) {
  const fs::path dir = testing::scratch_dir("shards_group");
  std::vector<TensorData> tensors = layer_tensors(3);
  ShardOptions options;
  options.max_shard_bytes = 70;  // smaller than one layer: each tensor alone, unless grouped
  options.groups = {{"model.layers.1.w", "model.layers.1.norm"}};
  write_sharded_safetensors(dir, tensors, options);

  const SafetensorsFolder folder(dir);
  EXPECT_EQ(&folder.file_of("model.layers.1.w"), &folder.file_of("model.layers.1.norm"));
  EXPECT_NE(&folder.file_of("model.layers.0.w"), &folder.file_of("model.layers.0.norm"));
  EXPECT_EQ(folder.files().size(), 5u);
}

TEST(SafetensorsShards, SingleShardIsOneFileWithoutIndex) {
  const fs::path dir = testing::scratch_dir("shards_single");
  const auto written = write_sharded_safetensors(dir, layer_tensors(2), ShardOptions{});
  ASSERT_EQ(written.size(), 1u);
  EXPECT_EQ(written[0].filename(), "model.safetensors");
  EXPECT_FALSE(fs::exists(dir / "model.safetensors.index.json"));
}

TEST(SafetensorsShards, RejectsBadOptions) {
  const fs::path dir = testing::scratch_dir("shards_options");
  ShardOptions options;
  options.groups = {{"model.layers.9.w"}};
  EXPECT_THROW(write_sharded_safetensors(dir, layer_tensors(1), options), ConfigError);
  options.groups = {{"model.layers.0.w"}, {"model.layers.0.w"}};
  EXPECT_THROW(write_sharded_safetensors(dir, layer_tensors(1), options), ConfigError);
  options.groups.clear();
  options.extra_metadata["format"] = "tf";
  EXPECT_THROW(write_sharded_safetensors(dir, layer_tensors(1), options), ConfigError);
  options.extra_metadata.clear();
  options.max_shard_bytes = 0;
  EXPECT_THROW(write_sharded_safetensors(dir, layer_tensors(1), options), ConfigError);
  auto duplicated = layer_tensors(1);
  duplicated.push_back(duplicated.front());
  EXPECT_THROW(write_safetensors(dir / "a.safetensors", duplicated), ConfigError);
}

fs::path write_two_shards(const std::string& name) {
  const fs::path dir = testing::scratch_dir(name);
  ShardOptions options;
  options.max_shard_bytes = 80;
  write_sharded_safetensors(dir, layer_tensors(2), options);
  return dir;
}

void rewrite_index(const fs::path& dir, const std::function<void(nlohmann::json&)>& edit) {
  const fs::path path = dir / "model.safetensors.index.json";
  nlohmann::json index = nlohmann::json::parse(std::ifstream(path));
  edit(index);
  std::ofstream(path) << index.dump();
}

TEST(SafetensorsShards, MissingShardNamesShardAndTensor) {
  const fs::path dir = write_two_shards("shards_missing_file");
  fs::remove(dir / "model-00002-of-00002.safetensors");
  const std::string message = folder_error(dir);
  EXPECT_THAT(message, HasSubstr("model-00002-of-00002.safetensors"));
  EXPECT_THAT(message, HasSubstr("model.layers.1."));
  EXPECT_THAT(message, HasSubstr("does not exist"));
}

TEST(SafetensorsShards, TensorAbsentFromShardNamesBoth) {
  const fs::path dir = write_two_shards("shards_absent_tensor");
  rewrite_index(dir, [](nlohmann::json& index) {
    index["weight_map"]["model.layers.0.w"] = "model-00002-of-00002.safetensors";
  });
  const std::string message = folder_error(dir);
  EXPECT_THAT(message, HasSubstr("\"model.layers.0.w\""));
  EXPECT_THAT(message, HasSubstr("model-00002-of-00002.safetensors"));
  EXPECT_THAT(message, HasSubstr("has no such tensor"));
}

TEST(SafetensorsShards, TensorMissingFromIndexIsRejected) {
  const fs::path dir = write_two_shards("shards_unlisted_tensor");
  rewrite_index(dir, [](nlohmann::json& index) { index["weight_map"].erase("model.layers.0.norm"); });
  const std::string message = folder_error(dir);
  EXPECT_THAT(message, HasSubstr("\"model.layers.0.norm\""));
  EXPECT_THAT(message, HasSubstr("missing from the weight_map"));
}

TEST(SafetensorsShards, ShardPathOutsideFolderIsRejected) {
  const fs::path dir = write_two_shards("shards_escape");
  rewrite_index(dir, [](nlohmann::json& index) {
    index["weight_map"]["model.layers.0.w"] = "../model-00001-of-00002.safetensors";
  });
  EXPECT_THAT(folder_error(dir), HasSubstr("expected a file name inside the folder"));
}

TEST(SafetensorsShards, EmptyFolderIsRejected) {
  const fs::path dir = testing::scratch_dir("shards_empty");
  EXPECT_THAT(folder_error(dir), HasSubstr("neither model.safetensors"));
  EXPECT_THROW(SafetensorsFolder{dir}.file_of("x"), DataError);
}

TEST(NaturalLess, ComparesNumbersByValue) {
  EXPECT_TRUE(natural_less("layers.2.w", "layers.10.w"));
  EXPECT_FALSE(natural_less("layers.10.w", "layers.2.w"));
  EXPECT_TRUE(natural_less("a", "b"));
  EXPECT_TRUE(natural_less("a", "a1"));
  EXPECT_FALSE(natural_less("a1", "a1"));
  EXPECT_TRUE(natural_less("a1", "a01"));  // equal value: fewer leading zeros first
  EXPECT_TRUE(natural_less("x99999999999999999999999", "x100000000000000000000000"));
}

TEST(SafetensorsData, ReadsRealStoriesCheckpoint) {
  MAGRQ_REQUIRE_DATA();
  const SafetensorsFolder folder(testing::shared_data_dir() / "models" / "stories260K-hf");
  const TensorInfo& embed = folder.info("model.embed_tokens.weight");
  EXPECT_EQ(embed.dtype, Dtype::F32);
  EXPECT_EQ(embed.shape, (std::vector<int64_t>{512, 64}));
  EXPECT_EQ(folder.file_of("model.norm.weight").metadata().at("format"), "pt");
  EXPECT_FALSE(folder.contains("lm_head.weight"));  // tied to the embedding
  const Matrix rows = folder.file_of("model.embed_tokens.weight").read_rows("model.embed_tokens.weight", 1, 3);
  EXPECT_TRUE(rows.allFinite());
  EXPECT_GT(rows.norm(), 0.0f);
}

}  // namespace
}  // namespace magrq::model
