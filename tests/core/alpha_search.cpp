// Tests of the warm-started, per-row MagR problem and of the per-row alpha search:
// the zeroing alpha, scale invariance, and that the search is never worse than
// quantizing without MagR.
#include "core/alpha_search.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "core/error.hpp"
#include "core/gptq.hpp"
#include "core/hessian.hpp"
#include "core/magr.hpp"
#include "core/pipeline.hpp"
#include "core/rtn.hpp"
#include "core/synthetic.hpp"

namespace magrq {
namespace {

SyntheticLayer small_layer(uint64_t seed = 3) {
  SyntheticLayerOptions options;
  options.out_features = 48;
  options.in_features = 64;
  options.tokens = 512;
  options.seed = seed;
  return make_synthetic_layer(options);
}

MagrOptions plain_options(double alpha, int iterations) {
  MagrOptions options;
  options.alpha = alpha;
  options.iterations = iterations;
  return options;
}

GptqOptions gptq_options(int bits, Index group_size = -1) {
  GptqOptions options;
  options.grid.bits = bits;
  options.grid.group_size = group_size;
  options.grid.sym = false;
  return options;
}

CandidateQuantizer gptq_quantizer(const Matrix& H, const GptqOptions& options) {
  return [&H, options](const Matrix& weight, bool) { return gptq_quantize(weight, H, options); };
}

TEST(MagrProblem, WarmStartAtTheSolutionKeepsItsObjective) {
  const SyntheticLayer layer = small_layer();
  const MagrProblem problem(layer.weight, layer.hessian);
  const MagrResult cold = problem.solve(plain_options(1e-3, 300));
  const MagrResult warm = problem.solve(plain_options(1e-3, 20), {}, &cold.weight);
  // f(start) is f of the cold solution, recomputed through a fresh GEMM: float32 agreement.
  EXPECT_NEAR(warm.objective_start, cold.objective_after, 1e-4 * cold.objective_after);
  EXPECT_LE(warm.objective_after, warm.objective_start * (1 + 1e-6));
  EXPECT_NEAR(warm.objective_before, cold.objective_before, 1e-9 * cold.objective_before);
}

TEST(MagrProblem, PerRowScaleMatchesSeparateSolves) {
  const SyntheticLayer layer = small_layer();
  std::vector<double> scale(static_cast<std::size_t>(layer.weight.rows()));
  for (std::size_t r = 0; r < scale.size(); ++r) {
    scale[r] = 0.5 + 0.1 * static_cast<double>(r % 7);
  }
  const MagrProblem problem(layer.weight, layer.hessian);
  const MagrResult together = problem.solve(plain_options(2e-3, 60), scale);
  for (const Index r : {Index{0}, Index{5}, Index{47}}) {
    const Matrix row = layer.weight.row(r);
    const MagrResult alone =
        magr_solve(row, layer.hessian, plain_options(2e-3 * scale[static_cast<std::size_t>(r)], 60));
    // The plain solver treats rows on their own; only the GEMM's blocking differs.
    EXPECT_LE((together.weight.row(r) - alone.weight.row(0)).cwiseAbs().maxCoeff(), 1e-5f) << "row " << r;
  }
}

TEST(MagrProblem, ZeroingAlphaIsWhereARowBecomesZero) {
  const SyntheticLayer layer = small_layer();
  const MagrProblem problem(layer.weight, layer.hessian);
  const std::vector<double> zeroing = problem.zeroing_alpha(-1);
  const Index r = 7;
  const Matrix row = layer.weight.row(r);
  const double z = zeroing[static_cast<std::size_t>(r)];
  ASSERT_GT(z, 0.0);
  MagrOptions above = plain_options(1.05 * z, 3000);
  above.accelerated = true;
  EXPECT_EQ(magr_solve(row, layer.hessian, above).weight.cwiseAbs().maxCoeff(), 0.0f);
  MagrOptions below = above;
  below.alpha = 0.8 * z;
  EXPECT_GT(magr_solve(row, layer.hessian, below).weight.cwiseAbs().maxCoeff(), 0.0f);
}

TEST(AlphaSearch, NeverWorseThanNoMagr) {
  const SyntheticLayer layer = small_layer();
  const GptqOptions gptq = gptq_options(3);
  AlphaSearchOptions options;
  options.candidates = AlphaSearchOptions::default_relative_candidates();
  const AlphaSearchResult found = search_alpha(layer.weight, layer.hessian, -1, options, gptq_quantizer(layer.hessian, gptq));

  const auto& candidates = found.summary.candidates;
  ASSERT_EQ(candidates.size(), options.candidates.size() + 1);
  EXPECT_EQ(candidates[0].value, 0.0);
  Index rows = 0;
  double best = candidates[0].output_error;
  for (std::size_t k = 0; k < candidates.size(); ++k) {
    rows += candidates[k].rows_chosen;
    best = std::min(best, candidates[k].output_error);
    if (k > 1) {
      EXPECT_GT(candidates[k].value, candidates[k - 1].value) << "tried smallest first";
    }
  }
  EXPECT_EQ(rows, layer.weight.rows());
  const double merged = output_error_float32(layer.weight, found.quantized.dequant, layer.hessian);
  EXPECT_LE(merged, best * (1 + 1e-6));
  const double without = output_error_float32(layer.weight, gptq_quantize(layer.weight, layer.hessian, gptq).dequant,
                                              layer.hessian);
  EXPECT_NEAR(candidates[0].output_error, without, 1e-6 * without);
  // Each row's codes dequantize with its own scales and zeros: the merged layer is consistent.
  for (Index r = 0; r < layer.weight.rows(); ++r) {
    for (Index j = 0; j < layer.weight.cols(); j += 13) {
      const float expected = found.quantized.scales(0, r) *
                             static_cast<float>(found.quantized.codes(r, j) - found.quantized.zeros(0, r));
      EXPECT_FLOAT_EQ(found.quantized.dequant(r, j), expected);
    }
  }
}

TEST(AlphaSearch, ZeroingScaleIgnoresWeightScale) {
  const SyntheticLayer layer = small_layer(11);
  const GptqOptions gptq = gptq_options(3);
  AlphaSearchOptions options;
  options.candidates = AlphaSearchOptions::default_relative_candidates();
  // Scaling by a power of two is exact in float: every step of the search is then
  // exactly equivariant, so the choices must agree row by row.
  const Matrix smaller = layer.weight * 0.125f;
  const AlphaSearchResult a = search_alpha(layer.weight, layer.hessian, -1, options, gptq_quantizer(layer.hessian, gptq));
  const AlphaSearchResult b = search_alpha(smaller, layer.hessian, -1, options, gptq_quantizer(layer.hessian, gptq));
  EXPECT_EQ(a.summary.row_choice, b.summary.row_choice);
  EXPECT_GT(std::count_if(a.summary.row_choice.begin(), a.summary.row_choice.end(), [](int c) { return c > 0; }), 0)
      << "some rows must choose MagR for the comparison to mean anything";
  EXPECT_NEAR(b.summary.median_zeroing_alpha, a.summary.median_zeroing_alpha / 8, 1e-6 * a.summary.median_zeroing_alpha);
}

TEST(AlphaSearch, OversizedAbsoluteAlphaFallsBackToNoMagr) {
  const SyntheticLayer layer = small_layer();
  const GptqOptions gptq = gptq_options(4);
  AlphaSearchOptions options;
  options.scale = AlphaScale::absolute;
  options.candidates = {1e6};  // erases every row
  const AlphaSearchResult found =
      search_alpha(layer.weight, layer.hessian, -1, options, gptq_quantizer(layer.hessian, gptq));
  EXPECT_EQ(found.summary.candidates[0].rows_chosen, layer.weight.rows());
  EXPECT_EQ(found.summary.candidates[1].max_abs_after, 0.0);
  const QuantizedLayer plain = gptq_quantize(layer.weight, layer.hessian, gptq);
  EXPECT_EQ(found.quantized.codes, plain.codes);
  EXPECT_EQ(found.weight_magr, layer.weight);
}

TEST(AlphaSearch, GroupedSearchKeepsEveryGroupsGrid) {
  const SyntheticLayer layer = small_layer(5);
  const GptqOptions gptq = gptq_options(2, 16);
  AlphaSearchOptions options;
  options.candidates = {0.05, 0.01};
  const AlphaSearchResult found =
      search_alpha(layer.weight, layer.hessian, 16, options, gptq_quantizer(layer.hessian, gptq));
  const QuantizedLayer& q = found.quantized;
  for (Index r = 0; r < layer.weight.rows(); r += 5) {
    for (Index j = 0; j < layer.weight.cols(); ++j) {
      const Index g = q.g_idx[j];
      EXPECT_FLOAT_EQ(q.dequant(r, j), q.scales(g, r) * static_cast<float>(q.codes(r, j) - q.zeros(g, r)));
    }
  }
}

TEST(AlphaSearch, PipelineUsesBaselineGridForNoMagr) {
  const SyntheticLayer layer = small_layer();
  PipelineOptions options;
  options.gptq = gptq_options(3);
  options.gptq.grid.range_shrink = 0.9;  // the MagR candidates' grid
  options.alpha_search = AlphaSearchOptions{};
  options.alpha_search->candidates = {1e6};
  options.alpha_search->scale = AlphaScale::absolute;
  const PipelineResult result = run_pipeline(layer.weight, layer.hessian, options);
  ASSERT_TRUE(result.alpha_search.has_value());
  EXPECT_FALSE(result.magr.has_value());
  GptqOptions baseline = options.gptq;
  baseline.grid.range_shrink = 1.0;
  EXPECT_EQ(result.quantized.codes, gptq_quantize(layer.weight, layer.hessian, baseline).codes);
  EXPECT_NEAR(result.output_error, result.quantized.output_error, 1e-4 * result.output_error);
}

TEST(AlphaSearch, RejectsInvalidCandidates) {
  AlphaSearchOptions options;
  options.candidates = {};
  EXPECT_THROW(options.validate(), ConfigError);
  options.candidates = {1e-3, -1e-3};
  EXPECT_THROW(options.validate(), ConfigError);
  options.candidates = {1e-3, 1e-3};
  EXPECT_THROW(options.validate(), ConfigError);
  options.candidates = {1e-3};
  options.warm_iterations = 0;
  EXPECT_THROW(options.validate(), ConfigError);
}

TEST(AlphaSearch, SplitsOneSolvesBudgetOverThePath) {
  AlphaSearchOptions options;
  options.split_iterations(200, 7);
  EXPECT_EQ(options.first_iterations, 60);
  EXPECT_EQ(options.warm_iterations, 40);
  EXPECT_LE(options.first_iterations + 6 * options.warm_iterations, 300);
  options.split_iterations(200, 1);
  EXPECT_EQ(options.first_iterations, 200) << "one candidate runs as many iterations as a fixed alpha";
  options.split_iterations(3, 6);
  EXPECT_EQ(options.first_iterations, 1);
  EXPECT_EQ(options.warm_iterations, 1);
}

}  // namespace
}  // namespace magrq
