#include "store/hessian_store.hpp"

#include <gtest/gtest.h>

#include "common/test_data.hpp"
#include "core/error.hpp"

namespace magrq::store {
namespace {

HessianStoreHeader make_header(StoreLayout layout) {
  HessianStoreHeader header;
  header.fingerprint.set("model", "m1");
  header.fingerprint.set("seed", "0");
  header.window_starts = {0, 512, 1024};
  header.num_layers = 2;
  header.layout = layout;
  return header;
}

std::map<std::string, StoredHessian> make_inputs(int64_t seed) {
  std::map<std::string, StoredHessian> inputs;
  int64_t offset = 0;
  for (const char* name : kLinearInputNames) {
    StoredHessian hessian;
    std::srand(static_cast<unsigned>(seed * 10 + offset));
    hessian.xtx = MatrixD::Random(6 + offset, 6 + offset);
    hessian.statistics = {100 + offset, 3.5 + static_cast<double>(offset), offset};
    inputs[name] = hessian;
    ++offset;
  }
  return inputs;
}

void expect_round_trip(StoreLayout layout, const std::string& name) {
  const auto dir = testing::scratch_dir(name);
  const auto path = dir / (layout == StoreLayout::single ? "store.h5" : "store");
  const auto layer0 = make_inputs(0);
  const auto layer1 = make_inputs(1);
  {
    HessianStoreWriter writer(path, make_header(layout));
    writer.write_layer(0, layer0);
    writer.write_layer(1, layer1);
    writer.commit();
  }
  const HessianStoreReader reader(path);
  EXPECT_EQ(reader.header().window_starts, (std::vector<int64_t>{0, 512, 1024}));
  EXPECT_EQ(reader.header().num_layers, 2);
  EXPECT_TRUE(reader.has_layer(1));
  EXPECT_FALSE(reader.has_layer(2));
  for (const char* input : kLinearInputNames) {
    const StoredHessian stored = reader.read(1, input);
    EXPECT_EQ(stored.xtx, layer1.at(input).xtx) << input;
    EXPECT_EQ(stored.statistics.tokens, layer1.at(input).statistics.tokens);
    EXPECT_EQ(stored.statistics.max_abs_activation, layer1.at(input).statistics.max_abs_activation);
    EXPECT_EQ(stored.statistics.dead_channels, layer1.at(input).statistics.dead_channels);
  }
}

TEST(HessianStore, SingleFileRoundTripIsExact) { expect_round_trip(StoreLayout::single, "hs_single"); }

TEST(HessianStore, PerLayerRoundTripIsExact) {
  expect_round_trip(StoreLayout::per_layer, "hs_per_layer");
}

TEST(HessianStore, ChangedSeedIsRejectedWithThePart) {
  const auto dir = testing::scratch_dir("hs_fingerprint");
  const auto path = dir / "store.h5";
  {
    HessianStoreWriter writer(path, make_header(StoreLayout::single));
    writer.commit();
  }
  const HessianStoreReader reader(path);
  Fingerprint expected = make_header(StoreLayout::single).fingerprint;
  EXPECT_NO_THROW(reader.require_fingerprint(expected));
  expected.set("seed", "7");
  try {
    reader.require_fingerprint(expected);
    FAIL() << "expected DataError";
  } catch (const DataError& error) {
    EXPECT_NE(std::string(error.what()).find("seed differs: stored 0, this run 7"),
              std::string::npos)
        << error.what();
  }
}

TEST(HessianStore, MissingLayerNamesStoreAndLayer) {
  const auto dir = testing::scratch_dir("hs_missing_layer");
  const auto path = dir / "store";
  {
    HessianStoreWriter writer(path, make_header(StoreLayout::per_layer));
    writer.write_layer(0, make_inputs(0));
  }
  const HessianStoreReader reader(path);
  EXPECT_TRUE(reader.has_layer(0));
  EXPECT_FALSE(reader.has_layer(1));
  try {
    reader.read(1, "attn_in");
    FAIL() << "expected DataError";
  } catch (const DataError& error) {
    EXPECT_NE(std::string(error.what()).find("has no layer 1"), std::string::npos) << error.what();
  }
  EXPECT_THROW(reader.read(0, "q_proj"), ConfigError);
}

TEST(HessianStore, UncommittedSingleStoreLeavesNoFile) {
  const auto dir = testing::scratch_dir("hs_uncommitted");
  {
    HessianStoreWriter writer(dir / "store.h5", make_header(StoreLayout::single));
    writer.write_layer(0, make_inputs(0));
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "store.h5"));
}

TEST(HessianStore, TruncatedStoreIsAnError) {
  const auto dir = testing::scratch_dir("hs_truncated");
  const auto path = dir / "store.h5";
  {
    HessianStoreWriter writer(path, make_header(StoreLayout::single));
    writer.write_layer(0, make_inputs(0));
    writer.commit();
  }
  std::filesystem::resize_file(path, std::filesystem::file_size(path) / 2);
  EXPECT_THROW(
      {
        const HessianStoreReader reader(path);
        reader.read(0, "mlp_out");
      },
      DataError);
}

TEST(HessianStore, Float32PrecisionRoundsOnce) {
  const auto dir = testing::scratch_dir("hs_float32");
  const auto path = dir / "store.h5";
  auto header = make_header(StoreLayout::single);
  header.store_float32 = true;
  const auto inputs = make_inputs(3);
  {
    HessianStoreWriter writer(path, header);
    writer.write_layer(0, inputs);
    writer.commit();
  }
  const HessianStoreReader reader(path);
  EXPECT_TRUE(reader.header().store_float32);
  const MatrixD expected = inputs.at("attn_in").xtx.cast<float>().cast<double>();
  EXPECT_EQ(reader.read(0, "attn_in").xtx, expected);
}

}  // namespace
}  // namespace magrq::store
