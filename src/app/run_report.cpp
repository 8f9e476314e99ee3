#include "app/run_report.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <fstream>
#include <numeric>
#include <sstream>

#include "app/alpha_report.hpp"
#include "app/text_format.hpp"
#include "core/error.hpp"
#include "model/llama_config.hpp"
#include "store/atomic_file.hpp"

namespace magrq::app {

nlohmann::ordered_json item_statistics(const dist::WorkItem& item, const dist::ModuleSpec& module,
                                       const PipelineResult& result, int rank) {
  const double relative = result.reference_energy > 0 ? result.output_error / result.reference_energy : 0.0;
  nlohmann::ordered_json events = nlohmann::ordered_json::array();
  for (const std::string& event : result.quantized.events) {
    events.push_back(event);
  }
  nlohmann::ordered_json statistics = {
      {"item", item.id},
      {"layer", module.layer},
      {"module", model::linear_name(module.kind)},
      {"name", module.name},
      {"row_begin", item.row_begin},
      {"row_end", item.row_end},
      {"method", module.settings.method},
      {"bits", module.settings.bits},
      {"group_size", module.settings.group_size},
      {"max_abs_before", result.max_abs_before},
      {"max_abs_after", result.max_abs_after},
      {"output_error", result.output_error},
      {"reference_energy", result.reference_energy},
      {"relative_error", relative},
      {"damping", result.quantized.damping},
      {"rtn_fallback", result.quantized.rtn_fallback},
      {"dead_columns", result.quantized.dead_columns},
      {"magr_seconds", result.magr_seconds},
      {"quantize_seconds", result.quantize_seconds},
      {"seconds", result.magr_seconds + result.quantize_seconds},
      {"rank", rank},
      {"events", events},
  };
  if (result.alpha_search) {
    statistics["magr_alpha"] = alpha_search_json(*result.alpha_search);
  }
  if (result.magr) {
    statistics["magr_iterations"] = result.magr->iterations;
    statistics["magr_objective_before"] = result.magr->objective_before;
    statistics["magr_objective_after"] = result.magr->objective_after;
  }
  return statistics;
}

std::string format_item_line(const nlohmann::ordered_json& s) {
  char line[256];
  const std::string rows = std::to_string(s.value("row_begin", 0)) + ".." + std::to_string(s.value("row_end", 0));
  std::snprintf(line, sizeof(line),
                "layer %3d %-9s rows %-11s max|w| %9.4g -> %9.4g  error %10.4g (rel %9.3e)  %7.2f s",
                s.value("layer", 0), s.value("module", std::string()).c_str(), rows.c_str(),
                s.value("max_abs_before", 0.0), s.value("max_abs_after", 0.0), s.value("output_error", 0.0),
                s.value("relative_error", 0.0), s.value("seconds", 0.0));
  return line;
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream stream(text);
  for (std::string line; std::getline(stream, line);) {
    lines.push_back(line);
  }
  return lines;
}

void RunReport::add_hessian(int64_t layer, const std::string& input, const store::HessianStatistics& s) {
  hessians_.push_back({{"layer", layer},
                       {"input", input},
                       {"tokens", s.tokens},
                       {"max_abs_activation", s.max_abs_activation},
                       {"dead_channels", s.dead_channels}});
}

void RunReport::set_verify(const model::VerifyReport& verify) {
  verify_ = {{"modules", verify.modules}, {"weights", verify.weights}, {"problems", verify.problems}};
}

void RunReport::add_perplexity(const std::string& source, size_t windows,
                               const std::optional<model::PerplexityResult>& full,
                               const model::PerplexityResult& quantized) {
  perplexity_.push_back({{"source", source},
                         {"windows", windows},
                         {"full_precision", full ? nlohmann::ordered_json(full->perplexity) : nullptr},
                         {"quantized", quantized.perplexity}});
}

void RunReport::gather_rank_times(const dist::Comm& comm, const dist::ScheduleTimes& times) {
  const double mine[2] = {times.busy_seconds, static_cast<double>(times.items)};
  std::vector<double> all(2 * static_cast<size_t>(comm.size()));
  MPI_Gather(mine, 2, MPI_DOUBLE, all.data(), 2, MPI_DOUBLE, 0, comm.handle());
  busy_seconds_.clear();
  items_per_rank_.clear();
  for (int r = 0; r < comm.size(); ++r) {
    busy_seconds_.push_back(all[2 * static_cast<size_t>(r)]);
    items_per_rank_.push_back(all[2 * static_cast<size_t>(r) + 1]);
  }
}

void RunReport::write(const std::filesystem::path& dir, const nlohmann::ordered_json& configuration,
                      const dist::Plan& plan, const store::Journal& journal) {
  items_ = nlohmann::ordered_json::array();
  for (const dist::WorkItem& item : plan.items) {
    items_.push_back(journal.load(item.id).statistics);
  }
  alpha_search_ = summarize_alpha_search(items_);
  const double busy_total = std::accumulate(busy_seconds_.begin(), busy_seconds_.end(), 0.0);
  nlohmann::ordered_json ranks = {
      {"busy_seconds", busy_seconds_},
      {"items", items_per_rank_},
      {"busy_min", busy_seconds_.empty() ? 0.0 : *std::min_element(busy_seconds_.begin(), busy_seconds_.end())},
      {"busy_max", busy_seconds_.empty() ? 0.0 : *std::max_element(busy_seconds_.begin(), busy_seconds_.end())},
      {"busy_mean", busy_seconds_.empty() ? 0.0 : busy_total / static_cast<double>(busy_seconds_.size())}};
  nlohmann::ordered_json report = {{"tool", std::string("magrq ") + MAGRQ_VERSION},
                                   {"configuration", configuration},
                                   {"phase_seconds", phase_seconds},
                                   {"ranks", ranks},
                                   {"store_reused", store_reused},
                                   {"fallback_modules", fallback_modules},
                                   {"unquantized_modules", unquantized_modules},
                                   {"verify", verify_},
                                   {"perplexity", perplexity_},
                                   {"hessians", hessians_},
                                   {"magr_alpha_search", alpha_search_},
                                   {"items", items_}};
  store::write_text_atomically(dir / "report.json", report.dump(2) + "\n");

  std::string md = "# magrq run report\n\n";
  md += "Experiment `" + configuration.value("name", std::string()) + "`, " + std::string("magrq ") + MAGRQ_VERSION +
        ", " + std::to_string(busy_seconds_.size()) + " ranks.\n\n## Perplexity\n\n";
  md += "| source | windows | full precision | quantized |\n| --- | ---: | ---: | ---: |\n";
  for (const auto& p : perplexity_) {
    md += "| `" + p["source"].get<std::string>() + "` | " + std::to_string(p["windows"].get<size_t>()) + " | " +
          (p["full_precision"].is_null() ? "-" : fixed(p["full_precision"].get<double>(), 4)) + " | " +
          fixed(p["quantized"].get<double>(), 4) + " |\n";
  }
  md += "\n## Time\n\n| phase | seconds |\n| --- | ---: |\n";
  for (const auto& [phase, seconds] : phase_seconds) {
    md += "| " + phase + " | " + fixed(seconds, 2) + " |\n";
  }
  md += "\nBusy time per rank (s): min " + fixed(ranks["busy_min"], 2) + ", max " + fixed(ranks["busy_max"], 2) +
        ", mean " + fixed(ranks["busy_mean"], 2) + ".\n\n";
  md += "## Modules\n\n| layer | module | rows | max abs before | after | output error | relative | s |\n";
  md += "| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |\n";
  for (const auto& s : items_) {
    md += "| " + std::to_string(s.value("layer", 0)) + " | " + s.value("module", std::string()) + " | " +
          std::to_string(s.value("row_begin", 0)) + ".." + std::to_string(s.value("row_end", 0)) + " | " +
          fixed(s.value("max_abs_before", 0.0), 4) + " | " + fixed(s.value("max_abs_after", 0.0), 4) + " | " +
          scientific(s.value("output_error", 0.0)) + " | " + scientific(s.value("relative_error", 0.0)) + " | " +
          fixed(s.value("seconds", 0.0), 2) + " |\n";
  }
  md += "\n" + alpha_search_markdown(alpha_search_);
  md += "## Modules not quantized in the packed checkpoint\n\n";
  if (unquantized_modules.empty()) {
    md += "None.\n";
  }
  for (const std::string& name : unquantized_modules) {
    md += "- `" + name + "`\n";
  }
  md += "\nRTN fallbacks: " + std::to_string(fallback_modules.size()) + ".\n";
  store::write_text_atomically(dir / "report.md", md);
}

void RunReport::log_summary() const {
  if (!alpha_search_.is_null()) {
    spdlog::info("summary: {}", alpha_search_log_line(alpha_search_));
  }
  for (const auto& p : perplexity_) {
    spdlog::info("summary: perplexity {} fp {} quantized {:.4f}", p["source"].get<std::string>(),
                 p["full_precision"].is_null() ? std::string("-") : fixed(p["full_precision"].get<double>(), 4),
                 p["quantized"].get<double>());
  }
  const double busy_total = std::accumulate(busy_seconds_.begin(), busy_seconds_.end(), 0.0);
  spdlog::info("summary: {} items, {} RTN fallbacks, {} modules unquantized in the packed checkpoint, "
               "total {:.1f} s, busy per rank min {:.1f} s max {:.1f} s mean {:.1f} s",
               items_.size(), fallback_modules.size(), unquantized_modules.size(),
               phase_seconds.count("total") ? phase_seconds.at("total") : 0.0,
               busy_seconds_.empty() ? 0.0 : *std::min_element(busy_seconds_.begin(), busy_seconds_.end()),
               busy_seconds_.empty() ? 0.0 : *std::max_element(busy_seconds_.begin(), busy_seconds_.end()),
               busy_seconds_.empty() ? 0.0 : busy_total / static_cast<double>(busy_seconds_.size()));
}

}  // namespace magrq::app
