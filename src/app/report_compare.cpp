#include "app/report_compare.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <string>

#include "app/report_plots.hpp"
#include "app/report_runs.hpp"
#include "app/text_format.hpp"
#include "core/error.hpp"
#include "store/atomic_file.hpp"

namespace magrq::app {

namespace {

// The line that starts the plots section of a run's report.md. Everything from it on is
// replaced when the plots are written again.
constexpr const char* kPlotsMarker = "<!-- magrq plots: magrq run and magrq report rewrite this section -->";
// Notes listed under a plot. Any further notes are only counted.
constexpr size_t kMaxListedNotes = 8;

std::string read_text(const std::filesystem::path& file) {
  std::ifstream stream(file, std::ios::binary);
  if (!stream) {
    throw DataError(file.string() + ": not found or not readable. Expected the report.md that magrq run "
                    "writes beside report.json");
  }
  std::ostringstream text;
  text << stream.rdbuf();
  return text.str();
}

// Markdown for one plot: heading, image, caption and the notes on what was not drawn.
std::string plot_markdown(const Plot& plot, const std::string& heading) {
  std::string md = heading + " " + plot.title + "\n\n![" + plot.title + "](plots/" + plot.file + ")\n\n" +
                   plot.caption + "\n";
  const auto& notes = plot.rendered.notes;
  if (!notes.empty()) {
    md += "\nNot drawn or not shown:\n\n";
    for (size_t i = 0; i < std::min(notes.size(), kMaxListedNotes); ++i) {
      md += "- " + notes[i] + "\n";
    }
    if (notes.size() > kMaxListedNotes) {
      md += "- and " + std::to_string(notes.size() - kMaxListedNotes) + " more\n";
    }
  }
  return md + "\n";
}

// The list of SVG files that magrq wrote into a plots folder, one name per line, so that
// a rewrite removes its own stale charts and never a file someone else put there.
constexpr const char* kPlotsManifest = ".magrq-plots";

std::set<std::string> read_manifest(const std::filesystem::path& plots_dir) {
  std::set<std::string> names;
  std::ifstream stream(plots_dir / kPlotsManifest);
  for (std::string line; std::getline(stream, line);) {
    // Only plain file names: a damaged manifest must not reach outside the folder.
    if (!line.empty() && line.find('/') == std::string::npos && line != "." && line != "..") {
      names.insert(line);
    }
  }
  return names;
}

// Writes each plot's SVG under dir/plots, then removes the charts an earlier report
// wrote there that this one did not, so that a smaller rewrite leaves no stale chart.
void write_plot_files(const std::filesystem::path& dir, const std::vector<Plot>& plots) {
  const std::filesystem::path plots_dir = dir / "plots";
  std::filesystem::create_directories(plots_dir);
  const std::set<std::string> previous = read_manifest(plots_dir);
  std::set<std::string> written;
  std::string manifest;
  for (const Plot& plot : plots) {
    MAGRQ_CHECK(written.insert(plot.file).second, "two plots named ", plot.file);
    store::write_text_atomically(plots_dir / plot.file, plot.rendered.svg);
    manifest += plot.file + "\n";
  }
  store::write_text_atomically(plots_dir / kPlotsManifest, manifest);
  for (const std::string& name : previous) {
    if (!written.count(name)) {
      std::filesystem::remove(plots_dir / name);
    }
  }
}

std::vector<Plot> single_run_plots(const RunSummary& run) {
  std::vector<Plot> plots;
  if (run.magr) {
    plots.push_back(magr_plot(run, "magr.svg"));
  }
  if (!run.alpha_search.empty()) {
    plots.push_back(alpha_choice_plot(run, "magr-alpha.svg"));
    if (std::optional<Plot> gain = alpha_gain_plot(run, "magr-alpha-gain.svg")) {
      plots.push_back(std::move(*gain));
    }
  }
  plots.push_back(run_error_plot(run, "error.svg"));
  return plots;
}

// PREFIX + the run name's slug + ".svg", or with the plot's position inserted when that
// name is taken, because distinct run names can share a slug ("a/b" and "a-b").
std::string unique_run_file(const std::string& prefix, const std::string& run_name, size_t position,
                            std::set<std::string>& taken) {
  std::string file = prefix + slug(run_name) + ".svg";
  if (!taken.insert(file).second) {
    file = prefix + std::to_string(position) + "-" + slug(run_name) + ".svg";
    taken.insert(file);
  }
  return file;
}

std::vector<std::string> perplexity_sources(const std::vector<RunSummary>& runs) {
  std::vector<std::string> sources;
  for (const RunSummary& run : runs) {
    for (const PerplexitySummary& p : run.perplexity) {
      if (std::find(sources.begin(), sources.end(), p.source) == sources.end()) {
        sources.push_back(p.source);
      }
    }
  }
  return sources;
}

std::string perplexity_cell(const RunSummary& run, const std::string& source) {
  for (const PerplexitySummary& p : run.perplexity) {
    if (p.source == source) {
      return fixed(p.quantized, 4);
    }
  }
  return "-";
}

std::string magr_cell(const RunSummary& run) {
  return run.magr ? "alpha " + run.magr_alpha : "no";
}

std::string runs_table(const std::vector<RunSummary>& runs, const std::filesystem::path& out_dir) {
  const std::vector<std::string> sources = perplexity_sources(runs);
  std::string md = "| run | method | bits | group size | MagR |";
  std::string rule = "| --- | --- | ---: | ---: | --- |";
  for (const std::string& source : sources) {
    md += " perplexity `" + short_source(source) + "` |";
    rule += " ---: |";
  }
  md += " output error | relative error | time (s) |\n" + rule + " ---: | ---: | ---: |\n";
  for (const RunSummary& run : runs) {
    const std::filesystem::path link = std::filesystem::relative(run.dir / "report.md", out_dir);
    md += "| [" + run.name + "](" + link.generic_string() + ") | " + run.method + " | " + std::to_string(run.bits) +
          " | " + (run.group_size > 0 ? std::to_string(run.group_size) : "per channel") + " | " + magr_cell(run) +
          " |";
    for (const std::string& source : sources) {
      md += ' ' + perplexity_cell(run, source) + " |";
    }
    const double energy = run.total_reference_energy();
    const std::string relative = energy > 0.0 ? scientific(run.total_output_error() / energy) : "-";
    md += ' ' + scientific(run.total_output_error()) + " | " + relative + " | " + fixed(run.total_seconds, 1) + " |\n";
  }
  return md;
}

std::string full_precision_lines(const std::vector<RunSummary>& runs) {
  std::string md;
  std::set<std::string> listed;
  for (const RunSummary& run : runs) {
    for (const PerplexitySummary& p : run.perplexity) {
      if (p.full_precision && listed.insert(p.source).second) {
        md += "- `" + short_source(p.source) + "`: " + fixed(*p.full_precision, 4) + " (from " + run.name + ")\n";
      }
    }
  }
  return md.empty() ? md : "\nFull-precision perplexity:\n\n" + md;
}

std::string comparison_markdown(const std::vector<RunSummary>& runs, const std::filesystem::path& out_dir,
                                const std::vector<Plot>& perplexity, const std::vector<Plot>& errors,
                                const std::vector<Plot>& magr, const std::vector<Plot>& alpha) {
  std::string md = "# magrq comparison report\n\n" + std::to_string(runs.size()) +
                   " runs. Each name links to the run's own report.\n\n## Runs\n\n";
  md += runs_table(runs, out_dir);
  md += full_precision_lines(runs);
  md += "\nOutput error is the sum over all quantized modules of tr((W - Q) H (W - Q)^T), with W the original "
        "weights, Q the quantized ones and H = X^T X from the calibration data; relative error divides it by the "
        "sum of tr(W H W^T). Time is the run's wall time.\n\n";
  if (!perplexity.empty()) {
    md += "## Perplexity against bits\n\n";
    for (const Plot& plot : perplexity) {
      md += plot_markdown(plot, "###");
    }
  }
  md += "## Output error per module\n\n";
  for (const Plot& plot : errors) {
    md += plot_markdown(plot, "###");
  }
  if (!magr.empty()) {
    md += "## MagR: max |w| before and after\n\n";
    for (const Plot& plot : magr) {
      md += plot_markdown(plot, "###");
    }
  }
  if (!alpha.empty()) {
    md += "## MagR alpha chosen per row\n\n";
    for (const Plot& plot : alpha) {
      md += plot_markdown(plot, "###");
    }
  }
  return md;
}

bool same_folder(const std::filesystem::path& a, const std::filesystem::path& b) {
  return std::filesystem::exists(a) && std::filesystem::exists(b) && std::filesystem::equivalent(a, b);
}

void log_notes(const std::vector<Plot>& plots) {
  for (const Plot& plot : plots) {
    if (!plot.rendered.notes.empty()) {
      spdlog::warn("report: plot {}: {} value(s) not drawn, listed in report.md; first: {}", plot.file,
                   plot.rendered.notes.size(), plot.rendered.notes.front());
    }
  }
}

}  // namespace

void write_run_plots(const std::filesystem::path& run_dir) {
  const RunSummary run = load_run_summary(run_dir);
  std::string md = read_text(run_dir / "report.md");
  const size_t previous = md.find(kPlotsMarker);
  if (previous != std::string::npos) {
    md.erase(previous);
  }
  const std::vector<Plot> plots = single_run_plots(run);
  write_plot_files(run_dir, plots);

  while (!md.empty() && md.back() == '\n') {
    md.pop_back();
  }
  md += "\n\n" + std::string(kPlotsMarker) + "\n## Plots\n\n";
  for (const Plot& plot : plots) {
    md += plot_markdown(plot, "###");
  }
  store::write_text_atomically(run_dir / "report.md", md);
  log_notes(plots);
  spdlog::info("report: wrote {} plot(s) into {}", plots.size(), (run_dir / "report.md").string());
}

void write_comparison_report(const std::vector<std::filesystem::path>& run_dirs,
                             const std::filesystem::path& out_dir) {
  const std::vector<std::filesystem::path> dirs = expand_run_dirs(run_dirs);
  if (dirs.size() == 1 && same_folder(dirs.front(), out_dir)) {
    write_run_plots(dirs.front());
    return;
  }
  if (std::filesystem::exists(out_dir / "report.json")) {
    throw ConfigError(out_dir.string() + " is the output folder of a run, and its report.md is that run's own "
                      "report; write the comparison to another folder");
  }
  const std::vector<RunSummary> runs = load_runs(dirs);
  const std::vector<std::string> names = legend_names(runs);

  const std::vector<Plot> perplexity = perplexity_plots(runs);
  const std::vector<Plot> errors = comparison_error_plots(runs, names);
  std::vector<Plot> magr;
  std::vector<Plot> alpha;
  std::set<std::string> files;
  for (const RunSummary& run : runs) {
    if (run.magr) {
      magr.push_back(magr_plot(run, unique_run_file("magr-", run.name, magr.size() + 1, files)));
    }
    if (!run.alpha_search.empty()) {
      alpha.push_back(alpha_choice_plot(run, unique_run_file("magr-alpha-", run.name, alpha.size() + 1, files)));
    }
  }
  std::vector<Plot> all = perplexity;
  all.insert(all.end(), errors.begin(), errors.end());
  all.insert(all.end(), magr.begin(), magr.end());
  all.insert(all.end(), alpha.begin(), alpha.end());

  std::filesystem::create_directories(out_dir);
  write_plot_files(out_dir, all);
  store::write_text_atomically(out_dir / "report.md", comparison_markdown(runs, out_dir, perplexity, errors, magr, alpha));
  log_notes(all);
  spdlog::info("report: wrote {} comparing {} runs, with {} plot(s) in {}", (out_dir / "report.md").string(),
               runs.size(), all.size(), (out_dir / "plots").string());
}

}  // namespace magrq::app
