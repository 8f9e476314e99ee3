// `magrq run`: the distributed job, as a sequence of named phases:
//   plan -> calibrate + quantize (independent: all layers calibrated, then all items;
//   sequential: calibrate, quantize and forward one layer at a time) -> export -> verify
//   -> evaluate -> report.
#pragma once

#include <filesystem>

#include "dist/comm.hpp"

namespace magrq::app {

struct RunFlags {
  bool dry_run = false;         // print the plan and stop before any heavy work
  bool restart = false;         // discard a journal of a different run
  bool calibrate_only = false;  // stop after writing the Hessian store
};

// Runs the experiment on every rank of comm; returns the exit code. Errors propagate as
// exceptions to the caller's catch point, which aborts the whole job.
int run_experiment(const dist::Comm& comm, const std::filesystem::path& experiment_file,
                   const RunFlags& flags);

}  // namespace magrq::app
