#include "app/report_plots.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <tuple>

#include "app/text_format.hpp"
#include "core/error.hpp"

namespace magrq::app {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Above these counts a grouped bar chart has bars too thin to read (a few pixels at the
// default 720 px width), so the data is drawn as lines instead.
constexpr size_t kMaxMagrBarModules = 60;
constexpr size_t kMaxRunErrorBars = 120;
constexpr size_t kMaxComparisonBars = 96;
constexpr size_t kMaxAlphaBarModules = 60;
// The smallest error ratio that the alpha gain chart still draws on a linear axis.
constexpr double kMinLinearGainRatio = 0.2;
// Series per comparison chart: the palette has eight colours and marker shapes.
constexpr size_t kMaxRunsPerChart = 8;


int layer_count(const RunSummary& run) {
  int count = 0;
  for (const ModuleSummary& module : run.modules) {
    count = std::max(count, module.layer + 1);
  }
  return count;
}

// Module types in the order they first appear (the modules are sorted by layer, then
// in the decoder layer's order).
std::vector<std::string> module_types(const RunSummary& run) {
  std::vector<std::string> types;
  for (const ModuleSummary& module : run.modules) {
    if (std::find(types.begin(), types.end(), module.module) == types.end()) {
      types.push_back(module.module);
    }
  }
  return types;
}

Plot magr_bars(const RunSummary& run, const std::string& file) {
  svg::BarChart chart;
  chart.title = "max |w| before and after MagR: " + run.name;
  chart.x_label = "module (layer.module)";
  chart.y_label = "max |w|";
  svg::BarSeries before{"before MagR", {}};
  svg::BarSeries after{"after MagR", {}};
  for (const ModuleSummary& module : run.modules) {
    chart.categories.push_back(module.label());
    before.values.push_back(module.max_abs_before);
    after.values.push_back(module.max_abs_after);
  }
  chart.series = {before, after};
  const std::string caption = "Largest weight magnitude of each module before and after MagR (over all of the "
                              "module's output channels). A lower bar after MagR means a narrower range for the "
                              "quantization grid.";
  return {file, chart.title, caption, svg::render_bar_chart(chart)};
}

Plot magr_lines(const RunSummary& run, const std::string& file) {
  const int layers = layer_count(run);
  svg::LineChart chart;
  chart.title = "max |w| per layer before and after MagR: " + run.name;
  chart.x_label = "layer";
  chart.y_label = "max |w| over the layer's modules";
  chart.options.y_includes_zero = true;
  svg::LineSeries before{"before MagR", {}, {}};
  svg::LineSeries after{"after MagR", {}, {}};
  for (int layer = 0; layer < layers; ++layer) {
    before.x.push_back(layer);
    after.x.push_back(layer);
    before.y.push_back(kNaN);
    after.y.push_back(kNaN);
  }
  for (const ModuleSummary& module : run.modules) {
    double& b = before.y[static_cast<size_t>(module.layer)];
    double& a = after.y[static_cast<size_t>(module.layer)];
    b = std::isnan(b) ? module.max_abs_before : std::max(b, module.max_abs_before);
    a = std::isnan(a) ? module.max_abs_after : std::max(a, module.max_abs_after);
  }
  chart.series = {before, after};
  const std::string caption = "Largest weight magnitude per layer (the max over all of the layer's modules and "
                              "output channels) before and after MagR.";
  return {file, chart.title, caption, svg::render_line_chart(chart)};
}

// A candidate of the alpha search across modules: its value and scale, with every
// scale's 0 being the same "none".
struct CandidateKey {
  std::string scale;
  double value = 0.0;

  bool operator==(const CandidateKey& other) const { return value == other.value && scale == other.scale; }
};

CandidateKey candidate_key(const std::string& scale, double value) {
  return value == 0.0 ? CandidateKey{"", 0.0} : CandidateKey{scale, value};
}

// "none", "0.001 x z" for a multiple of the zeroing alpha z, "0.001" for an absolute
// alpha: the wording of report.md's alpha search table.
std::string candidate_name(const CandidateKey& key) {
  if (key.value == 0.0) {
    return "none";
  }
  char text[40];
  std::snprintf(text, sizeof(text), "%g", key.value);
  return std::string(text) + (key.scale == "zeroing" ? " x z" : "");
}

// Every candidate of the run's modules: none first, then by scale and from the largest
// value down, which is the order the search tries them in.
std::vector<CandidateKey> run_candidates(const RunSummary& run) {
  std::vector<CandidateKey> keys;
  for (const ModuleAlphaSearch& module : run.alpha_search) {
    for (const AlphaCandidateRows& candidate : module.candidates) {
      const CandidateKey key = candidate_key(module.scale, candidate.value);
      if (std::find(keys.begin(), keys.end(), key) == keys.end()) {
        keys.push_back(key);
      }
    }
  }
  std::stable_sort(keys.begin(), keys.end(), [](const CandidateKey& a, const CandidateKey& b) {
    if ((a.value == 0.0) != (b.value == 0.0)) {
      return a.value == 0.0;
    }
    return a.scale != b.scale ? a.scale < b.scale : a.value > b.value;
  });
  return keys;
}

// Rows per candidate, in the order of `keys`, for each category: a module, or a layer
// with the rows of its modules added up when there are too many modules for a bar each.
struct AlphaChoiceTable {
  std::vector<std::string> categories;
  std::vector<std::vector<double>> rows;  // rows[candidate][category]
  bool per_layer = false;
};

AlphaChoiceTable alpha_choice_table(const RunSummary& run, const std::vector<CandidateKey>& keys) {
  AlphaChoiceTable table;
  table.per_layer = run.alpha_search.size() > kMaxAlphaBarModules;
  std::vector<int> category_of;  // index into categories for each module
  for (const ModuleAlphaSearch& module : run.alpha_search) {
    const std::string name = table.per_layer ? "layer " + std::to_string(module.layer) : module.label();
    const auto found = std::find(table.categories.begin(), table.categories.end(), name);
    category_of.push_back(static_cast<int>(found - table.categories.begin()));
    if (found == table.categories.end()) {
      table.categories.push_back(name);
    }
  }
  table.rows.assign(keys.size(), std::vector<double>(table.categories.size(), 0.0));
  for (size_t m = 0; m < run.alpha_search.size(); ++m) {
    const ModuleAlphaSearch& module = run.alpha_search[m];
    for (const AlphaCandidateRows& candidate : module.candidates) {
      const size_t k = static_cast<size_t>(
          std::find(keys.begin(), keys.end(), candidate_key(module.scale, candidate.value)) - keys.begin());
      table.rows[k][static_cast<size_t>(category_of[m])] += static_cast<double>(candidate.rows_chosen);
    }
  }
  return table;
}

std::string alpha_choice_caption(const RunSummary& run, const AlphaChoiceTable& table,
                                 const std::vector<CandidateKey>& keys) {
  int64_t rows = 0;
  int64_t without = 0;
  for (const ModuleAlphaSearch& module : run.alpha_search) {
    rows += module.rows();
    for (const AlphaCandidateRows& candidate : module.candidates) {
      without += candidate.value == 0.0 ? candidate.rows_chosen : 0;
    }
  }
  std::string caption = std::string("Share of each ") + (table.per_layer ? "layer's" : "module's") +
                        " output rows that kept each MagR strength in the per-row alpha search, which keeps the "
                        "candidate with the lowest output error (w - q)^T H (w - q) for each row. "
                        "\"none\" (gray, hatched) is no MagR; darker blue is a larger alpha, so more shrinkage.";
  if (std::any_of(keys.begin(), keys.end(), [](const CandidateKey& key) { return key.scale == "zeroing"; })) {
    caption += " z is the row's zeroing alpha, the smallest alpha at which MagR sets the whole row to 0.";
  }
  if (table.per_layer) {
    caption += " One bar per layer, with the rows of its modules added up, because " +
               std::to_string(run.alpha_search.size()) + " modules are too many for a bar each.";
  }
  return caption + " Over the run, " + std::to_string(without) + " of " + std::to_string(rows) +
         " rows chose no MagR.";
}

// A module's output errors divided by its error without MagR: the run's result, and the
// best single candidate for all its rows.
struct AlphaGain {
  double per_row = kNaN;
  double best_single = kNaN;
};

// The gain of one module, or nothing when its search has no "none" candidate. A ratio
// that is undefined stays NaN, which the chart skips, and gets a note naming the module.
std::optional<AlphaGain> alpha_gain(const RunSummary& run, const ModuleAlphaSearch& module,
                                    std::vector<std::string>& notes) {
  const auto none = std::find_if(module.candidates.begin(), module.candidates.end(),
                                 [](const AlphaCandidateRows& candidate) { return candidate.value == 0.0; });
  if (none == module.candidates.end()) {
    return std::nullopt;
  }
  double best = none->output_error;
  for (const AlphaCandidateRows& candidate : module.candidates) {
    best = std::min(best, candidate.output_error);
  }
  double result = kNaN;
  for (const ModuleSummary& summary : run.modules) {
    if (summary.label() == module.label()) {
      result = summary.output_error;
    }
  }

  AlphaGain gain;
  if (!(none->output_error > 0.0)) {
    notes.push_back("module " + module.label() + ": output error without MagR is 0, so it has no ratio");
    return gain;
  }
  if (std::isnan(result)) {
    notes.push_back("module " + module.label() + " has an alpha search but no items, so no per-row result");
  }
  gain.per_row = result / none->output_error;
  gain.best_single = best / none->output_error;
  return gain;
}

// A log axis within a factor of 5 gets only two or three 1-2-5 ticks, so small gains read
// better on a linear axis. Larger gains need the log axis to stay apart.
void choose_gain_axis(svg::LineChart& chart) {
  double lowest = 1.0;
  for (const svg::LineSeries& series : chart.series) {
    for (double ratio : series.y) {
      lowest = ratio > 0.0 ? std::min(lowest, ratio) : lowest;
    }
  }
  chart.options.log_y = lowest < kMinLinearGainRatio;
  chart.y_label = chart.options.log_y ? "output error / error without MagR (log scale)"
                                      : "output error / error without MagR";
}

double relative_error_of(const RunSummary& run, int layer, const std::string& type) {
  for (const ModuleSummary& module : run.modules) {
    if (module.layer == layer && module.module == type) {
      return module.relative_error();
    }
  }
  return kNaN;  // the run has no such module (for example, skipped by an override)
}

const char* kErrorMeaning =
    "Relative output error of a module: tr((W - Q) H (W - Q)^T) / tr(W H W^T), with W the original weights, Q the "
    "quantized ones and H the calibration Hessian X^T X, so 1e-2 means the quantized module's outputs on the "
    "calibration data are off by 1% of their energy. Log scale: each grid step is a factor of 10 (or 2 and 5).";

std::vector<std::string> modules_of_runs(const std::vector<const RunSummary*>& runs) {
  std::vector<std::string> labels;
  for (const RunSummary* run : runs) {
    for (const ModuleSummary& module : run->modules) {
      if (std::find(labels.begin(), labels.end(), module.label()) == labels.end()) {
        labels.push_back(module.label());
      }
    }
  }
  return labels;
}

double relative_error_by_label(const RunSummary& run, const std::string& label) {
  for (const ModuleSummary& module : run.modules) {
    if (module.label() == label) {
      return module.relative_error();
    }
  }
  return kNaN;
}

Plot comparison_error_plot(const std::vector<const RunSummary*>& runs, const std::vector<std::string>& names,
                           const std::string& title, const std::string& file) {
  const std::vector<std::string> modules = modules_of_runs(runs);
  const std::string y_label = "relative output error (log scale)";
  if (modules.size() * runs.size() <= kMaxComparisonBars) {
    svg::BarChart chart;
    chart.title = title;
    chart.x_label = "module (layer.module)";
    chart.y_label = y_label;
    chart.categories = modules;
    chart.options.log_y = true;
    for (size_t r = 0; r < runs.size(); ++r) {
      svg::BarSeries series{names[r], {}};
      for (const std::string& module : modules) {
        series.values.push_back(relative_error_by_label(*runs[r], module));
      }
      chart.series.push_back(series);
    }
    return {file, title, std::string("One bar per run and module. ") + kErrorMeaning, svg::render_bar_chart(chart)};
  }
  svg::LineChart chart;
  chart.title = title;
  chart.x_label = "module (layer.module)";
  chart.y_label = y_label;
  chart.x_categories = modules;
  chart.options.log_y = true;
  chart.options.width = 900;
  for (size_t r = 0; r < runs.size(); ++r) {
    svg::LineSeries series{names[r], {}, {}};
    for (size_t m = 0; m < modules.size(); ++m) {
      series.x.push_back(static_cast<double>(m));
      series.y.push_back(relative_error_by_label(*runs[r], modules[m]));
    }
    chart.series.push_back(series);
  }
  const std::string caption = "One line per run over the modules in model order (the lines only guide the eye: "
                              "neighbouring modules are not related). " + std::string(kErrorMeaning);
  return {file, title, caption, svg::render_line_chart(chart)};
}

// Adds a note naming each module whose relative error is undefined, because its
// reference energy is 0 (no calibration signal). The chart's own note only reports
// that the value is not finite.
void note_undefined_errors(const RunSummary& run, Plot& plot) {
  for (const ModuleSummary& module : run.modules) {
    if (!(module.reference_energy > 0.0)) {
      plot.rendered.notes.push_back("run " + run.name + ", module " + module.label() +
                                    ": relative error undefined, because tr(W H W^T) is 0");
    }
  }
}

Plot draw_run_error_plot(const RunSummary& run, const std::string& file) {
  const int layers = layer_count(run);
  const std::vector<std::string> types = module_types(run);
  const std::string title = "Relative output error per module: " + run.name;
  const std::string y_label = "relative output error (log scale)";

  if (static_cast<size_t>(layers) * types.size() <= kMaxRunErrorBars) {
    svg::BarChart chart;
    chart.title = title;
    chart.x_label = "layer";
    chart.y_label = y_label;
    chart.options.log_y = true;
    for (int layer = 0; layer < layers; ++layer) {
      chart.categories.push_back("layer " + std::to_string(layer));
    }
    for (const std::string& type : types) {
      svg::BarSeries series{type, {}};
      for (int layer = 0; layer < layers; ++layer) {
        series.values.push_back(relative_error_of(run, layer, type));
      }
      chart.series.push_back(series);
    }
    return {file, title, std::string("Bars grouped by layer, one bar per module type. ") + kErrorMeaning,
            svg::render_bar_chart(chart)};
  }

  svg::LineChart chart;
  chart.title = title;
  chart.x_label = "layer";
  chart.y_label = y_label;
  chart.options.log_y = true;
  for (const std::string& type : types) {
    svg::LineSeries series{type, {}, {}};
    for (int layer = 0; layer < layers; ++layer) {
      series.x.push_back(layer);
      series.y.push_back(relative_error_of(run, layer, type));
    }
    chart.series.push_back(series);
  }
  return {file, title, std::string("One line per module type over the layers. ") + kErrorMeaning,
          svg::render_line_chart(chart)};
}

}  // namespace

Plot run_error_plot(const RunSummary& run, const std::string& file) {
  Plot plot = draw_run_error_plot(run, file);
  note_undefined_errors(run, plot);
  return plot;
}

std::string slug(std::string_view text) {
  std::string out;
  for (char c : text) {
    const bool keep = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
    out += keep ? c : '-';
  }
  return out.empty() ? "unnamed" : out;
}

std::string short_source(const std::string& source) {
  const size_t colon = source.find(':');
  const std::string kind = colon == std::string::npos ? "" : source.substr(0, colon + 1);
  const std::string rest = colon == std::string::npos ? source : source.substr(colon + 1);
  const size_t range = rest.rfind('@');
  const std::string path = range == std::string::npos ? rest : rest.substr(0, range);
  const std::string suffix = range == std::string::npos ? "" : rest.substr(range);
  const size_t slash = path.find_last_of('/');
  return kind + (slash == std::string::npos ? path : path.substr(slash + 1)) + suffix;
}

Plot magr_plot(const RunSummary& run, const std::string& file) {
  return run.modules.size() <= kMaxMagrBarModules ? magr_bars(run, file) : magr_lines(run, file);
}

Plot alpha_choice_plot(const RunSummary& run, const std::string& file) {
  MAGRQ_CHECK(!run.alpha_search.empty(), "run ", run.name, " has no alpha search to plot");
  const std::vector<CandidateKey> keys = run_candidates(run);
  const AlphaChoiceTable table = alpha_choice_table(run, keys);

  svg::StackedBarChart chart;
  chart.title = "MagR alpha chosen per row: " + run.name;
  chart.x_label = table.per_layer ? "layer" : "module (layer.module)";
  chart.y_label = "share of output rows (%)";
  chart.categories = table.categories;
  chart.as_share = true;
  // Stronger MagR reads darker: the candidates come largest first, the palette light first.
  const size_t strengths = keys.size() - (keys.front().value == 0.0 ? 1 : 0);
  const std::vector<std::string> colours = svg::sequential_colours(strengths);
  size_t next_strength = 0;
  for (size_t k = 0; k < keys.size(); ++k) {
    svg::StackedSeries series{candidate_name(keys[k]), table.rows[k], "", false};
    if (keys[k].value == 0.0) {
      series.colour = "#E3E3E3";
      series.hatched = true;
    } else {
      series.colour = colours[strengths - 1 - next_strength++];
    }
    chart.series.push_back(series);
  }
  return {file, chart.title, alpha_choice_caption(run, table, keys), svg::render_stacked_bar_chart(chart)};
}

std::optional<Plot> alpha_gain_plot(const RunSummary& run, const std::string& file) {
  MAGRQ_CHECK(!run.alpha_search.empty(), "run ", run.name, " has no alpha search to plot");
  svg::LineChart chart;
  chart.title = "Output error relative to no MagR: " + run.name;
  chart.x_label = "module (layer.module)";
  svg::LineSeries per_row{"per-row choice (the run)", {}, {}};
  svg::LineSeries single{"best single alpha", {}, {}};
  std::vector<std::string> notes;
  for (const ModuleAlphaSearch& module : run.alpha_search) {
    const std::optional<AlphaGain> gain = alpha_gain(run, module, notes);
    if (!gain) {
      return std::nullopt;
    }
    const double x = static_cast<double>(chart.x_categories.size());
    chart.x_categories.push_back(module.label());
    per_row.x.push_back(x);
    per_row.y.push_back(gain->per_row);
    single.x.push_back(x);
    single.y.push_back(gain->best_single);
  }
  chart.series = {per_row, single};
  chart.references = {{"no MagR", 1.0}};
  choose_gain_axis(chart);

  const std::string caption =
      "For each module, the output error tr((W - Q) H (W - Q)^T) of the run's result, where each row kept its best "
      "candidate, and of the best single candidate for all of the module's rows, divided by the error without "
      "MagR (the dashed line at 1). Lower is better. The gap between the two lines is what choosing per row adds "
      "over one alpha per module. The lines only guide the eye, because neighbouring modules are not related.";
  Plot plot{file, chart.title, caption, svg::render_line_chart(chart)};
  plot.rendered.notes.insert(plot.rendered.notes.end(), notes.begin(), notes.end());
  return plot;
}

std::vector<Plot> comparison_error_plots(const std::vector<RunSummary>& runs, const std::vector<std::string>& names) {
  MAGRQ_CHECK(runs.size() == names.size(), runs.size(), " runs, ", names.size(), " names");
  std::map<int, std::vector<size_t>> by_bits;
  for (size_t r = 0; r < runs.size(); ++r) {
    by_bits[runs[r].bits].push_back(r);
  }
  std::vector<Plot> plots;
  for (const auto& [bits, indices] : by_bits) {
    const size_t chunks = (indices.size() + kMaxRunsPerChart - 1) / kMaxRunsPerChart;
    for (size_t chunk = 0; chunk < chunks; ++chunk) {
      std::vector<const RunSummary*> chunk_runs;
      std::vector<std::string> chunk_names;
      std::set<std::string> methods;
      for (size_t i = chunk * kMaxRunsPerChart; i < std::min(indices.size(), (chunk + 1) * kMaxRunsPerChart); ++i) {
        chunk_runs.push_back(&runs[indices[i]]);
        chunk_names.push_back(names[indices[i]]);
        methods.insert(runs[indices[i]].method_label());
      }
      // Within one bit width the bits in each label repeat the title, so the method alone
      // names a run, unless two runs share a method.
      if (methods.size() == chunk_runs.size()) {
        for (size_t i = 0; i < chunk_runs.size(); ++i) {
          chunk_names[i] = chunk_runs[i]->method_label();
        }
      }
      const std::string part = chunks > 1 ? " (part " + std::to_string(chunk + 1) + " of " +
                                                std::to_string(chunks) + ")" : "";
      const std::string file = "error-w" + std::to_string(bits) +
                               (chunks > 1 ? "-" + std::to_string(chunk + 1) : "") + ".svg";
      const std::string title = "Relative output error per module, " + std::to_string(bits) + "-bit runs" + part;
      Plot plot = comparison_error_plot(chunk_runs, chunk_names, title, file);
      for (const RunSummary* run : chunk_runs) {
        note_undefined_errors(*run, plot);
      }
      plots.push_back(std::move(plot));
    }
  }
  return plots;
}

std::vector<Plot> perplexity_plots(const std::vector<RunSummary>& runs) {
  std::set<int> all_bits;
  std::vector<std::string> sources;
  for (const RunSummary& run : runs) {
    all_bits.insert(run.bits);
    for (const PerplexitySummary& p : run.perplexity) {
      if (std::find(sources.begin(), sources.end(), p.source) == sources.end()) {
        sources.push_back(p.source);
      }
    }
  }
  std::vector<Plot> plots;
  if (all_bits.size() < 2) {
    return plots;
  }
  std::set<std::string> used_files;
  for (const std::string& source : sources) {
    svg::LineChart chart;
    chart.title = "Perplexity against bits: " + short_source(source);
    chart.x_label = "bits per weight";
    chart.y_label = "perplexity (log scale)";
    chart.options.log_y = true;
    chart.x_ticks.assign(all_bits.begin(), all_bits.end());

    std::vector<std::string> notes;
    std::vector<std::string> methods;
    std::map<std::string, std::map<int, std::pair<double, std::string>>> points;  // method -> bits -> (ppl, run)
    std::optional<double> full_precision;
    // Lines sorted by quantizer, then per channel before groups, then without MagR first,
    // so that the legend pairs each method with its MagR variant.
    std::map<std::string, std::tuple<std::string, int, bool>> method_order;
    for (const RunSummary& run : runs) {
      for (const PerplexitySummary& p : run.perplexity) {
        if (p.source != source) {
          continue;
        }
        const std::string method = run.method_label();
        if (std::find(methods.begin(), methods.end(), method) == methods.end()) {
          methods.push_back(method);
          method_order.emplace(method, std::make_tuple(run.method, run.group_size, run.magr));
        }
        auto [entry, inserted] = points[method].try_emplace(run.bits, p.quantized, run.name);
        if (!inserted) {
          notes.push_back("runs " + entry->second.second + " and " + run.name + " are both " + method + " at " +
                          std::to_string(run.bits) + " bits; the plot shows " + entry->second.second);
        }
        if (p.full_precision && !full_precision) {
          full_precision = p.full_precision;
        } else if (p.full_precision && std::abs(*p.full_precision - *full_precision) > 1e-9 * *full_precision) {
          notes.push_back("run " + run.name + " has full-precision perplexity " + fixed(*p.full_precision, 4) +
                          ", not " + fixed(*full_precision, 4) + " as the reference line; its model or "
                          "evaluation differs");
        }
      }
    }
    std::stable_sort(methods.begin(), methods.end(), [&](const std::string& a, const std::string& b) {
      return method_order.at(a) < method_order.at(b);
    });
    for (const std::string& method : methods) {
      svg::LineSeries series{method, {}, {}};
      for (const auto& [bits, value] : points[method]) {
        series.x.push_back(bits);
        series.y.push_back(value.first);
      }
      chart.series.push_back(series);
    }
    if (full_precision) {
      chart.references.push_back({"full precision " + fixed(*full_precision, 4), *full_precision});
    }
    std::string file = "perplexity-" + slug(short_source(source)) + ".svg";
    if (!used_files.insert(file).second) {
      file = "perplexity-" + std::to_string(plots.size() + 1) + "-" + slug(short_source(source)) + ".svg";
    }
    const std::string caption = "Perplexity of the quantized model on " + short_source(source) +
                                " against bits per weight, one line per method; lower is better. Log scale, since "
                                "perplexity grows by orders of magnitude at 2 bits." +
                                (full_precision ? " The dashed line is the unquantized model." : "");
    Plot plot{file, chart.title, caption, svg::render_line_chart(chart)};
    plot.rendered.notes.insert(plot.rendered.notes.end(), notes.begin(), notes.end());
    plots.push_back(std::move(plot));
  }
  return plots;
}

}  // namespace magrq::app
