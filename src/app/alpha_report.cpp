#include "app/alpha_report.hpp"

#include "app/text_format.hpp"

#include <cstdio>
#include <map>
#include <utility>

namespace magrq::app {

namespace {

// "0.001 x z" for a relative candidate, "0.001" for an absolute one, "none" for no MagR.
std::string candidate_text(double value, const std::string& scale) {
  if (value == 0.0) {
    return "none";
  }
  return format_double("%g", value) + (scale == "zeroing" ? " x z" : "");
}

// "0.001 x z: 37, 0.003 x z: 10, none: 17", the candidates in the order tried, those that
// no row chose left out.
std::string choice_text(const nlohmann::ordered_json& candidates, const std::string& scale) {
  std::string text;
  for (const auto& c : candidates) {
    const int64_t rows = c.value("rows_chosen", int64_t{0});
    if (rows > 0) {
      text += (text.empty() ? "" : ", ") + candidate_text(c.value("value", 0.0), scale) + ": " + std::to_string(rows);
    }
  }
  return text;
}

// A module's first record: its names and the candidates, with zero sums.
nlohmann::ordered_json new_module(const nlohmann::ordered_json& item) {
  const nlohmann::ordered_json& search = item["magr_alpha"];
  nlohmann::ordered_json module = {{"name", item.value("name", std::string())},
                                   {"layer", item.value("layer", 0)},
                                   {"module", item.value("module", std::string())},
                                   {"scale", search.value("scale", std::string())},
                                   {"candidates", nlohmann::ordered_json::array()}};
  for (const auto& c : search["candidates"]) {
    module["candidates"].push_back({{"value", c.value("value", 0.0)}, {"output_error", 0.0}, {"rows_chosen", 0}});
  }
  return module;
}

// Adds an item's candidate errors and row counts to its module's sums. Candidates are
// matched by position, because the search tries them in the same order for every item
// of a module.
void add_item(nlohmann::ordered_json& module, const nlohmann::ordered_json& item) {
  nlohmann::ordered_json& sums = module["candidates"];
  const nlohmann::ordered_json& candidates = item["magr_alpha"]["candidates"];
  for (std::size_t k = 0; k < sums.size() && k < candidates.size(); ++k) {
    sums[k]["output_error"] = sums[k]["output_error"].get<double>() + candidates[k].value("output_error", 0.0);
    sums[k]["rows_chosen"] = sums[k]["rows_chosen"].get<int64_t>() + candidates[k].value("rows_chosen", int64_t{0});
  }
}

// Sets a module's row count, its rows without MagR and its choice in words.
void add_module_totals(nlohmann::ordered_json& module) {
  int64_t rows = 0;
  int64_t without = 0;
  for (const auto& c : module["candidates"]) {
    rows += c["rows_chosen"].get<int64_t>();
    if (c["value"].get<double>() == 0.0) {
      without += c["rows_chosen"].get<int64_t>();
    }
  }
  module["rows"] = rows;
  module["rows_without_magr"] = without;
  module["choice"] = choice_text(module["candidates"], module["scale"].get<std::string>());
}

}  // namespace

nlohmann::ordered_json alpha_search_json(const AlphaSearchSummary& summary) {
  nlohmann::ordered_json candidates = nlohmann::ordered_json::array();
  for (const AlphaCandidate& c : summary.candidates) {
    candidates.push_back({{"value", c.value},
                          {"output_error", c.output_error},
                          {"rows_chosen", c.rows_chosen},
                          {"iterations", c.iterations},
                          {"max_abs_after", c.max_abs_after},
                          {"seconds", c.magr_seconds + c.quantize_seconds}});
  }
  return {{"scale", alpha_scale_name(summary.scale)},
          {"median_zeroing_alpha", summary.median_zeroing_alpha},
          {"candidates", candidates}};
}

nlohmann::ordered_json summarize_alpha_search(const nlohmann::ordered_json& items) {
  // Modules in the order of their first item.
  nlohmann::ordered_json modules = nlohmann::ordered_json::array();
  std::map<std::string, std::size_t> index;
  for (const auto& item : items) {
    if (!item.contains("magr_alpha")) {
      continue;
    }
    const auto [entry, added] = index.try_emplace(item.value("name", std::string()), modules.size());
    if (added) {
      modules.push_back(new_module(item));
    }
    add_item(modules[entry->second], item);
  }
  if (modules.empty()) {
    return nullptr;
  }

  int64_t rows = 0;
  int64_t rows_without = 0;
  int64_t modules_without = 0;
  for (auto& module : modules) {
    add_module_totals(module);
    rows += module["rows"].get<int64_t>();
    rows_without += module["rows_without_magr"].get<int64_t>();
    modules_without += module["rows_without_magr"] == module["rows"] ? 1 : 0;
  }
  return {{"modules_searched", static_cast<int64_t>(modules.size())},
          {"modules_without_magr", modules_without},
          {"rows", rows},
          {"rows_without_magr", rows_without},
          {"modules", modules}};
}

std::string alpha_search_markdown(const nlohmann::ordered_json& summary) {
  if (summary.is_null()) {
    return "";
  }
  std::string md = "## MagR alpha search\n\n";
  md += std::to_string(summary["modules_searched"].get<int64_t>()) + " modules searched; " +
        std::to_string(summary["modules_without_magr"].get<int64_t>()) + " chose no MagR for every row; " +
        std::to_string(summary["rows_without_magr"].get<int64_t>()) + " of " +
        std::to_string(summary["rows"].get<int64_t>()) +
        " output rows chose no MagR. Each row keeps the candidate with the lowest output error "
        "(w - q)^T H (w - q); z is the row's zeroing alpha. Errors are each candidate's output error "
        "had every row chosen it.\n\n";
  md += "| layer | module | candidates: output error | rows per choice |\n| ---: | --- | --- | --- |\n";
  for (const auto& module : summary["modules"]) {
    std::string errors;
    for (const auto& c : module["candidates"]) {
      errors += (errors.empty() ? "" : ", ") + candidate_text(c["value"].get<double>(), module["scale"]) + " " +
                format_double("%.3e", c["output_error"].get<double>());
    }
    md += "| " + std::to_string(module["layer"].get<int>()) + " | " + module["module"].get<std::string>() + " | " +
          errors + " | " + module["choice"].get<std::string>() + " |\n";
  }
  return md + "\n";
}

std::string alpha_search_log_line(const nlohmann::ordered_json& summary) {
  if (summary.is_null()) {
    return "";
  }
  return "MagR alpha search: " + std::to_string(summary["modules_searched"].get<int64_t>()) + " modules, " +
         std::to_string(summary["modules_without_magr"].get<int64_t>()) + " chose no MagR for every row, " +
         std::to_string(summary["rows_without_magr"].get<int64_t>()) + " of " +
         std::to_string(summary["rows"].get<int64_t>()) + " rows chose no MagR";
}

}  // namespace magrq::app
