// Shared helpers for the benchmark programs: timing, the GEMM baseline every ratio is
// quoted against, and output as an aligned table plus one JSON line per result.
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include "core/synthetic.hpp"
#include "core/types.hpp"

namespace magrq::bench {

// Best (minimum) wall time in seconds of `repeats` calls of fn, after one warm-up call.
// The minimum is the least disturbed by other load on a shared machine.
inline double best_seconds(const std::function<void()>& fn, int repeats) {
  fn();
  double best = 1e300;
  for (int i = 0; i < repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    fn();
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    best = std::min(best, elapsed.count());
  }
  return best;
}

// Time of one float32 GEMM C = A * B with A rows x inner and B inner x cols, through
// Eigen's BLAS path (OpenBLAS). This is the baseline of every ratio in docs/benchmarks.md.
inline double gemm_seconds(Index rows, Index inner, Index cols, int repeats) {
  const Matrix a = Matrix::Random(rows, inner);
  const Matrix b = Matrix::Random(inner, cols);
  Matrix c(rows, cols);
  return best_seconds([&] { c.noalias() = a * b; }, repeats);
}

// A synthetic n x n layer with outlier input channels and H from `tokens` calibration
// tokens (at least n for a full-rank H; the cost of MagR and GPTQ does not depend on it).
inline SyntheticLayer square_layer(Index n, Index tokens, uint64_t seed) {
  SyntheticLayerOptions options;
  options.out_features = n;
  options.in_features = n;
  options.tokens = tokens;
  options.seed = seed;
  return make_synthetic_layer(options);
}

// One integer command-line flag of a benchmark program, such as --size N.
struct IntegerFlag {
  std::string name;  // with the dashes: "--size"
  long* value;
  long minimum;
  std::string help;
};

// Parses `--name N` pairs into the flags; prints the usage and exits with status 2 for an
// unknown argument, a missing or non-numeric value, or a value below the flag's minimum.
inline void parse_integer_flags(int argc, char** argv, const std::string& program,
                                const std::vector<IntegerFlag>& flags) {
  const auto usage = [&](const std::string& problem) {
    std::string text = problem + "\nusage: " + program;
    for (const IntegerFlag& flag : flags) {
      text += " [" + flag.name + " N]";
    }
    text += "\n";
    for (const IntegerFlag& flag : flags) {
      text += "  " + flag.name + " N  " + flag.help + " (default " + std::to_string(*flag.value) +
              ", at least " + std::to_string(flag.minimum) + ")\n";
    }
    std::fputs(text.c_str(), stderr);
    std::exit(2);
  };
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto flag = std::find_if(flags.begin(), flags.end(), [&](const IntegerFlag& f) { return f.name == arg; });
    if (flag == flags.end() || i + 1 >= argc) {
      usage("invalid argument '" + arg + "'");
    }
    char* end = nullptr;
    const long value = std::strtol(argv[++i], &end, 10);
    if (end == argv[i] || *end != '\0' || value < flag->minimum) {
      usage("invalid value '" + std::string(argv[i]) + "' for " + arg);
    }
    *flag->value = value;
  }
}

// One benchmark result: printed as a table row and as a JSON line tagged "bench".
struct Result {
  std::string name;
  double seconds = 0;
  double baseline_seconds = 0;  // the GEMM (or other) baseline measured in the same run
  nlohmann::json extra = nlohmann::json::object();
};

inline void print_results(const std::vector<Result>& results) {
  std::printf("%-44s %12s %12s %8s\n", "benchmark", "seconds", "baseline_s", "ratio");
  for (const Result& r : results) {
    const double ratio = r.baseline_seconds > 0 ? r.seconds / r.baseline_seconds : 0.0;
    std::printf("%-44s %12.5f %12.5f %8.3f\n", r.name.c_str(), r.seconds, r.baseline_seconds, ratio);
  }
  for (const Result& r : results) {
    nlohmann::json line = {{"bench", r.name}, {"seconds", r.seconds},
                           {"baseline_seconds", r.baseline_seconds}};
    if (r.baseline_seconds > 0) {
      line["ratio"] = r.seconds / r.baseline_seconds;
    }
    line.update(r.extra);
    std::cout << line.dump() << "\n";
  }
}

}  // namespace magrq::bench
