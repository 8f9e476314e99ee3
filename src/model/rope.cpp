#include "model/rope.hpp"

#include <cmath>
#include <numbers>

#include "core/error.hpp"

namespace magrq::model {
namespace {

// Llama 3.1 scaling: long wavelengths (low frequencies) are divided by factor, short
// ones are kept, and the band between is a linear blend in orig / wavelength.
double llama3_scaled(double inverse_frequency, const RopeScaling& scaling) {
  const double original = static_cast<double>(scaling.original_max_position_embeddings);
  const double low_frequency_wavelength = original / scaling.low_freq_factor;
  const double high_frequency_wavelength = original / scaling.high_freq_factor;
  const double wavelength = 2.0 * std::numbers::pi / inverse_frequency;
  if (wavelength > low_frequency_wavelength) {
    return inverse_frequency / scaling.factor;
  }
  if (wavelength < high_frequency_wavelength) {
    return inverse_frequency;
  }
  const double smooth = (original / wavelength - scaling.low_freq_factor) /
                        (scaling.high_freq_factor - scaling.low_freq_factor);
  return (1.0 - smooth) * inverse_frequency / scaling.factor + smooth * inverse_frequency;
}

}  // namespace

VectorD rope_inverse_frequencies(const LlamaConfig& config) {
  const Index half = config.head_dim / 2;
  VectorD frequencies(half);
  for (Index i = 0; i < half; ++i) {
    const double exponent = static_cast<double>(2 * i) / static_cast<double>(config.head_dim);
    double frequency = 1.0 / std::pow(config.rope_theta, exponent);
    switch (config.rope_scaling.type) {
      case RopeScalingType::none: break;
      case RopeScalingType::linear: frequency /= config.rope_scaling.factor; break;
      case RopeScalingType::llama3: frequency = llama3_scaled(frequency, config.rope_scaling); break;
    }
    frequencies(i) = frequency;
  }
  return frequencies;
}

Rope::Rope(const LlamaConfig& config)
    : inverse_frequencies_(rope_inverse_frequencies(config)), head_dim_(config.head_dim) {}

void Rope::apply(Matrix& x, Index heads, Index first_position) const {
  MAGRQ_CHECK(x.cols() == heads * head_dim_, "x has ", x.cols(), " columns, expected ", heads,
              " heads x ", head_dim_);
  const Index half = head_dim_ / 2;
  Vector cosines(half);
  Vector sines(half);
  for (Index t = 0; t < x.rows(); ++t) {
    const double position = static_cast<double>(first_position + t);
    for (Index i = 0; i < half; ++i) {
      const double angle = position * inverse_frequencies_(i);
      cosines(i) = static_cast<float>(std::cos(angle));
      sines(i) = static_cast<float>(std::sin(angle));
    }
    for (Index head = 0; head < heads; ++head) {
      float* values = x.row(t).data() + head * head_dim_;
      for (Index i = 0; i < half; ++i) {
        const float first = values[i];
        const float second = values[i + half];
        values[i] = first * cosines(i) - second * sines(i);
        values[i + half] = second * cosines(i) + first * sines(i);
      }
    }
  }
}

}  // namespace magrq::model
