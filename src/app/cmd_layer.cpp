// `magrq layer`: MagR plus RTN or GPTQ on one layer read from an HDF5 file, so that a
// single layer can be quantized, inspected and reproduced on its own.
#include <spdlog/spdlog.h>

#include <filesystem>
#include <optional>
#include <string>

#include "app/commands.hpp"
#include "core/error.hpp"
#include "core/pipeline.hpp"
#include "store/layer_file.hpp"

namespace magrq::app {

namespace {

struct LayerArguments {
  std::string input;
  std::string output;
  std::string method = "gptq";
  bool magr = true;
  int bits = 4;
  Index group_size = -1;
  bool sym = false;
  std::optional<double> alpha;  // default: MagrOptions::default_alpha(group_size)
  int magr_iterations = MagrOptions{}.iterations;
  bool magr_accelerated = false;
  std::optional<double> range_shrink;  // default: the MagR schedule with MagR, else 1
  double damp = GptqOptions{}.percdamp;
  Index block_size = GptqOptions{}.block_size;
  bool act_order = false;
  bool static_groups = false;
  int cd_iterations = 0;
};

PipelineOptions pipeline_options(const LayerArguments& a) {
  PipelineOptions options;
  options.magr = a.magr;
  options.magr_options.alpha = a.alpha.value_or(MagrOptions::default_alpha(a.group_size));
  options.magr_options.iterations = a.magr_iterations;
  options.magr_options.accelerated = a.magr_accelerated;
  options.method = parse_method(a.method);
  QuantGridOptions& grid = options.gptq.grid;
  grid.bits = a.bits;
  grid.group_size = a.group_size;
  grid.sym = a.sym;
  const double schedule = QuantGridOptions::default_range_shrink(a.bits, a.group_size);
  grid.range_shrink = a.range_shrink.value_or(a.magr ? schedule : 1.0);
  options.gptq.percdamp = a.damp;
  options.gptq.block_size = a.block_size;
  options.gptq.act_order = a.act_order;
  options.gptq.static_groups = a.static_groups;
  options.cd_iterations = a.cd_iterations;
  options.validate();
  return options;
}

void log_resolved(const LayerArguments& a, const PipelineOptions& o) {
  spdlog::info("layer: input {} output {}", a.input, a.output);
  spdlog::info("magr: enabled={} alpha={:g} iterations={} accelerated={}", o.magr, o.magr_options.alpha,
               o.magr_options.iterations, o.magr_options.accelerated);
  const QuantGridOptions& g = o.gptq.grid;
  spdlog::info("quantizer: method={} bits={} group_size={} sym={} range_shrink={:g} damp={:g} "
               "block_size={} act_order={} static_groups={} cd_iterations={}",
               method_name(o.method), g.bits, g.group_size, g.sym, g.range_shrink, o.gptq.percdamp,
               o.gptq.block_size, o.gptq.act_order, o.gptq.static_groups, o.cd_iterations);
}

std::vector<store::Attribute> result_attributes(const PipelineOptions& o, const PipelineResult& r) {
  const double relative = r.reference_energy > 0 ? r.output_error / r.reference_energy : 0.0;
  std::vector<store::Attribute> attributes = {
      {"method", method_name(o.method)},
      {"magr", static_cast<int64_t>(o.magr)},
      {"alpha", o.magr ? o.magr_options.alpha : 0.0},
      {"bits", static_cast<int64_t>(o.gptq.grid.bits)},
      {"group_size", static_cast<int64_t>(o.gptq.grid.group_size)},
      {"sym", static_cast<int64_t>(o.gptq.grid.sym)},
      {"range_shrink", o.gptq.grid.range_shrink},
      {"cd_iterations", static_cast<int64_t>(o.cd_iterations)},
      {"max_abs_before", r.max_abs_before},
      {"max_abs_after", r.max_abs_after},
      {"output_error", r.output_error},
      {"relative_output_error", relative},
      {"damping", r.quantized.damping},
      {"rtn_fallback", static_cast<int64_t>(r.quantized.rtn_fallback)},
      {"dead_columns", static_cast<int64_t>(r.quantized.dead_columns)},
      {"magr_seconds", r.magr_seconds},
      {"quantize_seconds", r.quantize_seconds},
  };
  if (r.magr) {
    attributes.push_back({"magr_objective_before", r.magr->objective_before});
    attributes.push_back({"magr_objective_after", r.magr->objective_after});
    attributes.push_back({"magr_iterations", static_cast<int64_t>(r.magr->iterations)});
    attributes.push_back({"lambda_max", r.magr->lambda_max});
  }
  return attributes;
}

int run_layer(const LayerArguments& a) {
  if (std::filesystem::exists(a.output) && std::filesystem::equivalent(a.input, a.output)) {
    throw ConfigError("--output " + a.output + " is the input file; choose another output path");
  }
  const PipelineOptions options = pipeline_options(a);
  log_resolved(a, options);
  const store::LayerInput input = store::read_layer_input(a.input);
  const PipelineResult result = run_pipeline(input.weight, input.hessian, options);
  for (const std::string& event : result.quantized.events) {
    spdlog::warn("quantizer: {}", event);
  }
  const double relative = result.reference_energy > 0 ? result.output_error / result.reference_energy : 0.0;
  spdlog::info("result: {} x {} max|w| {:.5g} -> {:.5g}  output error {:.6g} (relative {:.4e})  "
               "magr {:.2f} s  quantize {:.2f} s",
               input.weight.rows(), input.weight.cols(), result.max_abs_before, result.max_abs_after,
               result.output_error, relative, result.magr_seconds, result.quantize_seconds);
  store::write_layer_output(a.output, result.weight_magr, result.quantized,
                            result_attributes(options, result));
  spdlog::info("wrote {}", a.output);
  return 0;
}

}  // namespace

void add_layer_command(CLI::App& root, CommandTable& table) {
  auto a = std::make_shared<LayerArguments>();
  CLI::App* sub = root.add_subcommand("layer", "Run MagR and RTN or GPTQ on one layer file (/weight, /hessian)");
  sub->add_option("--input", a->input, "Input HDF5 file with /weight (out x in) and /hessian (in x in)")
      ->required();
  sub->add_option("--output", a->output, "Output HDF5 file")->required();
  sub->add_option("--method", a->method, "Quantizer: rtn or gptq")->capture_default_str();
  sub->add_flag("--magr,!--no-magr", a->magr, "Run MagR before quantizing (default on)");
  sub->add_option("--bits", a->bits, "Bits per weight, 2 to 8")->capture_default_str();
  sub->add_option("--group-size", a->group_size,
                  "Input columns per quantization group; -1 for one group per output channel")
      ->capture_default_str();
  sub->add_flag("--sym,!--asym", a->sym, "Symmetric grid (default asymmetric, as the GPTQ and MagR experiments)");
  sub->add_option("--alpha", a->alpha,
                  "MagR l-inf weight on H normalised to lambda_max = 1 (default 1e-3 per channel, "
                  "1e-4 with groups)");
  sub->add_option("--magr-iters", a->magr_iterations, "MagR proximal gradient iterations")
      ->capture_default_str();
  sub->add_flag("--magr-accel", a->magr_accelerated, "Use the accelerated MagR solver");
  sub->add_option("--range-shrink", a->range_shrink,
                  "Grid range factor in (0, 1] (default: the MagR schedule with MagR, 1 without)");
  sub->add_option("--damp", a->damp, "GPTQ damping as a fraction of mean(diag H)")->capture_default_str();
  sub->add_option("--block-size", a->block_size, "GPTQ lazy-update block size")->capture_default_str();
  sub->add_flag("--act-order", a->act_order, "GPTQ: quantize columns in order of decreasing diag(H)");
  sub->add_flag("--static-groups", a->static_groups, "GPTQ: fit group grids before reordering columns");
  sub->add_option("--cd-iters", a->cd_iterations, "Coordinate-descent sweeps after quantizing (0 = none)")
      ->capture_default_str();
  table[sub] = [a] { return run_layer(*a); };
}

}  // namespace magrq::app
