#include "core/synthetic.hpp"

#include <cmath>
#include <numbers>

#include "core/error.hpp"

namespace magrq {

double NormalSampler::next() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  // Two uniforms in (0, 1]: 53 random bits each, offset so that log() never gets 0.
  const double u1 = (static_cast<double>(engine_() >> 11) + 1.0) * 0x1.0p-53;
  const double u2 = (static_cast<double>(engine_() >> 11) + 1.0) * 0x1.0p-53;
  const double radius = std::sqrt(-2.0 * std::log(u1));
  const double angle = 2.0 * std::numbers::pi * u2;
  spare_ = radius * std::sin(angle);
  has_spare_ = true;
  return radius * std::cos(angle);
}

void SyntheticLayerOptions::validate() const {
  if (out_features < 1) {
    throw ConfigError(detail::concat("invalid out_features ", out_features, ": expected >= 1"));
  }
  if (in_features < 1) {
    throw ConfigError(detail::concat("invalid in_features ", in_features, ": expected >= 1"));
  }
  if (tokens < 1) {
    throw ConfigError(detail::concat("invalid tokens ", tokens, ": expected >= 1"));
  }
  if (outlier_channels < 0 || outlier_channels > in_features) {
    throw ConfigError(detail::concat("invalid outlier_channels ", outlier_channels,
                                     ": expected 0 to in_features (", in_features, ")"));
  }
  if (!(outlier_scale > 0) || !(weight_std > 0)) {
    throw ConfigError("invalid outlier_scale or weight_std: expected positive values");
  }
  if (!(weight_outlier_fraction >= 0 && weight_outlier_fraction <= 1)) {
    throw ConfigError(detail::concat("invalid weight_outlier_fraction ", weight_outlier_fraction,
                                     ": expected a value in [0, 1]"));
  }
}

namespace {

Matrix draw_activations(const SyntheticLayerOptions& options, NormalSampler& normal) {
  // Eight shared factors give the channels realistic correlation; the rest is noise.
  const Index factors = std::min<Index>(8, options.in_features);
  Matrix loadings(factors, options.in_features);
  for (Index f = 0; f < factors; ++f) {
    for (Index i = 0; i < options.in_features; ++i) {
      loadings(f, i) = static_cast<float>(normal.next());
    }
  }
  Matrix x(options.tokens, options.in_features);
  Matrix latent(options.tokens, factors);
  for (Index t = 0; t < options.tokens; ++t) {
    for (Index f = 0; f < factors; ++f) {
      latent(t, f) = static_cast<float>(normal.next());
    }
    for (Index i = 0; i < options.in_features; ++i) {
      x(t, i) = static_cast<float>(normal.next());
    }
  }
  x.noalias() += 0.5f * latent * loadings;
  // Outlier channels are spread evenly so that they fall into different groups.
  for (Index k = 0; k < options.outlier_channels; ++k) {
    const Index channel = (k * options.in_features) / std::max<Index>(1, options.outlier_channels);
    x.col(channel) *= static_cast<float>(options.outlier_scale);
  }
  return x;
}

Matrix draw_weight(const SyntheticLayerOptions& options, NormalSampler& normal) {
  // A uniform from the same stream decides which entries are drawn wider.
  Matrix w(options.out_features, options.in_features);
  for (Index r = 0; r < w.rows(); ++r) {
    for (Index c = 0; c < w.cols(); ++c) {
      const double value = normal.next() * options.weight_std;
      const double selector = 0.5 * (1.0 + std::erf(normal.next() / std::numbers::sqrt2));
      const double widen = selector < options.weight_outlier_fraction ? 10.0 : 1.0;
      w(r, c) = static_cast<float>(value * widen);
    }
  }
  return w;
}

}  // namespace

SyntheticLayer make_synthetic_layer(const SyntheticLayerOptions& options) {
  options.validate();
  NormalSampler normal(options.seed);
  const Matrix x = draw_activations(options, normal);
  SyntheticLayer layer;
  layer.weight = draw_weight(options, normal);
  const MatrixD xd = x.cast<double>();
  layer.hessian = (xd.transpose() * xd).cast<float>();
  return layer;
}

}  // namespace magrq
