// magrq report: a Markdown report with SVG plots comparing finished runs.
#include <spdlog/spdlog.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "app/commands.hpp"
#include "app/report_compare.hpp"

namespace magrq::app {
namespace {

struct ReportOptions {
  std::vector<std::string> run_dirs;  // run output folders, or sweep folders of runs
  std::string out;                    // empty: the run's folder for one run, else ./report
};

int run_report(const ReportOptions& options) {
  std::vector<std::filesystem::path> dirs(options.run_dirs.begin(), options.run_dirs.end());
  std::filesystem::path out = options.out;
  if (out.empty()) {
    const bool one_run = dirs.size() == 1 && std::filesystem::is_regular_file(dirs.front() / "report.json");
    out = one_run ? dirs.front() : std::filesystem::path("report");
  }
  write_comparison_report(dirs, out);
  spdlog::info("report: open {}", (out / "report.md").string());
  return 0;
}

}  // namespace

void add_report_command(CLI::App& root, CommandTable& table) {
  CLI::App* command = root.add_subcommand(
      "report", "Write report.md with SVG plots for finished runs: max |w| before and after MagR, output "
                "error per module, and perplexity against bits");
  auto options = std::make_shared<ReportOptions>();
  command
      ->add_option("RUN_DIR", options->run_dirs,
                   "Output folder of a magrq run, or a folder whose subfolders are runs (a sweep)")
      ->required()
      ->check(CLI::ExistingDirectory);
  command->add_option("--out", options->out,
                      "Folder for report.md and plots/; default: the run's own folder when one run is given "
                      "(its report.md gets a plots section), else ./report");
  table[command] = [options] { return run_report(*options); };
}

}  // namespace magrq::app
