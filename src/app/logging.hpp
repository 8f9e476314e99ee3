// One spdlog pattern for every magrq process: time, MPI rank, level, message.
#pragma once

#include <spdlog/spdlog.h>

#include <string_view>

namespace magrq::app {

// Installs the default logger on stderr with the rank in every line. level is one of
// spdlog's names (trace, debug, info, warn, error, off).
void setup_logging(int rank, std::string_view level);

// The rank that the MPI launcher assigned to this process (Open MPI, MPICH or Slurm
// environment variables), or 0 when the process was not started by a launcher.
int launcher_rank();

}  // namespace magrq::app
