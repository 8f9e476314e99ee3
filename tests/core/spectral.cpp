// Tests of the Lanczos upper estimate of lambda_max against Eigen's dense eigensolver.
#include "core/spectral.hpp"

#include <gtest/gtest.h>
#include <omp.h>

#include <Eigen/Eigenvalues>

#include <random>
#include <string>

#include "core/error.hpp"

namespace magrq {
namespace {

// H = X^T X for X (tokens x n) with normal entries; the columns in `outliers` are scaled by
// outlier_scale, as large activation channels do in a language model.
Matrix gram_matrix(Index tokens, Index n, unsigned seed, std::vector<Index> outliers = {},
                   float outlier_scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Matrix X(tokens, n);
  for (Index i = 0; i < X.size(); ++i) {
    X.data()[i] = normal(rng);
  }
  for (const Index column : outliers) {
    X.col(column) *= outlier_scale;
  }
  return X.transpose() * X;
}

double true_lambda_max(const Matrix& H) {
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver(H.cast<double>(),
                                                       Eigen::EigenvaluesOnly);
  return solver.eigenvalues().maxCoeff();
}

// The estimate must be at or above lambda_max, and within the 1% margin plus Lanczos
// rounding above it. The Ritz value must not exceed lambda_max beyond double rounding of
// the float matrix's products (1e-9 relative).
void expect_tight_upper_bound(const Matrix& H, const std::string& label) {
  const double expected = true_lambda_max(H);
  const LambdaMaxEstimate estimate = lanczos_lambda_max(H);
  EXPECT_GE(estimate.upper_bound, expected) << label;
  EXPECT_LE(estimate.upper_bound, expected * 1.0101 + 1e-12) << label;
  EXPECT_LE(estimate.ritz_value, expected * (1.0 + 1e-9)) << label;
  EXPECT_GE(estimate.ritz_value, expected * (1.0 - 1e-6)) << label;
  EXPECT_EQ(estimate_lambda_max(H), estimate.upper_bound) << label;
}

TEST(Spectral, MatchesEigenSolverOnRandomPsd) {
  for (const Index n : {2, 5, 30, 120, 300}) {
    expect_tight_upper_bound(gram_matrix(3 * n, n, 100 + static_cast<unsigned>(n)),
                             "n=" + std::to_string(n));
  }
}

TEST(Spectral, RankDeficientHessian) {
  // Fewer tokens than channels: rank n / 4, the rest of the spectrum is 0.
  expect_tight_upper_bound(gram_matrix(20, 80, 7), "rank 20 of 80");
  expect_tight_upper_bound(gram_matrix(1, 50, 8), "rank 1 of 50");
}

TEST(Spectral, OutlierChannels) {
  expect_tight_upper_bound(gram_matrix(400, 200, 9, {3, 77, 150}, 30.0f), "3 outliers");
}

TEST(Spectral, ClusteredTopEigenvalues) {
  // Top eigenvalues 1, 1 - 1e-7, 1 - 2e-7 in a random basis: Lanczos cannot separate them
  // in 100 steps, but the bound must still cover the largest.
  const Index n = 150;
  std::mt19937 rng(10);
  std::normal_distribution<double> normal(0.0, 1.0);
  Eigen::MatrixXd random(n, n);
  for (Index i = 0; i < random.size(); ++i) {
    random.data()[i] = normal(rng);
  }
  const Eigen::HouseholderQR<Eigen::MatrixXd> qr(random);
  const Eigen::MatrixXd basis = qr.householderQ();
  Eigen::VectorXd eigenvalues(n);
  for (Index i = 0; i < n; ++i) {
    eigenvalues[i] = i < 3 ? 1.0 - 1e-7 * static_cast<double>(i) : 0.5 * static_cast<double>(i) / n;
  }
  const Matrix H = (basis * eigenvalues.asDiagonal() * basis.transpose()).cast<float>();
  expect_tight_upper_bound(H, "clustered top");
}

TEST(Spectral, NeverBelowTrueValue) {
  for (unsigned seed = 0; seed < 40; ++seed) {
    const Index n = 10 + 4 * static_cast<Index>(seed);
    const Index tokens = seed % 3 == 0 ? n / 3 + 1 : 2 * n;
    const float outlier_scale = 1.0f + static_cast<float>(seed);
    const Matrix H = gram_matrix(tokens, n, 1000 + seed, {0, n / 2}, outlier_scale);
    EXPECT_GE(estimate_lambda_max(H), true_lambda_max(H)) << "seed " << seed;
  }
}

TEST(Spectral, ZeroMatrixGivesZero) {
  const LambdaMaxEstimate estimate = lanczos_lambda_max(Matrix::Zero(12, 12));
  EXPECT_EQ(estimate.upper_bound, 0.0);
  EXPECT_EQ(estimate.ritz_value, 0.0);
  EXPECT_EQ(estimate.steps, 0);
  EXPECT_EQ(estimate_lambda_max(Matrix(0, 0)), 0.0);
}

TEST(Spectral, OneByOneIsExact) {
  Matrix H(1, 1);
  H(0, 0) = 2.5f;
  const LambdaMaxEstimate estimate = lanczos_lambda_max(H);
  EXPECT_DOUBLE_EQ(estimate.ritz_value, 2.5);
  EXPECT_DOUBLE_EQ(estimate.upper_bound, 2.5);
  EXPECT_EQ(estimate.steps, 1);
}

TEST(Spectral, DiagonalIsCappedAtExactValue) {
  Matrix H = Matrix::Zero(40, 40);
  for (Index i = 0; i < 40; ++i) {
    H(i, i) = static_cast<float>(i + 1);
  }
  EXPECT_DOUBLE_EQ(estimate_lambda_max(H), 40.0);
}

TEST(Spectral, SameResultOnOneAndTwoThreads) {
  const Matrix H = gram_matrix(500, 250, 21);  // above the size at which the products go parallel
  const int threads_before = omp_get_max_threads();
  omp_set_num_threads(1);
  const LambdaMaxEstimate one = lanczos_lambda_max(H);
  omp_set_num_threads(2);
  const LambdaMaxEstimate two = lanczos_lambda_max(H);
  omp_set_num_threads(threads_before);
  EXPECT_EQ(one.upper_bound, two.upper_bound);
  EXPECT_EQ(one.ritz_value, two.ritz_value);
  EXPECT_EQ(one.steps, two.steps);
}

TEST(Spectral, InvalidOptionsRaiseConfigError) {
  const Matrix H = Matrix::Identity(3, 3);
  LanczosOptions options;
  options.max_steps = 0;
  EXPECT_THROW(lanczos_lambda_max(H, options), ConfigError);
  options = LanczosOptions{};
  options.relative_margin = -0.1;
  EXPECT_THROW(lanczos_lambda_max(H, options), ConfigError);
  options.relative_margin = std::nan("");
  try {
    lanczos_lambda_max(H, options);
    ADD_FAILURE() << "NaN relative_margin was accepted";
  } catch (const ConfigError& error) {
    EXPECT_NE(std::string(error.what()).find("relative_margin"), std::string::npos);
  }
}

TEST(Spectral, NonSquareMatrixIsRejected) {
  EXPECT_THROW(lanczos_lambda_max(Matrix::Zero(3, 4)), InternalError);
}

}  // namespace
}  // namespace magrq
