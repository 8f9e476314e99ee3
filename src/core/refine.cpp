#include "core/refine.hpp"

#include <algorithm>

#include "core/error.hpp"
#include "core/hessian.hpp"
#include "core/quant_grid.hpp"

namespace magrq {

namespace {

// Columns per block of the Gauss-Seidel sweep: R H is updated per column inside a
// block and by one GEMM after it.
constexpr Index kRefineBlock = 32;

void require_consistent_layer(const QuantizedLayer& q, const Matrix& W_target, const Matrix& H) {
  require_layer_shapes(W_target, H);
  require_finite(W_target, "refinement target weight");
  require_finite(H, "Hessian");
  const Index out = W_target.rows();
  const Index in = W_target.cols();
  if (q.codes.rows() != out || q.codes.cols() != in || q.dequant.rows() != out ||
      q.dequant.cols() != in || q.g_idx.size() != in || q.scales.cols() != out ||
      q.zeros.rows() != q.scales.rows() || q.zeros.cols() != out) {
    throw DataError(detail::concat(
        "quantized layer has codes ", q.codes.rows(), " x ", q.codes.cols(), ", dequant ",
        q.dequant.rows(), " x ", q.dequant.cols(), ", g_idx ", q.g_idx.size(), ", scales ",
        q.scales.rows(), " x ", q.scales.cols(), " and zeros ", q.zeros.rows(), " x ",
        q.zeros.cols(), "; expected codes and dequant ", out, " x ", in, ", g_idx ", in,
        " and scales and zeros groups x ", out, " to match the target weight"));
  }
  for (Index j = 0; j < in; ++j) {
    if (q.g_idx[j] < 0 || q.g_idx[j] >= q.scales.rows()) {
      throw DataError(detail::concat("quantized layer has g_idx[", j, "] = ", q.g_idx[j],
                                     "; expected a group in 0..", q.scales.rows() - 1));
    }
  }
  if (q.bits < 2 || q.bits > 8) {
    throw DataError(detail::concat("quantized layer has bits = ", q.bits, "; expected 2..8"));
  }
}

// Moves the codes of one row in the columns [begin, end) and records each change of
// the dequantized value in `deltas`. Keeps `gradient` (this row of R H) current inside
// the block. Returns the number of codes changed.
Index refine_row_block(Index row, Index begin, Index end, const Matrix& H, QuantizedLayer& q,
                       Matrix& gradient, Matrix& deltas) {
  const int32_t maxq = (int32_t{1} << q.bits) - 1;
  float* g = gradient.row(row).data();
  float* delta_row = deltas.row(row).data();
  Index changed = 0;
  for (Index j = begin; j < end; ++j) {
    delta_row[j - begin] = 0.0f;
    const float curvature = H(j, j);
    if (!(curvature > 0.0f)) {
      continue;  // a dead column has no effect on the error
    }
    const Index group = q.g_idx[j];
    const GridParams grid{q.scales(group, row), q.zeros(group, row)};
    const float current = q.dequant(row, j);
    const int32_t code = quantize_value(current + g[j] / curvature, grid, maxq);
    const float value = dequantize_value(code, grid);
    const float delta = value - current;
    // Change of the row's error: -(2 delta g_j - delta^2 H_jj). Keep strict decreases.
    const float decrease = 2.0f * delta * g[j] - delta * delta * curvature;
    if (delta == 0.0f || !(decrease > 0.0f)) {
      continue;
    }
    q.codes(row, j) = code;
    q.dequant(row, j) = value;
    delta_row[j - begin] = delta;
    const Index rest = end - j - 1;
    Eigen::Map<Eigen::VectorXf>(g + j + 1, rest) -=
        delta * H.row(j).segment(j + 1, rest).transpose();
    ++changed;
  }
  return changed;
}

// One Gauss-Seidel sweep over all columns. Returns the number of codes changed.
// The rows run on one thread, for the reason given at GPTQ's run_lazy_blocks in
// gptq.cpp: OpenMP threads compete with OpenBLAS's spinning workers between the GEMMs.
Index refine_sweep(QuantizedLayer& q, const Matrix& W_target, const Matrix& H) {
  const Index out = W_target.rows();
  const Index in = W_target.cols();
  const Matrix residual = W_target - q.dequant;
  Matrix gradient(out, in);
  gradient.noalias() = residual * H;
  Matrix deltas(out, std::min(kRefineBlock, std::max<Index>(in, 1)));
  Index changed = 0;
  for (Index begin = 0; begin < in; begin += kRefineBlock) {
    const Index end = std::min(in, begin + kRefineBlock);
    for (Index row = 0; row < out; ++row) {
      changed += refine_row_block(row, begin, end, H, q, gradient, deltas);
    }
    if (end < in) {
      gradient.rightCols(in - end).noalias() -=
          deltas.leftCols(end - begin) * H.block(begin, end, end - begin, in - end);
    }
  }
  return changed;
}

}  // namespace

void cd_refine(QuantizedLayer& q, const Matrix& W_target, const Matrix& H, int sweeps) {
  if (sweeps < 0) {
    throw ConfigError(detail::concat("invalid refinement sweeps ", sweeps, ": expected >= 0"));
  }
  require_consistent_layer(q, W_target, H);

  const double initial_error = output_error(W_target, q.dequant, H);
  const MatrixI initial_codes = q.codes;
  const Matrix initial_dequant = q.dequant;
  double error = output_error_float32(W_target, q.dequant, H);
  q.refine_errors.push_back(error);
  for (int sweep = 1; sweep <= sweeps; ++sweep) {
    const MatrixI codes_before = q.codes;
    const Matrix dequant_before = q.dequant;
    if (refine_sweep(q, W_target, H) == 0) {
      q.events.push_back(detail::concat("coordinate descent: converged after ", sweep - 1,
                                        " sweeps (no code changed)"));
      break;
    }
    const double new_error = output_error_float32(W_target, q.dequant, H);
    if (new_error > error) {
      q.codes = codes_before;
      q.dequant = dequant_before;
      q.events.push_back(detail::concat("coordinate descent: sweep ", sweep,
                                        " raised the output error from ", error, " to ", new_error,
                                        " through rounding; undone, stopping"));
      break;
    }
    error = new_error;
    q.refine_errors.push_back(error);
  }

  // The sweeps compare float32-product errors, accurate to about 1e-7 relative, so
  // check the outcome once in float64.
  q.output_error = output_error(W_target, q.dequant, H);
  if (q.output_error > initial_error) {
    q.events.push_back(detail::concat("coordinate descent: float64 output error rose from ",
                                      initial_error, " to ", q.output_error,
                                      "; restored the codes from before the refinement"));
    q.codes = initial_codes;
    q.dequant = initial_dequant;
    q.output_error = initial_error;
  }
  q.has_output_error = true;
  q.events.push_back(detail::concat("coordinate descent: ", q.refine_errors.size() - 1,
                                    " sweeps, output error ", initial_error, " -> ",
                                    q.output_error));
}

}  // namespace magrq
