#include "core/rtn.hpp"

#include "core/hessian.hpp"

namespace magrq {

namespace {

// Fits the grid of each group of one row and quantizes the row.
void quantize_row(const Matrix& W, Index row, const QuantGridOptions& grid,
                  QuantizedLayer& result) {
  const int32_t maxq = grid.maxq();
  const Index groups = result.scales.rows();
  for (Index group = 0; group < groups; ++group) {
    const Index begin = group_begin(group, grid.group_size);
    const Index end = group_end(group, W.cols(), grid.group_size);
    const float* values = W.row(row).data() + begin;
    const GridParams params = fit_grid({values, static_cast<size_t>(end - begin)}, grid);
    result.scales(group, row) = params.scale;
    result.zeros(group, row) = params.zero;
    for (Index col = begin; col < end; ++col) {
      const int32_t code = quantize_value(W(row, col), params, maxq);
      result.codes(row, col) = code;
      result.dequant(row, col) = dequantize_value(code, params);
    }
  }
}

}  // namespace

QuantizedLayer rtn_quantize(const Matrix& W, const QuantGridOptions& grid, const Matrix* H) {
  grid.validate();
  require_finite(W, "weight");
  if (H != nullptr) {
    require_layer_shapes(W, *H);
    require_finite(*H, "Hessian");
  }

  const Index groups = group_count(W.cols(), grid.group_size);
  QuantizedLayer result;
  result.bits = grid.bits;
  result.group_size = grid.group_size;
  result.codes.resize(W.rows(), W.cols());
  result.dequant.resize(W.rows(), W.cols());
  result.scales.resize(groups, W.rows());
  result.zeros.resize(groups, W.rows());
  result.g_idx.resize(W.cols());
#pragma omp parallel for schedule(static)
  for (Index row = 0; row < W.rows(); ++row) {
    quantize_row(W, row, grid, result);
  }
  for (Index col = 0; col < W.cols(); ++col) {
    result.g_idx[col] = static_cast<int32_t>(grid.group_size > 0 ? col / grid.group_size : 0);
  }

  if (H != nullptr) {
    result.dead_columns = static_cast<Index>(dead_columns(*H).size());
    result.output_error = output_error_float32(W, result.dequant, *H);
    result.has_output_error = true;
  }
  return result;
}

}  // namespace magrq
