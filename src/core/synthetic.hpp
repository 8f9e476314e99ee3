// Synthetic layers for demos, tests and benchmarks: a weight and a calibration Hessian
// shaped like a real transformer linear layer, fully determined by a seed.
#pragma once

#include <cstdint>
#include <random>

#include "core/types.hpp"

namespace magrq {

// Standard normal samples from a 64-bit Mersenne Twister via Box-Muller. Written out
// rather than std::normal_distribution, whose algorithm differs between standard
// libraries, so a seed gives the same numbers with any compiler.
class NormalSampler {
 public:
  explicit NormalSampler(uint64_t seed) : engine_(seed) {}
  double next();

 private:
  std::mt19937_64 engine_;
  double spare_ = 0.0;
  bool has_spare_ = false;
};

struct SyntheticLayerOptions {
  Index out_features = 256;
  Index in_features = 256;
  Index tokens = 2048;           // calibration tokens behind H
  Index outlier_channels = 4;    // input channels whose activations are outlier_scale larger
  double outlier_scale = 20.0;
  double weight_std = 0.02;
  double weight_outlier_fraction = 0.001;  // fraction of weights drawn 10x wider
  uint64_t seed = 0;
  void validate() const;
};

struct SyntheticLayer {
  Matrix weight;   // out_features x in_features
  Matrix hessian;  // in_features x in_features, X^T X summed over tokens
};

// Draws activations X (tokens x in) with a shared low-rank component, so channels are
// correlated as in real layers, plus a few outlier channels, and returns H = X^T X and a
// Gaussian weight with rare large entries. Cost O(tokens * in^2).
SyntheticLayer make_synthetic_layer(const SyntheticLayerOptions& options);

}  // namespace magrq
