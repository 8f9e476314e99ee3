// Wall-clock timing shared by the pipeline, the scheduler and the run driver.
#pragma once

#include <chrono>

namespace magrq {

// Seconds of the steady clock elapsed since start.
inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace magrq
