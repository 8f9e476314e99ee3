// Projection onto the l1 ball and the proximal operator of the l-infinity norm, the two
// kernels of the MagR solver (Zhang et al., "MagR: Weight Magnitude Reduction for
// Enhancing Post-Training Quantization", arXiv 2406.00800).
//
// Every function works in place on one row, or one group of a row, of float weights and
// accumulates sums in double. Inputs must be finite: the callers check whole matrices
// once instead of every element on the hot path.
#pragma once

#include <span>

#include "core/types.hpp"

namespace magrq {

// Returns the threshold tau >= 0 with sum_i max(|v_i| - tau, 0) = radius, or 0 when
// ||v||_1 <= radius (v is inside the ball). For radius = 0 it returns max_i |v_i|, the
// smallest tau that satisfies the equation. Requires radius >= 0 (checked, so NaN is
// rejected).
//
// Condat's algorithm ("Fast projection onto the simplex and the l1 ball", Mathematical
// Programming, 2016): expected O(n) time, worst case O(n^2), no sort. It uses a
// scratch buffer of n floats per thread that grows once and is then reused, so repeated
// calls do not allocate.
double l1_ball_threshold(std::span<const float> v, double radius);

// Replaces v by its Euclidean projection onto {x : ||x||_1 <= radius}: the soft-threshold
// sign(v_i) * max(|v_i| - tau, 0) with tau = l1_ball_threshold(v, radius). O(n) expected.
void project_l1_ball(std::span<float> v, double radius);

// Replaces v by prox of weight * ||.||_inf: argmin_x 1/2 ||x - v||^2 + weight * ||x||_inf.
// By Moreau's decomposition this is v - proj_{l1 ball of radius weight}(v), so the result
// is 0 when ||v||_1 <= weight and otherwise v clipped to [-tau, tau] with
// tau = l1_ball_threshold(v, weight). weight = 0 leaves v unchanged. Requires weight >= 0
// (checked, so NaN is rejected). O(n) expected.
void prox_linf(std::span<float> v, double weight);

// Applies prox_linf to each group of group_size consecutive entries of one row (the last
// group is shorter when group_size does not divide the length), or to the whole row when
// group_size = -1. Throws ConfigError naming group_size unless it is -1 or positive.
void prox_linf_groups(std::span<float> row, double weight, Index group_size);

// Applies prox_linf_groups to every row of V. Rows run in parallel with OpenMP under a
// static schedule, and each row is computed the same way on any thread, so the result does
// not depend on the thread count.
void prox_linf_rows(Matrix& V, double weight, Index group_size);

// Sort-based versions of the functions above, O(n log n), kept as the obviously correct
// baseline that tests compare the fast versions against.
double l1_ball_threshold_reference(std::span<const float> v, double radius);
void project_l1_ball_reference(std::span<float> v, double radius);
void prox_linf_reference(std::span<float> v, double weight);

}  // namespace magrq
