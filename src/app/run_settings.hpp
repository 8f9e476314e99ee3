// From an experiment file to what the job needs: the per-module settings after overrides,
// the pipeline options of each module, and the fingerprints of the Hessian store and of
// the run journal.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "app/experiment.hpp"
#include "core/pipeline.hpp"
#include "dist/plan.hpp"
#include "model/checkpoint.hpp"
#include "model/gptq_checkpoint.hpp"
#include "store/fingerprint.hpp"

namespace magrq::app {

// Applies the quantizer section, the first matching override and the unsupported_shape
// policy to every module. Policy keep skips a module the GPTQ layout cannot hold, so it
// stays in full precision in every output. Policy dequantized_only quantizes it, but the
// packed checkpoint keeps it in full precision. Policy stop rejects the run.
std::vector<dist::ModuleSpec> resolve_modules(const ExperimentConfig& config,
                                              const model::LlamaConfig& model_config);

// The pipeline options of one module.
PipelineOptions module_pipeline(const ExperimentConfig& config, const dist::ModuleSpec& module);

// Export settings of the GPTQ checkpoint from the experiment (MagR settings under meta).
model::GptqExportOptions export_options(const ExperimentConfig& config);

// Whether output.formats lists the format.
bool has_format(const ExperimentConfig& config, const std::string& format);

// Hash of config.json and every safetensors header and size: identifies the weights
// without reading them.
std::string model_fingerprint(const std::filesystem::path& model_dir);

// Hash of tokenizer.json and tokenizer_config.json.
std::string tokenizer_fingerprint(const std::filesystem::path& model_dir);

// What the stored Hessians depend on. In sequential mode that includes the quantization
// settings, because later layers see the outputs of quantized earlier layers.
store::Fingerprint store_fingerprint(const ExperimentConfig& config);

// What the journal's items depend on: the model, the Hessians, and the settings that
// change a quantized item.
store::Fingerprint run_fingerprint(const ExperimentConfig& config);

}  // namespace magrq::app
