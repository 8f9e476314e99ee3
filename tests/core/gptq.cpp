// Tests of GPTQ against a plain optimal-brain-quantization solve, and of its damping
// ladder, fallbacks, act-order and dead-column handling.
#include "core/gptq.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <Eigen/LU>
#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/error.hpp"
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

GptqOptions gptq_options(int bits, Index group_size, bool act_order, bool sym = true) {
  GptqOptions options;
  options.grid.sym = sym;
  options.grid.bits = bits;
  options.grid.group_size = group_size;
  options.act_order = act_order;
  return options;
}

struct ObqResult {
  MatrixI codes;   // original column order
  Matrix dequant;  // original column order
  VectorI g_idx;
};

// Optimal brain quantization in float64, one column at a time, in the column order
// GPTQ uses (Frantar et al., arXiv 2210.17323, eq. 2-3): quantize column c, add
// -(w_c - q_c) / Hinv(c, c) * Hinv(c, :) to the remaining columns, then remove c from
// the explicit inverse Hinv = (H + damping I)^-1 by Gaussian elimination. Each group's
// grid is fitted at its first column on the updated weights. No blocks and no
// Cholesky factor.
ObqResult solve_obq(const Matrix& W, const Matrix& H, const GptqOptions& options) {
  const Index out = W.rows();
  const Index in = W.cols();
  MatrixD weight = W.cast<double>();
  MatrixD hessian = H.cast<double>();
  for (Index i = 0; i < in; ++i) {
    if (H(i, i) == 0.0f) {
      hessian(i, i) = 1.0;
      weight.col(i).setZero();
    }
  }
  std::vector<Index> order(static_cast<size_t>(in));
  std::iota(order.begin(), order.end(), Index{0});
  if (options.act_order) {
    std::stable_sort(order.begin(), order.end(),
                     [&](Index a, Index b) { return hessian(a, a) > hessian(b, b); });
  }
  const double damping = options.percdamp * hessian.diagonal().mean();
  hessian.diagonal().array() += damping;
  MatrixD inverse = hessian.inverse();

  const Index group_size = options.grid.group_size > 0 ? options.grid.group_size : in;
  const int32_t maxq = options.grid.maxq();
  ObqResult result{MatrixI(out, in), Matrix(out, in), VectorI(in)};
  std::vector<GridParams> grids(static_cast<size_t>(out));
  for (Index step = 0; step < in; ++step) {
    const Index c = order[static_cast<size_t>(step)];
    if (step % group_size == 0) {
      for (Index r = 0; r < out; ++r) {
        std::vector<float> values;
        for (Index k = step; k < std::min(in, step + group_size); ++k) {
          values.push_back(static_cast<float>(weight(r, order[static_cast<size_t>(k)])));
        }
        grids[static_cast<size_t>(r)] = fit_grid(values, options.grid);
      }
    }
    result.g_idx[c] = static_cast<int32_t>(step / group_size);
    for (Index r = 0; r < out; ++r) {
      const GridParams grid = grids[static_cast<size_t>(r)];
      const int32_t code = quantize_value(static_cast<float>(weight(r, c)), grid, maxq);
      const double q = dequantize_value(code, grid);
      result.codes(r, c) = code;
      result.dequant(r, c) = static_cast<float>(q);
      const double scaled_error = (weight(r, c) - q) / inverse(c, c);
      for (Index k = step + 1; k < in; ++k) {
        const Index j = order[static_cast<size_t>(k)];
        weight(r, j) -= scaled_error * inverse(c, j);
      }
      weight(r, c) = q;
    }
    const VectorD pivot_column = inverse.col(c);
    inverse -= pivot_column * inverse.row(c) / inverse(c, c);
  }
  return result;
}

// Fraction of codes that differ. GPTQ runs in float32 and the solve in float64, so a
// weight within float32 rounding of a rounding boundary may land on the other code.
double code_mismatch(const MatrixI& a, const MatrixI& b) {
  return static_cast<double>((a.array() != b.array()).count()) / static_cast<double>(a.size());
}

TEST(Gptq, MatchesObqSolve) {
  // The asymmetric grid puts no weight exactly on a rounding tie, so the codes match
  // exactly. Block size 5 splits groups across blocks.
  const SyntheticLayer layer = small_layer(24, 48, 1);
  for (const Index group_size : {Index{-1}, Index{16}, Index{20}}) {
    for (const bool act_order : {false, true}) {
      for (const Index block_size : {Index{5}, Index{128}}) {
        GptqOptions options = gptq_options(3, group_size, act_order, false);
        options.block_size = block_size;
        const QuantizedLayer q = gptq_quantize(layer.weight, layer.hessian, options);
        const ObqResult expected = solve_obq(layer.weight, layer.hessian, options);
        const std::string label = "group_size " + std::to_string(group_size) + " act_order " +
                                  std::to_string(act_order) + " block_size " +
                                  std::to_string(block_size);
        EXPECT_EQ(code_mismatch(q.codes, expected.codes), 0.0) << label;
        EXPECT_EQ(q.g_idx, expected.g_idx) << label;
        EXPECT_LE((q.dequant - expected.dequant).cwiseAbs().maxCoeff(), 1e-4f) << label;
        const double expected_error = output_error(layer.weight, expected.dequant, layer.hessian);
        EXPECT_NEAR(q.output_error, expected_error, 1e-4 * expected_error) << label;
      }
    }
  }
}

TEST(Gptq, MatchesObqSolveAcrossFactorBlocks) {
  // 300 inputs span three 128-wide blocks of the Cholesky factorization and of the
  // lazy updates, with a ragged last group of 44 columns.
  const SyntheticLayer layer = small_layer(8, 300, 21);
  for (const bool act_order : {false, true}) {
    const GptqOptions options = gptq_options(4, 128, act_order, false);
    const QuantizedLayer q = gptq_quantize(layer.weight, layer.hessian, options);
    const ObqResult expected = solve_obq(layer.weight, layer.hessian, options);
    EXPECT_EQ(code_mismatch(q.codes, expected.codes), 0.0) << "act_order " << act_order;
    EXPECT_EQ(q.g_idx, expected.g_idx) << "act_order " << act_order;
  }
}

TEST(Gptq, SymmetricGridMatchesObqUpToTies) {
  // On the symmetric grid a group's largest-magnitude weight lies exactly on a rounding
  // tie (w / scale = -3.5 at 3 bits) when it is the group's first column. float32 and
  // float64 rounding noise may then pick different codes, and the rest of that row
  // follows a different path. Tolerance: 2% of codes and 2% of the error.
  const SyntheticLayer layer = small_layer(24, 48, 1);
  for (const Index group_size : {Index{-1}, Index{16}, Index{20}}) {
    for (const bool act_order : {false, true}) {
      const GptqOptions options = gptq_options(3, group_size, act_order, true);
      const QuantizedLayer q = gptq_quantize(layer.weight, layer.hessian, options);
      const ObqResult expected = solve_obq(layer.weight, layer.hessian, options);
      const std::string label =
          "group_size " + std::to_string(group_size) + " act_order " + std::to_string(act_order);
      EXPECT_LE(code_mismatch(q.codes, expected.codes), 0.02) << label;
      const double expected_error = output_error(layer.weight, expected.dequant, layer.hessian);
      EXPECT_NEAR(q.output_error, expected_error, 0.02 * expected_error) << label;
    }
  }
}

TEST(Gptq, LowerErrorThanRtnOnCorrelatedHessian) {
  const SyntheticLayer layer = small_layer(64, 128, 2);
  for (const int bits : {2, 3, 4}) {
    const GptqOptions options = gptq_options(bits, -1, false);
    const QuantizedLayer gptq = gptq_quantize(layer.weight, layer.hessian, options);
    const QuantizedLayer rtn = rtn_quantize(layer.weight, options.grid, &layer.hessian);
    EXPECT_LT(gptq.output_error, 0.7 * rtn.output_error) << "bits " << bits;
  }
}

TEST(Gptq, BlockSizeDoesNotChangeResult) {
  const SyntheticLayer layer = small_layer(32, 96, 3);
  for (const Index group_size : {Index{-1}, Index{16}, Index{10}}) {
    for (const bool act_order : {false, true}) {
      GptqOptions small_blocks = gptq_options(4, group_size, act_order, false);
      small_blocks.block_size = 4;
      GptqOptions large_blocks = small_blocks;
      large_blocks.block_size = 128;
      const QuantizedLayer a = gptq_quantize(layer.weight, layer.hessian, small_blocks);
      const QuantizedLayer b = gptq_quantize(layer.weight, layer.hessian, large_blocks);
      const std::string label =
          "group_size " + std::to_string(group_size) + " act_order " + std::to_string(act_order);
      EXPECT_EQ(code_mismatch(a.codes, b.codes), 0.0) << label;
      EXPECT_LE((a.scales - b.scales).cwiseAbs().maxCoeff(), 1e-6f) << label;
      EXPECT_NEAR(a.output_error, b.output_error, 1e-5 * b.output_error) << label;
    }
  }
}

TEST(Gptq, ResultShapesAndGrid) {
  const SyntheticLayer layer = small_layer(12, 40, 4);
  const QuantizedLayer q = gptq_quantize(layer.weight, layer.hessian, gptq_options(4, 16, false));
  EXPECT_EQ(q.codes.rows(), 12);
  EXPECT_EQ(q.codes.cols(), 40);
  EXPECT_EQ(q.scales.rows(), 3);  // groups of 16, 16 and 8
  EXPECT_EQ(q.scales.cols(), 12);
  EXPECT_EQ(q.zeros.rows(), 3);
  EXPECT_TRUE(q.scales.allFinite());
  EXPECT_TRUE((q.scales.array() > 0.0f).all());
  EXPECT_GE(q.codes.minCoeff(), 0);
  EXPECT_LE(q.codes.maxCoeff(), 15);
  for (Index r = 0; r < 12; ++r) {
    for (Index i = 0; i < 40; ++i) {
      const GridParams grid{q.scales(q.g_idx[i], r), q.zeros(q.g_idx[i], r)};
      EXPECT_EQ(q.dequant(r, i), dequantize_value(q.codes(r, i), grid));
    }
  }
  EXPECT_TRUE(q.events.empty());
  EXPECT_EQ(q.damping_attempts.size(), 1u);
  EXPECT_DOUBLE_EQ(q.damping, 0.01 * layer.hessian.diagonal().cast<double>().mean());
}

TEST(Gptq, StaticGroupsKeepColumnGroupIndex) {
  const SyntheticLayer layer = small_layer(16, 64, 5);
  GptqOptions options = gptq_options(4, 16, true);
  options.static_groups = true;
  const QuantizedLayer q = gptq_quantize(layer.weight, layer.hessian, options);
  for (Index i = 0; i < 64; ++i) {
    EXPECT_EQ(q.g_idx[i], i / 16) << "column " << i;
  }
  // Static grids are the RTN grids of the weight before any update.
  const QuantizedLayer rtn = rtn_quantize(layer.weight, options.grid);
  EXPECT_EQ(q.scales, rtn.scales);
  EXPECT_EQ(q.zeros, rtn.zeros);
}

TEST(Gptq, ActOrderGroupIndexFollowsHessianDiagonal) {
  const SyntheticLayer layer = small_layer(8, 32, 6);
  const QuantizedLayer q = gptq_quantize(layer.weight, layer.hessian, gptq_options(4, 8, true));
  std::vector<Index> order(32);
  std::iota(order.begin(), order.end(), Index{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](Index a, Index b) { return layer.hessian(a, a) > layer.hessian(b, b); });
  for (Index j = 0; j < 32; ++j) {
    EXPECT_EQ(q.g_idx[order[static_cast<size_t>(j)]], j / 8) << "position " << j;
  }
}

TEST(Gptq, SharedHessianGivesIdenticalGroupIndex) {
  // Ties in diag(H) must break the same way for every weight that shares H.
  SyntheticLayer layer = small_layer(8, 32, 7);
  for (Index i = 0; i < 32; i += 3) {
    layer.hessian(i, i) = layer.hessian(0, 0);
  }
  const Matrix other_weight = small_layer(8, 32, 8).weight;
  const GptqOptions options = gptq_options(4, 8, true);
  const QuantizedLayer q = gptq_quantize(layer.weight, layer.hessian, options);
  const QuantizedLayer k = gptq_quantize(other_weight, layer.hessian, options);
  EXPECT_EQ(q.g_idx, k.g_idx);
  // Among the tied columns, the lower index comes first.
  std::vector<Index> tied;
  for (Index i = 0; i < 32; i += 3) {
    tied.push_back(i);
  }
  for (size_t t = 1; t < tied.size(); ++t) {
    EXPECT_LE(q.g_idx[tied[t - 1]], q.g_idx[tied[t]]) << "column " << tied[t];
  }
}

TEST(Gptq, DeadInputColumnQuantizesToZero) {
  const SyntheticLayer layer = small_layer(12, 24, 9);
  const Index dead = 5;
  Matrix H = layer.hessian;
  H.row(dead).setZero();
  H.col(dead).setZero();
  Matrix W = layer.weight;
  W.col(dead).setConstant(3.0f);  // large, so it would widen the grid if it counted
  const GptqOptions options = gptq_options(4, -1, false);
  const QuantizedLayer q = gptq_quantize(W, H, options);
  EXPECT_EQ(q.dead_columns, 1);
  for (Index r = 0; r < 12; ++r) {
    EXPECT_EQ(q.dequant(r, dead), 0.0f) << "row " << r;
    EXPECT_EQ(q.codes(r, dead), q.zeros(0, r)) << "row " << r;
  }
  ASSERT_EQ(q.events.size(), 1u);
  EXPECT_THAT(q.events[0], HasSubstr("dead"));

  // The other columns match GPTQ without that channel, at the same absolute damping:
  // the dead channel's diagonal counts as 1 in mean(diag H).
  std::vector<Index> kept;
  for (Index i = 0; i < 24; ++i) {
    if (i != dead) {
      kept.push_back(i);
    }
  }
  Matrix W_kept(12, 23);
  Matrix H_kept(23, 23);
  for (Index a = 0; a < 23; ++a) {
    W_kept.col(a) = W.col(kept[static_cast<size_t>(a)]);
    for (Index b = 0; b < 23; ++b) {
      H_kept(a, b) = H(kept[static_cast<size_t>(a)], kept[static_cast<size_t>(b)]);
    }
  }
  const double full_mean = (H_kept.diagonal().cast<double>().sum() + 1.0) / 24.0;
  GptqOptions kept_options = options;
  kept_options.percdamp = options.percdamp * full_mean / H_kept.diagonal().cast<double>().mean();
  const QuantizedLayer reduced = gptq_quantize(W_kept, H_kept, kept_options);
  for (Index a = 0; a < 23; ++a) {
    EXPECT_EQ(q.codes.col(kept[static_cast<size_t>(a)]), reduced.codes.col(a)) << "column " << a;
  }
  EXPECT_NEAR(q.output_error, reduced.output_error, 1e-5 * reduced.output_error);
}

// Two identical input channels seen by 4 tokens, with 5 features: H is singular. The
// entries are exact in float32, so the zero pivot is exactly 0 in any elimination order.
Matrix singular_hessian() {
  const float tokens[4][5] = {
      {1, 1, 1, 1, 1}, {1, 1, -1, 1, -1}, {1, 1, 1, -1, -1}, {1, 1, -1, -1, 1}};
  Matrix x(4, 5);
  for (Index t = 0; t < 4; ++t) {
    for (Index i = 0; i < 5; ++i) {
      x(t, i) = tokens[t][i];
    }
  }
  return x.transpose() * x;
}

TEST(Gptq, SingularHessianClimbsDampingLadder) {
  const Matrix H = singular_hessian();
  const Matrix W = small_layer(6, 5, 10).weight;
  GptqOptions options = gptq_options(4, -1, false);
  options.percdamp = 0.0;  // no damping, so the first factorization meets the zero pivot
  const QuantizedLayer q = gptq_quantize(W, H, options);
  ASSERT_EQ(q.damping_attempts.size(), 2u);
  EXPECT_FALSE(q.damping_attempts[0].succeeded);
  EXPECT_FALSE(q.damping_attempts[0].float64);
  EXPECT_EQ(q.damping_attempts[0].multiplier, 0.0);
  EXPECT_TRUE(q.damping_attempts[1].succeeded);
  EXPECT_EQ(q.damping_attempts[1].multiplier, 0.1);
  EXPECT_DOUBLE_EQ(q.damping, 0.1 * 4.0);  // mean(diag H) = 4
  EXPECT_FALSE(q.used_float64);
  EXPECT_FALSE(q.rtn_fallback);
  ASSERT_EQ(q.events.size(), 2u);
  EXPECT_THAT(q.events[0], HasSubstr("not positive definite"));
  EXPECT_THAT(q.events[1], HasSubstr("succeeded"));
}

TEST(Gptq, SingularHessianWithoutDampingFallsBackToRtn) {
  const Matrix H = singular_hessian();
  const Matrix W = small_layer(6, 5, 11).weight;
  GptqOptions options = gptq_options(4, -1, false);
  options.percdamp = 0.0;
  options.damping_ladder.clear();
  const QuantizedLayer q = gptq_quantize(W, H, options);
  ASSERT_EQ(q.damping_attempts.size(), 2u);
  EXPECT_FALSE(q.damping_attempts[0].float64);
  EXPECT_TRUE(q.damping_attempts[1].float64);
  EXPECT_FALSE(q.damping_attempts[1].succeeded);
  EXPECT_TRUE(q.rtn_fallback);
  const QuantizedLayer rtn = rtn_quantize(W, options.grid, &H);
  EXPECT_EQ(q.codes, rtn.codes);
  EXPECT_DOUBLE_EQ(q.output_error, rtn.output_error);
  ASSERT_FALSE(q.events.empty());
  EXPECT_THAT(q.events.back(), HasSubstr("fell back to RTN"));
}

// Unit diagonal and -0.3 everywhere else: the all-ones direction has eigenvalue
// 1 - 0.3 (in - 1) = -3.5 for 16 inputs, beyond the largest default ladder step
// (1 x mean(diag H) = 1), while the diagonal stays positive.
Matrix indefinite_hessian(Index in) {
  Matrix H = Matrix::Constant(in, in, -0.3f);
  H.diagonal().setOnes();
  return H;
}

TEST(Gptq, IndefiniteHessianTriesEveryDampingThenRtn) {
  const Matrix H = indefinite_hessian(16);
  ASSERT_TRUE((H.diagonal().array() > 0.0f).all());
  const Matrix W = small_layer(6, 16, 13).weight;
  const GptqOptions options = gptq_options(4, -1, false);
  const QuantizedLayer q = gptq_quantize(W, H, options);
  ASSERT_EQ(q.damping_attempts.size(), 6u);
  const double multipliers[] = {0.01, 0.1, 1.0, 0.01, 0.1, 1.0};
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(q.damping_attempts[i].multiplier, multipliers[i]) << "attempt " << i;
    EXPECT_EQ(q.damping_attempts[i].float64, i >= 3) << "attempt " << i;
    EXPECT_FALSE(q.damping_attempts[i].succeeded) << "attempt " << i;
  }
  EXPECT_TRUE(q.rtn_fallback);
  EXPECT_FALSE(q.used_float64);
  EXPECT_EQ(q.events.size(), 7u);  // six failed attempts and the fallback
  EXPECT_EQ(q.codes, rtn_quantize(W, options.grid).codes);
}

TEST(Gptq, DisabledFallbackListsEveryDamping) {
  const Matrix H = indefinite_hessian(16);
  const Matrix W = small_layer(6, 16, 14).weight;
  GptqOptions options = gptq_options(4, -1, false);
  options.allow_rtn_fallback = false;
  try {
    gptq_quantize(W, H, options);
    FAIL() << "expected NumericalError";
  } catch (const NumericalError& error) {
    EXPECT_THAT(error.what(), HasSubstr("float32 0.01, float32 0.1, float32 1, "
                                        "float64 0.01, float64 0.1, float64 1"));
    EXPECT_THAT(error.what(), HasSubstr("allow_rtn_fallback"));
  }
}

TEST(Gptq, Float64RetryAfterFloat32Fails) {
  // With a = 1 eliminated first, the second pivot is c - b^2. In float32 b^2 rounds up
  // to c exactly, giving a zero pivot; in float64 the pivot is 2^-24 > 0.
  //   b = 1 + 2^-12 + 2^-23, b^2 = 1 + 2^-11 + 2.5000x * 2^-23, c = 1 + 2^-11 + 3 * 2^-23.
  const float b = 1.0f + 0x1.0p-12f + 0x1.0p-23f;
  const float c = 1.0f + 0x1.0p-11f + 3.0f * 0x1.0p-23f;
  Matrix H(2, 2);
  H << c, b, b, 1.0f;  // the factorization eliminates the last channel first
  const Matrix W = small_layer(3, 2, 15).weight;
  GptqOptions options = gptq_options(4, -1, false);
  options.percdamp = 0.0;
  options.damping_ladder.clear();
  const QuantizedLayer q = gptq_quantize(W, H, options);
  ASSERT_EQ(q.damping_attempts.size(), 2u);
  EXPECT_FALSE(q.damping_attempts[0].succeeded);
  EXPECT_TRUE(q.damping_attempts[1].succeeded);
  EXPECT_TRUE(q.used_float64);
  EXPECT_FALSE(q.rtn_fallback);
  EXPECT_TRUE(q.dequant.allFinite());
}

TEST(Gptq, RejectsNonFiniteWeight) {
  SyntheticLayer layer = small_layer(6, 8, 16);
  layer.weight(1, 2) = std::numeric_limits<float>::quiet_NaN();
  try {
    gptq_quantize(layer.weight, layer.hessian, GptqOptions{});
    FAIL() << "expected DataError";
  } catch (const DataError& error) {
    EXPECT_THAT(error.what(), HasSubstr("weight"));
    EXPECT_THAT(error.what(), HasSubstr("[1, 2]"));
  }
}

TEST(Gptq, RejectsNonFiniteHessian) {
  SyntheticLayer layer = small_layer(6, 8, 17);
  layer.hessian(3, 0) = std::numeric_limits<float>::infinity();
  try {
    gptq_quantize(layer.weight, layer.hessian, GptqOptions{});
    FAIL() << "expected DataError";
  } catch (const DataError& error) {
    EXPECT_THAT(error.what(), HasSubstr("Hessian"));
    EXPECT_THAT(error.what(), HasSubstr("[3, 0]"));
  }
}

TEST(Gptq, RejectsNegativeHessianDiagonal) {
  SyntheticLayer layer = small_layer(6, 8, 18);
  layer.hessian(4, 4) = -1.0f;
  try {
    gptq_quantize(layer.weight, layer.hessian, GptqOptions{});
    FAIL() << "expected DataError";
  } catch (const DataError& error) {
    EXPECT_THAT(error.what(), HasSubstr("H(4, 4)"));
  }
}

TEST(Gptq, RejectsMismatchedShapes) {
  const SyntheticLayer layer = small_layer(6, 8, 19);
  const Matrix H = Matrix::Identity(7, 7);
  EXPECT_THROW(gptq_quantize(layer.weight, H, GptqOptions{}), DataError);
}

TEST(Gptq, RejectsEmptyWeight) {
  const Matrix W(4, 0);
  const Matrix H(0, 0);
  EXPECT_THROW(gptq_quantize(W, H, GptqOptions{}), DataError);
}

TEST(Gptq, ValidateRejectsInvalidOptions) {
  struct Case {
    GptqOptions options;
    const char* key;
  };
  std::vector<Case> cases;
  auto add = [&cases](const char* key, auto change) {
    GptqOptions options;
    change(options);
    cases.push_back({options, key});
  };
  add("percdamp", [](GptqOptions& o) { o.percdamp = -0.1; });
  add("block_size", [](GptqOptions& o) { o.block_size = 0; });
  add("static_groups", [](GptqOptions& o) { o.static_groups = true; });
  add("damping_ladder", [](GptqOptions& o) { o.damping_ladder = {0.1, 0.1}; });
  add("damping_ladder", [](GptqOptions& o) { o.damping_ladder = {0.005}; });
  add("bits", [](GptqOptions& o) { o.grid.bits = 1; });
  for (const Case& c : cases) {
    try {
      c.options.validate();
      ADD_FAILURE() << "expected ConfigError for " << c.key;
    } catch (const ConfigError& error) {
      EXPECT_THAT(error.what(), HasSubstr(c.key));
    }
  }
  EXPECT_NO_THROW(GptqOptions{}.validate());
}

}  // namespace
}  // namespace magrq
