// The MPI frame of the commands that run on every rank (run, calibrate, sweep).
#pragma once

#include <functional>

#include "dist/comm.hpp"

namespace magrq::app {

// Starts MPI, quiets every rank but the coordinator below warnings, runs body, logs each
// rank's peak memory and returns body's exit code. A ConfigError aborts the job with
// exit code 2 and any other error with 1, after logging it, so that no rank waits on a
// failed one.
int run_on_all_ranks(const std::function<int(const dist::Comm&)>& body);

}  // namespace magrq::app
