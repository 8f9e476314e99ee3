// The SVG chart writer, the comparison report built from report.json files, and the
// `magrq report` command run through the binary.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "app/report_compare.hpp"
#include "app/report_plots.hpp"
#include "app/report_runs.hpp"
#include "app/svg_plot.hpp"
#include "common/test_data.hpp"
#include "core/error.hpp"

namespace magrq {
namespace {

namespace fs = std::filesystem;
using app::svg::BarChart;
using app::svg::LineChart;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

size_t count(const std::string& text, const std::string& needle) {
  size_t found = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size())) {
    ++found;
  }
  return found;
}

std::string read(const fs::path& file) {
  std::ifstream stream(file);
  std::stringstream text;
  text << stream.rdbuf();
  return text.str();
}

// The number of x,y pairs in every <polyline points="..."> of an SVG.
size_t polyline_points(const std::string& svg) {
  const std::regex points("<polyline class=\"series\" points=\"([^\"]*)\"");
  size_t total = 0;
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), points); it != std::sregex_iterator(); ++it) {
    total += count((*it)[1].str(), ",");
  }
  return total;
}

// A rough well-formedness check: one root element, and every element that opens either
// closes itself or is closed, in order.
void expect_balanced_tags(const std::string& svg) {
  EXPECT_EQ(count(svg, "<svg "), 1u);
  EXPECT_EQ(count(svg, "</svg>"), 1u);
  std::vector<std::string> open;
  const std::regex tag("<(/?)([a-zA-Z]+)[^>]*?(/?)>");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), tag); it != std::sregex_iterator(); ++it) {
    const std::string name = (*it)[2].str();
    if ((*it)[1].str() == "/") {
      ASSERT_FALSE(open.empty()) << "closing </" << name << "> without an open element";
      EXPECT_EQ(open.back(), name);
      open.pop_back();
    } else if ((*it)[3].str() != "/") {
      open.push_back(name);
    }
  }
  EXPECT_TRUE(open.empty()) << open.size() << " elements left open, last <" << (open.empty() ? "" : open.back()) << ">";
}

void expect_no_non_finite_text(const std::string& svg) {
  std::string lower = svg;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  EXPECT_EQ(lower.find("nan"), std::string::npos);
  EXPECT_EQ(lower.find("inf"), std::string::npos);
}

LineChart two_series_chart() {
  LineChart chart;
  chart.title = "Perplexity against bits";
  chart.x_label = "bits";
  chart.y_label = "perplexity";
  chart.series = {{"GPTQ", {2, 3, 4}, {381.3, 9.76, 6.01}}, {"GPTQ + MagR", {2, 3, 4}, {92.1, 8.50, 6.07}}};
  chart.references = {{"full precision", 5.5965}};
  chart.x_ticks = {2, 3, 4};
  chart.options.log_y = true;
  return chart;
}

TEST(SvgPlot, LineChartIsWellFormed) {
  const app::svg::Rendered rendered = app::svg::render_line_chart(two_series_chart());
  expect_balanced_tags(rendered.svg);
  EXPECT_EQ(count(rendered.svg, "<polyline class=\"series\""), 2u);
  EXPECT_EQ(polyline_points(rendered.svg), 6u);
  EXPECT_NE(rendered.svg.find(">GPTQ + MagR</text>"), std::string::npos);
  EXPECT_NE(rendered.svg.find(">full precision</text>"), std::string::npos);
  EXPECT_TRUE(rendered.notes.empty());
}

TEST(SvgPlot, RenderingIsDeterministic) {
  EXPECT_EQ(app::svg::render_line_chart(two_series_chart()).svg, app::svg::render_line_chart(two_series_chart()).svg);
}

TEST(SvgPlot, NanPointBreaksLineAndIsNoted) {
  LineChart chart;
  chart.series = {{"run", {0, 1, 2, 3, 4}, {1.0, 2.0, kNaN, 3.0, std::numeric_limits<double>::infinity()}}};
  const app::svg::Rendered rendered = app::svg::render_line_chart(chart);
  EXPECT_EQ(count(rendered.svg, "<polyline class=\"series\""), 2u);  // the NaN splits the line
  EXPECT_EQ(polyline_points(rendered.svg), 3u);
  ASSERT_EQ(rendered.notes.size(), 2u);
  EXPECT_NE(rendered.notes[0].find("point 2"), std::string::npos) << rendered.notes[0];
  EXPECT_NE(rendered.svg.find("Not drawn: 2 value(s)"), std::string::npos);
  expect_no_non_finite_text(rendered.svg);
  expect_balanced_tags(rendered.svg);
}

TEST(SvgPlot, LogScaleSkipsNonPositiveValues) {
  LineChart chart;
  chart.options.log_y = true;
  chart.series = {{"errors", {0, 1, 2, 3}, {1e-3, 0.0, -2.0, 1e-1}}};
  const app::svg::Rendered rendered = app::svg::render_line_chart(chart);
  EXPECT_EQ(polyline_points(rendered.svg), 2u);
  ASSERT_EQ(rendered.notes.size(), 2u);
  EXPECT_NE(rendered.notes[0].find("not positive on the log scale"), std::string::npos) << rendered.notes[0];
  EXPECT_NE(rendered.notes[1].find("not positive on the log scale"), std::string::npos) << rendered.notes[1];
}

TEST(SvgPlot, SeriesWithoutDrawablePointsLeavesLegend) {
  LineChart chart;
  chart.series = {{"empty", {}, {}}, {"all nan", {0, 1}, {kNaN, kNaN}}};
  const app::svg::Rendered rendered = app::svg::render_line_chart(chart);
  expect_balanced_tags(rendered.svg);
  EXPECT_EQ(count(rendered.svg, "<polyline"), 0u);
  EXPECT_EQ(rendered.svg.find(">empty</text>"), std::string::npos);
  EXPECT_EQ(rendered.notes.size(), 4u);  // two NaN points, two series without points
  expect_no_non_finite_text(rendered.svg);
}

TEST(SvgPlot, TextIsEscaped) {
  LineChart chart = two_series_chart();
  chart.title = "a<b & \"c\" 'd'";
  chart.series[0].name = "q_proj<script>";
  const std::string svg = app::svg::render_line_chart(chart).svg;
  EXPECT_NE(svg.find("a&lt;b &amp; &quot;c&quot; &apos;d&apos;"), std::string::npos);
  EXPECT_EQ(svg.find("a<b"), std::string::npos);
  EXPECT_EQ(svg.find("<script>"), std::string::npos);
  expect_balanced_tags(svg);
}

TEST(SvgPlot, ControlCharacterIsWrittenVisibly) {
  EXPECT_EQ(app::svg::escape_xml(std::string("a\x01" "b")), "a\\x01b");
  EXPECT_EQ(app::svg::escape_xml("tab\tkept"), "tab\tkept");
}

TEST(SvgPlot, BarChartDrawsOneBarPerValue) {
  BarChart chart;
  chart.title = "max |w|";
  chart.categories = {"0.q_proj", "0.k_proj", "0.v_proj"};
  chart.series = {{"before MagR", {1.5, 1.0, 0.25}}, {"after MagR", {1.4, 0.9, 0.2}}};
  const app::svg::Rendered rendered = app::svg::render_bar_chart(chart);
  expect_balanced_tags(rendered.svg);
  EXPECT_EQ(count(rendered.svg, "<rect class=\"bar\""), 6u);
  EXPECT_EQ(count(rendered.svg, "<rect class=\"swatch\""), 2u);
  EXPECT_EQ(count(rendered.svg, "<pattern id="), 1u);  // the second series is striped
  EXPECT_NE(rendered.svg.find(">0.k_proj</text>"), std::string::npos);
}

TEST(SvgPlot, LogBarChartSkipsZeroAndNan) {
  BarChart chart;
  chart.options.log_y = true;
  chart.categories = {"a", "b", "c"};
  chart.series = {{"relative error", {1e-2, 0.0, kNaN}}};
  const app::svg::Rendered rendered = app::svg::render_bar_chart(chart);
  EXPECT_EQ(count(rendered.svg, "<rect class=\"bar\""), 1u);
  EXPECT_EQ(rendered.notes.size(), 2u);
  expect_no_non_finite_text(rendered.svg);
}

TEST(SvgPlot, LogBarAtPowerOfTenHasHeight) {
  BarChart chart;
  chart.options.log_y = true;
  chart.categories = {"a", "b"};
  chart.series = {{"relative error", {1e-3, 2e-3}}};
  const std::string svg = app::svg::render_bar_chart(chart).svg;
  const std::regex bar("<rect class=\"bar\" x=\"[^\"]*\" y=\"[^\"]*\" width=\"[^\"]*\" height=\"([^\"]*)\"");
  size_t bars = 0;
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), bar); it != std::sregex_iterator(); ++it) {
    EXPECT_GT(std::stod((*it)[1].str()), 10.0) << "bar " << bars << " is too short to see";
    ++bars;
  }
  EXPECT_EQ(bars, 2u);
}

TEST(SvgPlot, BarSeriesOfWrongLengthIsRejected) {
  BarChart chart;
  chart.categories = {"a", "b"};
  chart.series = {{"short", {1.0}}};
  try {
    app::svg::render_bar_chart(chart);
    FAIL() << "expected DataError";
  } catch (const DataError& error) {
    EXPECT_NE(std::string(error.what()).find("'short'"), std::string::npos) << error.what();
  }
}

TEST(SvgPlot, LineSeriesOfUnequalLengthsIsRejected) {
  LineChart chart;
  chart.series = {{"ragged", {0, 1, 2}, {1.0, 2.0}}};
  EXPECT_THROW(app::svg::render_line_chart(chart), DataError);
}

TEST(SvgPlot, WidthOutOfRangeIsRejected) {
  LineChart chart = two_series_chart();
  chart.options.width = 100;
  try {
    app::svg::render_line_chart(chart);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& error) {
    EXPECT_NE(std::string(error.what()).find("width 100"), std::string::npos) << error.what();
  }
}

TEST(SvgPlot, NiceTicksCoverRangeInRoundSteps) {
  const std::vector<double> ticks = app::svg::nice_ticks(0.13, 0.97, 5);
  ASSERT_GE(ticks.size(), 2u);
  EXPECT_LE(ticks.front(), 0.13);
  EXPECT_GE(ticks.back(), 0.97);
  EXPECT_NEAR(ticks[1] - ticks[0], 0.2, 1e-12);
  const std::vector<double> flat = app::svg::nice_ticks(3.0, 3.0, 5);
  EXPECT_LT(flat.front(), 3.0);
  EXPECT_GT(flat.back(), 3.0);
}

TEST(SvgPlot, LogTicksFitPerplexityRange) {
  const std::vector<double> ticks = app::svg::log_ticks(5.89, 561.6);
  EXPECT_DOUBLE_EQ(ticks.front(), 5.0);
  EXPECT_DOUBLE_EQ(ticks.back(), 1000.0);
  EXPECT_NE(std::find(ticks.begin(), ticks.end(), 100.0), ticks.end());
  const std::vector<double> narrow = app::svg::log_ticks(5.9, 15.1);
  EXPECT_EQ(narrow, (std::vector<double>{5.0, 10.0, 20.0}));
  const std::vector<double> wide = app::svg::log_ticks(1e-9, 1e3);
  EXPECT_DOUBLE_EQ(wide.front(), 1e-9);
  EXPECT_GE(wide.back(), 1e3);
  EXPECT_LE(wide.size(), 9u);
}

TEST(SvgPlot, TickLabelsAreShort) {
  EXPECT_EQ(app::svg::format_tick(0.4, 0.2), "0.4");
  EXPECT_EQ(app::svg::format_tick(1e-5, 1e-5), "1e-05");
  EXPECT_EQ(app::svg::format_tick(-1e-17, 0.5), "0");
  EXPECT_EQ(app::svg::format_tick(1000.0, 1000.0), "1000");
}

// A report.json with the fields that `magrq run` writes and the report reads.
struct RunFixture {
  std::string method = "gptq";
  int bits = 4;
  int group_size = -1;
  bool magr = false;
  double perplexity = 6.0;
  std::optional<double> full_precision;
  // Relative error of q_proj in layer 0. Other modules have multiples of it, and every
  // module is split into two row blocks.
  double error_scale = 1e-3;
};

nlohmann::json fixture_report(const RunFixture& f) {
  nlohmann::json items = nlohmann::json::array();
  const char* modules[] = {"q_proj", "down_proj"};
  for (int layer = 0; layer < 2; ++layer) {
    for (int m = 0; m < 2; ++m) {
      for (int block = 0; block < 2; ++block) {
        const double before = 1.0 + layer + 0.5 * m + 0.1 * block;
        items.push_back({{"layer", layer},
                         {"module", modules[m]},
                         {"row_begin", 32 * block},
                         {"row_end", 32 * (block + 1)},
                         {"max_abs_before", before},
                         {"max_abs_after", f.magr ? 0.8 * before : before},
                         {"output_error", f.error_scale * (1 + layer + m) * 50.0},
                         {"reference_energy", 50.0},
                         {"seconds", 0.1}});
      }
    }
  }
  nlohmann::json perplexity = nlohmann::json::array();
  perplexity.push_back({{"source", "text:data/text/val.txt@0.6:1"},
                        {"windows", 10},
                        {"full_precision", f.full_precision ? nlohmann::json(*f.full_precision) : nullptr},
                        {"quantized", f.perplexity}});
  return {{"configuration",
           {{"quantizer", {{"method", f.method}, {"bits", f.bits}, {"group_size", f.group_size}}},
            {"magr", {{"enabled", f.magr}, {"alpha", "auto"}}}}},
          {"phase_seconds", {{"total", 12.5}}},
          {"perplexity", perplexity},
          {"items", items}};
}

fs::path write_run(const fs::path& dir, const RunFixture& fixture) {
  fs::create_directories(dir);
  std::ofstream(dir / "report.json") << fixture_report(fixture).dump(2);
  std::ofstream(dir / "report.md") << "# magrq run report\n\nThe run's own tables.\n";
  return dir;
}

// A sweep folder of four runs: GPTQ and RTN+MagR at 2 and 4 bits.
fs::path write_sweep(const fs::path& dir) {
  write_run(dir / "w4-gptq", {"gptq", 4, -1, false, 6.01, 5.5965, 1e-3});
  write_run(dir / "w2-gptq", {"gptq", 2, -1, false, 381.3, 5.5965, 4e-2});
  write_run(dir / "w4-magr-rtn", {"rtn", 4, -1, true, 6.24, 5.5965, 2e-3});
  write_run(dir / "w2-magr-rtn", {"rtn", 2, -1, true, 236.2, 5.5965, 3e-2});
  return dir;
}

TEST(RunSummary, RowBlocksAreSummedPerModule) {
  const fs::path dir = write_run(testing::scratch_dir("report_blocks") / "run", {"gptq", 3, 32, true});
  const app::RunSummary run = app::load_run_summary(dir);
  ASSERT_EQ(run.modules.size(), 4u);
  EXPECT_EQ(run.modules[0].label(), "0.q_proj");
  EXPECT_EQ(run.modules[1].label(), "0.down_proj");  // decoder order, not alphabetical
  EXPECT_DOUBLE_EQ(run.modules[0].max_abs_before, 1.1);  // the larger of the two blocks
  EXPECT_DOUBLE_EQ(run.modules[0].reference_energy, 100.0);
  EXPECT_DOUBLE_EQ(run.modules[0].relative_error(), 1e-3);
  EXPECT_EQ(run.label(), "GPTQ w3 g32 + MagR (alpha auto)");
  EXPECT_EQ(run.method_label(), "GPTQ g32 + MagR (alpha auto)");
}

TEST(RunSummary, MissingReportNamesPath) {
  const fs::path dir = testing::scratch_dir("report_missing") / "not-a-run";
  fs::create_directories(dir);
  try {
    app::load_run_summary(dir);
    FAIL() << "expected DataError";
  } catch (const DataError& error) {
    EXPECT_NE(std::string(error.what()).find((dir / "report.json").string()), std::string::npos) << error.what();
  }
}

TEST(RunSummary, MissingFieldNamesFileAndField) {
  const fs::path dir = testing::scratch_dir("report_field") / "run";
  fs::create_directories(dir);
  nlohmann::json report = fixture_report({});
  report["configuration"]["quantizer"].erase("bits");
  std::ofstream(dir / "report.json") << report.dump();
  try {
    app::load_run_summary(dir);
    FAIL() << "expected DataError";
  } catch (const DataError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("configuration.quantizer.bits"), std::string::npos) << message;
    EXPECT_NE(message.find((dir / "report.json").string()), std::string::npos) << message;
  }
}

TEST(RunSummary, SweepFolderExpandsToItsRuns) {
  const fs::path sweep = write_sweep(testing::scratch_dir("report_expand"));
  fs::create_directories(sweep / "hessians");  // a subfolder that is no run is ignored
  const std::vector<fs::path> runs = app::expand_run_dirs({sweep});
  ASSERT_EQ(runs.size(), 4u);
  EXPECT_EQ(runs[0].filename(), "w2-gptq");  // name order
  EXPECT_THROW(app::expand_run_dirs({sweep / "hessians"}), DataError);
}

TEST(RunSummary, RepeatedLabelsFallBackToNames) {
  const fs::path dir = testing::scratch_dir("report_labels");
  write_run(dir / "seed0", {});
  write_run(dir / "seed1", {});
  const std::vector<app::RunSummary> runs = app::load_runs({dir / "seed0", dir / "seed1"});
  EXPECT_EQ(app::legend_names(runs), (std::vector<std::string>{"seed0", "seed1"}));
}

TEST(ComparisonReport, WritesPlotsAndTableOfRuns) {
  const fs::path root = testing::scratch_dir("report_compare");
  const fs::path sweep = write_sweep(root / "sweep");
  const fs::path out = root / "out";
  app::write_comparison_report({sweep}, out);

  const std::string md = read(out / "report.md");
  for (const char* name : {"w4-gptq", "w2-gptq", "w4-magr-rtn", "w2-magr-rtn"}) {
    EXPECT_NE(md.find(std::string("[") + name + "]"), std::string::npos) << name;
  }
  EXPECT_NE(md.find("5.5965"), std::string::npos);  // the full-precision perplexity
  for (const char* plot : {"perplexity-text-val.txt-0.6-1.svg", "error-w2.svg", "error-w4.svg",
                           "magr-w4-magr-rtn.svg", "magr-w2-magr-rtn.svg"}) {
    const fs::path file = out / "plots" / plot;
    ASSERT_TRUE(fs::exists(file)) << file;
    EXPECT_GT(fs::file_size(file), 500u) << file;
    EXPECT_NE(md.find(std::string("(plots/") + plot + ")"), std::string::npos) << plot;
    expect_balanced_tags(read(file));
  }
  EXPECT_FALSE(fs::exists(out / "plots" / "magr-w4-gptq.svg"));  // no MagR, no MagR plot
  // One line per method with one point per bit width, and the reference line.
  const std::string perplexity = read(out / "plots" / "perplexity-text-val.txt-0.6-1.svg");
  EXPECT_EQ(count(perplexity, "<polyline class=\"series\""), 2u);
  EXPECT_EQ(polyline_points(perplexity), 4u);
  EXPECT_NE(perplexity.find("full precision 5.5965"), std::string::npos);
}

TEST(ComparisonReport, ManyRunsAreSplitIntoCharts) {
  const fs::path root = testing::scratch_dir("report_chunks");
  for (int seed = 0; seed < 10; ++seed) {
    write_run(root / "runs" / ("seed" + std::to_string(seed)), {"gptq", 4, -1, false, 6.0 + seed});
  }
  app::write_comparison_report({root / "runs"}, root / "out");
  // Ten runs with the same label: eight in the first chart, two in the second, by name.
  const std::string first = read(root / "out" / "plots" / "error-w4-1.svg");
  const std::string second = read(root / "out" / "plots" / "error-w4-2.svg");
  EXPECT_EQ(count(first, "<rect class=\"swatch\""), 8u);
  EXPECT_EQ(count(second, "<rect class=\"swatch\""), 2u);
  EXPECT_NE(second.find(">seed9</text>"), std::string::npos);
}

TEST(ComparisonReport, ZeroEnergyModuleIsNamedInNotes) {
  const fs::path root = testing::scratch_dir("report_zero_energy");
  write_run(root / "a", {"gptq", 4});
  nlohmann::json report = fixture_report({"rtn", 4});
  for (auto& item : report["items"]) {
    if (item["layer"] == 1 && item["module"] == "q_proj") {
      item["reference_energy"] = 0.0;
    }
  }
  fs::create_directories(root / "b");
  std::ofstream(root / "b" / "report.json") << report.dump();
  app::write_comparison_report({root / "a", root / "b"}, root / "out");
  const std::string md = read(root / "out" / "report.md");
  EXPECT_NE(md.find("module 1.q_proj: relative error undefined"), std::string::npos) << md;
  EXPECT_NE(read(root / "out" / "plots" / "error-w4.svg").find("Not drawn: 1 value(s)"), std::string::npos);
}

TEST(ComparisonReport, SameBitsGiveNoPerplexityPlot) {
  const fs::path root = testing::scratch_dir("report_same_bits");
  write_run(root / "runs" / "a", {"gptq", 4});
  write_run(root / "runs" / "b", {"rtn", 4});
  app::write_comparison_report({root / "runs" / "a", root / "runs" / "b"}, root / "out");
  EXPECT_FALSE(fs::exists(root / "out" / "plots" / "perplexity-text-val.txt-0.6-1.svg"));
  EXPECT_EQ(read(root / "out" / "report.md").find("Perplexity against bits"), std::string::npos);
}

TEST(ComparisonReport, StalePlotsAreRemoved) {
  const fs::path root = testing::scratch_dir("report_stale");
  write_sweep(root / "sweep");
  fs::create_directories(root / "out" / "plots");
  std::ofstream(root / "out" / "plots" / "error-w8.svg") << "<svg/>";
  app::write_comparison_report({root / "sweep"}, root / "out");
  EXPECT_FALSE(fs::exists(root / "out" / "plots" / "error-w8.svg"));
}

TEST(ComparisonReport, MissingRunNamesPath) {
  const fs::path root = testing::scratch_dir("report_missing_run");
  write_run(root / "good", {});
  fs::create_directories(root / "empty");
  try {
    app::write_comparison_report({root / "good", root / "empty"}, root / "out");
    FAIL() << "expected DataError";
  } catch (const DataError& error) {
    EXPECT_NE(std::string(error.what()).find((root / "empty").string()), std::string::npos) << error.what();
  }
  EXPECT_FALSE(fs::exists(root / "out" / "report.md"));
}

TEST(ComparisonReport, OtherRunFolderIsRejectedAsOutput) {
  const fs::path root = testing::scratch_dir("report_out_run");
  write_run(root / "a", {});
  write_run(root / "b", {"rtn"});
  EXPECT_THROW(app::write_comparison_report({root / "a", root / "b"}, root / "b"), ConfigError);
  EXPECT_EQ(read(root / "b" / "report.md"), "# magrq run report\n\nThe run's own tables.\n");
}

TEST(RunPlots, SectionIsAppendedOnceAndKeepsTheReport) {
  const fs::path dir = write_run(testing::scratch_dir("report_run_plots") / "run", {"gptq", 3, -1, true});
  app::write_run_plots(dir);
  const std::string first = read(dir / "report.md");
  app::write_run_plots(dir);
  const std::string md = read(dir / "report.md");
  EXPECT_EQ(md, first);  // a rewrite replaces the section, byte for byte
  EXPECT_EQ(md.rfind("# magrq run report\n\nThe run's own tables.\n", 0), 0u);
  EXPECT_EQ(count(md, "## Plots"), 1u);
  EXPECT_NE(md.find("(plots/magr.svg)"), std::string::npos);
  EXPECT_NE(md.find("(plots/error.svg)"), std::string::npos);
  const std::string error = read(dir / "plots" / "error.svg");
  EXPECT_EQ(count(error, "<rect class=\"bar\""), 4u);  // 2 layers x 2 module types
}

TEST(RunPlots, RunWithoutMagrHasNoMagrPlot) {
  const fs::path dir = write_run(testing::scratch_dir("report_run_no_magr") / "run", {});
  app::write_comparison_report({dir}, dir);  // one run written to its own folder
  EXPECT_FALSE(fs::exists(dir / "plots" / "magr.svg"));
  EXPECT_TRUE(fs::exists(dir / "plots" / "error.svg"));
  EXPECT_NE(read(dir / "report.md").find("## Plots"), std::string::npos);
}

// `magrq report` through the binary, as a user runs it.
const std::string kMagrq = (fs::path(MAGRQ_BINARY_DIR) / "bin" / "magrq").string();

int run_magrq(const std::string& arguments, const fs::path& log) {
  const int status = std::system((kMagrq + " " + arguments + " > " + log.string() + " 2>&1").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

TEST(ReportCommand, SweepFolderGivesComparison) {
  const fs::path root = testing::scratch_dir("report_cli");
  write_sweep(root / "sweep");
  const fs::path log = root / "log.txt";
  ASSERT_EQ(run_magrq("report " + (root / "sweep").string() + " --out " + (root / "out").string(), log), 0)
      << read(log);
  const std::string md = read(root / "out" / "report.md");
  EXPECT_NE(md.find("4 runs"), std::string::npos) << md;
  EXPECT_TRUE(fs::exists(root / "out" / "plots" / "error-w4.svg"));
}

TEST(ReportCommand, OneRunDefaultsToItsFolder) {
  const fs::path dir = write_run(testing::scratch_dir("report_cli_one") / "run", {"gptq", 3, -1, true});
  const fs::path log = dir.parent_path() / "log.txt";
  ASSERT_EQ(run_magrq("report " + dir.string(), log), 0) << read(log);
  EXPECT_TRUE(fs::exists(dir / "plots" / "magr.svg"));
  EXPECT_NE(read(dir / "report.md").find("The run's own tables."), std::string::npos);
  EXPECT_NE(read(log).find("open " + (dir / "report.md").string()), std::string::npos) << read(log);
}

TEST(ReportCommand, FolderWithoutRunsFailsNamingIt) {
  const fs::path root = testing::scratch_dir("report_cli_empty");
  fs::create_directories(root / "nothing");
  const fs::path log = root / "log.txt";
  EXPECT_EQ(run_magrq("report " + (root / "nothing").string() + " --out " + (root / "out").string(), log), 1);
  EXPECT_NE(read(log).find((root / "nothing").string()), std::string::npos) << read(log);
}

}  // namespace
}  // namespace magrq
