// The result of quantizing one linear layer (RTN or GPTQ), with the diagnostics that
// the caller logs and counts. The core never logs: every fallback and retry is recorded
// here instead.
#pragma once

#include <string>
#include <vector>

#include "core/types.hpp"

namespace magrq {

// One attempt to factor the damped Hessian in GPTQ.
struct DampingAttempt {
  double multiplier = 0.0;  // damping as a multiple of mean(diag H)
  double damping = 0.0;     // value added to every diagonal entry of H
  bool float64 = false;     // factored in float64 (otherwise float32)
  bool succeeded = false;
};

// Shapes use out = out_features, in = in_features and groups = number of column groups
// (1 for per-channel grids, ceil(in / group_size) otherwise).
struct QuantizedLayer {
  int bits = 0;
  Index group_size = -1;  // -1 for one group per row

  // out x in: the integer codes in [0, 2^bits - 1], in the original column order.
  MatrixI codes;
  // groups x out: the scale of each group's grid, per output row.
  Matrix scales;
  // groups x out: the zero point of each group's grid, per output row, in [0, 2^bits - 1].
  MatrixI zeros;
  // in: the group of each input column, so that column i of row r dequantizes with
  // scales(g_idx[i], r) and zeros(g_idx[i], r).
  VectorI g_idx;
  // out x in: scales * (codes - zeros), the weight that inference uses.
  Matrix dequant;

  // tr((W - dequant) H (W - dequant)^T) for the W given to the quantizer and the
  // undamped H. RTN and GPTQ compute it with output_error_float32(). cd_refine()
  // recomputes it in float64 against its target weight. Valid only when
  // has_output_error is true (RTN without a Hessian leaves it 0).
  double output_error = 0.0;
  bool has_output_error = false;

  // GPTQ diagnostics: the damping of the factorization that succeeded (0 for RTN or
  // after a fallback), every attempt in order, and the fallbacks taken.
  double damping = 0.0;
  double damping_multiplier = 0.0;
  std::vector<DampingAttempt> damping_attempts;
  bool used_float64 = false;  // float32 failed for every damping and float64 succeeded
  bool rtn_fallback = false;  // every factorization failed and RTN quantized the layer
  Index dead_columns = 0;     // input channels with H(i, i) == 0, quantized to exact zero

  // Output error before and after each coordinate-descent sweep of cd_refine(), from
  // output_error_float32() against the refinement target. Empty when no refinement ran.
  std::vector<double> refine_errors;

  // Human-readable record of every retry, fallback and refinement, in order, for the
  // caller to log.
  std::vector<std::string> events;
};

}  // namespace magrq
