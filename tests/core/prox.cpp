// Tests of the l1-ball projection and the l-infinity prox: optimality conditions, a
// bisection solve for the threshold, the sort-based reference, and the grouped row version.
#include "core/prox.hpp"

#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "core/error.hpp"

namespace magrq {
namespace {

enum class Values { kNormal, kTies, kMostlyZero, kHuge, kTiny, kMixedScales, kAllEqual };

const std::vector<Values> kAllValueKinds = {Values::kNormal,    Values::kTies,
                                            Values::kMostlyZero, Values::kHuge,
                                            Values::kTiny,      Values::kMixedScales,
                                            Values::kAllEqual};

std::string kind_name(Values kind) {
  switch (kind) {
    case Values::kNormal: return "normal";
    case Values::kTies: return "ties";
    case Values::kMostlyZero: return "mostly-zero";
    case Values::kHuge: return "huge";
    case Values::kTiny: return "tiny";
    case Values::kMixedScales: return "mixed-scales";
    case Values::kAllEqual: return "all-equal";
  }
  return "?";
}

std::vector<float> random_values(std::mt19937& rng, std::size_t n, Values kind) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> small_int(-3, 3);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  std::uniform_real_distribution<float> exponent(-20.0f, 20.0f);
  std::vector<float> v(n);
  const float constant = 1.0f + unit(rng);
  for (float& x : v) {
    switch (kind) {
      case Values::kNormal: x = normal(rng); break;
      case Values::kTies: x = static_cast<float>(small_int(rng)); break;
      case Values::kMostlyZero: x = unit(rng) < 0.8f ? 0.0f : normal(rng); break;
      case Values::kHuge: x = 1e30f * normal(rng); break;
      case Values::kTiny: x = 1e-30f * normal(rng); break;
      case Values::kMixedScales: x = normal(rng) * std::pow(10.0f, exponent(rng)); break;
      case Values::kAllEqual: x = unit(rng) < 0.5f ? constant : -constant; break;
    }
  }
  return v;
}

double l1_norm(const std::vector<float>& v) {
  double sum = 0.0;
  for (const float x : v) {
    sum += std::fabs(static_cast<double>(x));
  }
  return sum;
}

float max_abs(const std::vector<float>& v) {
  float result = 0.0f;
  for (const float x : v) {
    result = std::max(result, std::fabs(x));
  }
  return result;
}

// Radii spread from deep inside the ball to outside it, plus 0.
std::vector<double> test_radii(const std::vector<float>& v) {
  const double l1 = l1_norm(v);
  return {0.0, 1e-3 * l1, 0.1 * l1, 0.5 * l1, 0.9 * l1, 0.999 * l1, l1, 2.0 * l1};
}

// The tau with sum_i max(|v_i| - tau, 0) = radius by 200 halvings of [0, max|v_i|] in
// double: slow but independent of both implementations under test.
double bisect_threshold(const std::vector<float>& v, double radius) {
  if (l1_norm(v) <= radius) {
    return 0.0;
  }
  double low = 0.0;
  double high = max_abs(v);
  for (int i = 0; i < 200; ++i) {
    const double middle = 0.5 * (low + high);
    double excess = 0.0;
    for (const float x : v) {
      excess += std::max(std::fabs(static_cast<double>(x)) - middle, 0.0);
    }
    (excess > radius ? low : high) = middle;
  }
  return 0.5 * (low + high);
}

// Checks that x = prox_{weight ||.||_inf}(v) by the optimality condition
// v - x in weight * subdifferential of ||.||_inf at x.
void expect_prox_optimal(const std::vector<float>& v, const std::vector<float>& x, double weight,
                         const std::string& label) {
  const float top = max_abs(x);
  if (top == 0.0f) {
    // The subdifferential of ||.||_inf at 0 is the unit l1 ball.
    EXPECT_LE(l1_norm(v), weight * (1.0 + 1e-12)) << label;
    return;
  }
  double residual_l1 = 0.0;
  std::size_t clipped = 0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    const double residual = static_cast<double>(v[i]) - static_cast<double>(x[i]);
    residual_l1 += std::fabs(residual);
    if (std::fabs(x[i]) < top) {
      EXPECT_EQ(residual, 0.0) << label << ": entry " << i << " below the max moved";
    } else if (residual != 0.0) {
      ++clipped;
      EXPECT_EQ(std::signbit(residual), std::signbit(x[i]))
          << label << ": entry " << i << " clipped toward the wrong side";
    }
  }
  // Each clipped entry carries the float rounding of tau, at most one ulp of the max.
  const double tolerance = 2.0 * FLT_EPSILON * top * static_cast<double>(clipped) + 1e-12 * weight;
  EXPECT_NEAR(residual_l1, weight, tolerance) << label;
}

TEST(Prox, ThresholdMatchesBisection) {
  std::mt19937 rng(11);
  for (const Values kind : kAllValueKinds) {
    for (const std::size_t n : {1, 2, 3, 7, 64, 257, 1000}) {
      const std::vector<float> v = random_values(rng, n, kind);
      for (const double radius : test_radii(v)) {
        if (radius == 0.0) {
          continue;  // every tau >= max|v_i| solves it; ThresholdAtRadiusZero covers it
        }
        const std::string label = kind_name(kind) + " n=" + std::to_string(n) +
                                  " radius=" + std::to_string(radius);
        const double expected = bisect_threshold(v, radius);
        // Bisection stops at 2^-200 of max|v|; the fast version errs by rounding of sums
        // as large as ||v||_1.
        const double tolerance = 1e-12 * (l1_norm(v) + max_abs(v));
        EXPECT_NEAR(l1_ball_threshold(v, radius), expected, tolerance) << label;
      }
    }
  }
}

TEST(Prox, FastMatchesReferenceOnRandomVectors) {
  std::mt19937 rng(12);
  for (int trial = 0; trial < 40; ++trial) {
    for (const Values kind : kAllValueKinds) {
      for (const std::size_t n : {1, 2, 5, 33, 128, 600}) {
        const std::vector<float> v = random_values(rng, n, kind);
        for (const double weight : test_radii(v)) {
          const std::string label = kind_name(kind) + " n=" + std::to_string(n) +
                                    " weight=" + std::to_string(weight);
          const double tolerance = 1e-12 * (l1_norm(v) + max_abs(v));
          EXPECT_NEAR(l1_ball_threshold(v, weight), l1_ball_threshold_reference(v, weight),
                      tolerance)
              << label;

          std::vector<float> fast = v;
          std::vector<float> reference = v;
          prox_linf(fast, weight);
          prox_linf_reference(reference, weight);
          for (std::size_t i = 0; i < n; ++i) {
            // Both round tau to float once; the reference adds one rounding of v - p.
            EXPECT_NEAR(fast[i], reference[i], 2.0f * FLT_EPSILON * max_abs(v))
                << label << " entry " << i;
          }

          std::vector<float> projected = v;
          std::vector<float> projected_reference = v;
          project_l1_ball(projected, weight);
          project_l1_ball_reference(projected_reference, weight);
          for (std::size_t i = 0; i < n; ++i) {
            EXPECT_NEAR(projected[i], projected_reference[i], 2.0f * FLT_EPSILON * max_abs(v))
                << label << " entry " << i;
          }
        }
      }
    }
  }
}

TEST(Prox, SatisfiesOptimalityConditions) {
  std::mt19937 rng(13);
  for (int trial = 0; trial < 20; ++trial) {
    for (const Values kind : kAllValueKinds) {
      for (const std::size_t n : {1, 4, 50, 513}) {
        const std::vector<float> v = random_values(rng, n, kind);
        for (const double weight : test_radii(v)) {
          std::vector<float> x = v;
          prox_linf(x, weight);
          expect_prox_optimal(v, x, weight,
                              kind_name(kind) + " n=" + std::to_string(n) +
                                  " weight=" + std::to_string(weight));
        }
      }
    }
  }
}

TEST(Prox, HandComputedExample) {
  // sum max(|v_i| - tau, 0) = 1 gives tau = 2, and = 3 gives tau = 0.5.
  std::vector<float> v = {3.0f, -1.0f, 0.5f};
  EXPECT_DOUBLE_EQ(l1_ball_threshold(v, 1.0), 2.0);
  EXPECT_DOUBLE_EQ(l1_ball_threshold(v, 3.0), 0.5);
  prox_linf(v, 1.0);
  EXPECT_EQ(v, (std::vector<float>{2.0f, -1.0f, 0.5f}));
  v = {3.0f, -1.0f, 0.5f};
  prox_linf(v, 3.0);
  EXPECT_EQ(v, (std::vector<float>{0.5f, -0.5f, 0.5f}));
  v = {3.0f, -1.0f, 0.5f};
  project_l1_ball(v, 3.0);
  EXPECT_EQ(v, (std::vector<float>{2.5f, -0.5f, 0.0f}));
}

TEST(Prox, AllEqualMagnitudes) {
  // 4 (2 - tau) = 2 gives tau = 1.5 for every entry.
  std::vector<float> v = {2.0f, -2.0f, 2.0f, -2.0f};
  EXPECT_DOUBLE_EQ(l1_ball_threshold(v, 2.0), 1.5);
  prox_linf(v, 2.0);
  EXPECT_EQ(v, (std::vector<float>{1.5f, -1.5f, 1.5f, -1.5f}));
}

TEST(Prox, LengthOne) {
  std::vector<float> v = {3.0f};
  EXPECT_DOUBLE_EQ(l1_ball_threshold(v, 1.0), 2.0);
  prox_linf(v, 1.0);
  EXPECT_EQ(v[0], 2.0f);
  v = {-3.0f};
  prox_linf(v, 1.0);
  EXPECT_EQ(v[0], -2.0f);
  v = {-3.0f};
  prox_linf(v, 3.0);
  EXPECT_EQ(v[0], 0.0f);
}

TEST(Prox, WeightZeroIsIdentity) {
  std::mt19937 rng(14);
  for (const Values kind : kAllValueKinds) {
    const std::vector<float> v = random_values(rng, 100, kind);
    std::vector<float> x = v;
    prox_linf(x, 0.0);
    EXPECT_EQ(x, v) << kind_name(kind);
  }
}

TEST(Prox, WeightAtLeastL1NormGivesZero) {
  std::mt19937 rng(15);
  for (const Values kind : kAllValueKinds) {
    const std::vector<float> v = random_values(rng, 100, kind);
    for (const double weight : {l1_norm(v), 1.5 * l1_norm(v)}) {
      std::vector<float> x = v;
      prox_linf(x, weight);
      EXPECT_EQ(max_abs(x), 0.0f) << kind_name(kind);
      EXPECT_EQ(l1_ball_threshold(v, weight), 0.0) << kind_name(kind);
    }
  }
}

TEST(Prox, ThresholdAtRadiusZero) {
  const std::vector<float> v = {0.5f, -4.0f, 4.0f, 1.0f};
  EXPECT_EQ(l1_ball_threshold(v, 0.0), 4.0);
  EXPECT_EQ(l1_ball_threshold_reference(v, 0.0), 4.0);
  std::vector<float> x = v;
  project_l1_ball(x, 0.0);
  EXPECT_EQ(max_abs(x), 0.0f);
}

TEST(Prox, ZeroVectorAndEmptySpan) {
  std::vector<float> zeros(17, 0.0f);
  EXPECT_EQ(l1_ball_threshold(zeros, 0.0), 0.0);
  prox_linf(zeros, 1.0);
  EXPECT_EQ(max_abs(zeros), 0.0f);

  std::vector<float> empty;
  EXPECT_EQ(l1_ball_threshold(empty, 1.0), 0.0);
  prox_linf(empty, 1.0);
  project_l1_ball(empty, 1.0);
  EXPECT_TRUE(empty.empty());
}

TEST(Prox, ProjectionLandsOnSphere) {
  std::mt19937 rng(16);
  for (const Values kind : {Values::kNormal, Values::kTies, Values::kMixedScales}) {
    const std::vector<float> v = random_values(rng, 300, kind);
    const double radius = 0.3 * l1_norm(v);
    std::vector<float> x = v;
    project_l1_ball(x, radius);
    // Each surviving entry carries one float rounding.
    EXPECT_NEAR(l1_norm(x), radius, 300 * FLT_EPSILON * max_abs(v)) << kind_name(kind);
    for (std::size_t i = 0; i < x.size(); ++i) {
      EXPECT_TRUE(x[i] == 0.0f || std::signbit(x[i]) == std::signbit(v[i])) << i;
      EXPECT_LE(std::fabs(x[i]), std::fabs(v[i])) << i;
    }
  }
}

TEST(Prox, NegativeOrNanWeightIsRejected) {
  std::vector<float> v = {1.0f, 2.0f};
  EXPECT_THROW(prox_linf(v, -1.0), InternalError);
  EXPECT_THROW(prox_linf(v, std::nan("")), InternalError);
  EXPECT_THROW(l1_ball_threshold(v, -1e-9), InternalError);
  EXPECT_THROW(prox_linf_reference(v, -1.0), InternalError);
}

TEST(ProxRows, PerRowMatchesSingleVector) {
  std::mt19937 rng(17);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Matrix V(6, 37);
  for (Index i = 0; i < V.size(); ++i) {
    V.data()[i] = normal(rng);
  }
  Matrix result = V;
  prox_linf_rows(result, 2.5, -1);
  for (Index r = 0; r < V.rows(); ++r) {
    std::vector<float> row(V.row(r).data(), V.row(r).data() + V.cols());
    prox_linf(row, 2.5);
    for (Index j = 0; j < V.cols(); ++j) {
      EXPECT_EQ(result(r, j), row[j]) << "row " << r << " col " << j;
    }
  }
}

TEST(ProxRows, GroupsWithRaggedLastGroup) {
  // 10 columns in groups of 4: [0, 4), [4, 8) and the ragged [8, 10).
  std::mt19937 rng(18);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Matrix V(3, 10);
  for (Index i = 0; i < V.size(); ++i) {
    V.data()[i] = normal(rng);
  }
  const double weight = 0.7;
  Matrix result = V;
  prox_linf_rows(result, weight, 4);
  for (Index r = 0; r < V.rows(); ++r) {
    for (const auto& [start, length] : {std::pair{0, 4}, std::pair{4, 4}, std::pair{8, 2}}) {
      std::vector<float> group(V.row(r).data() + start, V.row(r).data() + start + length);
      prox_linf_reference(group, weight);
      for (int j = 0; j < length; ++j) {
        EXPECT_NEAR(result(r, start + j), group[j], 2.0f * FLT_EPSILON * 4.0f)
            << "row " << r << " col " << start + j;
      }
    }
  }
}

TEST(ProxRows, GroupWiderThanRowIsOneGroup) {
  std::mt19937 rng(19);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Matrix V(4, 9);
  for (Index i = 0; i < V.size(); ++i) {
    V.data()[i] = normal(rng);
  }
  Matrix grouped = V;
  Matrix whole = V;
  prox_linf_rows(grouped, 1.1, 64);
  prox_linf_rows(whole, 1.1, -1);
  EXPECT_EQ(grouped, whole);
}

TEST(ProxRows, InvalidGroupSizeRaisesConfigError) {
  Matrix V = Matrix::Ones(2, 4);
  for (const Index group_size : {Index{0}, Index{-2}}) {
    try {
      prox_linf_rows(V, 1.0, group_size);
      ADD_FAILURE() << "group_size " << group_size << " was accepted";
    } catch (const ConfigError& error) {
      EXPECT_NE(std::string(error.what()).find("group_size = " + std::to_string(group_size)),
                std::string::npos)
          << error.what();
    }
  }
}

TEST(ProxRows, SameResultOnOneAndTwoThreads) {
  std::mt19937 rng(20);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Matrix V(128, 300);  // above the size at which prox_linf_rows goes parallel
  for (Index i = 0; i < V.size(); ++i) {
    V.data()[i] = normal(rng);
  }
  const int threads_before = omp_get_max_threads();
  Matrix one_thread = V;
  Matrix two_threads = V;
  omp_set_num_threads(1);
  prox_linf_rows(one_thread, 3.0, 32);
  omp_set_num_threads(2);
  prox_linf_rows(two_threads, 3.0, 32);
  omp_set_num_threads(threads_before);
  EXPECT_EQ(one_thread, two_threads);
}

}  // namespace
}  // namespace magrq
