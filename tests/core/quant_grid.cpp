// Tests of the min-max grid, its rounding and the clipping-range search.
#include "core/quant_grid.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "core/error.hpp"
#include "core/synthetic.hpp"

namespace magrq {
namespace {

using ::testing::HasSubstr;

QuantGridOptions grid_options(int bits, bool sym) {
  QuantGridOptions options;
  options.bits = bits;
  options.sym = sym;
  return options;
}

TEST(Grid, SymmetricScaleCoversMaxMagnitude) {
  const std::vector<float> values = {-0.3f, 0.1f, 0.6f};
  const GridParams grid = fit_grid(values, grid_options(4, true));
  EXPECT_FLOAT_EQ(grid.scale, 2.0f * 0.6f / 15.0f);
  EXPECT_EQ(grid.zero, 8);
}

TEST(Grid, AsymmetricScaleAndZeroPoint) {
  const std::vector<float> values = {-0.2f, 0.1f, 0.4f};
  const GridParams grid = fit_grid(values, grid_options(4, false));
  EXPECT_FLOAT_EQ(grid.scale, 0.6f / 15.0f);
  EXPECT_EQ(grid.zero, 5);  // round(0.2 / 0.04)
}

TEST(Grid, RangeWidenedToIncludeZero) {
  const std::vector<float> positive = {0.2f, 0.5f};
  const GridParams asym_positive = fit_grid(positive, grid_options(4, false));
  EXPECT_FLOAT_EQ(asym_positive.scale, 0.5f / 15.0f);
  EXPECT_EQ(asym_positive.zero, 0);

  const std::vector<float> negative = {-0.5f, -0.1f};
  const GridParams asym_negative = fit_grid(negative, grid_options(4, false));
  EXPECT_FLOAT_EQ(asym_negative.scale, 0.5f / 15.0f);
  EXPECT_EQ(asym_negative.zero, 15);

  // The symmetric grid spans [-0.5, 0.5] even when every value is positive.
  const GridParams sym_positive = fit_grid(positive, grid_options(4, true));
  EXPECT_FLOAT_EQ(sym_positive.scale, 2.0f * 0.5f / 15.0f);
  EXPECT_EQ(sym_positive.zero, 8);
}

TEST(Grid, ZeroHasExactCode) {
  for (const bool sym : {true, false}) {
    const std::vector<float> values = {-0.37f, 0.05f, 0.91f};
    const QuantGridOptions options = grid_options(3, sym);
    const GridParams grid = fit_grid(values, options);
    const int32_t code = quantize_value(0.0f, grid, options.maxq());
    EXPECT_EQ(dequantize_value(code, grid), 0.0f) << "sym " << sym;
  }
}

TEST(Grid, AllZeroGroupUsesUnitRange) {
  const std::vector<float> zeros(7, 0.0f);
  const GridParams sym = fit_grid(zeros, grid_options(4, true));
  EXPECT_FLOAT_EQ(sym.scale, 2.0f / 15.0f);
  EXPECT_EQ(sym.zero, 8);
  const GridParams asym = fit_grid(zeros, grid_options(4, false));
  EXPECT_FLOAT_EQ(asym.scale, 2.0f / 15.0f);
  // 1 / fl(2 / 15) is 7.4999995 in float32, just below the tie, as in the PyTorch reference.
  EXPECT_EQ(asym.zero, 7);
  EXPECT_EQ(dequantize_value(quantize_value(0.0f, asym, 15), asym), 0.0f);
}

TEST(Grid, SubnormalRangeGivesNormalScale) {
  const std::vector<float> values = {1e-42f, -3e-43f};
  for (const bool sym : {true, false}) {
    const GridParams grid = fit_grid(values, grid_options(8, sym));
    EXPECT_TRUE(std::isnormal(grid.scale)) << "scale " << grid.scale;
    EXPECT_EQ(dequantize_value(quantize_value(values[0], grid, 255), grid), 0.0f);
  }
}

TEST(Grid, RangeShrinkScalesRange) {
  const std::vector<float> values = {-0.3f, 0.1f, 0.6f};
  QuantGridOptions sym = grid_options(2, true);
  sym.range_shrink = 0.8;
  EXPECT_FLOAT_EQ(fit_grid(values, sym).scale, 2.0f * 0.6f * 0.8f / 3.0f);

  QuantGridOptions asym = grid_options(4, false);
  asym.range_shrink = 0.5;
  const GridParams grid = fit_grid(values, asym);
  EXPECT_FLOAT_EQ(grid.scale, 0.5f * 0.9f / 15.0f);
  EXPECT_EQ(grid.zero, 5);  // round(0.15 / 0.03)
  // 0.6 lies outside the shrunk range [-0.15, 0.3] and clamps to the top code.
  EXPECT_EQ(quantize_value(0.6f, grid, 15), 15);
}

TEST(Grid, DefaultRangeShrinkSchedule) {
  EXPECT_EQ(QuantGridOptions::default_range_shrink(2, -1), 0.8);
  EXPECT_EQ(QuantGridOptions::default_range_shrink(3, -1), 0.9);
  EXPECT_EQ(QuantGridOptions::default_range_shrink(4, -1), 1.0);
  EXPECT_EQ(QuantGridOptions::default_range_shrink(8, -1), 1.0);
  EXPECT_EQ(QuantGridOptions::default_range_shrink(2, 128), 0.95);
  EXPECT_EQ(QuantGridOptions::default_range_shrink(3, 128), 0.95);
  EXPECT_EQ(QuantGridOptions::default_range_shrink(4, 128), 0.95);
  EXPECT_EQ(QuantGridOptions::default_range_shrink(3, 64), 0.95);
  EXPECT_EQ(QuantGridOptions::default_range_shrink(8, 128), 1.0);
  EXPECT_THROW(QuantGridOptions::default_range_shrink(1, -1), ConfigError);
}

TEST(Grid, RoundHalfEvenOnExactHalves) {
  struct Case {
    float input;
    float expected;
  };
  const std::vector<Case> cases = {
      {0.5f, 0.0f},     {1.5f, 2.0f},    {2.5f, 2.0f},   {3.5f, 4.0f},    {-0.5f, 0.0f},
      {-1.5f, -2.0f},   {-2.5f, -2.0f},  {-3.5f, -4.0f}, {2.4999f, 2.0f}, {2.5001f, 3.0f},
      {-2.7f, -3.0f},   {7.0f, 7.0f},    {0.0f, 0.0f},   {1e9f, 1e9f},    {-0.49f, 0.0f},
      {254.5f, 254.0f}, {255.5f, 256.0f}};
  for (const Case& c : cases) {
    EXPECT_EQ(round_half_even(c.input), c.expected) << "input " << c.input;
  }
}

TEST(Grid, QuantizeRoundsExactHalvesToEven) {
  const GridParams grid{0.5f, 8};
  EXPECT_EQ(quantize_value(1.25f, grid, 15), 10);  // 2.5 -> 2
  EXPECT_EQ(quantize_value(1.75f, grid, 15), 12);  // 3.5 -> 4
  EXPECT_EQ(quantize_value(-1.25f, grid, 15), 6);  // -2.5 -> -2
  EXPECT_EQ(quantize_value(-0.25f, grid, 15), 8);  // -0.5 -> 0
}

TEST(Grid, QuantizeClampsToCodeRange) {
  const GridParams grid{0.1f, 8};
  EXPECT_EQ(quantize_value(100.0f, grid, 15), 15);
  EXPECT_EQ(quantize_value(-100.0f, grid, 15), 0);
  EXPECT_EQ(quantize_value(std::numeric_limits<float>::max(), grid, 15), 15);
  EXPECT_EQ(quantize_value(-std::numeric_limits<float>::max(), grid, 15), 0);
}

TEST(Grid, EveryBitWidthReachesFullCodeRange) {
  NormalSampler normal(11);
  std::vector<float> values(256);
  for (float& v : values) {
    v = static_cast<float>(normal.next());
  }
  for (int bits = 2; bits <= 8; ++bits) {
    for (const bool sym : {true, false}) {
      const QuantGridOptions options = grid_options(bits, sym);
      const GridParams grid = fit_grid(values, options);
      int32_t lowest = options.maxq();
      int32_t highest = 0;
      for (const float v : values) {
        const int32_t code = quantize_value(v, grid, options.maxq());
        lowest = std::min(lowest, code);
        highest = std::max(highest, code);
        // Inside the range the rounding error is at most half a step.
        EXPECT_LE(std::abs(dequantize_value(code, grid) - v), 0.5f * grid.scale * 1.0001f)
            << "bits " << bits << " sym " << sym << " value " << v;
      }
      EXPECT_GE(lowest, 0);
      EXPECT_LE(highest, options.maxq());
      if (sym) {
        // The symmetric range reaches the end code only on the side of max |w|.
        EXPECT_TRUE(lowest <= 1 || highest >= options.maxq() - 1)
            << "bits " << bits << " codes " << lowest << ".." << highest;
      } else {
        EXPECT_LE(lowest, 1) << "bits " << bits;
        EXPECT_GE(highest, options.maxq() - 1) << "bits " << bits;
      }
      // Every code dequantizes to a grid value that quantizes back to itself.
      for (int32_t code = 0; code <= options.maxq(); ++code) {
        EXPECT_EQ(quantize_value(dequantize_value(code, grid), grid, options.maxq()), code)
            << "bits " << bits << " sym " << sym;
      }
    }
  }
}

TEST(Grid, RaggedLastGroup) {
  EXPECT_EQ(group_count(10, 4), 3);
  EXPECT_EQ(group_count(12, 4), 3);
  EXPECT_EQ(group_count(10, -1), 1);
  EXPECT_EQ(group_begin(2, 4), 8);
  EXPECT_EQ(group_end(2, 10, 4), 10);
  EXPECT_EQ(group_end(1, 10, 4), 8);
  EXPECT_EQ(group_begin(0, -1), 0);
  EXPECT_EQ(group_end(0, 10, -1), 10);
}

// Sum of |q(v) - v|^norm, the quantity the search minimises.
double norm_error(const std::vector<float>& values, GridParams grid,
                  const QuantGridOptions& options) {
  double error = 0.0;
  for (const float v : values) {
    const float q = dequantize_value(quantize_value(v, grid, options.maxq()), grid);
    error += std::pow(std::abs(static_cast<double>(q) - v), options.mse_norm);
  }
  return error;
}

TEST(Grid, MseSearchNeverWorseThanMinMax) {
  NormalSampler normal(5);
  int strictly_better = 0;
  for (int trial = 0; trial < 40; ++trial) {
    std::vector<float> values(64);
    for (float& v : values) {
      v = static_cast<float>(normal.next());
    }
    values[static_cast<size_t>(trial)] *= 8.0f;  // an outlier that widens the min-max range
    for (const bool sym : {true, false}) {
      QuantGridOptions min_max = grid_options(3, sym);
      QuantGridOptions searched = min_max;
      searched.mse = true;
      const double base = norm_error(values, fit_grid(values, min_max), min_max);
      const double best = norm_error(values, fit_grid(values, searched), searched);
      EXPECT_LE(best, base) << "trial " << trial << " sym " << sym;
      strictly_better += best < base ? 1 : 0;
    }
  }
  // With one outlier per row, clipping it pays off in most rows.
  EXPECT_GT(strictly_better, 40);
}

TEST(Grid, ValidateRejectsInvalidKeys) {
  struct Case {
    QuantGridOptions options;
    const char* key;
  };
  std::vector<Case> cases;
  auto add = [&cases](const char* key, auto change) {
    QuantGridOptions options;
    change(options);
    cases.push_back({options, key});
  };
  add("bits", [](QuantGridOptions& o) { o.bits = 1; });
  add("bits", [](QuantGridOptions& o) { o.bits = 9; });
  add("group_size", [](QuantGridOptions& o) { o.group_size = 0; });
  add("group_size", [](QuantGridOptions& o) { o.group_size = -2; });
  add("range_shrink", [](QuantGridOptions& o) { o.range_shrink = 0.0; });
  add("range_shrink", [](QuantGridOptions& o) { o.range_shrink = 1.5; });
  add("range_shrink", [](QuantGridOptions& o) { o.range_shrink = std::nan(""); });
  add("mse_max_shrink", [](QuantGridOptions& o) { o.mse_max_shrink = 1.0; });
  add("mse_grid", [](QuantGridOptions& o) { o.mse_grid = 0; });
  add("mse_norm", [](QuantGridOptions& o) { o.mse_norm = 0.0; });
  for (const Case& c : cases) {
    try {
      c.options.validate();
      ADD_FAILURE() << "expected ConfigError for " << c.key;
    } catch (const ConfigError& error) {
      EXPECT_THAT(error.what(), HasSubstr(c.key));
    }
  }
  EXPECT_NO_THROW(QuantGridOptions{}.validate());
}

}  // namespace
}  // namespace magrq
