// Reports with plots: a comparison of several finished runs, and the plots section of a
// single run's own report.md.
#pragma once

#include <filesystem>
#include <vector>

namespace magrq::app {

// Reads RUN_DIR/report.json of every run and writes out_dir/report.md (a table of the
// runs and the embedded plots) and out_dir/plots/*.svg. Each file is written atomically,
// and report.md last. A folder without report.json is read as its subfolders that have
// one (a sweep). Given one run and out_dir equal to that run's folder, it refreshes the
// run's own report.md instead, as write_run_plots does.
// Throws DataError naming the file for a missing or incomplete report.json, and
// ConfigError when out_dir is the folder of a run, whose report.md must not be replaced.
void write_comparison_report(const std::vector<std::filesystem::path>& run_dirs,
                             const std::filesystem::path& out_dir);

// Writes RUN_DIR/plots/*.svg (max |w| before and after MagR when MagR ran, and the
// relative output error per module) and appends a section embedding them to
// RUN_DIR/report.md, replacing the section a previous call appended.
// Throws DataError naming the file when report.json or report.md is missing or incomplete.
void write_run_plots(const std::filesystem::path& run_dir);

}  // namespace magrq::app
