#include "dist/evaluate.hpp"

#include "dist/calibrate.hpp"

namespace magrq::dist {

std::optional<model::PerplexityResult> distributed_perplexity(
    const Comm& comm, const model::Checkpoint& checkpoint,
    const std::vector<std::vector<int32_t>>& windows, const model::PerplexityOptions& options) {
  std::vector<std::vector<int32_t>> mine;
  for (size_t w = 0; w < windows.size(); ++w) {
    if (window_owner(static_cast<int64_t>(w), comm.size()) == comm.rank()) {
      mine.push_back(windows[w]);
    }
  }
  std::vector<double> local = mine.empty() ? std::vector<double>{}
                                           : model::window_losses(checkpoint, mine, options);
  int count = static_cast<int>(local.size());
  std::vector<int> counts(static_cast<size_t>(comm.size()));
  MPI_Gather(&count, 1, MPI_INT, counts.data(), 1, MPI_INT, 0, comm.handle());
  std::vector<int> offsets(counts.size(), 0);
  for (size_t r = 1; r < counts.size(); ++r) {
    offsets[r] = offsets[r - 1] + counts[r - 1];
  }
  std::vector<double> gathered(windows.size());
  MPI_Gatherv(local.data(), count, MPI_DOUBLE, gathered.data(), counts.data(), offsets.data(),
              MPI_DOUBLE, 0, comm.handle());
  if (comm.rank() != 0) {
    return std::nullopt;
  }
  // Rank r's losses are for windows r, r + P, r + 2P, ...: put them back in window order.
  std::vector<double> ordered(windows.size());
  for (int r = 0; r < comm.size(); ++r) {
    for (int k = 0; k < counts[static_cast<size_t>(r)]; ++k) {
      const size_t window = static_cast<size_t>(r) + static_cast<size_t>(k) * static_cast<size_t>(comm.size());
      ordered[window] = gathered[static_cast<size_t>(offsets[static_cast<size_t>(r)] + k)];
    }
  }
  return model::perplexity_from_losses(ordered);
}

}  // namespace magrq::dist
