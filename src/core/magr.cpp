#include "core/magr.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <span>
#include <utility>

#include "core/error.hpp"
#include "core/hessian.hpp"
#include "core/prox.hpp"
#include "core/spectral.hpp"
#include "core/timing.hpp"

namespace magrq {

namespace {

// Defaults of the published MagR code (W_proximal_preprocess and its groupwise variant).
constexpr double kAlphaPerChannel = 1e-3;
constexpr double kAlphaPerGroup = 1e-4;

// Matrices with fewer entries than this run their row loops on one thread: an OpenMP
// region costs a few microseconds, more than the work it would split. Results do not
// depend on the thread count either way.
constexpr Index kParallelMinEntries = Index{1} << 15;

// Constants of one solve. The iterations work on the raw H and apply the normalisation
// through these scalars, so no scaled copy of H (in x in) is made.
struct Problem {
  const Matrix& W0;
  const Matrix& H;
  double lambda_max;     // Hn = H / lambda_max
  float gradient_step;   // step on the raw gradient (W - W0) H: 1 / (upper bound of lambda_max(H))
  // Per row i: alpha_i in the units of Hn, and the prox weight step * alpha_i, which is
  // alpha_i * lambda_max / upper bound.
  std::vector<double> alpha;
  std::vector<double> prox_weight;
  Index group_size;
  // Dead input channels (H(j, j) = 0): the accelerated solver gives them no momentum.
  const std::vector<Index>& dead_columns;
};

// Per-row partial sums, allocated once per solve. Each total is summed in row order, so it
// does not depend on the thread count.
struct RowSums {
  std::vector<double> first;
  std::vector<double> second;

  explicit RowSums(Index rows) : first(rows), second(rows) {}
};

double sum_in_order(const std::vector<double>& values) {
  double total = 0.0;
  for (const double value : values) {
    total += value;
  }
  return total;
}

std::span<float> row_span(Matrix& m, Index row) {
  return {m.data() + row * m.cols(), static_cast<std::size_t>(m.cols())};
}

std::span<const float> row_span(const Matrix& m, Index row) {
  return {m.data() + row * m.cols(), static_cast<std::size_t>(m.cols())};
}

// sum over groups of max |w_j| for one row.
double row_penalty(std::span<const float> row, Index group_size) {
  const std::size_t width = group_size == -1 ? row.size() : static_cast<std::size_t>(group_size);
  double total = 0.0;
  for (std::size_t start = 0; start < row.size(); start += width) {
    float group_max = 0.0f;
    const std::size_t stop = std::min(start + width, row.size());
#pragma omp simd reduction(max : group_max)
    for (std::size_t j = start; j < stop; ++j) {
      group_max = std::max(group_max, std::fabs(row[j]));
    }
    total += group_max;
  }
  return total;
}

// sum_i alpha_i * (sum over groups of max |w_ij|) over the rows i of W.
double weighted_penalty(const Matrix& W, const std::vector<double>& alpha, Index group_size) {
  double total = 0.0;
  for (Index r = 0; r < W.rows(); ++r) {
    total += alpha[r] * row_penalty(row_span(W, r), group_size);
  }
  return total;
}

Vector row_max_abs(const Matrix& W) {
  if (W.cols() == 0) {
    return Vector::Zero(W.rows());
  }
  return W.cwiseAbs().rowwise().maxCoeff();
}

// sum_ij D_ij G_ij in double: with G = D H this is tr(D H D^T), so the objective reuses
// the gradient product instead of a second GEMM. O(out * in).
double frobenius_product(const Matrix& D, const Matrix& G, std::vector<double>& per_row) {
  const Index cols = D.cols();
#pragma omp parallel for schedule(static) if (D.size() >= kParallelMinEntries)
  for (Index r = 0; r < D.rows(); ++r) {
    const float* d = D.data() + r * cols;
    const float* g = G.data() + r * cols;
    double sum = 0.0;
    // The simd reduction's lane order is fixed at compile time: deterministic.
#pragma omp simd reduction(+ : sum)
    for (Index j = 0; j < cols; ++j) {
      sum += static_cast<double>(d[j]) * static_cast<double>(g[j]);
    }
    per_row[r] = sum;
  }
  return sum_in_order(per_row);
}

// f from tr(D H D^T) and the alpha-weighted penalty.
double objective(const Problem& problem, double quadratic, double penalty_value) {
  return 0.5 * quadratic / problem.lambda_max + penalty_value;
}

// G = (W - W0) H for D = W - W0: the one GEMM of an iteration, through BLAS. Records its
// wall time.
void compute_gradient(const Problem& problem, const Matrix& D, Matrix& G, MagrResult& result) {
  const auto start = std::chrono::steady_clock::now();
  G.noalias() = D * problem.H;
  result.gemm_seconds.push_back(seconds_since(start));
}

// f of the iterate whose difference from W0 is D, gradient G and penalty penalty_value.
double evaluate(const Problem& problem, const Matrix& D, const Matrix& G, double penalty_value,
                RowSums& sums) {
  return objective(problem, frobenius_product(D, G, sums.first), penalty_value);
}

bool converged(double previous, double current, double tolerance) {
  return tolerance > 0.0 && std::fabs(previous - current) <= tolerance * std::fabs(previous);
}

// One plain proximal gradient step in place, fused per row: W <- prox(W - step * G), then
// D <- W - W0 for the next GEMM. Returns the alpha-weighted penalty of the new W.
// O(out * in).
double plain_step(const Problem& problem, Matrix& W, Matrix& D, const Matrix& G, RowSums& sums) {
  const float step = problem.gradient_step;
#pragma omp parallel for schedule(static) if (W.size() >= kParallelMinEntries)
  for (Index r = 0; r < W.rows(); ++r) {
    std::span<float> w = row_span(W, r);
    std::span<float> d = row_span(D, r);
    std::span<const float> g = row_span(G, r);
    std::span<const float> w0 = row_span(problem.W0, r);
    for (std::size_t j = 0; j < w.size(); ++j) {
      w[j] -= step * g[j];
    }
    prox_linf_groups(w, problem.prox_weight[r], problem.group_size);
    for (std::size_t j = 0; j < w.size(); ++j) {
      d[j] = w[j] - w0[j];
    }
    sums.second[r] = problem.alpha[r] * row_penalty(w, problem.group_size);
  }
  return sum_in_order(sums.second);
}

// Iterates and gradients of the accelerated solver. The candidate of a step is written
// over the previous iterate and its gradient over the previous gradient: both are read
// only to form the extrapolated point, which happens before they are overwritten.
struct MomentumState {
  Matrix x;              // current iterate
  Matrix x_previous;     // previous iterate, then the candidate of the running step
  Matrix g;              // gradient (x - W0) H
  Matrix g_previous;     // gradient of x_previous, then of the candidate
  Matrix d;              // candidate - W0, the GEMM input
};

struct MomentumStepSums {
  double penalty = 0.0;
  double restart_product = 0.0;  // (y - z) . (z - x) for extrapolated point y, candidate z
};

// One extrapolated proximal step, fused per row. With beta the momentum, y = x + beta (x -
// x_previous) and, because the gradient is linear, grad(y) = g + beta (g - g_previous)
// without a GEMM. The candidate z = prox(y - step * grad(y)) goes to x_previous and
// z - W0 to d. O(out * in).
MomentumStepSums momentum_step(const Problem& problem, float beta, MomentumState& state,
                               RowSums& sums) {
  const float step = problem.gradient_step;
#pragma omp parallel for schedule(static) if (state.x.size() >= kParallelMinEntries)
  for (Index r = 0; r < state.x.rows(); ++r) {
    std::span<const float> x = row_span(state.x, r);
    std::span<float> z = row_span(state.x_previous, r);
    std::span<const float> g = row_span(state.g, r);
    std::span<const float> g_previous = row_span(state.g_previous, r);
    std::span<float> d = row_span(state.d, r);
    std::span<const float> w0 = row_span(problem.W0, r);
    for (std::size_t j = 0; j < x.size(); ++j) {
      const float y = x[j] + beta * (x[j] - z[j]);
      const float gradient = g[j] + beta * (g[j] - g_previous[j]);
      d[j] = y;  // kept for the restart test below
      z[j] = y - step * gradient;
    }
    // A dead column has no curvature, so nothing would stop momentum from carrying its
    // entries across the flat set |w_j| <= max|w| of equally good values. Without
    // extrapolation they follow the plain solver: only the prox moves them.
    for (const Index j : problem.dead_columns) {
      d[j] = x[j];
      z[j] = x[j] - step * g[j];
    }
    prox_linf_groups(z, problem.prox_weight[r], problem.group_size);
    double restart_product = 0.0;
#pragma omp simd reduction(+ : restart_product)
    for (std::size_t j = 0; j < x.size(); ++j) {
      restart_product += static_cast<double>(d[j] - z[j]) * static_cast<double>(z[j] - x[j]);
      d[j] = z[j] - w0[j];
    }
    sums.first[r] = restart_product;
    sums.second[r] = problem.alpha[r] * row_penalty(z, problem.group_size);
  }
  return {sum_in_order(sums.second), sum_in_order(sums.first)};
}

// The first iterate, its difference from W0 and its gradient. Starting at W0 needs no
// GEMM: the gradient there is exactly 0. A warm start costs one GEMM.
struct StartPoint {
  Matrix weight;
  Matrix difference;
  Matrix gradient;
};

StartPoint start_point(const Problem& problem, const Matrix* start) {
  const Index rows = problem.W0.rows();
  const Index cols = problem.W0.cols();
  if (start == nullptr) {
    return {problem.W0, Matrix::Zero(rows, cols), Matrix::Zero(rows, cols)};
  }
  StartPoint point{*start, *start - problem.W0, Matrix(rows, cols)};
  point.gradient.noalias() = point.difference * problem.H;
  return point;
}

// f at the start point. At W0 the quadratic term is 0.
double start_objective(const Problem& problem, const StartPoint& point, RowSums& sums) {
  return evaluate(problem, point.difference, point.gradient,
                  weighted_penalty(point.weight, problem.alpha, problem.group_size), sums);
}

void solve_plain(const Problem& problem, const MagrOptions& options, StartPoint point,
                 MagrResult& result) {
  const Index rows = problem.W0.rows();
  RowSums sums(rows);
  Matrix W = std::move(point.weight);
  Matrix D = std::move(point.difference);
  Matrix G = std::move(point.gradient);
  double f = result.objective_start;

  for (int k = 0; k < options.iterations; ++k) {
    const auto start = std::chrono::steady_clock::now();
    const double penalty_value = plain_step(problem, W, D, G, sums);
    compute_gradient(problem, D, G, result);
    const double f_new = evaluate(problem, D, G, penalty_value, sums);
    ++result.iterations;
    result.objective_history.push_back(f_new);
    result.iteration_seconds.push_back(seconds_since(start));
    const bool stop = converged(f, f_new, options.tolerance);
    f = f_new;
    if (stop) {
      break;
    }
  }
  result.weight = std::move(W);
  result.objective_after = f;
}

// FISTA momentum t_{k+1} = (1 + sqrt(1 + 4 t_k^2)) / 2 (Beck and Teboulle, 2009).
double next_momentum(double t) {
  return 0.5 * (1.0 + std::sqrt(1.0 + 4.0 * t * t));
}

void solve_accelerated(const Problem& problem, const MagrOptions& options, StartPoint point,
                       MagrResult& result) {
  const Index rows = problem.W0.rows();
  const Index cols = problem.W0.cols();
  // x_previous = x and g_previous = g at the start, so the first step (beta = 0) reads
  // finite values.
  MomentumState state{point.weight, std::move(point.weight), point.gradient,
                      std::move(point.gradient), Matrix(rows, cols)};
  RowSums sums(rows);
  double f = result.objective_start;
  double t = 1.0;

  for (int k = 0; k < options.iterations; ++k) {
    const auto start = std::chrono::steady_clock::now();
    const double t_next = next_momentum(t);
    const double beta = (t - 1.0) / t_next;  // 0 right after a start or restart
    const MomentumStepSums step = momentum_step(problem, static_cast<float>(beta), state, sums);
    compute_gradient(problem, state.d, state.g_previous, result);
    const double f_candidate = evaluate(problem, state.d, state.g_previous, step.penalty, sums);
    ++result.iterations;

    // A step with beta = 0 is a plain proximal gradient step, which cannot increase f in
    // exact arithmetic, so it is always kept: rejecting it on rounding noise would stall.
    bool stop = false;
    if (beta == 0.0 || f_candidate <= f) {
      std::swap(state.x, state.x_previous);
      std::swap(state.g, state.g_previous);
      stop = converged(f, f_candidate, options.tolerance);
      f = f_candidate;
      // O'Donoghue and Candes (2015), gradient scheme: restart when the step and the
      // momentum point in opposite directions, (y - z) . (z - x) > 0.
      if (step.restart_product > 0.0 && beta > 0.0) {
        t = 1.0;
        ++result.restarts;
      } else {
        t = t_next;
      }
    } else {
      // x and g still hold the last accepted iterate; the next step starts from it with
      // beta = 0.
      t = 1.0;
      ++result.rejected_steps;
    }
    result.objective_history.push_back(f);
    result.iteration_seconds.push_back(seconds_since(start));
    if (stop) {
      break;
    }
  }
  result.weight = std::move(state.x);
  result.objective_after = f;
}

// The Lanczos estimate of lambda_max(H); throws DataError when H has no positive
// eigenvalue.
LambdaMaxEstimate checked_lambda_max(const Matrix& H) {
  const LambdaMaxEstimate estimate = lanczos_lambda_max(H);
  if (!(estimate.ritz_value > 0.0)) {
    throw DataError(detail::concat(
        "Hessian has no positive eigenvalue (largest Lanczos estimate ", estimate.ritz_value,
        "); expected a nonzero positive semi-definite Hessian: an all-zero Hessian means "
        "no calibration input reached the layer, and MagR cannot normalise it"));
  }
  return estimate;
}

}  // namespace

double MagrOptions::default_alpha(Index group_size) {
  return group_size == -1 ? kAlphaPerChannel : kAlphaPerGroup;
}

void MagrOptions::validate() const {
  if (!(std::isfinite(alpha) && alpha >= 0.0)) {
    throw ConfigError(detail::concat("invalid MagR option alpha = ", alpha,
                                     ": expected a finite number >= 0 (published defaults: ",
                                     kAlphaPerChannel, " per channel, ", kAlphaPerGroup,
                                     " per group)"));
  }
  if (group_size != -1 && group_size <= 0) {
    throw ConfigError(detail::concat("invalid MagR option group_size = ", group_size,
                                     ": expected -1 (one group per row) or a positive number "
                                     "of columns"));
  }
  if (iterations < 0) {
    throw ConfigError(detail::concat("invalid MagR option iterations = ", iterations,
                                     ": expected an integer >= 0"));
  }
  if (!(std::isfinite(tolerance) && tolerance >= 0.0)) {
    throw ConfigError(detail::concat("invalid MagR option tolerance = ", tolerance,
                                     ": expected a finite number >= 0 (0 runs every iteration)"));
  }
}

MagrProblem::MagrProblem(const Matrix& W0, const Matrix& H) : W0_(W0), H_(H) {
  require_layer_shapes(W0, H);
  require_finite(W0, "weight");
  require_finite(H, "Hessian");
  if (W0.size() == 0) {
    return;
  }
  const LambdaMaxEstimate estimate = checked_lambda_max(H);
  lambda_max_ = estimate.ritz_value;
  upper_bound_ = estimate.upper_bound;
  dead_columns_ = dead_columns(H);
}

std::vector<double> MagrProblem::zeroing_alpha(Index group_size) const {
  std::vector<double> alpha(W0_.rows(), 0.0);
  if (W0_.size() == 0) {
    return alpha;
  }
  Matrix gradient(W0_.rows(), W0_.cols());
  gradient.noalias() = W0_ * H_;
  const Index cols = W0_.cols();
  const Index width = group_size == -1 ? cols : group_size;
  for (Index r = 0; r < W0_.rows(); ++r) {
    double largest = 0.0;
    for (Index start = 0; start < cols; start += width) {
      const Index stop = std::min(start + width, cols);
      double sum = 0.0;
      for (Index j = start; j < stop; ++j) {
        sum += std::fabs(static_cast<double>(gradient(r, j)));
      }
      largest = std::max(largest, sum);
    }
    alpha[r] = largest / lambda_max_;
  }
  return alpha;
}

MagrResult MagrProblem::solve(const MagrOptions& options, std::span<const double> row_scale,
                              const Matrix* start) const {
  options.validate();
  if (!row_scale.empty() && static_cast<Index>(row_scale.size()) != W0_.rows()) {
    throw InternalError(detail::concat("MagR row scales have ", row_scale.size(),
                                       " entries for ", W0_.rows(), " rows"));
  }
  if (start != nullptr) {
    require_layer_shapes(*start, H_);
    MAGRQ_CHECK(start->rows() == W0_.rows(), "start has ", start->rows(), " rows, W0 ", W0_.rows());
  }
  std::vector<double> alpha(W0_.rows(), options.alpha);
  for (std::size_t r = 0; r < row_scale.size(); ++r) {
    if (!(std::isfinite(row_scale[r]) && row_scale[r] >= 0.0)) {
      throw ConfigError(detail::concat("invalid MagR row scale ", row_scale[r], " for row ", r,
                                       ": expected a finite number >= 0"));
    }
    alpha[r] *= row_scale[r];
  }

  MagrResult result;
  result.max_abs_before = row_max_abs(W0_);
  result.objective_before = weighted_penalty(W0_, alpha, options.group_size);
  const Matrix& first = start != nullptr ? *start : W0_;
  if (options.alpha == 0.0 || options.iterations == 0 || W0_.size() == 0) {
    result.weight = first;
    result.max_abs_after = row_max_abs(first);
    result.objective_start = result.objective_before;
    result.objective_after = result.objective_before;
    if (start != nullptr) {
      const double quadratic = output_error_float32(first, W0_, H_);
      result.objective_start = 0.5 * quadratic / std::max(lambda_max_, 1e-300) +
                               weighted_penalty(first, alpha, options.group_size);
      result.objective_after = result.objective_start;
    }
    return result;
  }

  std::vector<double> prox_weight(alpha.size());
  for (std::size_t r = 0; r < alpha.size(); ++r) {
    // Normalising by the Ritz value keeps alpha's meaning exact to Lanczos accuracy, while
    // the step uses the margin-inflated bound so that step <= 1 / lambda_max(Hn).
    prox_weight[r] = alpha[r] * lambda_max_ / upper_bound_;
  }
  result.lambda_max = lambda_max_;
  const Problem problem{W0_,
                        H_,
                        lambda_max_,
                        static_cast<float>(1.0 / upper_bound_),
                        std::move(alpha),
                        std::move(prox_weight),
                        options.group_size,
                        dead_columns_};
  StartPoint point = start_point(problem, start);
  if (start == nullptr) {
    result.objective_start = result.objective_before;
  } else {
    RowSums sums(W0_.rows());
    result.objective_start = start_objective(problem, point, sums);
  }
  if (options.accelerated) {
    solve_accelerated(problem, options, std::move(point), result);
  } else {
    solve_plain(problem, options, std::move(point), result);
  }
  result.max_abs_after = row_max_abs(result.weight);
  return result;
}

MagrResult magr_solve(const Matrix& W0, const Matrix& H, const MagrOptions& options) {
  options.validate();
  if (options.alpha == 0.0 || options.iterations == 0 || W0.size() == 0) {
    // W0 is the answer, so there is no Lanczos estimate to make, which MagrProblem's
    // constructor would, and reject for an all-zero H.
    require_layer_shapes(W0, H);
    require_finite(W0, "weight");
    require_finite(H, "Hessian");
    MagrResult result;
    result.weight = W0;
    result.max_abs_before = row_max_abs(W0);
    result.max_abs_after = result.max_abs_before;
    result.objective_before =
        weighted_penalty(W0, std::vector<double>(W0.rows(), options.alpha), options.group_size);
    result.objective_start = result.objective_before;
    result.objective_after = result.objective_before;
    return result;
  }
  // The constructor checks the shapes and finiteness of W0 and H.
  return MagrProblem(W0, H).solve(options);
}

}  // namespace magrq
