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
// of each pipeline and of GPTQ without MagR.
//
// Usage: bench_alpha_search [--size N] [--iterations K]
#include <cstdio>
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

  magrq::SyntheticLayerOptions layer_options;
  layer_options.out_features = size;
  layer_options.in_features = size;
  layer_options.tokens = size;
  layer_options.seed = 2;
  const magrq::SyntheticLayer layer = magrq::make_synthetic_layer(layer_options);
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
    const double solve_s = magrq::bench::best_seconds(
        [&] { magrq::magr_solve(layer.weight, layer.hessian, solve_options); }, 1);
    const double fixed_s = magrq::bench::best_seconds(
        [&] { fixed_error = magrq::run_pipeline(layer.weight, layer.hessian, fixed).output_error; }, 1);
    const double search_s = magrq::bench::best_seconds(
        [&] { search_error = magrq::run_pipeline(layer.weight, layer.hessian, search).output_error; }, 1);
    baseline_error = magrq::run_pipeline(layer.weight, layer.hessian, baseline).output_error;
    const double gemm_s = magrq::bench::gemm_seconds(size, size, size, 3);

    const std::string shape = label(c) + " " + std::to_string(size) + "x" + std::to_string(size);
    results.push_back({"search / one MagR solve, " + shape, search_s, solve_s,
                       {{"iterations", budget}, {"gemm_seconds", gemm_s}}});
    results.push_back({"search / fixed-alpha MagR + GPTQ, " + shape, search_s, fixed_s,
                       {{"error_search", search_error},
                        {"error_fixed_alpha", fixed_error},
                        {"error_no_magr", baseline_error}}});
    std::printf("%s: output error  no MagR %.5g  fixed alpha %.5g  search %.5g\n", shape.c_str(),
                baseline_error, fixed_error, search_error);
  }
  magrq::bench::print_results(results);
  return 0;
}
