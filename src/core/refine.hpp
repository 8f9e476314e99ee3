// Coordinate-descent refinement of a quantized layer, the "+ CD" variant of the MagR
// paper (Zhang et al., arXiv 2406.00800) that follows GPTQ at 2 bits.
#pragma once

#include "core/quantized_layer.hpp"
#include "core/types.hpp"

namespace magrq {

// Runs `sweeps` Gauss-Seidel sweeps over the input columns of q. For column j and each
// output row, the code moves to the grid value (the fixed scale and zero of its group)
// that minimises tr((W_target - Q) H (W_target - Q)^T) with the other columns fixed:
// the unconstrained optimum Q_j + (R H)_j / H(j, j) with R = W_target - Q, rounded to
// the grid and clamped. A move is kept only when it lowers that error, and columns with
// H(j, j) == 0 keep their codes.
//
// R H is recomputed at the start of each sweep. Within the sweep it is updated by one
// rank-1 update per column inside a block of 32 columns and one matrix product per
// block. A sweep costs O(out * in^2): about 1.5 float32 GEMMs of that shape, plus one
// more for the error check.
//
// The output error is checked after every sweep with output_error_float32(): a sweep
// that raised it through float32 rounding is undone and the refinement stops. The
// final error is computed in float64, and if it exceeds the float64 error before the
// refinement, the original codes are restored, so q.output_error never increases.
// Stops early when a sweep changes no code.
//
// Updates q.codes, q.dequant and q.output_error (float64, now against W_target),
// appends the float32-product error before the first sweep and after each sweep to
// q.refine_errors, and records the outcome in q.events. Throws ConfigError for
// sweeps < 0 and DataError when the shapes of q, W_target and H disagree or W_target
// or H is not finite.
void cd_refine(QuantizedLayer& q, const Matrix& W_target, const Matrix& H, int sweeps);

}  // namespace magrq
