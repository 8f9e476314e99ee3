#include "dist/peak_memory.hpp"

#include <spdlog/spdlog.h>

#include <fstream>
#include <sstream>
#include <string>

namespace magrq::dist {

std::optional<uint64_t> peak_resident_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    // The line reads "VmHWM:   123456 kB".
    if (line.rfind("VmHWM:", 0) == 0) {
      std::istringstream fields(line.substr(6));
      uint64_t kib = 0;
      if (fields >> kib) {
        return kib * 1024;
      }
    }
  }
  return std::nullopt;
}

void log_peak_memory(const Comm& comm) {
  // A missing value travels as -1, so every rank sends exactly one number.
  constexpr int kTag = 7301;
  const std::optional<uint64_t> own = peak_resident_bytes();
  const double value = own ? static_cast<double>(*own) : -1.0;
  if (!comm.is_coordinator()) {
    comm.send(std::span<const double>(&value, 1), 0, kTag);
    return;
  }
  std::string text;
  for (int rank = 0; rank < comm.size(); ++rank) {
    double bytes = value;
    if (rank > 0) {
      comm.receive(std::span<double>(&bytes, 1), rank, kTag);
    }
    char entry[64];
    if (bytes < 0) {
      std::snprintf(entry, sizeof(entry), "%s%d: unknown", rank ? ", " : "", rank);
    } else {
      std::snprintf(entry, sizeof(entry), "%s%d: %.2f GiB", rank ? ", " : "", rank, bytes / (1024.0 * 1024.0 * 1024.0));
    }
    text += entry;
  }
  spdlog::info("peak resident memory (VmHWM) per rank: {}", text);
}

}  // namespace magrq::dist
