// The results of a sweep as one table: a row per point with its swept values and the
// figures of its report.json, written as sweep.csv and sweep.md in the sweep's folder.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "app/sweep.hpp"

namespace magrq::app {

// The figures of one finished point, read from its report.json.
struct PointResults {
  struct Perplexity {
    std::string source;
    std::optional<double> full_precision;  // absent when evaluation.full_precision is false
    double quantized = 0.0;
  };
  std::vector<Perplexity> perplexity;
  double output_error = 0.0;          // sum over work items of ||(W - Q) X||^2 per token
  double mean_relative_error = 0.0;   // mean over modules of output error / ||W X||^2
  int64_t modules = 0;                // distinct quantized modules
  // With a MagR alpha search: modules whose every row chose no MagR, and the rows that did.
  std::optional<int64_t> modules_without_magr;
  std::optional<int64_t> rows_without_magr;
  std::optional<int64_t> searched_rows;
  bool store_reused = false;
  double wall_seconds = 0.0;  // phase_seconds.total
};

struct SweepRow {
  size_t index = 0;
  std::string name;
  std::vector<std::string> values;       // one per swept key, as resolved for the point
  std::optional<PointResults> results;   // absent: the point has no report.json yet
};

struct SweepTable {
  std::vector<std::string> keys;
  std::vector<std::string> sources;  // evaluation sources, in order of first appearance
  bool has_alpha_search = false;     // some point reported MagR alpha choices
  std::vector<SweepRow> rows;
};

// Reads the figures of report.json. Throws DataError naming the file when it cannot be
// parsed or lacks a field the table needs.
PointResults read_point_results(const std::filesystem::path& report_json);

// One row per point; a point without report.json is a row without results.
SweepTable gather_sweep(const Sweep& sweep);

// The table as CSV (RFC 4180: comma-separated, CRLF line ends, fields with a comma, a
// quote or a line break quoted, quotes doubled). Missing figures are empty fields.
std::string sweep_csv(const SweepTable& table);

// The table as Markdown; a missing point shows `missing` in its status column.
std::string sweep_markdown(const SweepTable& table, const std::string& title);

}  // namespace magrq::app
