// Round-to-nearest (RTN) quantization: every weight goes to the nearest code of its
// group's min-max grid, with no error compensation. The baseline that GPTQ improves
// on, and GPTQ's fallback when the Hessian cannot be factored.
#pragma once

#include "core/quant_grid.hpp"
#include "core/quantized_layer.hpp"
#include "core/types.hpp"

namespace magrq {

// Quantizes W (out x in) with one grid per output row and column group, fitted on W
// itself; g_idx[i] = i / group_size. When H (in x in) is given, output_error is
// computed against it (O(out * in^2)); otherwise O(out * in).
// Throws ConfigError for invalid options and DataError for a non-finite W or H or a
// Hessian whose shape does not match W.
QuantizedLayer rtn_quantize(const Matrix& W, const QuantGridOptions& grid,
                            const Matrix* H = nullptr);

}  // namespace magrq
