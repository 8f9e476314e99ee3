// The uniform integer grid shared by RTN, GPTQ and the coordinate-descent refinement.
//
// Each output row of each group of input columns gets its own grid: a float scale and
// an integer zero point, so that a code q in [0, maxq] represents scale * (q - zero),
// with maxq = 2^bits - 1. The grid is the min-max grid of the GPTQ reference quantizer
// (Frantar et al., arXiv 2210.17323), with the range shrink of MagR (Zhang et al.,
// arXiv 2406.00800) and an optional search of the clipping range.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>

#include "core/types.hpp"

namespace magrq {

struct QuantGridOptions {
  // Code width: codes lie in [0, 2^bits - 1]. Range 2..8.
  int bits = 4;
  // Input columns that share one grid per output row; -1 gives one grid per row over all
  // columns (per-channel). A size that does not divide in_features leaves a shorter
  // last group.
  Index group_size = -1;
  // Symmetric grid: zero = 2^(bits-1) and the range is [-max|w|, +max|w|]. When false,
  // the grid spans [min w, max w] with a rounded zero point.
  bool sym = true;
  // Factor in [0.001, 1] applied to the clipping range before the scale is computed.
  // 1 keeps the full min-max range. See default_range_shrink() for the MagR values.
  double range_shrink = 1.0;
  // Search the clipping range for the lowest sum |q(w) - w|^mse_norm per row.
  bool mse = false;
  // Largest fraction of the range that the search removes, in (0, 1). The search tries
  // the factors p = 1 - i / mse_grid for i = 0 .. floor(mse_max_shrink * mse_grid) - 1,
  // so the default tries p = 1.00, 0.99, ..., 0.21, as the GPTQ reference does.
  double mse_max_shrink = 0.8;
  // Number of steps per unit of range in the search, in [1, 10000].
  int mse_grid = 100;
  // Exponent of the error norm minimised by the search, > 0.
  double mse_norm = 2.4;

  // Throws ConfigError naming the first invalid key and its value.
  void validate() const;

  // Largest code, 2^bits - 1.
  int32_t maxq() const { return (int32_t{1} << bits) - 1; }

  // Range shrink of the MagR experiments: per-channel grids use 0.8 for 2 bits, 0.9 for
  // 3 bits and 1.0 for 4 bits, and grids with group size 128 use 0.95. The values for
  // other combinations are chosen here, not published. Per-channel grids wider than
  // 4 bits use 1.0, because 4 bits already needs no clipping. Grouped grids use 0.95
  // for 2 to 4 bits with any group size, and 1.0 when wider than 4 bits.
  static double default_range_shrink(int bits, Index group_size);
};

// The grid of one output row within one group: a code q represents scale * (q - zero).
struct GridParams {
  float scale = 1.0f;
  int32_t zero = 0;
};

// Rounds to the nearest integer and resolves exact halves to the even neighbour
// (2.5 -> 2, 3.5 -> 4, -2.5 -> -2), as torch.round does, so codes match the PyTorch
// reference on ties. Written out rather than std::nearbyint because nearbyint follows
// the thread's floating-point rounding mode, which other code may have changed.
// Requires |x| < 2^31. Inline because GPTQ calls it once per weight.
inline float round_half_even(float x) {
  // x - truncated is exact in float32 for |x| < 2^31, so the tie test is exact.
  const auto truncated = static_cast<int32_t>(x);
  const float fraction = x - static_cast<float>(truncated);
  int32_t rounded = truncated;
  if (fraction > 0.5f) {
    rounded += 1;
  } else if (fraction < -0.5f) {
    rounded -= 1;
  } else if ((fraction == 0.5f || fraction == -0.5f) && truncated % 2 != 0) {
    rounded += fraction > 0 ? 1 : -1;
  }
  return static_cast<float>(rounded);
}

// Number of groups of input columns: 1 for group_size -1, else ceil(in / group_size).
Index group_count(Index in_features, Index group_size);

// First input column of group g and the column just past its end (the last group
// may be shorter).
Index group_begin(Index group, Index group_size);
Index group_end(Index group, Index in_features, Index group_size);

// Fits the grid of one output row over the values of one group. O(values.size()), or
// O(values.size() * mse_grid) with the MSE search. Never returns a zero, subnormal or
// non-finite scale: a range too small for a normal float32 scale (all zeros, or
// subnormal weights) is treated as the range [-1, 1], as the reference treats an
// all-zero group. The values must be finite.
GridParams fit_grid(std::span<const float> values, const QuantGridOptions& options);

// Code of w on the grid: clamp(round_half_even(w / scale) + zero, 0, maxq).
inline int32_t quantize_value(float w, GridParams grid, int32_t maxq) {
  // Clamping first keeps the integer conversion in range for any finite w. Values
  // beyond these bounds clamp to 0 or maxq below in any case.
  const auto low = static_cast<float>(-grid.zero - 1);
  const auto high = static_cast<float>(maxq - grid.zero + 1);
  const float ratio = std::clamp(w / grid.scale, low, high);
  const auto code = static_cast<int32_t>(round_half_even(ratio)) + grid.zero;
  return std::clamp(code, int32_t{0}, maxq);
}

// Value that a code represents: scale * (q - zero).
inline float dequantize_value(int32_t code, GridParams grid) {
  return grid.scale * static_cast<float>(code - grid.zero);
}

}  // namespace magrq
