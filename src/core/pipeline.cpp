#include "core/pipeline.hpp"

#include <chrono>

#include "core/error.hpp"
#include "core/timing.hpp"
#include "core/hessian.hpp"
#include "core/refine.hpp"
#include "core/rtn.hpp"

namespace magrq {

void PipelineOptions::validate() const {
  if (magr) {
    magr_options.validate();
    if (alpha_search) {
      alpha_search->validate();
    }
  }
  gptq.validate();
  if (cd_iterations < 0) {
    throw ConfigError(detail::concat("invalid cd_iterations ", cd_iterations, ": expected >= 0"));
  }
}

std::string method_name(QuantMethod method) { return method == QuantMethod::gptq ? "gptq" : "rtn"; }

QuantMethod parse_method(const std::string& name) {
  if (name == "gptq") {
    return QuantMethod::gptq;
  }
  if (name == "rtn") {
    return QuantMethod::rtn;
  }
  throw ConfigError("invalid method '" + name + "': expected rtn or gptq");
}

namespace {

// The configured quantizer, then the refinement towards the original weights W. MagR
// changed the weights only to make them easier to quantize; the layer's output on the
// original weights is what must be preserved.
QuantizedLayer quantize_and_refine(const Matrix& input, const Matrix& W, const Matrix& H,
                                   const PipelineOptions& options, const GptqOptions& gptq) {
  QuantizedLayer quantized = options.method == QuantMethod::gptq ? gptq_quantize(input, H, gptq)
                                                                 : rtn_quantize(input, gptq.grid, &H);
  if (options.cd_iterations > 0) {
    cd_refine(quantized, W, H, options.cd_iterations);
  }
  return quantized;
}

// The statistics every pipeline result reports, against the original weights W.
void finish_statistics(const Matrix& W, const Matrix& H, PipelineResult& result) {
  result.max_abs_before = W.size() ? W.cwiseAbs().maxCoeff() : 0.0;
  result.max_abs_after = result.weight_magr.size() ? result.weight_magr.cwiseAbs().maxCoeff() : 0.0;
  result.output_error = output_error(W, result.quantized.dequant, H);
  result.reference_energy = output_error(W, Matrix::Zero(W.rows(), W.cols()), H);
}


void run_alpha_search(const Matrix& W, const Matrix& H, const PipelineOptions& options,
                      PipelineResult& result) {
  const AlphaSearchOptions& search = *options.alpha_search;
  GptqOptions baseline = options.gptq;
  baseline.grid.range_shrink = search.baseline_range_shrink;
  const CandidateQuantizer quantize = [&](const Matrix& weight, bool magr_applied) {
    return quantize_and_refine(weight, W, H, options, magr_applied ? options.gptq : baseline);
  };
  AlphaSearchResult found = search_alpha(W, H, options.gptq.grid.group_size, search, quantize);
  result.weight_magr = std::move(found.weight_magr);
  result.quantized = std::move(found.quantized);
  for (const AlphaCandidate& candidate : found.summary.candidates) {
    result.magr_seconds += candidate.magr_seconds;
    result.quantize_seconds += candidate.quantize_seconds;
  }
  result.alpha_search = std::move(found.summary);
}

}  // namespace

PipelineResult run_pipeline(const Matrix& W, const Matrix& H, const PipelineOptions& options) {
  options.validate();
  require_layer_shapes(W, H);
  require_finite(W, "weight");
  require_finite(H, "Hessian");
  PipelineResult result;
  if (options.magr && options.alpha_search) {
    run_alpha_search(W, H, options, result);
    finish_statistics(W, H, result);
    return result;
  }
  const auto start = std::chrono::steady_clock::now();
  if (options.magr) {
    MagrOptions magr = options.magr_options;
    magr.group_size = options.gptq.grid.group_size;
    result.magr = magr_solve(W, H, magr);
    result.weight_magr = result.magr->weight;
  } else {
    result.weight_magr = W;
  }
  result.magr_seconds = seconds_since(start);

  const auto quantize_start = std::chrono::steady_clock::now();
  result.quantized = quantize_and_refine(result.weight_magr, W, H, options, options.gptq);
  result.quantize_seconds = seconds_since(quantize_start);
  finish_statistics(W, H, result);
  return result;
}

}  // namespace magrq
