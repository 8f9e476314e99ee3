// Data-parallel perplexity: window w is evaluated on rank w mod P and the window losses
// are gathered to rank 0 in window order, so the perplexity is the same for any number
// of ranks.
#pragma once

#include <optional>
#include <vector>

#include "dist/comm.hpp"
#include "model/checkpoint.hpp"
#include "model/perplexity.hpp"

namespace magrq::dist {

// A collective. Returns the result on rank 0 and nothing on other ranks.
std::optional<model::PerplexityResult> distributed_perplexity(
    const Comm& comm, const model::Checkpoint& checkpoint,
    const std::vector<std::vector<int32_t>>& windows, const model::PerplexityOptions& options = {});

}  // namespace magrq::dist
