#include "app/report_runs.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.hpp"

namespace magrq::app {

namespace {

using Json = nlohmann::json;

// The order of a Llama decoder layer's linear modules, so plots read like the model.
constexpr const char* kModuleOrder[] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};

size_t module_rank(const std::string& module) {
  const auto* found = std::find(std::begin(kModuleOrder), std::end(kModuleOrder), module);
  return static_cast<size_t>(found - std::begin(kModuleOrder));
}

// Layer first, then the decoder layer's order, then by name for modules outside it.
template <typename Module>
bool model_order(const Module& a, const Module& b) {
  if (a.layer != b.layer) {
    return a.layer < b.layer;
  }
  const size_t rank_a = module_rank(a.module);
  const size_t rank_b = module_rank(b.module);
  return rank_a != rank_b ? rank_a < rank_b : a.module < b.module;
}

std::string format_number(double value) {
  char text[40];
  std::snprintf(text, sizeof(text), "%g", value);
  return text;
}

// Field access that names the file and the field when the field is missing or has the
// wrong type.
class ReportReader {
 public:
  explicit ReportReader(std::filesystem::path file) : file_(std::move(file)) {}

  const Json& child(const Json& node, const std::string& key, const std::string& where) const {
    if (!node.is_object() || !node.contains(key)) {
      throw DataError(detail::concat(file_.string(), ": field '", where.empty() ? key : where + "." + key,
                                     "' is missing; expected a report.json written by magrq run"));
    }
    return node.at(key);
  }

  template <typename T>
  T get(const Json& node, const std::string& key, const std::string& where) const {
    const Json& value = child(node, key, where);
    try {
      return value.get<T>();
    } catch (const nlohmann::json::exception&) {
      throw DataError(detail::concat(file_.string(), ": field '", where.empty() ? key : where + "." + key,
                                     "' has the wrong type (found ", value.dump(), ")"));
    }
  }

  const std::filesystem::path& file() const { return file_; }

 private:
  std::filesystem::path file_;
};

Json parse_report(const std::filesystem::path& file) {
  std::ifstream stream(file);
  if (!stream) {
    throw DataError(detail::concat(file.string(), ": report.json not found or not readable. Expected the ",
                                   "output folder of a finished magrq run"));
  }
  try {
    return Json::parse(stream);
  } catch (const nlohmann::json::parse_error& error) {
    throw DataError(detail::concat(file.string(), ": not valid JSON: ", error.what()));
  }
}

std::string alpha_text(const Json& alpha) {
  if (alpha.is_string()) {
    return alpha.get<std::string>();
  }
  if (alpha.is_number()) {
    return format_number(alpha.get<double>());
  }
  if (alpha.is_array()) {
    std::string text = "best of {";
    for (size_t i = 0; i < alpha.size(); ++i) {
      text += (i ? ", " : "") + (alpha[i].is_number() ? format_number(alpha[i].get<double>()) : alpha[i].dump());
    }
    return text + "}";
  }
  return alpha.dump();
}

// Sums the work items (row blocks) of each module: errors and energies add up over
// rows, and the largest |w| is the largest over the blocks.
std::vector<ModuleSummary> summarize_modules(const ReportReader& reader, const Json& items) {
  std::map<std::pair<int, std::string>, ModuleSummary> modules;
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string where = "items[" + std::to_string(i) + "]";
    const Json& item = items[i];
    const int layer = reader.get<int>(item, "layer", where);
    const std::string module = reader.get<std::string>(item, "module", where);
    auto [entry, inserted] = modules.try_emplace({layer, module});
    ModuleSummary& summary = entry->second;
    if (inserted) {
      summary.layer = layer;
      summary.module = module;
    }
    summary.max_abs_before = std::max(summary.max_abs_before, reader.get<double>(item, "max_abs_before", where));
    summary.max_abs_after = std::max(summary.max_abs_after, reader.get<double>(item, "max_abs_after", where));
    summary.output_error += reader.get<double>(item, "output_error", where);
    summary.reference_energy += reader.get<double>(item, "reference_energy", where);
  }
  std::vector<ModuleSummary> ordered;
  for (auto& [key, summary] : modules) {
    ordered.push_back(summary);
  }
  std::stable_sort(ordered.begin(), ordered.end(), model_order<ModuleSummary>);
  return ordered;
}

// The search's data are output errors and row counts, so a negative or non-finite value
// is a corrupt report rather than something to draw.
AlphaCandidateRows read_alpha_candidate(const ReportReader& reader, const Json& node, const std::string& where) {
  AlphaCandidateRows candidate;
  candidate.value = reader.get<double>(node, "value", where);
  candidate.output_error = reader.get<double>(node, "output_error", where);
  candidate.rows_chosen = reader.get<int64_t>(node, "rows_chosen", where);
  if (!std::isfinite(candidate.value) || candidate.value < 0.0) {
    throw DataError(detail::concat(reader.file().string(), ": field '", where, ".value' is ", candidate.value,
                                   "; expected a finite alpha >= 0"));
  }
  if (candidate.rows_chosen < 0) {
    throw DataError(detail::concat(reader.file().string(), ": field '", where, ".rows_chosen' is ",
                                   candidate.rows_chosen, "; expected a row count >= 0"));
  }
  return candidate;
}

ModuleAlphaSearch read_module_alpha_search(const ReportReader& reader, const Json& node, const std::string& where) {
  ModuleAlphaSearch search;
  search.layer = reader.get<int>(node, "layer", where);
  search.module = reader.get<std::string>(node, "module", where);
  search.scale = reader.get<std::string>(node, "scale", where);
  if (search.scale != "zeroing" && search.scale != "absolute") {
    throw DataError(detail::concat(reader.file().string(), ": field '", where, ".scale' is '", search.scale,
                                   "'; expected 'zeroing' or 'absolute'"));
  }
  const Json& candidates = reader.child(node, "candidates", where);
  if (!candidates.is_array()) {
    throw DataError(detail::concat(reader.file().string(), ": field '", where, ".candidates' is not a list"));
  }
  for (size_t k = 0; k < candidates.size(); ++k) {
    search.candidates.push_back(
        read_alpha_candidate(reader, candidates[k], where + ".candidates[" + std::to_string(k) + "]"));
  }
  return search;
}

// magr_alpha_search is optional: null when no module ran the search, and absent from
// reports written before the search existed.
std::vector<ModuleAlphaSearch> summarize_alpha_search(const ReportReader& reader, const Json& root) {
  std::vector<ModuleAlphaSearch> modules;
  if (!root.contains("magr_alpha_search") || root.at("magr_alpha_search").is_null()) {
    return modules;
  }
  const Json& list = reader.child(root.at("magr_alpha_search"), "modules", "magr_alpha_search");
  if (!list.is_array()) {
    throw DataError(detail::concat(reader.file().string(), ": field 'magr_alpha_search.modules' is not a list"));
  }
  for (size_t i = 0; i < list.size(); ++i) {
    modules.push_back(read_module_alpha_search(reader, list[i], "magr_alpha_search.modules[" + std::to_string(i) + "]"));
  }
  std::stable_sort(modules.begin(), modules.end(), model_order<ModuleAlphaSearch>);
  return modules;
}

std::vector<PerplexitySummary> summarize_perplexity(const ReportReader& reader, const Json& entries) {
  std::vector<PerplexitySummary> perplexity;
  for (size_t i = 0; i < entries.size(); ++i) {
    const std::string where = "perplexity[" + std::to_string(i) + "]";
    PerplexitySummary summary;
    summary.source = reader.get<std::string>(entries[i], "source", where);
    summary.quantized = reader.get<double>(entries[i], "quantized", where);
    const Json& full = reader.child(entries[i], "full_precision", where);
    if (!full.is_null()) {
      summary.full_precision = reader.get<double>(entries[i], "full_precision", where);
    }
    perplexity.push_back(summary);
  }
  return perplexity;
}

const Json& require_array(const ReportReader& reader, const Json& root, const std::string& key) {
  const Json& node = reader.child(root, key, "");
  if (!node.is_array()) {
    throw DataError(detail::concat(reader.file().string(), ": field '", key, "' is not a list"));
  }
  return node;
}

std::string group_text(int group_size) {
  if (group_size <= 0) {
    return "per-channel";
  }
  std::string text = "g";
  text += std::to_string(group_size);
  return text;
}

// The absolute, normalized folder path without a trailing separator, so that its
// filename() is the folder's name.
std::filesystem::path normal_folder(const std::filesystem::path& dir) {
  std::filesystem::path normal = std::filesystem::absolute(dir).lexically_normal();
  return normal.has_filename() ? normal : normal.parent_path();
}

std::string upper(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::toupper(c); });
  return text;
}

}  // namespace

double ModuleSummary::relative_error() const {
  return reference_energy > 0.0 ? output_error / reference_energy : std::numeric_limits<double>::quiet_NaN();
}

std::string ModuleSummary::label() const {
  return std::to_string(layer) + "." + module;
}

std::string ModuleAlphaSearch::label() const {
  return std::to_string(layer) + "." + module;
}

int64_t ModuleAlphaSearch::rows() const {
  int64_t total = 0;
  for (const AlphaCandidateRows& candidate : candidates) {
    total += candidate.rows_chosen;
  }
  return total;
}

double RunSummary::total_output_error() const {
  double total = 0.0;
  for (const ModuleSummary& module : modules) {
    total += module.output_error;
  }
  return total;
}

double RunSummary::total_reference_energy() const {
  double total = 0.0;
  for (const ModuleSummary& module : modules) {
    total += module.reference_energy;
  }
  return total;
}

std::string RunSummary::method_label() const {
  std::string text = upper(method) + " " + group_text(group_size);
  if (magr) {
    text += " + MagR (alpha " + magr_alpha + ")";
  }
  return text;
}

std::string RunSummary::label() const {
  std::string text = upper(method) + " w" + std::to_string(bits) + " " + group_text(group_size);
  if (magr) {
    text += " + MagR (alpha " + magr_alpha + ")";
  }
  return text;
}

RunSummary load_run_summary(const std::filesystem::path& run_dir) {
  const ReportReader reader(run_dir / "report.json");
  const Json root = parse_report(reader.file());
  RunSummary run;
  run.dir = run_dir;
  run.name = normal_folder(run_dir).filename().string();

  const Json& configuration = reader.child(root, "configuration", "");
  const Json& quantizer = reader.child(configuration, "quantizer", "configuration");
  const Json& magr = reader.child(configuration, "magr", "configuration");
  run.method = reader.get<std::string>(quantizer, "method", "configuration.quantizer");
  run.bits = reader.get<int>(quantizer, "bits", "configuration.quantizer");
  run.group_size = reader.get<int>(quantizer, "group_size", "configuration.quantizer");
  run.magr = reader.get<bool>(magr, "enabled", "configuration.magr");
  run.magr_alpha = alpha_text(reader.child(magr, "alpha", "configuration.magr"));

  run.modules = summarize_modules(reader, require_array(reader, root, "items"));
  run.perplexity = summarize_perplexity(reader, require_array(reader, root, "perplexity"));
  run.alpha_search = summarize_alpha_search(reader, root);
  run.total_seconds = reader.get<double>(reader.child(root, "phase_seconds", ""), "total", "phase_seconds");
  return run;
}

std::vector<std::filesystem::path> expand_run_dirs(const std::vector<std::filesystem::path>& dirs) {
  std::vector<std::filesystem::path> runs;
  for (const std::filesystem::path& dir : dirs) {
    if (std::filesystem::is_regular_file(dir / "report.json")) {
      runs.push_back(dir);
      continue;
    }
    if (!std::filesystem::is_directory(dir)) {
      throw DataError(detail::concat(dir.string(), ": run folder not found"));
    }
    std::vector<std::filesystem::path> children;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
      if (entry.is_directory() && std::filesystem::is_regular_file(entry.path() / "report.json")) {
        children.push_back(entry.path());
      }
    }
    if (children.empty()) {
      throw DataError(detail::concat(dir.string(), ": no report.json in the folder or in its subfolders; ",
                                     "expected the output folder of a magrq run or a folder of such runs"));
    }
    std::sort(children.begin(), children.end());
    runs.insert(runs.end(), children.begin(), children.end());
  }
  return runs;
}

std::vector<RunSummary> load_runs(const std::vector<std::filesystem::path>& run_dirs) {
  std::vector<RunSummary> runs;
  std::map<std::string, int> name_count;
  for (const std::filesystem::path& dir : run_dirs) {
    runs.push_back(load_run_summary(dir));
    ++name_count[runs.back().name];
  }
  for (RunSummary& run : runs) {
    if (name_count[run.name] > 1) {
      run.name = normal_folder(run.dir).parent_path().filename().string() + "/" + run.name;
    }
  }
  return runs;
}

std::vector<std::string> legend_names(const std::vector<RunSummary>& runs) {
  std::set<std::string> labels;
  for (const RunSummary& run : runs) {
    labels.insert(run.label());
  }
  const bool labels_repeat = labels.size() < runs.size();
  std::vector<std::string> names;
  for (const RunSummary& run : runs) {
    names.push_back(labels_repeat ? run.name : run.label());
  }
  return names;
}

}  // namespace magrq::app
