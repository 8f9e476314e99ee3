// The charts of run reports, built from run summaries: MagR's effect on max |w|, the
// MagR strength chosen per module, the output error per module and perplexity against
// bits.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "app/report_runs.hpp"
#include "app/svg_plot.hpp"

namespace magrq::app {

// One chart of a report: its file name under plots/, a title for the Markdown heading,
// a caption that describes what is plotted, and the rendered SVG with its notes.
struct Plot {
  std::string file;
  std::string title;
  std::string caption;
  svg::Rendered rendered;
};

// max |w| of each module before and after MagR, as bars per module (layer.module), or,
// for more than 60 modules, as lines over the layers of the max over each layer's modules.
Plot magr_plot(const RunSummary& run, const std::string& file);

// The MagR strength that the per-row alpha search chose: one stacked bar per module
// (layer.module), or per layer for more than 60 modules, split into the share of the
// output rows that kept each candidate. "none" (no MagR) is at the bottom, then the
// candidates from the largest alpha (darkest) to the smallest (lightest). Requires a run
// with alpha_search.
Plot alpha_choice_plot(const RunSummary& run, const std::string& file);

// The output error of each module relative to no MagR, for the run's per-row choice and
// for the best single candidate of the module, as two lines over the modules with a
// reference line at 1. Empty when the search has no "none" candidate to divide by.
// Requires a run with alpha_search.
std::optional<Plot> alpha_gain_plot(const RunSummary& run, const std::string& file);

// The relative output error of one run's modules: bars grouped by layer with one bar
// per module type, or lines over the layers when there are more than 120 modules.
Plot run_error_plot(const RunSummary& run, const std::string& file);

// The relative output error per module of several runs, one chart per bit width with
// at most eight runs each. names[i] is run i's legend text. A chart with at most 96 bars
// has grouped bars, a larger one a line per run over the modules.
std::vector<Plot> comparison_error_plots(const std::vector<RunSummary>& runs, const std::vector<std::string>& names);

// Perplexity against bits, one chart per evaluation source and one line per method
// (RunSummary::method_label), with the full-precision perplexity as a reference line.
// Empty when all runs have the same bits.
std::vector<Plot> perplexity_plots(const std::vector<RunSummary>& runs);

// A file-name-safe form of text: letters, digits, '.', '_' and '-' kept, others '-'.
std::string slug(std::string_view text);

// The short form of a text source for titles: KIND:PATH[@RANGE] without the folders of PATH.
std::string short_source(const std::string& source);

}  // namespace magrq::app
