// GPTQ, Algorithm 1 of Frantar et al., "GPTQ: Accurate Post-Training Quantization for
// Generative Pre-trained Transformers" (arXiv 2210.17323). It quantizes the input
// columns one at a time and spreads each column's rounding error over the columns not
// yet quantized, to minimise the output error tr((W - Q) H (W - Q)^T).
#pragma once

#include <vector>

#include "core/quant_grid.hpp"
#include "core/quantized_layer.hpp"
#include "core/types.hpp"

namespace magrq {

struct GptqOptions {
  QuantGridOptions grid;
  // Damping added to diag(H) before factoring, as a fraction of mean(diag H), >= 0.
  // 0.01 is the GPTQ default.
  double percdamp = 0.01;
  // Columns per lazy-batch block, >= 1. It changes the result only through float32
  // rounding. 128 is the GPTQ default.
  Index block_size = 128;
  // Quantize columns in order of decreasing H(i, i) (the GPTQ "act-order" heuristic).
  bool act_order = false;
  // Fit every group's grid on the weights before any update, in the original column
  // order; needs grid.group_size > 0. Keeps g_idx[i] = i / group_size under act_order.
  bool static_groups = false;
  // Dampings tried, as multiples of mean(diag H), after percdamp fails to give a
  // positive-definite matrix. Strictly increasing, each above percdamp. The default
  // climbs in tenfold steps to 1 x mean(diag H), which doubles the mean diagonal.
  // Larger damping weakens the error compensation and moves the result toward RTN.
  std::vector<double> damping_ladder = {0.1, 1.0};
  // When percdamp and the whole ladder fail in float32 and in float64, quantize this
  // layer with RTN (recorded in the result) instead of throwing NumericalError.
  bool allow_rtn_fallback = true;

  // Throws ConfigError naming the first invalid key and its value.
  void validate() const;
};

// Quantizes W (out x in) with GPTQ for the Hessian H (in x in, any positive scaling of
// X^T X over the calibration tokens).
//
// - Dead input channels (H(i, i) == 0) get H(i, i) = 1 and a zero weight column before
//   the factorization, so their codes stand for exactly 0 and they do not widen any
//   grid; they have no effect on the layer's output.
// - The damped Hessian is factored in float32 with percdamp and then with each ladder
//   step, then with the same sequence in float64. When all fail, the layer falls back
//   to RTN if allowed. Every attempt and fallback is recorded in the result.
// - The returned codes are in the original column order and output_error is measured
//   against the W passed in with the undamped H.
//
// Cost: O(in^3) for the factorization plus O(out * in^2) for the updates, most of it in
// BLAS matrix products. Throws ConfigError for invalid options, DataError naming
// "weight" or "Hessian" and the first bad entry for non-finite input or mismatched
// shapes, and NumericalError listing every damping tried when no factorization succeeds
// and the RTN fallback is disabled.
QuantizedLayer gptq_quantize(const Matrix& W, const Matrix& H, const GptqOptions& options);

}  // namespace magrq
