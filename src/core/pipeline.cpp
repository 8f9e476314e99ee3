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

PipelineResult run_pipeline(const Matrix& W, const Matrix& H, const PipelineOptions& options) {
  options.validate();
  require_layer_shapes(W, H);
  require_finite(W, "weight");
  require_finite(H, "Hessian");
  PipelineResult result;
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
  result.quantized = options.method == QuantMethod::gptq
                         ? gptq_quantize(result.weight_magr, H, options.gptq)
                         : rtn_quantize(result.weight_magr, options.gptq.grid, &H);
  if (options.cd_iterations > 0) {
    // The refinement targets the original weights: MagR changed W only to make it easier
    // to quantize, and the layer's output is what must be preserved.
    cd_refine(result.quantized, W, H, options.cd_iterations);
  }
  result.quantize_seconds = seconds_since(quantize_start);

  result.max_abs_before = W.size() ? W.cwiseAbs().maxCoeff() : 0.0;
  result.max_abs_after = result.weight_magr.size() ? result.weight_magr.cwiseAbs().maxCoeff() : 0.0;
  result.output_error = output_error(W, result.quantized.dequant, H);
  result.reference_energy = output_error(W, Matrix::Zero(W.rows(), W.cols()), H);
  return result;
}

}  // namespace magrq
