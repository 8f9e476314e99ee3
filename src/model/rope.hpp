// Rotary position embeddings (RoPE) in the rotate-half convention of Hugging Face Llama
// checkpoints: within each head, dimension i pairs with dimension i + head_dim / 2.
#pragma once

#include "core/types.hpp"
#include "model/llama_config.hpp"

namespace magrq::model {

// Inverse frequencies theta^(-2i / head_dim) for i < head_dim / 2, after the config's
// rope scaling (linear: divided by factor; llama3: band-wise, see RopeScaling).
// Computed in double precision.
VectorD rope_inverse_frequencies(const LlamaConfig& config);

class Rope {
 public:
  explicit Rope(const LlamaConfig& config);

  const VectorD& inverse_frequencies() const { return inverse_frequencies_; }
  Index head_dim() const { return head_dim_; }

  // Rotates every head of x (tokens x heads * head_dim) in place. Row t has position
  // first_position + t. Angles position * frequency and their cos/sin are computed in
  // double and applied in float32. O(tokens * heads * head_dim).
  void apply(Matrix& x, Index heads, Index first_position) const;

 private:
  VectorD inverse_frequencies_;
  Index head_dim_ = 0;
};

}  // namespace magrq::model
