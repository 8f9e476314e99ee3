// Summaries of finished runs for the reports: the fields of RUN_DIR/report.json that
// the plots and the table of runs use, with work items summed per module.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace magrq::app {

// One linear module of a run, over all its work items (row blocks).
struct ModuleSummary {
  int layer = 0;
  std::string module;            // q_proj, ..., down_proj
  double max_abs_before = 0.0;   // largest |w| of the module's weights before MagR
  double max_abs_after = 0.0;    // largest |w| after MagR (equal to before without MagR)
  double output_error = 0.0;     // sum over row blocks of tr((W - Q) H (W - Q)^T)
  double reference_energy = 0.0; // sum over row blocks of tr(W H W^T)

  // output_error / reference_energy, or NaN when the reference energy is 0 (a module
  // with no signal has no defined relative error, and the plots skip it with a note).
  double relative_error() const;
  // "layer.module", for example "3.q_proj".
  std::string label() const;
};

// One candidate of the MagR alpha search, summed over a module's row blocks.
struct AlphaCandidateRows {
  // 0 is no MagR. Otherwise a multiple of each row's zeroing alpha (scale "zeroing") or
  // an alpha used as is (scale "absolute").
  double value = 0.0;
  double output_error = 0.0;  // the module's output error had every row chosen this candidate
  int64_t rows_chosen = 0;    // output rows that kept this candidate
};

// The MagR alpha search of one module: an entry of magr_alpha_search.modules.
struct ModuleAlphaSearch {
  int layer = 0;
  std::string module;  // q_proj, ..., down_proj
  std::string scale;   // "zeroing" or "absolute"
  std::vector<AlphaCandidateRows> candidates;  // no MagR first, then the order tried (largest first)

  // "layer.module", as ModuleSummary::label().
  std::string label() const;
  // Sum of rows_chosen over the candidates: the module's output rows.
  int64_t rows() const;
};

struct PerplexitySummary {
  std::string source;                     // KIND:PATH[@BEGIN:END], as in the configuration
  double quantized = 0.0;
  std::optional<double> full_precision;  // present when the run evaluated the FP model
};

struct RunSummary {
  std::filesystem::path dir;
  std::string name;        // the run folder's name, or parent/name when names repeat
  std::string method;      // quantizer.method: gptq or rtn
  int bits = 0;            // quantizer.bits
  int group_size = -1;     // quantizer.group_size, -1 for per output channel
  bool magr = false;       // magr.enabled
  std::string magr_alpha;  // magr.alpha as text: auto, a number or a list
  std::vector<ModuleSummary> modules;  // ordered by layer, then q, k, v, o, gate, up, down
  std::vector<PerplexitySummary> perplexity;
  // The per-row alpha search, ordered like modules. Empty when the run did not search
  // (fixed alpha, no MagR, or a report.json written before the search existed).
  std::vector<ModuleAlphaSearch> alpha_search;
  double total_seconds = 0.0;  // phase_seconds.total

  double total_output_error() const;
  double total_reference_energy() const;
  // "GPTQ w3 g32 + MagR (alpha auto)": the settings that set the run apart.
  std::string label() const;
  // label() without the bits: the line a run belongs to in a perplexity-against-bits plot.
  std::string method_label() const;
};

// Reads RUN_DIR/report.json. Throws DataError naming the file when it is missing, is not
// valid JSON, lacks a field the report needs or has an invalid value (naming the field).
RunSummary load_run_summary(const std::filesystem::path& run_dir);

// Lists the run folders behind the given folders. A folder with report.json is a run. A
// folder without one (a sweep) is read as its immediate subfolders that have one, in
// name order. Throws DataError naming a folder that is neither.
std::vector<std::filesystem::path> expand_run_dirs(const std::vector<std::filesystem::path>& dirs);

// Loads every run and gives runs whose folder names repeat the name parent/name.
std::vector<RunSummary> load_runs(const std::vector<std::filesystem::path>& run_dirs);

// The legend text of each run: its label(), unless two runs share a label, in which case
// every run is shown by its name, because only the names set those runs apart.
std::vector<std::string> legend_names(const std::vector<RunSummary>& runs);

}  // namespace magrq::app
