// Locating the read-only test data (real models, tokenizers and text).
//
// The data folder is $MAGRQ_DATA_DIR when set, otherwise ../shared/data beside the
// source tree. A test that needs it calls MAGRQ_REQUIRE_DATA(): outside CI a missing
// folder skips the test with a message; in CI (CI=true) it fails the test.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace magrq::testing {

inline std::filesystem::path shared_data_dir() {
  if (const char* override_dir = std::getenv("MAGRQ_DATA_DIR")) {
    return override_dir;
  }
  return std::filesystem::path(MAGRQ_SOURCE_DIR).parent_path() / "shared" / "data";
}

inline bool running_in_ci() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

// A fresh, empty folder under the build tree for one test's files.
inline std::filesystem::path scratch_dir(const std::string& name) {
  const auto dir = std::filesystem::path(MAGRQ_BINARY_DIR) / "test-scratch" / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace magrq::testing

// Skips (outside CI) or fails (in CI) the current test when the shared data folder is
// missing. Use at the top of a TEST body.
#define MAGRQ_REQUIRE_DATA()                                                              \
  do {                                                                                    \
    const auto data_dir_ = ::magrq::testing::shared_data_dir();                           \
    if (!std::filesystem::is_directory(data_dir_)) {                                      \
      if (::magrq::testing::running_in_ci()) {                                            \
        FAIL() << "test data folder " << data_dir_ << " not found; set MAGRQ_DATA_DIR";   \
      }                                                                                   \
      GTEST_SKIP() << "test data folder " << data_dir_                                    \
                   << " not found; set MAGRQ_DATA_DIR to run this test";                  \
    }                                                                                     \
  } while (false)
