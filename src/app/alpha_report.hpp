// The MagR alpha search in report.json and report.md: per item, the candidates tried
// with their output errors and the rows that chose each; per module, those summed over
// the module's items; and the run's count of modules and rows that chose no MagR.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "core/alpha_search.hpp"

namespace magrq::app {

// The item-level record: scale, median zeroing alpha and one entry per candidate.
nlohmann::ordered_json alpha_search_json(const AlphaSearchSummary& summary);

// Sums the "magr_alpha" records of report items per module (items are row blocks). The
// result has "modules" (one entry each: name, layer, module, scale, candidates with
// summed output_error and rows_chosen, rows, rows_without_magr, choice), and the totals
// "modules_searched", "modules_without_magr" (every row chose no MagR), "rows" and
// "rows_without_magr". Null when no item ran the search.
nlohmann::ordered_json summarize_alpha_search(const nlohmann::ordered_json& items);

// A Markdown section for report.md from summarize_alpha_search()'s result.
std::string alpha_search_markdown(const nlohmann::ordered_json& summary);

// One line for the run's log summary.
std::string alpha_search_log_line(const nlohmann::ordered_json& summary);

}  // namespace magrq::app
