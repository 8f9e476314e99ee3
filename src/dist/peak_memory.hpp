// Peak resident memory of each rank, logged at the end of a run so that a run's memory
// can be compared with the plan's estimate per rank.
#pragma once

#include <cstdint>
#include <optional>

#include "dist/comm.hpp"

namespace magrq::dist {

// This process's peak resident set size in bytes (VmHWM of /proc/self/status, which
// counts touched pages of memory-mapped files too), or nullopt where /proc is missing.
std::optional<uint64_t> peak_resident_bytes();

// A collective: rank 0 collects every rank's peak resident set size and logs one line,
// "peak resident memory (VmHWM) per rank: 0: 2.31 GiB, 1: 1.20 GiB".
void log_peak_memory(const Comm& comm);

}  // namespace magrq::dist
