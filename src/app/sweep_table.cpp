#include "app/sweep_table.hpp"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

#include "app/alpha_report.hpp"
#include "core/error.hpp"

namespace magrq::app {

namespace {

std::string format_number(double value, const char* format) {
  char text[64];
  std::snprintf(text, sizeof(text), format, value);
  return text;
}

std::string fixed4(double value) { return format_number(value, "%.4f"); }
std::string scientific(double value) { return format_number(value, "%.4e"); }

const nlohmann::ordered_json* find_value(const nlohmann::ordered_json& root, const std::string& key) {
  const nlohmann::ordered_json* node = &root;
  std::stringstream stream(key);
  for (std::string part; std::getline(stream, part, '.');) {
    if (!node->is_object() || !node->contains(part)) {
      return nullptr;
    }
    node = &(*node)[part];
  }
  return node;
}

std::string value_text(const nlohmann::ordered_json& value) {
  return value.is_string() ? value.get<std::string>() : value.dump();
}

struct ModuleSums {
  double error = 0.0;
  double energy = 0.0;
};

void add_item_figures(const nlohmann::ordered_json& items, PointResults& results) {
  std::map<std::string, ModuleSums> modules;
  for (const auto& item : items) {
    ModuleSums& sums = modules[item.at("name").get<std::string>()];
    sums.error += item.at("output_error").get<double>();
    sums.energy += item.at("reference_energy").get<double>();
  }
  results.modules = static_cast<int64_t>(modules.size());
  double relative_sum = 0.0;
  for (const auto& [name, sums] : modules) {
    results.output_error += sums.error;
    // A module with zero reference energy (all-zero weights or inputs) has no relative
    // error; it counts as 0, as the run report's relative_error does.
    relative_sum += sums.energy > 0 ? sums.error / sums.energy : 0.0;
  }
  results.mean_relative_error = modules.empty() ? 0.0 : relative_sum / static_cast<double>(modules.size());

  // The same counts as the run's own report.md, from the items' alpha search records.
  const nlohmann::ordered_json search = summarize_alpha_search(items);
  if (!search.is_null()) {
    results.modules_without_magr = search.at("modules_without_magr").get<int64_t>();
    results.rows_without_magr = search.at("rows_without_magr").get<int64_t>();
    results.searched_rows = search.at("rows").get<int64_t>();
  }
}

std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) {
    return text;
  }
  std::string quoted = "\"";
  for (const char c : text) {
    quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  }
  return quoted + "\"";
}

std::string markdown_cell(const std::string& text) {
  std::string cell;
  for (const char c : text) {
    if (c == '|') {
      cell += "\\|";
    } else if (c == '\n') {
      cell += ' ';
    } else {
      cell += c;
    }
  }
  return cell;
}

// Column headers and, per row, the cells, shared by the CSV and Markdown writers.
struct Grid {
  std::vector<std::string> headers;
  std::vector<std::vector<std::string>> cells;
};

// CSV headers name each perplexity source in full; Markdown headers number them ([1],
// [2]) when there are several, and the text under the table lists them.
Grid make_grid(const SweepTable& table, bool numbered_sources) {
  Grid grid;
  grid.headers = {"index", "point"};
  grid.headers.insert(grid.headers.end(), table.keys.begin(), table.keys.end());
  grid.headers.push_back("status");
  for (size_t i = 0; i < table.sources.size(); ++i) {
    std::string suffix = " " + table.sources[i];
    if (numbered_sources) {
      suffix = table.sources.size() == 1 ? "" : " [" + std::to_string(i + 1) + "]";
    }
    grid.headers.push_back("ppl fp" + suffix);
    grid.headers.push_back("ppl quantized" + suffix);
  }
  for (const char* header : {"output error", "mean relative error", "modules"}) {
    grid.headers.push_back(header);
  }
  if (table.has_alpha_search) {
    grid.headers.push_back("modules without MagR");
    grid.headers.push_back("rows without MagR");
  }
  grid.headers.push_back("store reused");
  grid.headers.push_back("wall s");

  for (const SweepRow& row : table.rows) {
    std::vector<std::string> cells = {std::to_string(row.index), row.name};
    cells.insert(cells.end(), row.values.begin(), row.values.end());
    cells.push_back(row.results ? "done" : "missing");
    const size_t figures = grid.headers.size() - cells.size();
    if (!row.results) {
      cells.resize(cells.size() + figures);
      grid.cells.push_back(std::move(cells));
      continue;
    }
    const PointResults& r = *row.results;
    for (const std::string& source : table.sources) {
      const auto found = std::find_if(r.perplexity.begin(), r.perplexity.end(),
                                      [&](const PointResults::Perplexity& p) { return p.source == source; });
      const bool has = found != r.perplexity.end();
      cells.push_back(has && found->full_precision ? fixed4(*found->full_precision) : "");
      cells.push_back(has ? fixed4(found->quantized) : "");
    }
    cells.push_back(scientific(r.output_error));
    cells.push_back(scientific(r.mean_relative_error));
    cells.push_back(std::to_string(r.modules));
    if (table.has_alpha_search) {
      cells.push_back(r.modules_without_magr ? std::to_string(*r.modules_without_magr) : "");
      cells.push_back(r.rows_without_magr ? std::to_string(*r.rows_without_magr) + "/" +
                                                std::to_string(*r.searched_rows)
                                          : "");
    }
    cells.push_back(r.store_reused ? "yes" : "no");
    cells.push_back(format_number(r.wall_seconds, "%.1f"));
    grid.cells.push_back(std::move(cells));
  }
  return grid;
}

}  // namespace

PointResults read_point_results(const std::filesystem::path& report_json) {
  std::ifstream stream(report_json);
  if (!stream) {
    throw DataError(report_json.string() + " not found or not readable");
  }
  PointResults results;
  try {
    const nlohmann::ordered_json report = nlohmann::ordered_json::parse(stream);
    for (const auto& p : report.at("perplexity")) {
      PointResults::Perplexity entry;
      entry.source = p.at("source").get<std::string>();
      if (!p.at("full_precision").is_null()) {
        entry.full_precision = p.at("full_precision").get<double>();
      }
      entry.quantized = p.at("quantized").get<double>();
      results.perplexity.push_back(entry);
    }
    add_item_figures(report.at("items"), results);
    results.store_reused = report.value("store_reused", false);
    results.wall_seconds = report.at("phase_seconds").value("total", 0.0);
  } catch (const nlohmann::json::exception& error) {
    throw DataError(report_json.string() + ": not a complete magrq run report: " + error.what());
  }
  return results;
}

SweepTable gather_sweep(const Sweep& sweep) {
  SweepTable table;
  table.keys = sweep.keys;
  for (const SweepPoint& point : sweep.points) {
    SweepRow row;
    row.index = point.index;
    row.name = point.name;
    ExperimentConfig copy = point.config;
    const nlohmann::ordered_json resolved = declare_experiment_schema(copy).resolved();
    for (const std::string& key : sweep.keys) {
      const nlohmann::ordered_json* value = find_value(resolved, key);
      row.values.push_back(value ? value_text(*value) : "");
    }
    const auto report = point_dir(sweep, point) / "report.json";
    if (std::filesystem::exists(report)) {
      row.results = read_point_results(report);
      for (const auto& p : row.results->perplexity) {
        if (std::find(table.sources.begin(), table.sources.end(), p.source) == table.sources.end()) {
          table.sources.push_back(p.source);
        }
      }
      table.has_alpha_search = table.has_alpha_search || row.results->searched_rows.has_value();
    }
    table.rows.push_back(std::move(row));
  }
  return table;
}

std::string sweep_csv(const SweepTable& table) {
  const Grid grid = make_grid(table, false);
  std::string text;
  auto add_line = [&text](const std::vector<std::string>& fields) {
    for (size_t i = 0; i < fields.size(); ++i) {
      text += (i ? "," : "") + csv_field(fields[i]);
    }
    text += "\r\n";
  };
  add_line(grid.headers);
  for (const auto& cells : grid.cells) {
    add_line(cells);
  }
  return text;
}

std::string sweep_markdown(const SweepTable& table, const std::string& title) {
  const Grid grid = make_grid(table, true);
  size_t finished = 0;
  for (const SweepRow& row : table.rows) {
    finished += row.results ? 1 : 0;
  }
  std::string text = "# " + title + "\n\n" + std::to_string(finished) + " of " + std::to_string(table.rows.size()) +
                     " points finished. Output error: the sum over modules of tr((W - Q) H (W - Q)^T), with H the "
                     "mean of x x^T per calibration token; relative error: that over tr(W H W^T), averaged over "
                     "modules.\n\n";

  text += "|";
  for (const std::string& header : grid.headers) {
    text += " " + markdown_cell(header) + " |";
  }
  text += "\n|";
  for (size_t i = 0; i < grid.headers.size(); ++i) {
    text += " --- |";
  }
  text += "\n";

  // Figures of a missing point show as -, swept values as they are.
  const size_t first_figure = 2 + table.keys.size();
  for (const auto& cells : grid.cells) {
    text += "|";
    for (size_t i = 0; i < cells.size(); ++i) {
      const bool missing = cells[i].empty() && i >= first_figure;
      text += " " + (missing ? std::string("-") : markdown_cell(cells[i])) + " |";
    }
    text += "\n";
  }

  if (!table.sources.empty()) {
    text += "\nPerplexity on:\n\n";
  }
  for (size_t i = 0; i < table.sources.size(); ++i) {
    const std::string marker = table.sources.size() == 1 ? "-" : std::to_string(i + 1) + ".";
    text += marker + " `" + table.sources[i] + "`\n";
  }
  return text;
}

}  // namespace magrq::app
