// Tests of the MagR solver against an independent double-precision reference loop, its
// monotonicity, its handling of dead input channels and its input checks.
#include "core/magr.hpp"

#include <gtest/gtest.h>

#include <Eigen/Eigenvalues>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>

#include "core/error.hpp"

namespace magrq {
namespace {

struct Layer {
  Matrix W0;
  Matrix H;
};

// A layer with normal weights and H = X^T X from normal activations (tokens x in), whose
// columns in `outliers` are scaled by outlier_scale like the large activation channels
// of a language model.
Layer random_layer(Index out, Index in, Index tokens, unsigned seed,
                   const std::vector<Index>& outliers = {}, float outlier_scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Matrix X(tokens, in);
  for (Index i = 0; i < X.size(); ++i) {
    X.data()[i] = normal(rng);
  }
  for (const Index column : outliers) {
    X.col(column) *= outlier_scale;
  }
  Layer layer{Matrix(out, in), X.transpose() * X};
  for (Index i = 0; i < layer.W0.size(); ++i) {
    layer.W0.data()[i] = normal(rng);
  }
  return layer;
}

double exact_lambda_max(const Matrix& H) {
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver(H.cast<double>(),
                                                       Eigen::EigenvaluesOnly);
  return solver.eigenvalues().maxCoeff();
}

// prox of weight * ||.||_inf in double, by bisection on the clipping level tau:
// sum_i max(|v_i| - tau, 0) = weight. Written apart from src/core/prox.cpp on purpose.
void reference_prox(Eigen::Ref<Eigen::RowVectorXd, 0, Eigen::InnerStride<>> v, double weight) {
  if (v.cwiseAbs().sum() <= weight) {
    v.setZero();
    return;
  }
  double low = 0.0;
  double high = v.cwiseAbs().maxCoeff();
  // 60 halvings shrink the bracket to 1e-18 of max|v|, below double rounding.
  for (int i = 0; i < 60; ++i) {
    const double middle = 0.5 * (low + high);
    const double excess = (v.cwiseAbs().array() - middle).max(0.0).sum();
    (excess > weight ? low : high) = middle;
  }
  const double tau = 0.5 * (low + high);
  v = v.cwiseMax(-tau).cwiseMin(tau);
}

Index group_width(Index cols, Index group_size) {
  return group_size == -1 ? cols : group_size;
}

double reference_penalty(const Eigen::MatrixXd& W, Index group_size) {
  const Index width = group_width(W.cols(), group_size);
  double total = 0.0;
  for (Index r = 0; r < W.rows(); ++r) {
    for (Index start = 0; start < W.cols(); start += width) {
      total += W.row(r).segment(start, std::min(width, W.cols() - start)).cwiseAbs().maxCoeff();
    }
  }
  return total;
}

// The MagR objective in double with the exact lambda_max.
double reference_objective(const Matrix& W, const Layer& layer, double alpha, Index group_size) {
  const Eigen::MatrixXd D = (W - layer.W0).cast<double>();
  const Eigen::MatrixXd Hn = layer.H.cast<double>() / exact_lambda_max(layer.H);
  return 0.5 * (D * Hn).cwiseProduct(D).sum() +
         alpha * reference_penalty(W.cast<double>(), group_size);
}

// Plain proximal gradient in double with the exact lambda_max and step 1:
// W <- prox_{alpha ||.||_inf}(W - (W - W0) Hn), row by row and group by group.
Eigen::MatrixXd reference_solve(const Layer& layer, double alpha, Index group_size,
                                int iterations) {
  const Eigen::MatrixXd W0 = layer.W0.cast<double>();
  const Eigen::MatrixXd Hn = layer.H.cast<double>() / exact_lambda_max(layer.H);
  const Index width = group_width(W0.cols(), group_size);
  Eigen::MatrixXd W = W0;
  for (int k = 0; k < iterations; ++k) {
    W -= (W - W0) * Hn;
    for (Index r = 0; r < W.rows(); ++r) {
      for (Index start = 0; start < W.cols(); start += width) {
        reference_prox(W.row(r).segment(start, std::min(width, W.cols() - start)), alpha);
      }
    }
  }
  return W;
}

MagrOptions make_options(double alpha, Index group_size, int iterations, bool accelerated) {
  MagrOptions options;
  options.alpha = alpha;
  options.group_size = group_size;
  options.iterations = iterations;
  options.accelerated = accelerated;
  return options;
}

TEST(Magr, MatchesLongReferenceSolve) {
  // A small, well-conditioned layer with lambda_max / lambda_min below 10. The reference
  // contracts by a factor of at most 1 - 1/10 per iteration, so 5000 iterations reach the
  // unique minimizer to double precision. The float solver is then limited by its own
  // rounding.
  const Layer layer = random_layer(5, 10, 60, 1);
  const Eigen::VectorXd spectrum =
      Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd>(layer.H.cast<double>()).eigenvalues();
  ASSERT_LT(spectrum.maxCoeff() / spectrum.minCoeff(), 10.0);
  for (const Index group_size : {Index{-1}, Index{4}}) {
    for (const double alpha : {1e-3, 0.05, 0.5}) {
      const Eigen::MatrixXd expected = reference_solve(layer, alpha, group_size, 5000);
      const double expected_objective =
          reference_objective(expected.cast<float>(), layer, alpha, group_size);
      for (const bool accelerated : {false, true}) {
        const std::string label = "group_size=" + std::to_string(group_size) +
                                  " alpha=" + std::to_string(alpha) +
                                  (accelerated ? " accelerated" : " plain");
        const MagrResult result =
            magr_solve(layer.W0, layer.H, make_options(alpha, group_size, 3000, accelerated));
        // Float iterates: objective within 1e-5 relative, weights within 1e-4 of entries
        // of size about 1.
        EXPECT_NEAR(result.objective_after, expected_objective, 1e-5 * expected_objective)
            << label;
        EXPECT_LE((result.weight.cast<double>() - expected).cwiseAbs().maxCoeff(), 1e-4) << label;
      }
    }
  }
}

TEST(Magr, PlainObjectiveNeverIncreases) {
  const Layer layer = random_layer(16, 40, 120, 2, {3, 17}, 20.0f);
  for (const Index group_size : {Index{-1}, Index{8}}) {
    const MagrResult result =
        magr_solve(layer.W0, layer.H, make_options(0.01, group_size, 200, false));
    ASSERT_EQ(result.objective_history.size(), 200u);
    // The objective is summed in double from float iterates: 1e-6 relative covers that
    // rounding, far below the decrease per iteration early on.
    double previous = result.objective_before;
    for (std::size_t k = 0; k < result.objective_history.size(); ++k) {
      EXPECT_LE(result.objective_history[k], previous * (1.0 + 1e-6))
          << "group_size " << group_size << " iteration " << k;
      previous = result.objective_history[k];
    }
    EXPECT_LT(result.objective_after, 0.9 * result.objective_before) << group_size;
    EXPECT_EQ(result.objective_after, result.objective_history.back());
  }
}

TEST(Magr, ReportedObjectivesMatchIndependentEvaluation) {
  const Layer layer = random_layer(8, 24, 50, 3, {5}, 10.0f);
  for (const Index group_size : {Index{-1}, Index{7}}) {
    for (const bool accelerated : {false, true}) {
      const double alpha = 0.02;
      const MagrResult result =
          magr_solve(layer.W0, layer.H, make_options(alpha, group_size, 50, accelerated));
      EXPECT_NEAR(result.objective_before,
                  alpha * reference_penalty(layer.W0.cast<double>(), group_size),
                  1e-9 * result.objective_before);
      EXPECT_NEAR(result.objective_after,
                  reference_objective(result.weight, layer, alpha, group_size),
                  1e-6 * result.objective_after);
      EXPECT_NEAR(result.lambda_max, exact_lambda_max(layer.H),
                  1e-6 * exact_lambda_max(layer.H));
      EXPECT_EQ(result.iterations, 50);
    }
  }
}

TEST(Magr, MaxAbsDropsOnOutlierChannels) {
  // Outlier input channels dominate lambda_max, so after normalisation every other
  // direction is cheap to change and the penalty pulls the row maxima down.
  const Layer layer = random_layer(32, 64, 256, 4, {2, 30, 51}, 25.0f);
  const MagrResult result = magr_solve(layer.W0, layer.H, MagrOptions{});
  double mean_ratio = 0.0;
  for (Index r = 0; r < layer.W0.rows(); ++r) {
    // Each row is its own problem and plain proximal gradient never increases its
    // objective, so alpha * max|w| cannot end above its start (plus float rounding).
    EXPECT_LE(result.max_abs_after[r], result.max_abs_before[r] * (1.0f + 1e-6f)) << "row " << r;
    EXPECT_FLOAT_EQ(result.max_abs_before[r], layer.W0.row(r).cwiseAbs().maxCoeff());
    EXPECT_FLOAT_EQ(result.max_abs_after[r], result.weight.row(r).cwiseAbs().maxCoeff());
    mean_ratio += result.max_abs_after[r] / result.max_abs_before[r];
  }
  mean_ratio /= static_cast<double>(layer.W0.rows());
  // The default alpha lowers the row maxima of this layer by about 5% on average.
  EXPECT_LT(mean_ratio, 0.97);
}

TEST(Magr, AcceleratedReachesPlainObjective) {
  const Layer layer = random_layer(32, 96, 400, 5, {1, 40, 77}, 30.0f);
  for (const Index group_size : {Index{-1}, Index{32}}) {
    const double alpha = MagrOptions::default_alpha(group_size);
    const MagrResult plain =
        magr_solve(layer.W0, layer.H, make_options(alpha, group_size, 200, false));
    const MagrResult fast =
        magr_solve(layer.W0, layer.H, make_options(alpha, group_size, 200, true));
    EXPECT_LE(fast.objective_after, plain.objective_after * (1.0 + 1e-6)) << group_size;
    // Accelerated objectives never increase either: increasing momentum steps are undone.
    for (std::size_t k = 1; k < fast.objective_history.size(); ++k) {
      EXPECT_LE(fast.objective_history[k], fast.objective_history[k - 1] * (1.0 + 1e-6))
          << "group_size " << group_size << " iteration " << k;
    }
    const auto reached = std::find_if(
        fast.objective_history.begin(), fast.objective_history.end(),
        [&](double f) { return f <= plain.objective_after * (1.0 + 1e-6); });
    ASSERT_NE(reached, fast.objective_history.end()) << group_size;
    // bench_magr measures the time target (a third of the plain solver's time). This
    // iteration count is the deterministic part of it.
    EXPECT_LE(reached - fast.objective_history.begin() + 1, 100) << group_size;
  }
}

TEST(Magr, GroupModePenalizesEachGroup) {
  // With groups, every group's maximum is penalised, so the result differs from the
  // per-channel one and matches its own long reference (checked above); here: a ragged
  // last group (in = 10, group 4) is penalised on its own.
  const Layer layer = random_layer(4, 10, 50, 6);
  const MagrResult grouped = magr_solve(layer.W0, layer.H, make_options(0.2, 4, 300, true));
  const MagrResult per_row = magr_solve(layer.W0, layer.H, make_options(0.2, -1, 300, true));
  EXPECT_GT((grouped.weight - per_row.weight).cwiseAbs().maxCoeff(), 1e-3);
  // The ragged group [8, 10) shrinks: its penalty term is part of the objective.
  for (Index r = 0; r < layer.W0.rows(); ++r) {
    EXPECT_LT(grouped.weight.row(r).segment(8, 2).cwiseAbs().maxCoeff(),
              layer.W0.row(r).segment(8, 2).cwiseAbs().maxCoeff())
        << "row " << r;
  }
}

// A layer whose input channel `dead` was 0 on every token: row and column of H are 0.
Layer layer_with_dead_channel(Index dead) {
  Layer layer = random_layer(3, 12, 60, 7);
  layer.H.row(dead).setZero();
  layer.H.col(dead).setZero();
  return layer;
}

TEST(Magr, DeadColumnInsideRowMaxIsUnchanged) {
  // The gradient (W - W0) H is exactly 0 in a dead column, and the prox leaves entries
  // below the clipping level alone, so small dead weights come back bit for bit.
  const Index dead = 5;
  Layer layer = layer_with_dead_channel(dead);
  layer.W0.col(dead) << 0.01f, -0.02f, 0.0f;
  const MagrResult result = magr_solve(layer.W0, layer.H, MagrOptions{});
  for (Index r = 0; r < layer.W0.rows(); ++r) {
    EXPECT_EQ(result.weight(r, dead), layer.W0(r, dead)) << "row " << r;
  }
}

TEST(Magr, DeadColumnOutlierShrinksOnlyByProx) {
  // An outlier of 50 in a dead column is the only entry above the clipping level, so each
  // iteration lowers it by exactly the prox weight step * alpha, with
  // step = lambda_max / upper bound in [1 / 1.0101, 1] (Lanczos margin of 1%).
  const Index dead = 5;
  Layer layer = layer_with_dead_channel(dead);
  layer.W0(1, dead) = 50.0f;
  const double alpha = 0.01;
  const int iterations = 30;
  const MagrResult result =
      magr_solve(layer.W0, layer.H, make_options(alpha, -1, iterations, false));
  const double drop = 50.0 - result.weight(1, dead);
  // Each float subtraction from 50 rounds by up to half an ulp (1.9e-6).
  const double rounding = iterations * 2e-6;
  EXPECT_LE(drop, iterations * alpha + rounding);
  EXPECT_GE(drop, iterations * alpha / 1.0101 - rounding);
}

TEST(Magr, DeadColumnOutlierEndsAtRowMax) {
  // A dead entry has no quadratic cost: every value with |w_j| <= max|w| of its row is
  // equally good. Both solvers move it only by the prox, so an outlier is clipped down
  // until it meets the rest of the row and keeps its sign.
  const Index dead = 5;
  Layer layer = layer_with_dead_channel(dead);
  layer.W0(1, dead) = -8.0f;
  for (const bool accelerated : {false, true}) {
    const MagrResult result =
        magr_solve(layer.W0, layer.H, make_options(0.5, -1, 2000, accelerated));
    EXPECT_LT(result.weight(1, dead), 0.0f) << accelerated;
    EXPECT_NEAR(-result.weight(1, dead), result.max_abs_after[1], 1e-5f) << accelerated;
    EXPECT_LT(result.max_abs_after[1], 8.0f) << accelerated;
  }
}

TEST(Magr, AlphaZeroReturnsInput) {
  const Layer layer = random_layer(4, 8, 20, 8);
  const MagrResult result = magr_solve(layer.W0, layer.H, make_options(0.0, -1, 100, false));
  EXPECT_EQ(result.weight, layer.W0);
  EXPECT_EQ(result.iterations, 0);
  EXPECT_EQ(result.objective_before, 0.0);
  EXPECT_EQ(result.objective_after, 0.0);
  EXPECT_EQ(result.max_abs_after, result.max_abs_before);
}

TEST(Magr, ZeroIterationsReturnsInput) {
  const Layer layer = random_layer(4, 8, 20, 9);
  const MagrResult result = magr_solve(layer.W0, layer.H, make_options(0.1, -1, 0, true));
  EXPECT_EQ(result.weight, layer.W0);
  EXPECT_EQ(result.iterations, 0);
  EXPECT_EQ(result.objective_after, result.objective_before);
  EXPECT_GT(result.objective_before, 0.0);
}

TEST(Magr, ToleranceStopsEarly) {
  const Layer layer = random_layer(8, 32, 100, 10, {4}, 10.0f);
  MagrOptions options = make_options(0.01, -1, 1000, false);
  options.tolerance = 1e-4;
  const MagrResult result = magr_solve(layer.W0, layer.H, options);
  ASSERT_LT(result.iterations, 1000);
  ASSERT_GE(result.iterations, 2);
  const auto& history = result.objective_history;
  const double last_change = history[history.size() - 2] - history.back();
  EXPECT_LE(std::fabs(last_change), 1e-4 * history[history.size() - 2]);
  const double change_before = history[history.size() - 3] - history[history.size() - 2];
  EXPECT_GT(change_before, 1e-4 * history[history.size() - 3]);
}

TEST(Magr, HessianScaleDoesNotChangeResult) {
  // alpha is stated on Hn = H / lambda_max, so scaling H by 1000 must not change W.
  Layer layer = random_layer(6, 20, 60, 11, {2}, 8.0f);
  const MagrResult unscaled = magr_solve(layer.W0, layer.H, make_options(0.05, -1, 100, false));
  layer.H *= 1000.0f;
  const MagrResult scaled = magr_solve(layer.W0, layer.H, make_options(0.05, -1, 100, false));
  EXPECT_LE((scaled.weight - unscaled.weight).cwiseAbs().maxCoeff(), 1e-5f);
  EXPECT_NEAR(scaled.lambda_max, 1000.0 * unscaled.lambda_max, 1e-6 * scaled.lambda_max);
}

TEST(Magr, DefaultAlphaFollowsPublishedValues) {
  EXPECT_EQ(MagrOptions::default_alpha(-1), 1e-3);
  EXPECT_EQ(MagrOptions::default_alpha(128), 1e-4);
  EXPECT_EQ(MagrOptions{}.alpha, 1e-3);
  EXPECT_EQ(MagrOptions{}.iterations, 150);
}

TEST(Magr, NanInWeightRaisesDataErrorNamingIndex) {
  Layer layer = random_layer(4, 8, 20, 12);
  layer.W0(1, 2) = std::numeric_limits<float>::quiet_NaN();
  layer.W0(3, 0) = std::numeric_limits<float>::quiet_NaN();
  try {
    magr_solve(layer.W0, layer.H, MagrOptions{});
    FAIL() << "NaN weight was accepted";
  } catch (const DataError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("weight"), std::string::npos) << message;
    EXPECT_NE(message.find("[1, 2]"), std::string::npos) << message;
  }
}

TEST(Magr, InfInHessianRaisesDataErrorNamingIndex) {
  Layer layer = random_layer(4, 8, 20, 13);
  layer.H(3, 0) = std::numeric_limits<float>::infinity();
  try {
    magr_solve(layer.W0, layer.H, MagrOptions{});
    FAIL() << "Inf in the Hessian was accepted";
  } catch (const DataError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("Hessian"), std::string::npos) << message;
    EXPECT_NE(message.find("[3, 0]"), std::string::npos) << message;
  }
}

TEST(Magr, ShapeMismatchRaisesDataError) {
  const Layer layer = random_layer(4, 8, 20, 14);
  EXPECT_THROW(magr_solve(layer.W0, Matrix::Identity(7, 7), MagrOptions{}), DataError);
  EXPECT_THROW(magr_solve(layer.W0, Matrix::Identity(8, 9), MagrOptions{}), DataError);
}

TEST(Magr, ZeroHessianRaisesDataError) {
  const Layer layer = random_layer(4, 8, 20, 15);
  try {
    magr_solve(layer.W0, Matrix::Zero(8, 8), MagrOptions{});
    FAIL() << "an all-zero Hessian was accepted";
  } catch (const DataError& error) {
    EXPECT_NE(std::string(error.what()).find("Hessian"), std::string::npos) << error.what();
  }
}

TEST(Magr, InvalidOptionsRaiseConfigErrorNamingKey) {
  struct Case {
    MagrOptions options;
    std::string expected;  // key and value as the message must show them
  };
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<Case> cases(8);
  cases[0].options.alpha = -1.0;
  cases[0].expected = "alpha = -1";
  cases[1].options.alpha = nan;
  cases[1].expected = "alpha = nan";
  cases[2].options.alpha = inf;
  cases[2].expected = "alpha = inf";
  cases[3].options.group_size = 0;
  cases[3].expected = "group_size = 0";
  cases[4].options.group_size = -2;
  cases[4].expected = "group_size = -2";
  cases[5].options.iterations = -1;
  cases[5].expected = "iterations = -1";
  cases[6].options.tolerance = -0.5;
  cases[6].expected = "tolerance = -0.5";
  cases[7].options.tolerance = nan;
  cases[7].expected = "tolerance = nan";

  const Layer layer = random_layer(2, 4, 10, 16);
  for (const Case& test_case : cases) {
    try {
      magr_solve(layer.W0, layer.H, test_case.options);
      ADD_FAILURE() << test_case.expected << " was accepted";
    } catch (const ConfigError& error) {
      EXPECT_NE(std::string(error.what()).find(test_case.expected), std::string::npos)
          << error.what();
    }
  }
}

}  // namespace
}  // namespace magrq
