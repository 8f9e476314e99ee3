// Matrix types shared by every layer of magrq.
//
// Shapes follow PyTorch: a weight W is out_features x in_features (one row per output
// channel) and a Hessian H is in_features x in_features. Row-major storage matches the
// safetensors layout, so a checkpoint tensor maps onto a Matrix without a transpose.
#pragma once

#include <Eigen/Core>
#include <cstdint>

namespace magrq {

using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatrixD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatrixI = Eigen::Matrix<int32_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Vector = Eigen::VectorXf;
using VectorD = Eigen::VectorXd;
using VectorI = Eigen::Matrix<int32_t, Eigen::Dynamic, 1>;
using Index = Eigen::Index;

}  // namespace magrq
