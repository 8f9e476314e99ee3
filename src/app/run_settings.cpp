#include "app/run_settings.hpp"

#include <algorithm>
#include <fstream>
#include <regex>

#include "core/error.hpp"
#include "model/gptq_layout.hpp"
#include "model/text_source.hpp"

namespace magrq::app {

namespace {

std::string read_header_bytes(const std::filesystem::path& path) {
  std::ifstream stream(path, std::ios::binary);
  uint64_t length = 0;
  stream.read(reinterpret_cast<char*>(&length), 8);
  if (!stream || length > 100'000'000) {
    throw DataError(path.string() + ": not a safetensors file (invalid header length)");
  }
  std::string header(length, '\0');
  stream.read(header.data(), static_cast<std::streamsize>(length));
  return header + "|" + std::to_string(std::filesystem::file_size(path));
}

std::string section_json(const ExperimentConfig& config, const std::vector<std::string>& sections) {
  ExperimentConfig copy = config;
  const nlohmann::ordered_json resolved = declare_experiment_schema(copy).resolved();
  nlohmann::ordered_json picked = nlohmann::ordered_json::object();
  for (const std::string& section : sections) {
    picked[section] = resolved.at(section);
  }
  return picked.dump();
}

}  // namespace

std::vector<dist::ModuleSpec> resolve_modules(const ExperimentConfig& config,
                                              const model::LlamaConfig& model_config) {
  std::vector<dist::ModuleSpec> modules = dist::list_modules(model_config);
  for (dist::ModuleSpec& module : modules) {
    dist::ModuleSettings& s = module.settings;
    s.method = config.quantizer.method;
    s.bits = config.quantizer.bits;
    s.group_size = config.quantizer.group_size;
    s.magr = config.magr.enabled;
    for (const ModuleOverride& entry : config.overrides) {
      if (!std::regex_search(module.name, std::regex(entry.pattern))) {
        continue;
      }
      s.skip = entry.skip;
      s.bits = entry.bits.value_or(s.bits);
      s.group_size = entry.group_size.value_or(s.group_size);
      s.method = entry.method.value_or(s.method);
      break;
    }
    const auto problem = model::gptq_layout_problem(module.out_features, module.in_features, s.bits,
                                                    s.group_size);
    if (!problem || s.skip) {
      continue;
    }
    if (config.output.unsupported_shape == "stop") {
      throw ConfigError(module.name + " cannot be stored in the GPTQ layout: " + *problem +
                        ". Set output.unsupported_shape to keep or dequantized_only, or add an override");
    }
    if (config.output.unsupported_shape == "keep") {
      s.skip = true;
    }
  }
  return modules;
}

namespace {

// A fixed alpha, or the alpha search with one fixed-alpha solve's iteration budget.
void set_alpha(const ExperimentConfig& config, const dist::ModuleSettings& s, PipelineOptions& options) {
  const AlphaSetting& alpha = config.magr.alpha;
  switch (alpha.kind) {
    case AlphaSetting::Kind::published:
      options.magr_options.alpha = MagrOptions::default_alpha(s.group_size);
      return;
    case AlphaSetting::Kind::fixed:
      options.magr_options.alpha = alpha.values.front();
      return;
    case AlphaSetting::Kind::search_relative:
    case AlphaSetting::Kind::search_absolute:
      break;
  }
  AlphaSearchOptions search;
  const bool relative = alpha.kind == AlphaSetting::Kind::search_relative;
  search.scale = relative ? AlphaScale::zeroing : AlphaScale::absolute;
  search.candidates = relative ? config.magr.auto_candidates : alpha.values;
  search.split_iterations(std::max(config.magr.iterations, 1), search.candidates.size());
  search.accelerated = config.magr.accelerated;
  search.tolerance = config.magr.tolerance;
  search.baseline_range_shrink = config.quantizer.range_shrink.value_or(1.0);
  options.alpha_search = search;
}

}  // namespace

PipelineOptions module_pipeline(const ExperimentConfig& config, const dist::ModuleSpec& module) {
  const dist::ModuleSettings& s = module.settings;
  PipelineOptions options;
  options.magr = s.magr;
  options.magr_options.iterations = config.magr.iterations;
  options.magr_options.accelerated = config.magr.accelerated;
  options.magr_options.tolerance = config.magr.tolerance;
  set_alpha(config, s, options);
  options.method = parse_method(s.method);
  QuantGridOptions& grid = options.gptq.grid;
  grid.bits = s.bits;
  grid.group_size = s.group_size;
  grid.sym = config.quantizer.sym;
  grid.mse = config.quantizer.mse;
  const double schedule = QuantGridOptions::default_range_shrink(s.bits, s.group_size);
  grid.range_shrink = config.quantizer.range_shrink.value_or(s.magr ? schedule : 1.0);
  options.gptq.percdamp = config.quantizer.damp_percent;
  options.gptq.block_size = config.quantizer.block_size;
  options.gptq.act_order = config.quantizer.act_order;
  options.gptq.static_groups = config.quantizer.static_groups;
  options.cd_iterations = config.quantizer.cd_iterations;
  options.validate();
  return options;
}

model::GptqExportOptions export_options(const ExperimentConfig& config) {
  model::GptqExportOptions options;
  options.bits = config.quantizer.bits;
  options.group_size = config.quantizer.group_size;
  options.sym = config.quantizer.sym;
  options.desc_act = config.quantizer.act_order && !config.quantizer.static_groups;
  options.static_groups = config.quantizer.static_groups;
  options.true_sequential = false;
  options.damp_percent = config.quantizer.damp_percent;
  options.max_shard_bytes = static_cast<uint64_t>(config.output.shard_size_gib * (1ull << 30));
  nlohmann::ordered_json magr = {{"enabled", config.magr.enabled},
                                 {"alpha", config.magr.alpha.to_json()},
                                 {"auto_candidates", config.magr.auto_candidates},
                                 {"alpha_normalisation", "H / lambda_max(H)"},
                                 {"iterations", config.magr.iterations},
                                 {"accelerated", config.magr.accelerated}};
  options.meta = {{"magr", magr},
                  {"method", config.quantizer.method},
                  {"calibration", {{"mode", config.calibration.mode},
                                   {"nsamples", config.calibration.nsamples},
                                   {"seqlen", config.calibration.seqlen},
                                   {"seed", config.calibration.seed}}},
                  {"cd_iterations", config.quantizer.cd_iterations},
                  {"damp_auto_increment", true},
                  {"mse", config.quantizer.mse}};
  return options;
}

bool has_format(const ExperimentConfig& config, const std::string& format) {
  return std::find(config.output.formats.begin(), config.output.formats.end(), format) !=
         config.output.formats.end();
}

std::string model_fingerprint(const std::filesystem::path& model_dir) {
  std::string material = store::file_hash(model_dir / "config.json");
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(model_dir)) {
    if (entry.path().extension() == ".safetensors") {
      files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  for (const auto& file : files) {
    material += "|" + file.filename().string() + ":" + store::content_hash(read_header_bytes(file));
  }
  return store::content_hash(material);
}

std::string tokenizer_fingerprint(const std::filesystem::path& model_dir) {
  std::string material;
  for (const char* name : {"tokenizer.json", "tokenizer_config.json"}) {
    const auto path = model_dir / name;
    material += std::string(name) + ":" +
                (std::filesystem::exists(path) ? store::file_hash(path) : std::string("absent")) + "|";
  }
  return store::content_hash(material);
}

store::Fingerprint store_fingerprint(const ExperimentConfig& config) {
  const model::TextSpec source = model::TextSpec::parse(config.calibration.source);
  store::Fingerprint fingerprint;
  fingerprint.set("model", model_fingerprint(config.model.path));
  fingerprint.set("tokenizer", tokenizer_fingerprint(config.model.path));
  fingerprint.set("source", source.spec);
  fingerprint.set("source_hash", store::file_hash(source.path));
  fingerprint.set("nsamples", std::to_string(config.calibration.nsamples));
  fingerprint.set("seqlen", std::to_string(config.calibration.seqlen));
  fingerprint.set("seed", std::to_string(config.calibration.seed));
  fingerprint.set("mode", config.calibration.mode);
  if (config.calibration.mode == "sequential") {
    fingerprint.set("quantization",
                    store::content_hash(section_json(config, {"magr", "quantizer", "overrides", "output"})));
  }
  return fingerprint;
}

store::Fingerprint run_fingerprint(const ExperimentConfig& config) {
  store::Fingerprint fingerprint = store_fingerprint(config);
  fingerprint.set("settings", store::content_hash(section_json(
                                  config, {"magr", "quantizer", "overrides", "parallel"})));
  fingerprint.set("unsupported_shape", config.output.unsupported_shape);
  return fingerprint;
}

}  // namespace magrq::app
