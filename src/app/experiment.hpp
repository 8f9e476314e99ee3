// The experiment file of `magrq run`: a YAML document with one section per concern.
// Every key is declared once in experiment.cpp; docs/config.md is generated from those
// declarations by `magrq config-reference`.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "app/config_schema.hpp"
#include "core/alpha_search.hpp"

namespace magrq::app {

struct ModelSection {
  std::string path;  // Hugging Face Llama folder
};

struct CalibrationSection {
  std::string source;        // KIND:PATH[@BEGIN:END], as for `magrq eval --data`
  int64_t nsamples = 128;    // calibration windows
  int64_t seqlen = 2048;     // tokens per window
  int64_t seed = 0;          // seed of the window sampler
  std::string mode = "sequential";  // sequential or independent
};

struct StoreSection {
  std::string path;                 // HDF5 file (layout single) or folder (layout per_layer)
  // auto (single for independent mode, per_layer for sequential), single or per_layer.
  std::string layout = "auto";
  std::string precision = "float64";  // float64 or float32
  bool reuse = true;                // reuse a matching store instead of recomputing it
};

// The value of magr.alpha: the rule that chooses MagR's l-inf weight.
struct AlphaSetting {
  enum class Kind {
    search_relative,  // auto: search magr.auto_candidates, multiples of each row's zeroing alpha
    published,        // the published fixed values: 1e-3 per channel, 1e-4 with groups
    fixed,            // one number: that alpha for every module, no search
    search_absolute,  // a list of numbers: search those alphas (no MagR is always a candidate)
  };
  Kind kind = Kind::search_relative;
  std::vector<double> values;  // fixed: one value; search_absolute: the candidates

  nlohmann::ordered_json to_json() const;
};

struct MagrSection {
  bool enabled = true;
  AlphaSetting alpha;
  // Candidates of `alpha: auto`, as multiples of each row's zeroing alpha, the alpha at
  // which MagR erases the row. docs/magr.md explains how the default was chosen.
  std::vector<double> auto_candidates = AlphaSearchOptions::default_relative_candidates();
  int iterations = 150;  // the l-inf norm is taken per quantization group (per row without groups)
  bool accelerated = true;
  double tolerance = 0.0;
  std::string hessian = "full";      // full or last_sequence

  // The number of alpha candidates a search tries (no MagR not counted), or 0 when MagR
  // runs with one fixed alpha.
  int search_candidates() const {
    switch (alpha.kind) {
      case AlphaSetting::Kind::search_relative:
        return static_cast<int>(auto_candidates.size());
      case AlphaSetting::Kind::search_absolute:
        return static_cast<int>(alpha.values.size());
      default:
        return 0;
    }
  }
};

struct QuantizerSection {
  std::string method = "gptq";       // gptq or rtn
  int bits = 4;
  int64_t group_size = -1;
  bool sym = true;
  std::optional<double> range_shrink;  // auto: the MagR schedule with MagR, 1 without
  bool act_order = false;
  bool static_groups = false;
  double damp_percent = 0.01;
  int64_t block_size = 128;
  int cd_iterations = 0;
  bool mse = false;
  int64_t max_fallbacks = 0;  // modules allowed to fall back to RTN before the run fails
};

// Settings for the modules whose names match a regular expression; the first matching
// override applies. Unset fields keep the quantizer section's value.
struct ModuleOverride {
  std::string pattern;
  bool skip = false;  // leave the module unquantized
  std::optional<int> bits;
  std::optional<int64_t> group_size;
  std::optional<std::string> method;
};

struct ParallelSection {
  int64_t block_rows = 0;             // output channels per work item; 0 = whole module
  double memory_budget_gib = 16.0;    // per rank
  int threads_per_rank = 0;           // BLAS and OpenMP threads; 0 = cores / ranks on the node
};

struct OutputSection {
  std::string dir;
  std::vector<std::string> formats = {"gptq", "dequantized"};
  double shard_size_gib = 4.0;
  // A module the GPTQ layout cannot hold: keep, dequantized_only or stop (see run_settings.hpp).
  std::string unsupported_shape = "keep";
};

struct EvaluationSection {
  std::vector<std::string> sources;  // KIND:PATH[@BEGIN:END]
  int64_t seqlen = 2048;
  int64_t max_windows = 0;           // 0 = all windows
  bool full_precision = true;        // also evaluate the unquantized model
};

struct ExperimentConfig {
  std::string name;
  ModelSection model;
  CalibrationSection calibration;
  StoreSection store;
  MagrSection magr;
  QuantizerSection quantizer;
  std::vector<ModuleOverride> overrides;
  ParallelSection parallel;
  OutputSection output;
  EvaluationSection evaluation;
  // The sweep: section as written (null when absent). `magrq sweep` expands it into runs
  // (src/app/sweep.hpp); `magrq run` rejects a file that has one.
  nlohmann::ordered_json sweep = nullptr;
};

// Declares every key of the experiment file, bound to the fields of config.
ConfigSchema declare_experiment_schema(ExperimentConfig& config);

// Reads and checks an experiment file. Relative paths in it are resolved against the
// current folder. Throws ConfigError naming the file, line and key, and for a file with
// a sweep: section, which only `magrq sweep` runs.
ExperimentConfig load_experiment(const std::filesystem::path& file);

// Parses an experiment from YAML text (for tests); `where` names it in messages.
ExperimentConfig parse_experiment(const std::string& yaml, const std::string& where);

// Parses an experiment from a YAML tree (a sweep point); `where` names it in messages.
ExperimentConfig parse_experiment(const YAML::Node& root, const std::string& where);

}  // namespace magrq::app
