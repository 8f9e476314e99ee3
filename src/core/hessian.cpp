#include "core/hessian.hpp"

#include <cmath>

#include "core/error.hpp"

namespace magrq {

std::optional<MatrixEntry> first_non_finite(const Matrix& m) {
  for (Index row = 0; row < m.rows(); ++row) {
    for (Index col = 0; col < m.cols(); ++col) {
      if (!std::isfinite(m(row, col))) {
        return MatrixEntry{row, col};
      }
    }
  }
  return std::nullopt;
}

void require_finite(const Matrix& m, const std::string& what) {
  const auto bad = first_non_finite(m);
  if (bad) {
    throw DataError(detail::concat(what, " has a non-finite value ", m(bad->row, bad->col),
                                   " at [", bad->row, ", ", bad->col,
                                   "]; expected only finite numbers"));
  }
}

void require_layer_shapes(const Matrix& W, const Matrix& H) {
  if (H.rows() != H.cols() || H.rows() != W.cols()) {
    throw DataError(detail::concat("weight is ", W.rows(), " x ", W.cols(), " and Hessian is ",
                                   H.rows(), " x ", H.cols(), "; expected the Hessian to be ",
                                   W.cols(), " x ", W.cols(), " (in_features squared)"));
  }
}

std::vector<Index> dead_columns(const Matrix& H) {
  std::vector<Index> dead;
  for (Index i = 0; i < H.rows(); ++i) {
    if (H(i, i) == 0.0f) {
      dead.push_back(i);
    }
  }
  return dead;
}

double output_error(const Matrix& W, const Matrix& Q, const Matrix& H) {
  MAGRQ_CHECK(W.rows() == Q.rows() && W.cols() == Q.cols(), "W is ", W.rows(), "x", W.cols(),
              ", Q is ", Q.rows(), "x", Q.cols());
  const MatrixD delta = (W - Q).cast<double>();
  const MatrixD delta_h = delta * H.cast<double>();
  return delta_h.cwiseProduct(delta).sum();
}

double output_error_float32(const Matrix& W, const Matrix& Q, const Matrix& H) {
  return row_output_errors(W, Q, H).sum();
}

VectorD row_output_errors(const Matrix& W, const Matrix& Q, const Matrix& H) {
  MAGRQ_CHECK(W.rows() == Q.rows() && W.cols() == Q.cols(), "W is ", W.rows(), "x", W.cols(),
              ", Q is ", Q.rows(), "x", Q.cols());
  const Matrix delta = W - Q;
  Matrix delta_h(delta.rows(), delta.cols());
  delta_h.noalias() = delta * H;
  return delta_h.cast<double>().cwiseProduct(delta.cast<double>()).rowwise().sum();
}

}  // namespace magrq
