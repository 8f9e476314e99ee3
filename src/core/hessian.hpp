// Hessian and weight utilities shared by MagR, RTN, GPTQ and the refinement.
//
// H is in x in, symmetric positive semi-definite, in any positive scaling of X^T X
// (the sum over calibration tokens, or that sum divided by the token count).
#pragma once

#include <optional>
#include <string>

#include "core/types.hpp"

namespace magrq {

// Position of the first non-finite entry of a matrix in row-major order.
struct MatrixEntry {
  Index row = 0;
  Index col = 0;
};

std::optional<MatrixEntry> first_non_finite(const Matrix& m);

// Throws DataError naming `what` (for example "weight of layer 3 q_proj") and the first
// NaN or Inf entry, if m has one.
void require_finite(const Matrix& m, const std::string& what);

// Throws DataError unless W is out x in and H is in x in, naming the shapes found.
void require_layer_shapes(const Matrix& W, const Matrix& H);

// Indices of dead input channels: H(i, i) == 0 exactly, so input i was 0 for every
// calibration token and its weight column has no effect on the layer's output.
std::vector<Index> dead_columns(const Matrix& H);

// The layer's output error tr((W - Q) H (W - Q)^T) = sum over tokens of ||(W - Q) x||^2,
// accumulated in float64. O(out * in^2).
double output_error(const Matrix& W, const Matrix& Q, const Matrix& H);

// The same output error with the product (W - Q) H in float32 (a BLAS GEMM) and the
// sum in float64: O(out * in^2) at float32 GEMM speed, 2 to 3 times faster than
// output_error(). On synthetic layers 1024 and 2048 wide, quantized by GPTQ and RTN at
// 2 to 8 bits, it agreed with output_error() to 1e-7 relative.
// NOTE: a Hessian far worse conditioned than those layers loses more accuracy here.
double output_error_float32(const Matrix& W, const Matrix& Q, const Matrix& H);

// Per output row i, (w_i - q_i)^T H (w_i - q_i), computed as output_error_float32()
// does; the entries sum to the layer's output error.
VectorD row_output_errors(const Matrix& W, const Matrix& Q, const Matrix& H);

}  // namespace magrq
