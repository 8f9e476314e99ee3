#include "core/prox.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "core/error.hpp"

namespace magrq {

namespace {

// Matrices with fewer entries than this run their row loops on one thread: an OpenMP
// region costs a few microseconds, more than the work it would split. Results do not
// depend on the thread count either way.
constexpr Index kParallelMinEntries = Index{1} << 15;

// l1 norm (in double) and maximum of |v_i|.
struct AbsStats {
  double l1 = 0.0;
  float max = 0.0f;
};

// The simd reductions let the compiler split the sums into vector lanes. The lane order
// is fixed at compile time, so results stay deterministic and thread-count independent.
AbsStats abs_stats(std::span<const float> v) {
  double l1 = 0.0;
  float max = 0.0f;
  const float* data = v.data();
  const std::size_t n = v.size();
#pragma omp simd reduction(+ : l1) reduction(max : max)
  for (std::size_t i = 0; i < n; ++i) {
    const float magnitude = std::fabs(data[i]);
    l1 += magnitude;
    max = std::max(max, magnitude);
  }
  return {l1, max};
}

// A per-thread buffer of at least n floats. It grows to the longest row seen and is then
// reused, so the solver's inner loop does not allocate.
std::span<float> thread_scratch(std::size_t n) {
  thread_local std::vector<float> buffer;
  if (buffer.size() < n) {
    buffer.resize(n);
  }
  return {buffer.data(), n};
}

void require_non_negative(double value, const char* name) {
  MAGRQ_CHECK(value >= 0.0, name, " = ", value, "; expected a number >= 0");
}

void require_group_size(Index group_size) {
  if (group_size != -1 && group_size <= 0) {
    throw ConfigError(detail::concat("invalid group_size = ", group_size,
                                     ": expected -1 (one group per row) or a positive "
                                     "number of columns"));
  }
}

// Condat's algorithm for the tau with sum_i max(y_i - tau, 0) = radius, y_i = |v_i|.
// Requires 0 < radius < ||v||_1.
//
// The candidate active set A (the y_i > tau) lives in buffer[begin, end) with its running
// threshold tau = (sum(A) - radius) / |A|. Elements that a larger single element pushed
// out of A wait in buffer[0, begin) for one more look in the second phase.
double condat_threshold(std::span<const float> v, double radius, float max_abs) {
  std::span<float> buffer = thread_scratch(v.size());
  std::ptrdiff_t begin = 0;
  std::ptrdiff_t end = 0;

  // Phase 1: one pass over the data builds A and the waiting list.
  buffer[end++] = std::fabs(v[0]);
  double tau = buffer[0] - radius;
  for (std::size_t i = 1; i < v.size(); ++i) {
    const float y = std::fabs(v[i]);
    if (y <= tau) {
      continue;
    }
    tau += (y - tau) / static_cast<double>(end - begin + 1);
    if (tau > y - radius) {
      buffer[end++] = y;
    } else {
      // {y} alone gives a larger threshold than A + {y}: A moves to the waiting list.
      begin = end;
      buffer[end++] = y;
      tau = y - radius;
    }
  }

  // Phase 2: waiting elements above the current threshold rejoin A. Writing at
  // begin - 1 >= j is safe because j falls by one per step and begin by at most one.
  for (std::ptrdiff_t j = begin - 1; j >= 0; --j) {
    const float y = buffer[j];
    if (y > tau) {
      buffer[--begin] = y;
      tau += (y - tau) / static_cast<double>(end - begin);
    }
  }

  // Phase 3: drop members at or below the threshold until A is stable.
  std::ptrdiff_t size_before = 0;
  do {
    size_before = end - begin;
    std::ptrdiff_t size = size_before;
    std::ptrdiff_t write = begin;
    for (std::ptrdiff_t k = begin; k < end; ++k) {
      const float y = buffer[k];
      if (y > tau) {
        buffer[write++] = y;
        continue;
      }
      --size;
      // In exact arithmetic max|v_i| stays in A, because radius > 0 puts tau below it.
      // Rounding of the running mean can empty A only when radius is below the
      // resolution of max|v_i|, and then tau = max|v_i| is exact to working precision.
      if (size == 0) {
        return max_abs;
      }
      tau += (tau - y) / static_cast<double>(size);
    }
    end = write;
  } while (end - begin != size_before);

  // Recompute tau from the final set in one sum: the running updates accumulate rounding.
  double active_sum = 0.0;
  for (std::ptrdiff_t k = begin; k < end; ++k) {
    active_sum += buffer[k];
  }
  const double exact = (active_sum - radius) / static_cast<double>(end - begin);
  // radius < ||v||_1 makes tau > 0 and every member of A makes tau < max|v_i| in exact
  // arithmetic; the clamp only absorbs rounding.
  return std::clamp(exact, 0.0, static_cast<double>(max_abs));
}

void clip(std::span<float> v, double tau) {
  const auto bound = static_cast<float>(tau);
  for (float& x : v) {
    x = std::clamp(x, -bound, bound);
  }
}

void soft_threshold(std::span<float> v, double tau) {
  for (float& x : v) {
    const double shrunk = std::max(std::fabs(static_cast<double>(x)) - tau, 0.0);
    x = static_cast<float>(std::copysign(shrunk, static_cast<double>(x)));
  }
}

}  // namespace

double l1_ball_threshold(std::span<const float> v, double radius) {
  require_non_negative(radius, "radius");
  if (v.empty()) {
    return 0.0;
  }
  const AbsStats stats = abs_stats(v);
  if (stats.l1 <= radius) {
    return 0.0;
  }
  if (radius == 0.0) {
    return stats.max;
  }
  return condat_threshold(v, radius, stats.max);
}

void project_l1_ball(std::span<float> v, double radius) {
  const double tau = l1_ball_threshold(v, radius);
  if (tau > 0.0) {
    soft_threshold(v, tau);
  }
}

void prox_linf(std::span<float> v, double weight) {
  require_non_negative(weight, "weight");
  if (weight == 0.0 || v.empty()) {
    return;
  }
  const AbsStats stats = abs_stats(v);
  if (stats.l1 <= weight) {
    std::fill(v.begin(), v.end(), 0.0f);
    return;
  }
  clip(v, condat_threshold(v, weight, stats.max));
}

void prox_linf_groups(std::span<float> row, double weight, Index group_size) {
  require_group_size(group_size);
  if (group_size == -1) {
    prox_linf(row, weight);
    return;
  }
  const auto step = static_cast<std::size_t>(group_size);
  for (std::size_t start = 0; start < row.size(); start += step) {
    prox_linf(row.subspan(start, std::min(step, row.size() - start)), weight);
  }
}

void prox_linf_rows(Matrix& V, double weight, Index group_size) {
  // Checked here because an exception must not leave the OpenMP region below.
  require_group_size(group_size);
  require_non_negative(weight, "weight");
  const Index cols = V.cols();
#pragma omp parallel for schedule(static) if (V.size() >= kParallelMinEntries)
  for (Index r = 0; r < V.rows(); ++r) {
    prox_linf_groups(std::span<float>(V.data() + r * cols, static_cast<std::size_t>(cols)),
                     weight, group_size);
  }
}

double l1_ball_threshold_reference(std::span<const float> v, double radius) {
  require_non_negative(radius, "radius");
  if (v.empty()) {
    return 0.0;
  }
  std::vector<double> sorted(v.size());
  std::transform(v.begin(), v.end(), sorted.begin(),
                 [](float x) { return std::fabs(static_cast<double>(x)); });
  std::sort(sorted.begin(), sorted.end(), std::greater<>());

  double l1 = 0.0;
  for (const double y : sorted) {
    l1 += y;
  }
  if (l1 <= radius) {
    return 0.0;
  }
  // tau = (sum of the k largest - radius) / k for the largest k whose k-th value still
  // exceeds that tau (Duchi et al., ICML 2008). max|v_i| is the fallback for radius = 0.
  double tau = sorted.front();
  double prefix_sum = 0.0;
  for (std::size_t k = 0; k < sorted.size(); ++k) {
    prefix_sum += sorted[k];
    const double candidate = (prefix_sum - radius) / static_cast<double>(k + 1);
    if (sorted[k] > candidate) {
      tau = candidate;
    }
  }
  return std::max(tau, 0.0);
}

void project_l1_ball_reference(std::span<float> v, double radius) {
  const double tau = l1_ball_threshold_reference(v, radius);
  if (tau > 0.0) {
    soft_threshold(v, tau);
  }
}

void prox_linf_reference(std::span<float> v, double weight) {
  // Moreau's decomposition written out, x = v - proj_{l1 ball of radius weight}(v), with
  // the projection kept in double so that the difference does not cancel in float.
  require_non_negative(weight, "weight");
  double l1 = 0.0;
  for (const float x : v) {
    l1 += std::fabs(static_cast<double>(x));
  }
  if (l1 <= weight) {
    std::fill(v.begin(), v.end(), 0.0f);  // the projection is v itself
    return;
  }
  const double tau = l1_ball_threshold_reference(v, weight);
  for (float& x : v) {
    const double value = x;
    const double projection = std::copysign(std::max(std::fabs(value) - tau, 0.0), value);
    x = static_cast<float>(value - projection);
  }
}

}  // namespace magrq
