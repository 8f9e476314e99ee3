// The per-module pipeline of magrq: MagR (optional), then RTN or GPTQ, then optional
// coordinate-descent refinement against the original weights. `magrq layer` runs it on a
// whole layer and the distributed job on a block of a module's output rows. GPTQ, RTN and
// plain MagR treat each row on its own given H. The accelerated MagR solver's restart test
// and the tolerance stop look at the whole block, so its rows can depend on the block.
#pragma once

#include <optional>
#include <string>

#include "core/alpha_search.hpp"
#include "core/gptq.hpp"
#include "core/magr.hpp"
#include "core/quantized_layer.hpp"
#include "core/types.hpp"

namespace magrq {

enum class QuantMethod { rtn, gptq };

struct PipelineOptions {
  bool magr = true;
  MagrOptions magr_options;  // group_size is set from the quantizer's group size
  // With MagR on: search alpha per row (see alpha_search.hpp) instead of solving once
  // with magr_options.alpha. The search takes magr_options' group size.
  std::optional<AlphaSearchOptions> alpha_search;
  QuantMethod method = QuantMethod::gptq;
  GptqOptions gptq;          // gptq.grid is also the RTN grid
  int cd_iterations = 0;     // refinement sweeps after quantizing, >= 0

  // Throws ConfigError naming the key and value of the first invalid option.
  void validate() const;
};

struct PipelineResult {
  Matrix weight_magr;  // after MagR, before quantization (the input when MagR is off)
  QuantizedLayer quantized;
  std::optional<MagrResult> magr;  // present when MagR ran with one alpha
  std::optional<AlphaSearchSummary> alpha_search;  // present when the alpha search ran
  double max_abs_before = 0.0;     // largest |w| of the input rows
  double max_abs_after = 0.0;      // largest |w| after MagR
  double output_error = 0.0;       // tr((W - Q) H (W - Q)^T) against the input W
  double reference_energy = 0.0;   // tr(W H W^T), so error / energy is the relative error
  double magr_seconds = 0.0;
  double quantize_seconds = 0.0;
};

// Runs the pipeline on W (rows x in) with the Hessian H (in x in).
PipelineResult run_pipeline(const Matrix& W, const Matrix& H, const PipelineOptions& options);

std::string method_name(QuantMethod method);
QuantMethod parse_method(const std::string& name);

}  // namespace magrq
