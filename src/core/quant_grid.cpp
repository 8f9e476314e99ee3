#include "core/quant_grid.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"

namespace magrq {

void QuantGridOptions::validate() const {
  if (bits < 2 || bits > 8) {
    throw ConfigError(detail::concat("invalid bits ", bits, ": expected an integer in 2..8"));
  }
  if (group_size != -1 && group_size < 1) {
    throw ConfigError(detail::concat("invalid group_size ", group_size,
                                     ": expected -1 (one group per row) or a positive "
                                     "number of columns"));
  }
  // The lower bound keeps the scale of the all-zero fallback range a normal float32.
  if (!(range_shrink >= 1e-3 && range_shrink <= 1.0)) {
    throw ConfigError(
        detail::concat("invalid range_shrink ", range_shrink, ": expected a value in [0.001, 1]"));
  }
  if (!(mse_max_shrink > 0.0 && mse_max_shrink < 1.0)) {
    throw ConfigError(
        detail::concat("invalid mse_max_shrink ", mse_max_shrink, ": expected a value in (0, 1)"));
  }
  if (mse_grid < 1 || mse_grid > 10000) {
    throw ConfigError(
        detail::concat("invalid mse_grid ", mse_grid, ": expected an integer in 1..10000"));
  }
  if (!(mse_norm > 0.0 && std::isfinite(mse_norm))) {
    throw ConfigError(
        detail::concat("invalid mse_norm ", mse_norm, ": expected a finite value > 0"));
  }
}

double QuantGridOptions::default_range_shrink(int bits, Index group_size) {
  if (bits < 2 || bits > 8) {
    throw ConfigError(detail::concat("invalid bits ", bits, ": expected an integer in 2..8"));
  }
  if (group_size > 0) {
    return bits <= 4 ? 0.95 : 1.0;
  }
  if (bits == 2) {
    return 0.8;
  }
  if (bits == 3) {
    return 0.9;
  }
  return 1.0;
}

Index group_count(Index in_features, Index group_size) {
  if (group_size <= 0) {
    return 1;
  }
  return (in_features + group_size - 1) / group_size;
}

Index group_begin(Index group, Index group_size) {
  return group_size <= 0 ? 0 : group * group_size;
}

Index group_end(Index group, Index in_features, Index group_size) {
  return group_size <= 0 ? in_features : std::min(in_features, (group + 1) * group_size);
}

namespace {

// Grid for the clipping range [low, high] with low <= 0 <= high.
GridParams grid_from_range(float low, float high, const QuantGridOptions& options) {
  const int32_t maxq = options.maxq();
  GridParams grid;
  if (options.sym) {
    const float magnitude = std::max(-low, high);
    grid.scale = 2.0f * magnitude / static_cast<float>(maxq);
    grid.zero = (maxq + 1) / 2;
  } else {
    grid.scale = (high - low) / static_cast<float>(maxq);
    grid.zero = static_cast<int32_t>(round_half_even(-low / grid.scale));
    grid.zero = std::clamp(grid.zero, int32_t{0}, maxq);
  }
  return grid;
}

// Sum of |q(v) - v|^norm over the values, in float64.
double grid_error(std::span<const float> values, GridParams grid, const QuantGridOptions& options) {
  const int32_t maxq = options.maxq();
  double error = 0.0;
  for (const float v : values) {
    const float q = dequantize_value(quantize_value(v, grid, maxq), grid);
    error += std::pow(std::abs(static_cast<double>(q) - v), options.mse_norm);
  }
  return error;
}

// Shrinks [low, high] by the factors p = 1 - i / mse_grid and keeps the grid with the
// lowest error; ties keep the wider range, so p = 1 (the min-max grid) wins unless a
// shrunk range is strictly better.
GridParams search_clipping_range(std::span<const float> values, float low, float high,
                                 const QuantGridOptions& options) {
  GridParams best = grid_from_range(low, high, options);
  double best_error = grid_error(values, best, options);
  const int candidates =
      std::max(1, static_cast<int>(std::floor(options.mse_max_shrink * options.mse_grid)));
  for (int i = 1; i < candidates; ++i) {
    const auto factor = static_cast<float>(1.0 - static_cast<double>(i) / options.mse_grid);
    const GridParams grid = grid_from_range(factor * low, factor * high, options);
    if (!std::isnormal(grid.scale)) {
      continue;  // a subnormal scale would overflow w / scale
    }
    const double error = grid_error(values, grid, options);
    if (error < best_error) {
      best_error = error;
      best = grid;
    }
  }
  return best;
}

}  // namespace

GridParams fit_grid(std::span<const float> values, const QuantGridOptions& options) {
  // The range always contains 0 so that 0 has an exact code.
  float low = 0.0f;
  float high = 0.0f;
  for (const float v : values) {
    low = std::min(low, v);
    high = std::max(high, v);
  }
  if (low == 0.0f && high == 0.0f) {
    low = -1.0f;
    high = 1.0f;
  }
  const auto shrink = static_cast<float>(options.range_shrink);
  low *= shrink;
  high *= shrink;

  GridParams grid = grid_from_range(low, high, options);
  if (!std::isnormal(grid.scale)) {
    // A range of subnormal weights: w / scale would overflow, so use the all-zero range.
    low = -shrink;
    high = shrink;
    grid = grid_from_range(low, high, options);
  }
  MAGRQ_CHECK(std::isnormal(grid.scale), "scale ", grid.scale, " for range [", low, ", ", high,
              "]");
  if (options.mse) {
    grid = search_clipping_range(values, low, high, options);
  }
  return grid;
}

}  // namespace magrq
