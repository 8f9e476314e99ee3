#include "model/perplexity.hpp"

#include <cmath>

#include "core/error.hpp"
#include "model/forward.hpp"

namespace magrq::model {

void PerplexityOptions::validate() const {
  if (batch_windows < 1) {
    throw ConfigError(detail::concat("batch_windows is ", batch_windows, "; expected at least 1"));
  }
}

std::vector<double> window_losses(const Checkpoint& checkpoint,
                                  const std::vector<std::vector<int32_t>>& windows,
                                  const PerplexityOptions& options) {
  options.validate();
  for (size_t w = 0; w < windows.size(); ++w) {
    if (windows[w].size() < 2) {
      throw DataError(detail::concat("window ", w, " has ", windows[w].size(),
                                     " tokens; a loss needs at least 2"));
    }
  }

  std::vector<double> losses;
  losses.reserve(windows.size());
  const auto batch = static_cast<size_t>(options.batch_windows);
  for (size_t first = 0; first < windows.size(); first += batch) {
    const size_t last = std::min(windows.size(), first + batch);
    const std::vector<std::vector<int32_t>> chunk(windows.begin() + static_cast<std::ptrdiff_t>(first),
                                                  windows.begin() + static_cast<std::ptrdiff_t>(last));
    for (const VectorD& log_probs : next_token_log_probs(checkpoint, chunk)) {
      losses.push_back(-log_probs.mean());
    }
  }
  return losses;
}

PerplexityResult perplexity_from_losses(std::span<const double> losses) {
  if (losses.empty()) {
    throw DataError("perplexity needs at least one window loss; none were given");
  }
  double sum = 0;
  for (double loss : losses) {
    sum += loss;
  }
  PerplexityResult result;
  result.windows = static_cast<Index>(losses.size());
  result.mean_loss = sum / static_cast<double>(losses.size());
  result.perplexity = std::exp(result.mean_loss);
  return result;
}

}  // namespace magrq::model
