// Tests of round-to-nearest quantization against a plain per-element loop.
#include "core/rtn.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cfenv>
#include <cmath>
#include <limits>

#include "core/error.hpp"
#include "core/hessian.hpp"
#include "core/synthetic.hpp"

namespace magrq {
namespace {

using ::testing::HasSubstr;

Matrix random_matrix(Index rows, Index cols, uint64_t seed) {
  NormalSampler normal(seed);
  Matrix m(rows, cols);
  for (Index r = 0; r < rows; ++r) {
    for (Index c = 0; c < cols; ++c) {
      m(r, c) = static_cast<float>(normal.next());
    }
  }
  return m;
}

// The min-max grid and rounding written out from their definitions, one element at a
// time, with std::nearbyint (the default FE_TONEAREST mode rounds halves to even).
struct LoopResult {
  MatrixI codes;
  Matrix dequant;
};

LoopResult quantize_by_loop(const Matrix& W, int bits, Index group_size, bool sym) {
  const int maxq = (1 << bits) - 1;
  const Index size = group_size > 0 ? group_size : W.cols();
  LoopResult result{MatrixI(W.rows(), W.cols()), Matrix(W.rows(), W.cols())};
  for (Index r = 0; r < W.rows(); ++r) {
    for (Index begin = 0; begin < W.cols(); begin += size) {
      const Index end = std::min(W.cols(), begin + size);
      float low = 0.0f;
      float high = 0.0f;
      for (Index c = begin; c < end; ++c) {
        low = std::min(low, W(r, c));
        high = std::max(high, W(r, c));
      }
      float scale = 0.0f;
      float zero = 0.0f;
      if (sym) {
        scale = 2.0f * std::max(-low, high) / static_cast<float>(maxq);
        zero = static_cast<float>((maxq + 1) / 2);
      } else {
        scale = (high - low) / static_cast<float>(maxq);
        zero = std::nearbyint(-low / scale);
      }
      for (Index c = begin; c < end; ++c) {
        const float code =
            std::clamp(std::nearbyint(W(r, c) / scale) + zero, 0.0f, static_cast<float>(maxq));
        result.codes(r, c) = static_cast<int32_t>(code);
        result.dequant(r, c) = scale * (code - zero);
      }
    }
  }
  return result;
}

TEST(Rtn, MatchesPerElementLoop) {
  ASSERT_EQ(std::fegetround(), FE_TONEAREST);
  const Matrix W = random_matrix(16, 40, 3);
  for (const int bits : {2, 3, 4, 8}) {
    for (const Index group_size : {Index{-1}, Index{8}, Index{12}}) {
      for (const bool sym : {true, false}) {
        QuantGridOptions grid;
        grid.bits = bits;
        grid.group_size = group_size;
        grid.sym = sym;
        const QuantizedLayer q = rtn_quantize(W, grid);
        const LoopResult expected = quantize_by_loop(W, bits, group_size, sym);
        EXPECT_EQ(q.codes, expected.codes)
            << "bits " << bits << " group_size " << group_size << " sym " << sym;
        EXPECT_EQ(q.dequant, expected.dequant)
            << "bits " << bits << " group_size " << group_size << " sym " << sym;
      }
    }
  }
}

TEST(Rtn, ShapesAndGroupIndex) {
  const Matrix W = random_matrix(5, 40, 4);
  QuantGridOptions grid;
  grid.group_size = 12;  // 40 columns: groups of 12, 12, 12 and 4
  const QuantizedLayer q = rtn_quantize(W, grid);
  EXPECT_EQ(q.codes.rows(), 5);
  EXPECT_EQ(q.codes.cols(), 40);
  EXPECT_EQ(q.scales.rows(), 4);
  EXPECT_EQ(q.scales.cols(), 5);
  EXPECT_EQ(q.zeros.rows(), 4);
  ASSERT_EQ(q.g_idx.size(), 40);
  for (Index i = 0; i < 40; ++i) {
    EXPECT_EQ(q.g_idx[i], i / 12) << "column " << i;
  }
  for (Index r = 0; r < 5; ++r) {
    for (Index i = 0; i < 40; ++i) {
      const GridParams g{q.scales(q.g_idx[i], r), q.zeros(q.g_idx[i], r)};
      EXPECT_EQ(q.dequant(r, i), dequantize_value(q.codes(r, i), g));
    }
  }
}

TEST(Rtn, PerChannelHasOneGroup) {
  const Matrix W = random_matrix(3, 10, 5);
  const QuantizedLayer q = rtn_quantize(W, QuantGridOptions{});
  EXPECT_EQ(q.scales.rows(), 1);
  EXPECT_TRUE((q.g_idx.array() == 0).all());
}

TEST(Rtn, OutputErrorOnlyWithHessian) {
  const SyntheticLayer layer =
      make_synthetic_layer({.out_features = 8, .in_features = 16, .tokens = 64, .seed = 2});
  const QuantizedLayer without = rtn_quantize(layer.weight, QuantGridOptions{});
  EXPECT_FALSE(without.has_output_error);
  const QuantizedLayer with = rtn_quantize(layer.weight, QuantGridOptions{}, &layer.hessian);
  EXPECT_TRUE(with.has_output_error);
  EXPECT_DOUBLE_EQ(with.output_error,
                   output_error_float32(layer.weight, with.dequant, layer.hessian));
  const double exact = output_error(layer.weight, with.dequant, layer.hessian);
  EXPECT_NEAR(with.output_error, exact, 1e-6 * exact);
  EXPECT_GT(with.output_error, 0.0);
}

TEST(Rtn, RejectsNonFiniteWeight) {
  Matrix W = random_matrix(4, 6, 6);
  W(2, 3) = std::numeric_limits<float>::quiet_NaN();
  try {
    rtn_quantize(W, QuantGridOptions{});
    FAIL() << "expected DataError";
  } catch (const DataError& error) {
    EXPECT_THAT(error.what(), HasSubstr("weight"));
    EXPECT_THAT(error.what(), HasSubstr("[2, 3]"));
  }
}

TEST(Rtn, RejectsMismatchedHessian) {
  const Matrix W = random_matrix(4, 6, 7);
  const Matrix H = Matrix::Identity(5, 5);
  EXPECT_THROW(rtn_quantize(W, QuantGridOptions{}, &H), DataError);
}

TEST(Rtn, RejectsInvalidOptions) {
  QuantGridOptions grid;
  grid.bits = 12;
  EXPECT_THROW(rtn_quantize(random_matrix(2, 2, 8), grid), ConfigError);
}

}  // namespace
}  // namespace magrq
