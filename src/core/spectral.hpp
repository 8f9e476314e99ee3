// An upper estimate of the largest eigenvalue of a symmetric positive semi-definite
// matrix, for the step size 1 / L of proximal gradient methods such as MagR.
#pragma once

#include "core/types.hpp"

namespace magrq {

// Options of the Lanczos estimate.
struct LanczosOptions {
  // Krylov dimension k, which is also the number of matrix-vector products. Range >= 1,
  // capped at n. With the default 100 steps, the probability that the 1% margin is too
  // small stays below 1e-5 for n up to 10^6 (see spectral.cpp).
  int max_steps = 100;
  // Relative margin added above the Lanczos bound. Range [0, 1]. The default 0.01 costs
  // 1% of step length.
  double relative_margin = 0.01;

  // Throws ConfigError naming max_steps or relative_margin when out of range.
  void validate() const;
};

// The Lanczos results behind the estimate.
struct LambdaMaxEstimate {
  double ritz_value = 0.0;     // largest Ritz value theta, a lower bound of lambda_max
  double residual_norm = 0.0;  // ||H y - theta y|| for the unit Ritz vector y of theta
  double upper_bound = 0.0;    // the value that estimate_lambda_max returns
  int steps = 0;               // matrix-vector products used
};

// Runs Lanczos with full reorthogonalization from a fixed pseudo-random start vector, in
// double, and returns theta, its residual and the safe upper bound
// min((theta + residual) * (1 + relative_margin), ||H||_inf).
// H must be square (checked), symmetric and PSD (not checked). H = 0 and the 0 x 0 matrix
// give all zeros, and a 1 x 1 matrix gives its entry. Deterministic: the same H gives the
// same result on any thread count. O(k n^2 + k^2 n) time, O(k n) memory in double.
LambdaMaxEstimate lanczos_lambda_max(const Matrix& H, const LanczosOptions& options = {});

// Returns lanczos_lambda_max(H, options).upper_bound: a value >= lambda_max(H) with high
// probability and at most 1% above it (default margin) once Lanczos has converged.
double estimate_lambda_max(const Matrix& H, const LanczosOptions& options = {});

}  // namespace magrq
