// Cost of the MagR alpha search against one fixed-alpha MagR solve of the same layer.
//
// For a synthetic layer (size x size, outlier input channels) and each quantizer setting,
// times in one run:
//   solve     one accelerated MagR solve with the published alpha and the configured
//             iteration count (the cost the search is held to);
//   fixed     that solve followed by GPTQ: the fixed-alpha pipeline;
//   search    the search with the default relative candidates and the same iteration
//             budget, including every candidate's quantization and error product.
// and reports search / solve (goal: at most 2) and search / fixed, with the output error
// of each pipeline and of GPTQ without MagR. The ratios are of processor time, which
// other jobs on a shared machine disturb far less than wall time; run it with
// OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 so that processor time is the work done
// (scripts/bench does). Wall times are printed as well.
//
// Usage: bench_alpha_search [--size N] [--iterations K]
#include <cstdio>
#include <chrono>
#include <ctime>
#include <functional>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "core/alpha_search.hpp"
#include "core/gptq.hpp"
#include "core/hessian.hpp"
#include "core/magr.hpp"
#include "core/pipeline.hpp"
#include "core/synthetic.hpp"

namespace {

using magrq::Index;

struct Case {
  int bits;
  Index group_size;
};

magrq::PipelineOptions fixed_pipeline(const Case& c, int iterations) {
  magrq::PipelineOptions options;
  options.magr_options.alpha = magrq::MagrOptions::default_alpha(c.group_size);
  options.magr_options.iterations = iterations;
  options.magr_options.accelerated = true;
  options.gptq.grid.bits = c.bits;
  options.gptq.grid.group_size = c.group_size;
  options.gptq.grid.sym = false;
  options.gptq.grid.range_shrink = magrq::QuantGridOptions::default_range_shrink(c.bits, c.group_size);
  return options;
}

magrq::PipelineOptions search_pipeline(const Case& c, int iterations) {
  magrq::PipelineOptions options = fixed_pipeline(c, iterations);
  magrq::AlphaSearchOptions search;
  search.candidates = magrq::AlphaSearchOptions::default_relative_candidates();
  search.split_iterations(iterations, search.candidates.size());
  search.tolerance = 0.0;  // the whole budget, as the fixed solve: the worst case
  options.alpha_search = search;
  return options;
}

// Processor seconds of all the process's threads spent in fn (one call), and its wall
// seconds.
struct Timing {
  double cpu = 0;
  double wall = 0;
};

Timing time_once(const std::function<void()>& fn) {
  const std::clock_t cpu_start = std::clock();
  const auto wall_start = std::chrono::steady_clock::now();
  fn();
  const std::chrono::duration<double> wall = std::chrono::steady_clock::now() - wall_start;
  return {static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC, wall.count()};
}

std::string label(const Case& c) {
  return "w" + std::to_string(c.bits) + (c.group_size < 0 ? " per-channel" : " g" + std::to_string(c.group_size));
}

}  // namespace

int main(int argc, char** argv) {
  long size = 2048;
  long iterations = 200;
  magrq::bench::parse_integer_flags(
      argc, argv, "bench_alpha_search",
      {{"--size", &size, 64, "rows and columns of the layer"},
       {"--iterations", &iterations, 2, "MagR iterations of the fixed solve, the search's budget"}});

  const magrq::SyntheticLayer layer = magrq::bench::square_layer(size, size, 2);
  const int budget = static_cast<int>(iterations);

  std::vector<magrq::bench::Result> results;
  for (const Case c : {Case{3, -1}, Case{2, 128}}) {
    const magrq::PipelineOptions fixed = fixed_pipeline(c, budget);
    const magrq::PipelineOptions search = search_pipeline(c, budget);
    magrq::MagrOptions solve_options = fixed.magr_options;
    solve_options.group_size = c.group_size;
    magrq::PipelineOptions baseline = fixed;
    baseline.magr = false;
    baseline.gptq.grid.range_shrink = 1.0;

    double fixed_error = 0;
    double search_error = 0;
    double baseline_error = 0;
    // One timed run each: a run is long enough that timer noise does not matter, and
    // repeats would multiply the benchmark's time.
    const Timing solve = time_once([&] { magrq::magr_solve(layer.weight, layer.hessian, solve_options); });
    const Timing fixed_run = time_once(
        [&] { fixed_error = magrq::run_pipeline(layer.weight, layer.hessian, fixed).output_error; });
    const Timing search_run = time_once(
        [&] { search_error = magrq::run_pipeline(layer.weight, layer.hessian, search).output_error; });
    baseline_error = magrq::run_pipeline(layer.weight, layer.hessian, baseline).output_error;

    const std::string shape = label(c) + " " + std::to_string(size) + "x" + std::to_string(size);
    results.push_back({"search / one MagR solve, " + shape, search_run.cpu, solve.cpu,
                       {{"iterations", budget},
                        {"wall_seconds", search_run.wall},
                        {"baseline_wall_seconds", solve.wall}}});
    results.push_back({"search / fixed-alpha MagR + GPTQ, " + shape, search_run.cpu, fixed_run.cpu,
                       {{"error_search", search_error},
                        {"error_fixed_alpha", fixed_error},
                        {"error_no_magr", baseline_error}}});
    std::printf("%s: output error  no MagR %.5g  fixed alpha %.5g  search %.5g\n", shape.c_str(),
                baseline_error, fixed_error, search_error);
  }
  magrq::bench::print_results(results);
  return 0;
}
