// Perplexity as the GPTQ and MagR papers measure it: the text is tokenized once and cut
// into non-overlapping windows of seqlen tokens; each window's loss is the mean
// next-token cross-entropy over its seqlen - 1 predictions, and
//   perplexity = exp(mean over windows of the window loss).
// Every window starts without context, and its first token is not scored.
#pragma once

#include <span>
#include <vector>

#include "core/types.hpp"
#include "model/checkpoint.hpp"

namespace magrq::model {

struct PerplexityOptions {
  // Windows that go through the layers together (each layer is loaded once per batch),
  // >= 1. Memory grows with batch_windows * seqlen * max(intermediate_size, seqlen).
  Index batch_windows = 16;

  void validate() const;
};

// Loss in nats of each window, in order: the per-window computation that a
// data-parallel driver runs on its share of the windows. Each window needs >= 2 tokens.
std::vector<double> window_losses(const Checkpoint& checkpoint,
                                  const std::vector<std::vector<int32_t>>& windows,
                                  const PerplexityOptions& options = {});

struct PerplexityResult {
  double perplexity = 0;
  double mean_loss = 0;  // nats per predicted token, averaged over windows
  Index windows = 0;
};

// exp of the mean window loss, summed in double. Throws DataError for no windows.
PerplexityResult perplexity_from_losses(std::span<const double> losses);

}  // namespace magrq::model
