#include "app/logging.hpp"

#include <spdlog/sinks/stdout_sinks.h>

#include <cstdlib>
#include <string>

#include "core/error.hpp"

namespace magrq::app {

void setup_logging(int rank, std::string_view level) {
  auto logger = spdlog::stderr_logger_mt("magrq");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("[%Y-%m-%d %H:%M:%S.%e] [rank " + std::to_string(rank) + "] [%l] %v");
  const spdlog::level::level_enum parsed = spdlog::level::from_str(std::string(level));
  if (parsed == spdlog::level::off && level != "off") {
    throw ConfigError("invalid --log-level '" + std::string(level) +
                      "': expected trace, debug, info, warn, error or off");
  }
  spdlog::set_level(parsed);
}

int launcher_rank() {
  for (const char* name : {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID"}) {
    if (const char* value = std::getenv(name)) {
      return std::atoi(value);
    }
  }
  return 0;
}

}  // namespace magrq::app
