// MagR, weight magnitude reduction before quantization (Zhang et al., "MagR: Weight
// Magnitude Reduction for Enhancing Post-Training Quantization", arXiv 2406.00800).
//
// MagR replaces the weight W0 (out x in) of a linear layer by the solution of
//   min_W  f(W) = 1/2 tr((W - W0) Hn (W - W0)^T) + alpha * sum_rows sum_groups ||w_g||_inf
// with Hn = H / lambda_max(H), H the layer's Hessian X^T X (in x in). The quadratic term
// is the change of the layer's output on the calibration inputs, and the penalty lowers
// the largest magnitude of each row (or group), which narrows the range the quantizer has
// to cover. Each row is its own problem; the rows share Hn, so one GEMM per iteration
// gives every row's gradient. Stating alpha on Hn, whose largest eigenvalue is 1, follows
// the published MagR code, so alpha means the same for any Hessian scaling.
#pragma once

#include <span>
#include <vector>

#include "core/types.hpp"

namespace magrq {

// Options of the MagR solver.
struct MagrOptions {
  // Weight of the l-infinity penalty, in units of the normalised Hn. Range: finite and
  // >= 0, where 0 returns W0 unchanged. The default 1e-3 is the published per-channel
  // value; the published per-group value is 1e-4 (see default_alpha).
  double alpha = 1e-3;
  // Columns per penalty group: -1 for one group per output row, or a positive count. The
  // last group of a row is shorter when group_size does not divide in_features.
  Index group_size = -1;
  // Maximum number of proximal gradient iterations, one GEMM each. Range >= 0, where 0
  // returns W0 unchanged. The published MagR code runs 200 per channel and 150 per group.
  int iterations = 150;
  // FISTA with adaptive restart instead of plain proximal gradient. It reaches a given
  // objective in several times fewer iterations on ill-conditioned Hessians but keeps two
  // more out x in matrices (five in all, against three).
  bool accelerated = false;
  // Stop early once an accepted step changes f by at most tolerance * f (relative change).
  // Range: finite and >= 0. 0 runs all iterations.
  double tolerance = 0.0;

  // Returns the published default alpha: 1e-3 for group_size = -1 (per channel) and 1e-4
  // for any positive group size.
  static double default_alpha(Index group_size);

  // Throws ConfigError naming the key (alpha, group_size, iterations or tolerance) and its
  // value when it is out of range.
  void validate() const;
};

// MagR output. Objectives are f above, on the normalised Hn.
struct MagrResult {
  Matrix weight;                 // the solution, out x in
  double objective_before = 0.0; // f(W0) = alpha * penalty(W0): the quadratic term is 0
  double objective_start = 0.0;  // f of the first iterate: objective_before unless warm-started
  double objective_after = 0.0;  // f(weight)
  Vector max_abs_before;         // max_j |W0(i, j)| per output row i
  Vector max_abs_after;          // max_j |weight(i, j)| per output row i
  int iterations = 0;            // iterations run, at most options.iterations
  // The Lanczos estimate of lambda_max(H) that defines Hn = H / lambda_max. 0 when the
  // solver returned W0 without computing it (alpha = 0, iterations = 0 or an empty W).
  double lambda_max = 0.0;
  std::vector<double> objective_history;  // f of the current iterate after each iteration
  std::vector<double> iteration_seconds;  // wall time of each iteration (GEMM and row passes)
  std::vector<double> gemm_seconds;       // wall time of the GEMM within each iteration
  int restarts = 0;        // accelerated only: momentum resets by the gradient test
  int rejected_steps = 0;  // accelerated only: momentum steps undone because f increased
};

// Runs MagR on one layer. Throws DataError unless W0 is out x in and H is in x in. Also
// throws DataError when W0 or H has a NaN or Inf, naming "weight" or "Hessian" and the
// first bad index, and when H is zero: no input ever reached the layer, so Hn does not
// exist. Throws ConfigError for invalid options.
//
// Plain solver: W <- prox_{step * alpha * ||.||_inf}(W - step * (W - W0) Hn), with
// step = 1 / L and L >= lambda_max(Hn) from the Lanczos upper bound, so f never
// increases. Accelerated solver: FISTA (Beck and Teboulle, 2009) with the gradient restart
// test of O'Donoghue and Candes (2015) and a monotone safeguard that undoes a momentum
// step when f increased. Both run one GEMM (out x in times in x in) per iteration; the
// prox and the other row passes are O(out * in).
MagrResult magr_solve(const Matrix& W0, const Matrix& H, const MagrOptions& options);

// One layer's MagR problem, set up once for several solves on the same W0 and H (the
// alpha search): the Lanczos estimate of lambda_max(H) and the dead columns are computed
// in the constructor. W0 and H are referenced, not copied: they must outlive the object.
class MagrProblem {
 public:
  // Throws DataError for mismatched shapes, NaN or Inf, or an all-zero H (as magr_solve).
  MagrProblem(const Matrix& W0, const Matrix& H);

  // Solves with a penalty weight per row, alpha_i = options.alpha * row_scale[i] (every
  // alpha_i = options.alpha when row_scale is empty), from `start` instead of W0 when
  // start is not null. Rows are separate problems, so a per-row alpha changes nothing
  // else. A warm start costs one more GEMM. objective_before is f(W0) and
  // objective_start f(start) for the per-row alphas.
  MagrResult solve(const MagrOptions& options, std::span<const double> row_scale = {},
                   const Matrix* start = nullptr) const;

  // Per row i: the smallest alpha at which W = 0 minimises f, max over groups g of
  // ||(Hn w0_i)_g||_1 (0 is optimal exactly when the gradient of the quadratic term at 0,
  // -Hn w0_i, lies in the subdifferential of alpha * sum_g ||w_g||_inf). It is the scale
  // at which MagR stops shrinking and starts erasing a row. One GEMM.
  std::vector<double> zeroing_alpha(Index group_size) const;

  double lambda_max() const { return lambda_max_; }

 private:
  const Matrix& W0_;
  const Matrix& H_;
  double lambda_max_ = 0.0;
  double upper_bound_ = 0.0;
  std::vector<Index> dead_columns_;
};

}  // namespace magrq
