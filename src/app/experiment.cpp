#include "app/experiment.hpp"

#include <algorithm>
#include <fstream>
#include <regex>
#include <sstream>

#include "app/text_format.hpp"
#include "core/error.hpp"

namespace magrq::app {

namespace {

Check<int64_t> group_size_check() {
  return [](const int64_t& value) -> std::optional<std::string> {
    if (value == -1 || value > 0) {
      return std::nullopt;
    }
    return "expected -1 (one group per output channel) or a positive group size";
  };
}

Check<double> positive() {
  return [](const double& value) -> std::optional<std::string> {
    if (value > 0) {
      return std::nullopt;
    }
    return "expected a positive number";
  };
}

void declare_run_sections(ConfigSchema& schema, ExperimentConfig& c) {
  schema.add("name", &c.name, "Experiment name, used in logs and reports");
  schema.add("model.path", &c.model.path, "Hugging Face Llama folder (config.json, safetensors, tokenizer)");
  schema.add("calibration.source", &c.calibration.source,
             "Calibration text as KIND:PATH[@BEGIN:END] with KIND wikitext2, c4 or text; "
             "@0:0.6 takes the first 60% of the characters");
  schema.add("calibration.nsamples", &c.calibration.nsamples, "Calibration windows",
             in_range<int64_t>(1, 1 << 20));
  schema.add("calibration.seqlen", &c.calibration.seqlen, "Tokens per calibration window",
             in_range<int64_t>(1, 1 << 20));
  schema.add("calibration.seed", &c.calibration.seed, "Seed of the window sampler",
             in_range<int64_t>(0, INT64_MAX));
  schema.add("calibration.mode", &c.calibration.mode,
             "sequential: layer l+1 is calibrated on the outputs of quantized layers 0..l; "
             "independent: every layer from the full-precision model",
             one_of({"sequential", "independent"}));
  schema.add("store.path", &c.store.path, "Hessian store: an HDF5 file, or a folder for layout per_layer");
  schema.add("store.layout", &c.store.layout,
             "single (one file), per_layer (one file per layer) or auto (single for independent mode, "
             "per_layer for sequential)",
             one_of({"auto", "single", "per_layer"}));
  schema.add("store.precision", &c.store.precision, "Element type of stored X^T X",
             one_of({"float64", "float32"}));
  schema.add("store.reuse", &c.store.reuse, "Reuse a store whose fingerprint matches this run");
}

// A list of distinct numbers, each in (low, high). `what` names the file and key.
std::vector<double> parse_numbers(const YAML::Node& node, const std::string& what, double low, double high) {
  if (!node.IsSequence() || node.size() == 0) {
    throw ConfigError(what + ": expected a non-empty list of numbers");
  }
  std::vector<double> values;
  for (const YAML::Node& item : node) {
    double value = 0.0;
    try {
      value = item.as<double>();
    } catch (const YAML::BadConversion&) {
      throw ConfigError(what + ": '" + item.Scalar() + "' is not a number");
    }
    if (!(value > low && value < high)) {
      throw ConfigError(what + ": " + item.Scalar() + " is out of range; expected a number greater than " +
                        format_double("%g", low) + " and less than " + format_double("%g", high) +
                        (value == 0.0 ? " (no MagR is always a candidate and is not listed)" : ""));
    }
    if (std::find(values.begin(), values.end(), value) != values.end()) {
      throw ConfigError(what + ": " + item.Scalar() + " is listed twice");
    }
    values.push_back(value);
  }
  return values;
}

AlphaSetting parse_alpha(const YAML::Node& node, const std::string& where) {
  const std::string& what = where;
  AlphaSetting setting;
  if (node.IsSequence()) {
    setting.kind = AlphaSetting::Kind::search_absolute;
    setting.values = parse_numbers(node, what, 0.0, 1e6);
    return setting;
  }
  if (node.IsMap()) {
    throw ConfigError(what + ": a map is not valid; expected auto, published, a number or a list of numbers");
  }
  const std::string text = node.IsScalar() ? node.Scalar() : std::string();
  if (node.IsNull() || text == "auto") {
    return setting;
  }
  if (text == "published") {
    setting.kind = AlphaSetting::Kind::published;
    return setting;
  }
  double value = 0.0;
  try {
    value = node.as<double>();
  } catch (const YAML::BadConversion&) {
    throw ConfigError(what + ": '" + text + "' is not valid; expected auto, published, a number or a list of numbers");
  }
  if (!(value >= 0.0 && value <= 1e6)) {
    throw ConfigError(what + ": " + text + " is out of range; expected a value from 0 to 1e6");
  }
  setting.kind = AlphaSetting::Kind::fixed;
  setting.values = {value};
  return setting;
}

void declare_method_sections(ConfigSchema& schema, ExperimentConfig& c) {
  schema.add("magr.enabled", &c.magr.enabled, "Run MagR before quantizing");
  schema.add_custom(
      "magr.alpha",
      "auto: search magr.auto_candidates per output row and keep the lowest output error, with no MagR "
      "always a candidate; published: 1e-3 per channel, 1e-4 with groups; a number: that alpha; a list: "
      "search those alphas. Alphas are on H normalised to lambda_max = 1",
      [&c](const YAML::Node& node, const std::string& where) { c.magr.alpha = parse_alpha(node, where); },
      [&c] { return c.magr.alpha.to_json(); });
  schema.add_custom(
      "magr.auto_candidates",
      "Candidates of alpha auto, as multiples of each row's zeroing alpha (the alpha at which MagR sets the "
      "whole row to 0), each in (0, 1)",
      [&c](const YAML::Node& node, const std::string& where) {
        c.magr.auto_candidates = parse_numbers(node, where, 0.0, 1.0);
      },
      [&c] { return nlohmann::ordered_json(c.magr.auto_candidates); });
  schema.add("magr.iterations", &c.magr.iterations,
             "Proximal gradient iterations of one solve; an alpha search spends 1.5 times as many in all, "
             "a fifth on its first candidate and the rest shared by the warm-started ones",
             in_range<int>(0, 100000));
  schema.add("magr.accelerated", &c.magr.accelerated, "Accelerated (FISTA with restart) solver");
  schema.add("magr.tolerance", &c.magr.tolerance,
             "Stop when the relative objective change falls below this; 0 runs every iteration",
             in_range<double>(0.0, 1.0));
  schema.add("magr.hessian", &c.magr.hessian,
             "full: the accumulated H; last_sequence: H of the last calibration window only, as the published MagR code",
             one_of({"full", "last_sequence"}));
  schema.add("quantizer.method", &c.quantizer.method, "gptq or rtn", one_of({"gptq", "rtn"}));
  schema.add("quantizer.bits", &c.quantizer.bits, "Bits per weight (the GPTQ format stores 2, 3, 4 or 8)",
             in_range<int>(2, 8));
  schema.add("quantizer.group_size", &c.quantizer.group_size,
             "Input columns per group; -1 for one group per output channel", group_size_check());
  schema.add("quantizer.sym", &c.quantizer.sym,
             "Symmetric grid (exported as checkpoint_format gptq); false exports gptq_v2");
  schema.add("quantizer.range_shrink", &c.quantizer.range_shrink,
             "Grid range factor in (0, 1]; auto: the MagR schedule with MagR, 1 without",
             in_range<double>(0.001, 1.0));
  schema.add("quantizer.act_order", &c.quantizer.act_order,
             "GPTQ desc_act: quantize columns in order of decreasing diag(H)");
  schema.add("quantizer.static_groups", &c.quantizer.static_groups,
             "Fit group grids before reordering columns (keeps g_idx sequential)");
  schema.add("quantizer.damp_percent", &c.quantizer.damp_percent,
             "GPTQ damping as a fraction of mean(diag H)", in_range<double>(0.0, 1.0));
  schema.add("quantizer.block_size", &c.quantizer.block_size, "GPTQ lazy-update block size",
             in_range<int64_t>(1, 1 << 20));
  schema.add("quantizer.cd_iterations", &c.quantizer.cd_iterations,
             "Coordinate-descent sweeps after quantizing (0 = none)", in_range<int>(0, 10000));
  schema.add("quantizer.mse", &c.quantizer.mse, "Search the clipping range for the lowest error");
  schema.add("quantizer.max_fallbacks", &c.quantizer.max_fallbacks,
             "Modules allowed to fall back to RTN before the run fails",
             in_range<int64_t>(0, INT64_MAX));
}

ModuleOverride parse_override(const YAML::Node& node, const std::string& where) {
  if (!node.IsMap()) {
    throw ConfigError(where + ": each override must be a map with a pattern");
  }
  ModuleOverride entry;
  for (const auto& item : node) {
    const std::string key = item.first.as<std::string>();
    const YAML::Node& value = item.second;
    try {
      if (key == "pattern") {
        entry.pattern = value.as<std::string>();
        std::regex check(entry.pattern);
      } else if (key == "skip") {
        entry.skip = value.as<bool>();
      } else if (key == "bits") {
        entry.bits = value.as<int>();
      } else if (key == "group_size") {
        entry.group_size = value.as<int64_t>();
      } else if (key == "method") {
        entry.method = value.as<std::string>();
      } else {
        throw ConfigError(where + ": unknown override key " + key +
                          "; expected pattern, skip, bits, group_size or method");
      }
    } catch (const YAML::BadConversion&) {
      throw ConfigError(where + ": override key " + key + " has a value of the wrong type");
    } catch (const std::regex_error& error) {
      throw ConfigError(where + ": override pattern '" + entry.pattern +
                        "' is not a valid regular expression: " + error.what());
    }
  }
  if (entry.pattern.empty()) {
    throw ConfigError(where + ": an override has no pattern");
  }
  if (entry.bits && (*entry.bits < 2 || *entry.bits > 8)) {
    throw ConfigError(where + ": override bits " + std::to_string(*entry.bits) +
                      " is invalid; expected 2 to 8");
  }
  if (entry.method && *entry.method != "gptq" && *entry.method != "rtn") {
    throw ConfigError(where + ": override method " + *entry.method + " is invalid; expected gptq or rtn");
  }
  return entry;
}

void declare_layout_sections(ConfigSchema& schema, ExperimentConfig& c) {
  schema.add_custom(
      "overrides",
      "List of {pattern, skip, bits, group_size, method}: settings for modules whose name "
      "matches the regular expression; the first match applies",
      [&c](const YAML::Node& node, const std::string& where) {
        if (!node.IsSequence()) {
          throw ConfigError(where + ": expected a list of overrides");
        }
        c.overrides.clear();
        for (const YAML::Node& item : node) {
          c.overrides.push_back(parse_override(item, where));
        }
      },
      [&c] {
        nlohmann::ordered_json list = nlohmann::ordered_json::array();
        for (const ModuleOverride& o : c.overrides) {
          nlohmann::ordered_json entry = {{"pattern", o.pattern}, {"skip", o.skip}};
          if (o.bits) entry["bits"] = *o.bits;
          if (o.group_size) entry["group_size"] = *o.group_size;
          if (o.method) entry["method"] = *o.method;
          list.push_back(entry);
        }
        return list;
      });
  schema.add("parallel.block_rows", &c.parallel.block_rows,
             "Output channels per work item; 0 keeps each module whole",
             in_range<int64_t>(0, INT64_MAX));
  schema.add("parallel.memory_budget_gib", &c.parallel.memory_budget_gib,
             "Memory per rank that the plan may use, in GiB", positive());
  schema.add("parallel.threads_per_rank", &c.parallel.threads_per_rank,
             "BLAS and OpenMP threads per rank; 0 takes SLURM_CPUS_PER_TASK, else OMP_NUM_THREADS, else the "
             "CPUs of the process's affinity mask divided among the node's ranks",
             in_range<int>(0, 4096));
  schema.add("output.dir", &c.output.dir, "Output folder of the quantized model and reports");
  schema.add("output.formats", &c.output.formats, "Any of gptq (packed, loadable) and dequantized");
  schema.add("output.shard_size_gib", &c.output.shard_size_gib,
             "Largest safetensors shard, in GiB", positive());
  schema.add("output.unsupported_shape", &c.output.unsupported_shape,
             "A module the GPTQ layout cannot hold: keep (unquantized everywhere), "
             "dequantized_only (quantized in the dequantized checkpoint, unquantized in the packed one) or stop",
             one_of({"keep", "dequantized_only", "stop"}));
  schema.add("evaluation.sources", &c.evaluation.sources,
             "Perplexity sources as KIND:PATH[@BEGIN:END]");
  schema.add("evaluation.seqlen", &c.evaluation.seqlen, "Tokens per evaluation window",
             in_range<int64_t>(1, 1 << 20));
  schema.add("evaluation.max_windows", &c.evaluation.max_windows,
             "Evaluate at most this many windows per source; 0 = all",
             in_range<int64_t>(0, INT64_MAX));
  schema.add("evaluation.full_precision", &c.evaluation.full_precision,
             "Also evaluate the unquantized model");
}

// A YAML value as JSON, for the echo of the resolved configuration: integers, numbers
// and true/false keep their type, other scalars become strings.
nlohmann::ordered_json yaml_to_json(const YAML::Node& node) {
  if (node.IsMap()) {
    nlohmann::ordered_json object = nlohmann::ordered_json::object();
    for (const auto& item : node) {
      object[item.first.as<std::string>()] = yaml_to_json(item.second);
    }
    return object;
  }
  if (node.IsSequence()) {
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    for (const YAML::Node& item : node) {
      list.push_back(yaml_to_json(item));
    }
    return list;
  }
  if (!node.IsScalar()) {
    return nullptr;
  }
  const std::string& text = node.Scalar();
  if (text == "true" || text == "false") {
    return text == "true";
  }
  int64_t integer = 0;
  double number = 0.0;
  if (YAML::convert<int64_t>::decode(node, integer)) {
    return integer;
  }
  if (YAML::convert<double>::decode(node, number)) {
    return number;
  }
  return text;
}

void declare_sweep_section(ConfigSchema& schema, ExperimentConfig& c) {
  schema.add_custom(
      "sweep",
      "Runs of `magrq sweep`: dotted keys mapped to lists of values (a grid, first key "
      "outermost), or points: a list of maps of dotted keys; see docs/sweeps.md",
      [&c](const YAML::Node& node, const std::string& where) {
        if (!node.IsMap()) {
          throw ConfigError(where + ": expected a map of dotted keys to lists of values, found " +
                            (node.IsSequence() ? "a list" : "'" + node.Scalar() + "'"));
        }
        c.sweep = yaml_to_json(node);
      },
      [&c] { return c.sweep; });
}

void check_combinations(const ExperimentConfig& c, const std::string& where) {
  if (c.model.path.empty()) {
    throw ConfigError(where + ": key model.path is missing; expected a Hugging Face Llama folder");
  }
  if (c.calibration.source.empty()) {
    throw ConfigError(where + ": key calibration.source is missing; expected KIND:PATH");
  }
  if (c.store.path.empty()) {
    throw ConfigError(where + ": key store.path is missing; expected an HDF5 file or folder");
  }
  if (c.output.dir.empty()) {
    throw ConfigError(where + ": key output.dir is missing; expected an output folder");
  }
  if (c.quantizer.static_groups && c.quantizer.group_size <= 0) {
    throw ConfigError(where + ": quantizer.static_groups needs quantizer.group_size > 0, found " +
                      std::to_string(c.quantizer.group_size));
  }
  if (c.calibration.mode == "sequential" && c.store.layout == "single") {
    throw ConfigError(where + ": store.layout single needs calibration.mode independent: sequential "
                      "mode writes the store one layer at a time (use per_layer or auto)");
  }
  if (c.magr.hessian == "last_sequence") {
    throw ConfigError(where + ": magr.hessian last_sequence is not available yet: the store keeps only "
                      "the summed X^T X; use full");
  }
  for (const std::string& format : c.output.formats) {
    if (format != "gptq" && format != "dequantized") {
      throw ConfigError(where + ": output.formats has '" + format +
                        "'; expected gptq and/or dequantized");
    }
  }
}

}  // namespace

ConfigSchema declare_experiment_schema(ExperimentConfig& config) {
  ConfigSchema schema;
  declare_run_sections(schema, config);
  declare_method_sections(schema, config);
  declare_layout_sections(schema, config);
  declare_sweep_section(schema, config);
  return schema;
}

ExperimentConfig parse_experiment(const std::string& yaml, const std::string& where) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& error) {
    throw ConfigError(where + ": invalid YAML: " + error.what());
  }
  return parse_experiment(root, where);
}

ExperimentConfig parse_experiment(const YAML::Node& root, const std::string& where) {
  ExperimentConfig config;
  const ConfigSchema schema = declare_experiment_schema(config);
  schema.parse(root, where);
  schema.validate(where);
  check_combinations(config, where);
  return config;
}

ExperimentConfig load_experiment(const std::filesystem::path& file) {
  std::ifstream stream(file);
  if (!stream) {
    throw ConfigError("experiment file " + file.string() + " not found or not readable");
  }
  std::stringstream text;
  text << stream.rdbuf();
  ExperimentConfig config = parse_experiment(text.str(), file.string());
  if (!config.sweep.is_null()) {
    throw ConfigError(file.string() + ": the file has a sweep section, which magrq run does not expand; "
                      "run it with `magrq sweep " + file.string() + "`, or remove the section");
  }
  return config;
}

nlohmann::ordered_json AlphaSetting::to_json() const {
  switch (kind) {
    case Kind::search_relative:
      return "auto";
    case Kind::published:
      return "published";
    case Kind::fixed:
      return values.front();
    case Kind::search_absolute:
      return values;
  }
  return nullptr;
}

}  // namespace magrq::app
