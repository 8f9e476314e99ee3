#include "app/mpi_main.hpp"

#include <spdlog/spdlog.h>

#include "core/error.hpp"
#include "dist/peak_memory.hpp"

namespace magrq::app {

int run_on_all_ranks(const std::function<int(const dist::Comm&)>& body) {
  dist::MpiSession session;
  const dist::Comm comm(MPI_COMM_WORLD);
  if (!comm.is_coordinator() && spdlog::get_level() < spdlog::level::warn) {
    // Only rank 0 reports progress; other ranks report warnings and errors.
    spdlog::set_level(spdlog::level::warn);
  }
  try {
    const int code = body(comm);
    dist::log_peak_memory(comm);
    return code;
  } catch (const ConfigError& error) {
    spdlog::error("{}", error.what());
    comm.abort(2);
  } catch (const std::exception& error) {
    spdlog::error("{}", error.what());
    comm.abort(1);
  }
  return 1;  // not reached: abort ends the job
}

}  // namespace magrq::app
