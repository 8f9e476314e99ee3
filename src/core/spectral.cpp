#include "core/spectral.hpp"

#include <Eigen/Eigenvalues>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "core/error.hpp"

namespace magrq {

namespace {

// Lanczos stops early when the new residual vector is this small relative to ||H||_inf:
// the Krylov space is then invariant to working precision and its Ritz values are
// eigenvalues of H. Double rounding after full reorthogonalization is about 1e-16 * sqrt(k)
// in the same units, so 1e-12 is far above noise and far below any real residual.
constexpr double kBreakdownTolerance = 1e-12;

// Seed of the start vector. Any fixed value works, as long as it stays the same.
constexpr std::uint64_t kStartSeed = 0x6d61677271ULL;

// Matrices with fewer entries than this run their row loops on one thread: an OpenMP
// region costs a few microseconds, more than the work it would split. Results do not
// depend on the thread count either way.
constexpr Index kParallelMinEntries = Index{1} << 15;

// max_i sum_j |H_ij| in double. It bounds |lambda| for every eigenvalue of any square
// matrix, so it caps the estimate without ever making it unsafe.
double infinity_norm(const Matrix& H) {
  double norm = 0.0;
  for (Index i = 0; i < H.rows(); ++i) {
    norm = std::max(norm, H.row(i).cast<double>().cwiseAbs().sum());
  }
  return norm;
}

// The SplitMix64 generator. Unlike the std distributions, its output is the same with
// every compiler and standard library, which keeps the estimate reproducible.
std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// A fixed unit vector with entries drawn uniformly from (-1, 1).
Eigen::VectorXd start_vector(Index n) {
  std::uint64_t state = kStartSeed;
  Eigen::VectorXd v(n);
  for (Index i = 0; i < n; ++i) {
    const double unit = static_cast<double>(splitmix64(state) >> 11) * 0x1.0p-53;  // [0, 1)
    v[i] = 2.0 * unit - 1.0;
  }
  return v / v.norm();
}

// y = H x with float H and double accumulation. Rows run in parallel and each row's sum
// has a fixed order, so the result does not depend on the thread count.
void multiply(const Matrix& H, Eigen::Ref<const Eigen::VectorXd> x, Eigen::VectorXd& y) {
  const Index n = H.rows();
#pragma omp parallel for schedule(static) if (H.size() >= kParallelMinEntries)
  for (Index i = 0; i < n; ++i) {
    const float* row = H.data() + i * n;
    const double* vector = x.data();
    double sum = 0.0;
    // The simd reduction splits the sum into vector lanes in an order fixed at compile
    // time, so it stays deterministic.
#pragma omp simd reduction(+ : sum)
    for (Index j = 0; j < n; ++j) {
      sum += static_cast<double>(row[j]) * vector[j];
    }
    y[i] = sum;
  }
}

// The Lanczos recurrence: fills the orthonormal basis Q (n x k) and the tridiagonal T
// (diagonal alpha, off-diagonal beta) with H Q_k = Q_k T_k + beta_k q_{k+1} e_k^T.
// Returns the number of steps taken; beta[steps - 1] is the norm of the last residual.
int run_lanczos(const Matrix& H, int max_steps, double norm_bound, Eigen::VectorXd& alpha,
                Eigen::VectorXd& beta) {
  const Index n = H.rows();
  Eigen::MatrixXd basis(n, max_steps);
  Eigen::VectorXd w(n);
  basis.col(0) = start_vector(n);

  int steps = 0;
  while (steps < max_steps) {
    const Index j = steps;
    multiply(H, basis.col(j), w);
    alpha[j] = basis.col(j).dot(w);
    // Full reorthogonalization against every basis vector, in two modified Gram-Schmidt
    // passes because one pass can leave rounding-level overlap. Without it, orthogonality
    // is lost once a Ritz value converges, and T gains spurious copies of that value. The
    // passes also remove the alpha_j q_j and beta_{j-1} q_{j-1} terms of the three-term
    // recurrence. O(n j) per step. Vector operations rather than one matrix product keep
    // BLAS (and its own thread pool) out of this loop: alternating BLAS and OpenMP
    // threads on the same cores made each step wait for the other pool's idle spinning.
    for (int pass = 0; pass < 2; ++pass) {
      for (Index i = 0; i <= j; ++i) {
        w -= basis.col(i).dot(w) * basis.col(i);
      }
    }
    beta[j] = w.norm();
    ++steps;
    if (beta[j] <= kBreakdownTolerance * norm_bound) {
      break;
    }
    if (steps < max_steps) {
      basis.col(steps) = w / beta[j];
    }
  }
  return steps;
}

}  // namespace

void LanczosOptions::validate() const {
  if (max_steps < 1) {
    throw ConfigError(detail::concat("invalid max_steps = ", max_steps,
                                     ": expected at least 1 Lanczos step"));
  }
  if (!(relative_margin >= 0.0 && relative_margin <= 1.0)) {
    throw ConfigError(detail::concat("invalid relative_margin = ", relative_margin,
                                     ": expected a number in [0, 1]"));
  }
}

// Why the bound is safe. Ritz values never exceed lambda_max (Courant-Fischer), so theta
// alone is an underestimate, and a step 1 / theta can make proximal gradient diverge
// along the top eigenvector. The residual r bounds the distance from theta to the
// nearest eigenvalue, so theta + r lies above that eigenvalue. That eigenvalue is
// lambda_max unless the start vector is nearly orthogonal to the top eigenvectors. For a
// start vector uniform on the unit sphere, Kuczynski and Wozniakowski
// ("Estimating the largest eigenvalue by the power and Lanczos algorithms with a random
// start", SIAM J. Matrix Anal. Appl. 13(4), 1992) bound the probability that k steps
// leave a relative error above eps by a term of order sqrt(n) exp(-(2k - 1) sqrt(eps)),
// for every PSD matrix. The margin eps = 0.01 with k = 100 steps puts it near
// 2e-9 * sqrt(n), below 1e-5 for n up to 10^6. NOTE: the bound assumes a random start,
// and ours is a fixed pseudo-random vector, so it applies to H not built against it.
// ||H||_inf is a hard upper bound and caps the result, so a diagonal or 1 x 1 H gets
// its exact lambda_max once theta has converged to within the margin.
LambdaMaxEstimate lanczos_lambda_max(const Matrix& H, const LanczosOptions& options) {
  options.validate();
  MAGRQ_CHECK(H.rows() == H.cols(), "H is ", H.rows(), " x ", H.cols(), "; expected square");
  LambdaMaxEstimate estimate;
  const Index n = H.rows();
  const double norm_bound = infinity_norm(H);
  if (n == 0 || norm_bound == 0.0) {
    return estimate;  // H = 0: every eigenvalue is 0
  }

  const int max_steps = static_cast<int>(std::min<Index>(options.max_steps, n));
  Eigen::VectorXd alpha(max_steps);
  Eigen::VectorXd beta(max_steps);
  const int steps = run_lanczos(H, max_steps, norm_bound, alpha, beta);

  // Take the largest eigenpair (theta, s) of T. The residual of its Ritz vector is
  // |beta_k * s_k| with s_k the last entry of s, so it needs no product with H.
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> tridiagonal;
  Eigen::VectorXd diagonal = alpha.head(steps);
  Eigen::VectorXd off_diagonal = beta.head(steps - 1);
  tridiagonal.computeFromTridiagonal(diagonal, off_diagonal, Eigen::ComputeEigenvectors);
  if (tridiagonal.info() != Eigen::Success) {
    throw NumericalError(detail::concat("the tridiagonal eigensolver failed on the ", steps,
                                        "-step Lanczos matrix of a ", n, " x ", n,
                                        " Hessian"));
  }
  estimate.steps = steps;
  estimate.ritz_value = tridiagonal.eigenvalues()[steps - 1];
  estimate.residual_norm =
      std::fabs(beta[steps - 1] * tridiagonal.eigenvectors()(steps - 1, steps - 1));
  const double inflated =
      (estimate.ritz_value + estimate.residual_norm) * (1.0 + options.relative_margin);
  estimate.upper_bound = std::min(inflated, norm_bound);
  return estimate;
}

double estimate_lambda_max(const Matrix& H, const LanczosOptions& options) {
  return lanczos_lambda_max(H, options).upper_bound;
}

}  // namespace magrq
