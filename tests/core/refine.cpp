// Tests of the coordinate-descent refinement that follows GPTQ.
#include "core/refine.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>

#include "core/error.hpp"
#include "core/gptq.hpp"
#include "core/hessian.hpp"
#include "core/rtn.hpp"
#include "core/synthetic.hpp"

namespace magrq {
namespace {

using ::testing::HasSubstr;

SyntheticLayer small_layer(Index out, Index in, uint64_t seed) {
  SyntheticLayerOptions options;
  options.out_features = out;
  options.in_features = in;
  options.tokens = 4 * in;
  options.outlier_channels = 2;
  options.seed = seed;
  return make_synthetic_layer(options);
}

GptqOptions two_bit_options(Index group_size) {
  GptqOptions options;
  options.grid.bits = 2;
  options.grid.group_size = group_size;
  options.grid.range_shrink = QuantGridOptions::default_range_shrink(2, group_size);
  return options;
}

TEST(Refine, NeverIncreasesError) {
  const SyntheticLayer layer = small_layer(32, 160, 1);
  for (const Index group_size : {Index{-1}, Index{32}}) {
    QuantizedLayer q = gptq_quantize(layer.weight, layer.hessian, two_bit_options(group_size));
    cd_refine(q, layer.weight, layer.hessian, 6);
    ASSERT_GE(q.refine_errors.size(), 2u);
    for (size_t s = 1; s < q.refine_errors.size(); ++s) {
      EXPECT_LE(q.refine_errors[s], q.refine_errors[s - 1]) << "sweep " << s;
    }
    // refine_errors use the float32 product, output_error is float64.
    EXPECT_NEAR(q.output_error, q.refine_errors.back(), 1e-6 * q.output_error);
    EXPECT_DOUBLE_EQ(q.output_error, output_error(layer.weight, q.dequant, layer.hessian));
  }
}

TEST(Refine, ReducesTwoBitGptqError) {
  const SyntheticLayer layer = small_layer(32, 160, 2);
  QuantizedLayer q = gptq_quantize(layer.weight, layer.hessian, two_bit_options(-1));
  const double before = q.output_error;
  cd_refine(q, layer.weight, layer.hessian, 10);
  EXPECT_LT(q.output_error, 0.99 * before);
  ASSERT_FALSE(q.events.empty());
  EXPECT_THAT(q.events.back(), HasSubstr("coordinate descent"));
}

TEST(Refine, ReducesTwoBitRtnErrorStrongly) {
  const SyntheticLayer layer = small_layer(32, 160, 3);
  const GptqOptions options = two_bit_options(-1);
  QuantizedLayer q = rtn_quantize(layer.weight, options.grid, &layer.hessian);
  const double before = q.output_error;
  cd_refine(q, layer.weight, layer.hessian, 10);
  EXPECT_LT(q.output_error, 0.7 * before);
}

TEST(Refine, CodesStayOnGrid) {
  const SyntheticLayer layer = small_layer(16, 64, 4);
  QuantizedLayer q = gptq_quantize(layer.weight, layer.hessian, two_bit_options(16));
  const Matrix scales = q.scales;
  const MatrixI zeros = q.zeros;
  cd_refine(q, layer.weight, layer.hessian, 3);
  EXPECT_EQ(q.scales, scales);
  EXPECT_EQ(q.zeros, zeros);
  for (Index r = 0; r < q.codes.rows(); ++r) {
    for (Index i = 0; i < q.codes.cols(); ++i) {
      EXPECT_GE(q.codes(r, i), 0);
      EXPECT_LE(q.codes(r, i), 3);
      const GridParams grid{q.scales(q.g_idx[i], r), q.zeros(q.g_idx[i], r)};
      EXPECT_EQ(q.dequant(r, i), dequantize_value(q.codes(r, i), grid));
    }
  }
}

// One Gauss-Seidel sweep by brute force: for each column in order and each row, try
// every code and keep the one with the lowest exact error, the other columns fixed.
MatrixI brute_force_sweep(const QuantizedLayer& q, const Matrix& W, const Matrix& H) {
  MatrixD dequant = q.dequant.cast<double>();
  MatrixI codes = q.codes;
  const MatrixD target = W.cast<double>();
  const MatrixD hessian = H.cast<double>();
  const int32_t maxq = (1 << q.bits) - 1;
  for (Index j = 0; j < W.cols(); ++j) {
    for (Index r = 0; r < W.rows(); ++r) {
      const GridParams grid{q.scales(q.g_idx[j], r), q.zeros(q.g_idx[j], r)};
      double best_error = std::numeric_limits<double>::infinity();
      for (int32_t code = 0; code <= maxq; ++code) {
        dequant(r, j) = dequantize_value(code, grid);
        const VectorD residual = (target.row(r) - dequant.row(r)).transpose();
        const double error = residual.dot(hessian * residual);
        if (error < best_error) {
          best_error = error;
          codes(r, j) = code;
        }
      }
      dequant(r, j) = dequantize_value(codes(r, j), grid);
    }
  }
  return codes;
}

TEST(Refine, MatchesBruteForceSweep) {
  const SyntheticLayer layer = small_layer(6, 12, 5);
  for (const Index group_size : {Index{-1}, Index{5}}) {
    QuantizedLayer q = rtn_quantize(layer.weight, two_bit_options(group_size).grid);
    const MatrixI expected = brute_force_sweep(q, layer.weight, layer.hessian);
    cd_refine(q, layer.weight, layer.hessian, 1);
    EXPECT_EQ(q.codes, expected) << "group_size " << group_size;
  }
}

TEST(Refine, DeadColumnKeepsCodes) {
  SyntheticLayer layer = small_layer(8, 24, 6);
  layer.hessian.row(3).setZero();
  layer.hessian.col(3).setZero();
  QuantizedLayer q = rtn_quantize(layer.weight, two_bit_options(-1).grid);
  const VectorI codes_before = q.codes.col(3);
  cd_refine(q, layer.weight, layer.hessian, 4);
  EXPECT_EQ(VectorI(q.codes.col(3)), codes_before);
}

TEST(Refine, ZeroSweepsOnlyMeasuresError) {
  const SyntheticLayer layer = small_layer(8, 24, 7);
  QuantizedLayer q = rtn_quantize(layer.weight, two_bit_options(-1).grid);
  const MatrixI codes = q.codes;
  cd_refine(q, layer.weight, layer.hessian, 0);
  EXPECT_EQ(q.codes, codes);
  ASSERT_EQ(q.refine_errors.size(), 1u);
  EXPECT_TRUE(q.has_output_error);
  EXPECT_DOUBLE_EQ(q.output_error, output_error(layer.weight, q.dequant, layer.hessian));
}

TEST(Refine, RejectsNegativeSweeps) {
  const SyntheticLayer layer = small_layer(4, 8, 8);
  QuantizedLayer q = rtn_quantize(layer.weight, QuantGridOptions{});
  EXPECT_THROW(cd_refine(q, layer.weight, layer.hessian, -1), ConfigError);
}

TEST(Refine, RejectsMismatchedShapes) {
  const SyntheticLayer layer = small_layer(4, 8, 9);
  QuantizedLayer q = rtn_quantize(layer.weight, QuantGridOptions{});
  const Matrix other_weight = small_layer(5, 8, 10).weight;
  try {
    cd_refine(q, other_weight, layer.hessian, 1);
    FAIL() << "expected DataError";
  } catch (const DataError& error) {
    EXPECT_THAT(error.what(), HasSubstr("codes 4 x 8"));
  }
}

TEST(Refine, RejectsNonFiniteTarget) {
  SyntheticLayer layer = small_layer(4, 8, 11);
  QuantizedLayer q = rtn_quantize(layer.weight, QuantGridOptions{});
  layer.weight(2, 5) = std::numeric_limits<float>::infinity();
  try {
    cd_refine(q, layer.weight, layer.hessian, 1);
    FAIL() << "expected DataError";
  } catch (const DataError& error) {
    EXPECT_THAT(error.what(), HasSubstr("[2, 5]"));
  }
}

}  // namespace
}  // namespace magrq
