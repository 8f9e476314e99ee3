// Benchmark of GPTQ and RTN on one square layer, against one float32 GEMM of the same
// shape measured in the same run. Usage: bench_gptq [--size N] [--repeats R]
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "core/gptq.hpp"
#include "core/hessian.hpp"
#include "core/refine.hpp"
#include "core/rtn.hpp"
#include "core/synthetic.hpp"

namespace {

struct BenchOptions {
  magrq::Index size = 4096;
  int repeats = 2;
};

BenchOptions parse_arguments(int argc, char** argv) {
  long size = 4096;
  long repeats = 2;
  magrq::bench::parse_integer_flags(
      argc, argv, "bench_gptq",
      {{"--size", &size, 32, "rows and columns of the layer"},
       {"--repeats", &repeats, 1, "timed runs per case after one warm-up; the best is kept"}});
  return {static_cast<magrq::Index>(size), static_cast<int>(repeats)};
}

magrq::GptqOptions gptq_options(magrq::Index group_size) {
  magrq::GptqOptions options;
  options.grid.bits = 4;
  options.grid.group_size = group_size;
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace magrq;
  const BenchOptions options = parse_arguments(argc, argv);
  const Index n = options.size;

  const SyntheticLayer layer = bench::square_layer(n, n, 1);

  const double gemm = bench::gemm_seconds(n, n, n, options.repeats);
  std::vector<bench::Result> results;
  const std::string shape = std::to_string(n) + "x" + std::to_string(n);

  for (const Index group_size : {Index{-1}, Index{128}}) {
    const std::string label = group_size < 0 ? "per-channel" : "g" + std::to_string(group_size);
    const GptqOptions gptq = gptq_options(group_size);
    QuantizedLayer last;
    const double gptq_seconds = bench::best_seconds(
        [&] { last = gptq_quantize(layer.weight, layer.hessian, gptq); }, options.repeats);
    results.push_back({"gptq 4-bit " + label + " " + shape,
                       gptq_seconds,
                       gemm,
                       {{"output_error", last.output_error}}});

    QuantizedLayer rtn;
    const double rtn_seconds =
        bench::best_seconds([&] { rtn = rtn_quantize(layer.weight, gptq.grid); }, options.repeats);
    results.push_back({"rtn 4-bit " + label + " " + shape,
                       rtn_seconds,
                       gemm,
                       {{"output_error", output_error(layer.weight, rtn.dequant, layer.hessian)}}});
  }

  // The float64 output error that gptq_quantize includes, timed on its own.
  Matrix quantized = layer.weight;
  const double error_seconds = bench::best_seconds(
      [&] { output_error(layer.weight, quantized, layer.hessian); }, options.repeats);
  results.push_back({"output_error (float64) " + shape, error_seconds, gemm});

  // Three coordinate-descent sweeps at 2 bits, after GPTQ. The time includes the
  // float64 error before and after the refinement, about 5 GEMMs of this shape.
  GptqOptions two_bit = gptq_options(-1);
  two_bit.grid.bits = 2;
  const QuantizedLayer start = gptq_quantize(layer.weight, layer.hessian, two_bit);
  QuantizedLayer refined;
  const double refine_seconds = bench::best_seconds(
      [&] {
        refined = start;
        cd_refine(refined, layer.weight, layer.hessian, 3);
      },
      options.repeats);
  results.push_back({"cd_refine 3 sweeps 2-bit " + shape,
                     refine_seconds,
                     gemm,
                     {{"sweeps_done", refined.refine_errors.size() - 1},
                      {"error_before", start.output_error},
                      {"error_after", refined.output_error}}});

  bench::print_results(results);
  return 0;
}
