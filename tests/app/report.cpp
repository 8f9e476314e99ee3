// The SVG chart writer, the comparison report built from report.json files, and the
// `magrq report` command run through the binary.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <map>
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

using app::svg::StackedBarChart;

// One stacked segment: its rectangle in pixels.
struct Segment {
  double x = 0.0;
  double y = 0.0;
  double height = 0.0;
};

std::vector<Segment> segments(const std::string& svg) {
  const std::regex rect("<rect class=\"segment\" x=\"([^\"]*)\" y=\"([^\"]*)\" width=\"[^\"]*\" height=\"([^\"]*)\"");
  std::vector<Segment> found;
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), rect); it != std::sregex_iterator(); ++it) {
    found.push_back({std::stod((*it)[1].str()), std::stod((*it)[2].str()), std::stod((*it)[3].str())});
  }
  return found;
}

// The height in pixels of the plot frame, the rectangle that the y axis spans.
double frame_height(const std::string& svg) {
  std::smatch match;
  const std::regex frame("<rect x=\"[^\"]*\" y=\"[^\"]*\" width=\"[^\"]*\" height=\"([^\"]*)\" fill=\"none\"");
  EXPECT_TRUE(std::regex_search(svg, match, frame));
  return match.empty() ? 0.0 : std::stod(match[1].str());
}

// The summed segment height of each bar, keyed by the bar's x.
std::map<double, double> bar_heights(const std::string& svg) {
  std::map<double, double> heights;
  for (const Segment& segment : segments(svg)) {
    heights[segment.x] += segment.height;
  }
  return heights;
}

StackedBarChart share_chart() {
  StackedBarChart chart;
  chart.title = "rows per candidate";
  chart.categories = {"0.q_proj", "0.k_proj"};
  chart.series = {{"none", {4, 0}, "#E3E3E3", true}, {"0.01 x z", {20, 16}, "", false},
                  {"0.001 x z", {40, 48}, "", false}};
  chart.as_share = true;
  return chart;
}

TEST(SvgPlot, StackedSharesFillTheAxis) {
  const app::svg::Rendered rendered = app::svg::render_stacked_bar_chart(share_chart());
  expect_balanced_tags(rendered.svg);
  EXPECT_TRUE(rendered.notes.empty());
  EXPECT_EQ(segments(rendered.svg).size(), 5u);  // the zero value gets no segment
  const double full = frame_height(rendered.svg);
  const std::map<double, double> heights = bar_heights(rendered.svg);
  ASSERT_EQ(heights.size(), 2u);
  for (const auto& [x, height] : heights) {
    EXPECT_NEAR(height, full, 0.05) << "bar at x = " << x;  // segments are rounded to 0.01 px each
  }
  EXPECT_NE(rendered.svg.find(">100</text>"), std::string::npos);  // the share axis ends at 100
  EXPECT_NE(rendered.svg.find("<title>0.q_proj: 0.001 x z, 40 (62.5%)</title>"), std::string::npos);
}

TEST(SvgPlot, StackedLegendListsTopLayerFirst) {
  const std::string svg = app::svg::render_stacked_bar_chart(share_chart()).svg;
  const size_t top = svg.find(">0.001 x z</text>");
  const size_t middle = svg.find(">0.01 x z</text>");
  const size_t bottom = svg.find(">none</text>");
  ASSERT_NE(top, std::string::npos);
  ASSERT_NE(middle, std::string::npos);
  ASSERT_NE(bottom, std::string::npos);
  EXPECT_LT(top, middle);
  EXPECT_LT(middle, bottom);
  EXPECT_EQ(count(svg, "<rect class=\"swatch\""), 3u);
  EXPECT_EQ(count(svg, "<pattern id=\"pattern4\""), 1u);  // the hatching of "none"
  EXPECT_EQ(count(svg, "<rect class=\"swatch-pattern\""), 1u);
  EXPECT_EQ(count(svg, "<rect class=\"segment-pattern\""), 1u);
}

TEST(SvgPlot, StackedCountsKeepProportions) {
  StackedBarChart chart;
  chart.categories = {"a", "b"};
  chart.series = {{"none", {16, 8}, "", false}, {"0.01", {48, 24}, "", false}};
  const std::string svg = app::svg::render_stacked_bar_chart(chart).svg;
  const std::map<double, double> heights = bar_heights(svg);
  ASSERT_EQ(heights.size(), 2u);
  EXPECT_NEAR(heights.begin()->second, 2.0 * heights.rbegin()->second, 0.05);  // 64 rows against 32
  EXPECT_LE(heights.begin()->second, frame_height(svg) + 0.01);
}

TEST(SvgPlot, StackedZeroTotalAndNegativeAreNoted) {
  StackedBarChart chart = share_chart();
  chart.series[0].values = {-1.0, 0.0};
  chart.series[1].values = {kNaN, 0.0};
  chart.series[2].values = {40, 0.0};
  const app::svg::Rendered rendered = app::svg::render_stacked_bar_chart(chart);
  ASSERT_EQ(rendered.notes.size(), 3u);
  EXPECT_NE(rendered.notes[0].find("'none', category '0.q_proj': value -1 not drawn: negative"), std::string::npos)
      << rendered.notes[0];
  EXPECT_NE(rendered.notes[1].find("not finite"), std::string::npos) << rendered.notes[1];
  EXPECT_NE(rendered.notes[2].find("category '0.k_proj': total is 0"), std::string::npos) << rendered.notes[2];
  EXPECT_EQ(segments(rendered.svg).size(), 1u);  // only 40 of 0.q_proj, as 100%
  EXPECT_NE(rendered.svg.find("Not drawn: 3 value(s)"), std::string::npos);
  expect_no_non_finite_text(rendered.svg);
}

TEST(SvgPlot, StackedLogScaleIsRejected) {
  StackedBarChart chart = share_chart();
  chart.options.log_y = true;
  try {
    app::svg::render_stacked_bar_chart(chart);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& error) {
    EXPECT_NE(std::string(error.what()).find("log_y"), std::string::npos) << error.what();
  }
}

TEST(SvgPlot, StackedInvalidSeriesIsRejected) {
  StackedBarChart chart = share_chart();
  chart.series[1].colour = "blue";
  try {
    app::svg::render_stacked_bar_chart(chart);
    FAIL() << "expected DataError";
  } catch (const DataError& error) {
    EXPECT_NE(std::string(error.what()).find("'0.01 x z' has colour 'blue'"), std::string::npos) << error.what();
  }
  chart = share_chart();
  chart.series[2].values.pop_back();
  EXPECT_THROW(app::svg::render_stacked_bar_chart(chart), DataError);
}

// Relative luminance (ITU-R BT.709 weights on the sRGB values, without linearizing):
// enough to order shades of one hue.
double luminance(const std::string& colour) {
  const auto channel = [&](size_t at) { return std::stoi(colour.substr(at, 2), nullptr, 16) / 255.0; };
  return 0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5);
}

TEST(SvgPlot, SequentialColoursGoLightToDark) {
  const std::vector<std::string> colours = app::svg::sequential_colours(7);
  ASSERT_EQ(colours.size(), 7u);
  for (size_t i = 1; i < colours.size(); ++i) {
    EXPECT_LT(luminance(colours[i]), luminance(colours[i - 1]) - 0.03) << colours[i - 1] << " then " << colours[i];
  }
  EXPECT_LT(luminance(colours.front()), 0.9);  // still visible on white
  EXPECT_EQ(app::svg::sequential_colours(1).size(), 1u);
  EXPECT_TRUE(app::svg::sequential_colours(0).empty());
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
  // Adds magr_alpha_search, as a run with magr.alpha auto writes it.
  bool alpha_search = false;
};

// The candidates of the fixture's alpha search for one module, out of 64 rows. q_proj
// spreads its rows over the candidates, and its result (the items' error e) is half the
// error without MagR, while the best single candidate reaches 0.8 of it. down_proj keeps
// no MagR in every row, so its result equals the error without MagR.
nlohmann::json alpha_candidates(int layer, const std::string& module, double error_scale) {
  const bool spread = module != "down_proj";
  const double e = error_scale * (1 + layer + (spread ? 0 : 1)) * 100.0;  // as fixture_report's items
  const double values[] = {0.0, 0.01, 0.001};
  const double errors[] = {spread ? 2.0 * e : e, spread ? 5.0 * e : 3.0 * e, spread ? 1.6 * e : 2.0 * e};
  const int rows[] = {spread ? 4 : 64, spread ? 20 : 0, spread ? 40 : 0};
  nlohmann::json candidates = nlohmann::json::array();
  for (int k = 0; k < 3; ++k) {
    candidates.push_back({{"value", values[k]}, {"output_error", errors[k]}, {"rows_chosen", rows[k]}});
  }
  return candidates;
}

// magr_alpha_search for the given (layer, module) pairs, with the summary fields of a run.
nlohmann::json alpha_search_fixture(const std::vector<std::pair<int, std::string>>& modules,
                                    double error_scale = 1e-3) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& [layer, module] : modules) {
    list.push_back({{"name", "model.layers." + std::to_string(layer) + "." + module},
                    {"layer", layer},
                    {"module", module},
                    {"scale", "zeroing"},
                    {"candidates", alpha_candidates(layer, module, error_scale)},
                    {"rows", 64}});
  }
  return {{"modules_searched", modules.size()}, {"modules", list}};
}

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
  nlohmann::json search = nullptr;
  if (f.alpha_search) {
    // Listed in report order, down_proj before q_proj, to show the loader sorts them.
    search = alpha_search_fixture({{0, "down_proj"}, {0, "q_proj"}, {1, "q_proj"}, {1, "down_proj"}}, f.error_scale);
  }
  return {{"configuration",
           {{"quantizer", {{"method", f.method}, {"bits", f.bits}, {"group_size", f.group_size}}},
            {"magr", {{"enabled", f.magr}, {"alpha", "auto"}}}}},
          {"phase_seconds", {{"total", 12.5}}},
          {"perplexity", perplexity},
          {"items", items},
          {"magr_alpha_search", search}};
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

TEST(RunSummary, AlphaSearchIsReadInModelOrder) {
  RunFixture fixture{"gptq", 3, -1, true};
  fixture.alpha_search = true;
  const app::RunSummary run = app::load_run_summary(write_run(testing::scratch_dir("report_alpha_read") / "run", fixture));
  ASSERT_EQ(run.alpha_search.size(), 4u);
  EXPECT_EQ(run.alpha_search[0].label(), "0.q_proj");
  EXPECT_EQ(run.alpha_search[1].label(), "0.down_proj");
  EXPECT_EQ(run.alpha_search[0].scale, "zeroing");
  ASSERT_EQ(run.alpha_search[0].candidates.size(), 3u);
  EXPECT_DOUBLE_EQ(run.alpha_search[0].candidates[1].value, 0.01);
  EXPECT_DOUBLE_EQ(run.alpha_search[0].candidates[2].output_error, 0.16);
  EXPECT_EQ(run.alpha_search[0].candidates[2].rows_chosen, 40);
  EXPECT_EQ(run.alpha_search[1].rows(), 64);
}

TEST(RunSummary, AlphaSearchIsOptional) {
  const fs::path root = testing::scratch_dir("report_alpha_optional");
  EXPECT_TRUE(app::load_run_summary(write_run(root / "null", {})).alpha_search.empty());
  nlohmann::json report = fixture_report({});
  report.erase("magr_alpha_search");  // a report.json from before the search existed
  fs::create_directories(root / "absent");
  std::ofstream(root / "absent" / "report.json") << report.dump();
  EXPECT_TRUE(app::load_run_summary(root / "absent").alpha_search.empty());
}

TEST(RunSummary, NegativeRowCountNamesField) {
  const fs::path dir = testing::scratch_dir("report_alpha_negative") / "run";
  fs::create_directories(dir);
  RunFixture fixture;
  fixture.alpha_search = true;
  nlohmann::json report = fixture_report(fixture);
  report["magr_alpha_search"]["modules"][1]["candidates"][2]["rows_chosen"] = -3;
  std::ofstream(dir / "report.json") << report.dump();
  try {
    app::load_run_summary(dir);
    FAIL() << "expected DataError";
  } catch (const DataError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("magr_alpha_search.modules[1].candidates[2].rows_chosen' is -3"), std::string::npos)
        << message;
  }
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
  // A chart an earlier report wrote, as its manifest records, and a user's own file.
  std::ofstream(root / "out" / "plots" / "error-w8.svg") << "<svg/>";
  std::ofstream(root / "out" / "plots" / ".magrq-plots") << "error-w8.svg\n";
  std::ofstream(root / "out" / "plots" / "my-diagram.svg") << "<svg/>";
  app::write_comparison_report({root / "sweep"}, root / "out");
  EXPECT_FALSE(fs::exists(root / "out" / "plots" / "error-w8.svg"));
  EXPECT_TRUE(fs::exists(root / "out" / "plots" / "my-diagram.svg")) << "files magrq did not write are kept";
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

TEST(RunPlots, AlphaSearchGivesShareOfRowsPerModule) {
  RunFixture fixture{"gptq", 3, -1, true};
  fixture.alpha_search = true;
  const fs::path dir = write_run(testing::scratch_dir("report_alpha_plot") / "run", fixture);
  app::write_run_plots(dir);
  const std::string md = read(dir / "report.md");
  EXPECT_NE(md.find("(plots/magr-alpha.svg)"), std::string::npos) << md;
  // Each layer's q_proj keeps 4 rows without MagR and its down_proj all 64.
  EXPECT_NE(md.find("Over the run, 136 of 256 rows chose no MagR."), std::string::npos) << md;
  EXPECT_NE(md.find("z is the row's zeroing alpha"), std::string::npos) << md;

  const std::string svg = read(dir / "plots" / "magr-alpha.svg");
  expect_balanced_tags(svg);
  // q_proj has a segment for each of its three candidates, down_proj only "none".
  EXPECT_EQ(segments(svg).size(), 8u);
  const std::map<double, double> heights = bar_heights(svg);
  ASSERT_EQ(heights.size(), 4u);
  for (const auto& [x, height] : heights) {
    EXPECT_NEAR(height, frame_height(svg), 0.05) << "bar at x = " << x;
  }
  EXPECT_NE(svg.find(">0.down_proj</text>"), std::string::npos);
  // The legend reads like the bars: the smallest alpha on top, none at the bottom.
  ASSERT_NE(svg.find(">0.001 x z</text>"), std::string::npos);
  EXPECT_LT(svg.find(">0.001 x z</text>"), svg.find(">0.01 x z</text>"));
  EXPECT_LT(svg.find(">0.01 x z</text>"), svg.find(">none</text>"));
}

TEST(RunPlots, StrongerAlphaIsDarker) {
  RunFixture fixture{"gptq", 3, -1, true};
  fixture.alpha_search = true;
  const fs::path dir = write_run(testing::scratch_dir("report_alpha_colours") / "run", fixture);
  const app::Plot plot = app::alpha_choice_plot(app::load_run_summary(dir), "magr-alpha.svg");
  const std::regex swatch("<rect class=\"swatch\" [^>]* fill=\"(#[0-9A-F]{6})\"");
  std::vector<std::string> fills;  // legend order: 0.001, 0.01, none
  for (auto it = std::sregex_iterator(plot.rendered.svg.begin(), plot.rendered.svg.end(), swatch);
       it != std::sregex_iterator(); ++it) {
    fills.push_back((*it)[1].str());
  }
  ASSERT_EQ(fills.size(), 3u);
  EXPECT_GT(luminance(fills[0]), luminance(fills[1]) + 0.1) << fills[0] << " for 0.001, " << fills[1] << " for 0.01";
}

// The value of each point of the index-th line of a chart with a linear y axis from
// `low` to `high`, read back from the pixels of the plot frame.
std::vector<double> line_values(const std::string& svg, size_t index, double low, double high) {
  const std::regex frame("<rect x=\"[^\"]*\" y=\"([^\"]*)\" width=\"[^\"]*\" height=\"([^\"]*)\" fill=\"none\"");
  const std::regex line("<polyline class=\"series\" points=\"([^\"]*)\"");
  std::smatch match;
  EXPECT_TRUE(std::regex_search(svg, match, frame));
  if (match.empty()) {
    return {};
  }
  const double top = std::stod(match[1].str());
  const double bottom = top + std::stod(match[2].str());
  auto it = std::sregex_iterator(svg.begin(), svg.end(), line);
  std::advance(it, static_cast<std::ptrdiff_t>(index));
  std::vector<double> values;
  std::istringstream points((*it)[1].str());
  std::string point;
  while (points >> point) {
    const double y = std::stod(point.substr(point.find(',') + 1));
    values.push_back(low + (bottom - y) / (bottom - top) * (high - low));
  }
  return values;
}

TEST(RunPlots, AlphaGainDividesByErrorWithoutMagr) {
  RunFixture fixture{"gptq", 3, -1, true};
  fixture.alpha_search = true;
  const fs::path dir = write_run(testing::scratch_dir("report_alpha_gain") / "run", fixture);
  app::write_run_plots(dir);
  EXPECT_NE(read(dir / "report.md").find("(plots/magr-alpha-gain.svg)"), std::string::npos);
  const std::string svg = read(dir / "plots" / "magr-alpha-gain.svg");
  expect_balanced_tags(svg);
  EXPECT_NE(svg.find(">no MagR</text>"), std::string::npos);
  EXPECT_NE(svg.find(">output error / error without MagR</text>"), std::string::npos);  // linear: ratios >= 0.5
  // The axis runs from 0.5 to 1: modules 0.q_proj, 0.down_proj, 1.q_proj, 1.down_proj.
  const std::vector<double> per_row = line_values(svg, 0, 0.5, 1.0);
  const std::vector<double> single = line_values(svg, 1, 0.5, 1.0);
  ASSERT_EQ(per_row.size(), 4u);
  ASSERT_EQ(single.size(), 4u);
  const double pixel = 0.01;  // 2% of the axis span, about 6 px, far above the 0.01 px rounding
  EXPECT_NEAR(per_row[0], 0.5, pixel);
  EXPECT_NEAR(per_row[1], 1.0, pixel);
  EXPECT_NEAR(single[2], 0.8, pixel);
  EXPECT_NEAR(single[3], 1.0, pixel);  // no candidate beats no MagR there
}

TEST(RunPlots, LargeAlphaGainUsesLogScale) {
  const fs::path dir = testing::scratch_dir("report_alpha_gain_log") / "run";
  write_run(dir, {"gptq", 3, -1, true});
  nlohmann::json report = fixture_report({"gptq", 3, -1, true});
  // The search's errors 100 times the result's: every ratio is at most 0.01.
  report["magr_alpha_search"] = alpha_search_fixture({{0, "q_proj"}, {0, "down_proj"}}, 0.1);
  std::ofstream(dir / "report.json") << report.dump();
  const std::optional<app::Plot> plot = app::alpha_gain_plot(app::load_run_summary(dir), "gain.svg");
  ASSERT_TRUE(plot.has_value());
  EXPECT_NE(plot->rendered.svg.find("error without MagR (log scale)</text>"), std::string::npos);
  EXPECT_TRUE(plot->rendered.notes.empty());
}

TEST(RunPlots, AlphaGainNeedsNoMagrCandidate) {
  const fs::path dir = testing::scratch_dir("report_alpha_gain_none") / "run";
  write_run(dir, {"gptq", 3, -1, true});
  nlohmann::json report = fixture_report({"gptq", 3, -1, true});
  report["magr_alpha_search"] = alpha_search_fixture({{0, "q_proj"}});
  report["magr_alpha_search"]["modules"][0]["candidates"].erase(0);
  std::ofstream(dir / "report.json") << report.dump();
  const app::RunSummary run = app::load_run_summary(dir);
  EXPECT_FALSE(app::alpha_gain_plot(run, "gain.svg").has_value());
  EXPECT_NO_THROW(app::alpha_choice_plot(run, "choice.svg"));  // the shares need no "none"
}

TEST(RunPlots, FixedAlphaRunHasNoAlphaPlot) {
  const fs::path dir = write_run(testing::scratch_dir("report_alpha_fixed") / "run", {"gptq", 3, -1, true});
  app::write_run_plots(dir);
  EXPECT_TRUE(fs::exists(dir / "plots" / "magr.svg"));
  EXPECT_FALSE(fs::exists(dir / "plots" / "magr-alpha.svg"));
  EXPECT_EQ(read(dir / "report.md").find("MagR alpha chosen"), std::string::npos);
}

TEST(RunPlots, ManyModulesShareAlphaBarPerLayer) {
  const fs::path dir = testing::scratch_dir("report_alpha_layers") / "run";
  write_run(dir, {"gptq", 3, -1, true});
  nlohmann::json report = fixture_report({"gptq", 3, -1, true});
  std::vector<std::pair<int, std::string>> modules;
  for (int layer = 0; layer < 10; ++layer) {
    for (const char* module : {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}) {
      modules.emplace_back(layer, module);
    }
  }
  report["magr_alpha_search"] = alpha_search_fixture(modules);
  std::ofstream(dir / "report.json") << report.dump();
  const app::Plot plot = app::alpha_choice_plot(app::load_run_summary(dir), "magr-alpha.svg");
  EXPECT_EQ(bar_heights(plot.rendered.svg).size(), 10u);  // 70 modules, one bar per layer
  EXPECT_NE(plot.rendered.svg.find(">layer 9</text>"), std::string::npos);
  // Layer 0 adds up six spread modules and down_proj: 6 x 4 + 64 of 448 rows kept no MagR.
  EXPECT_NE(plot.rendered.svg.find("<title>layer 0: none, 88 (19.6%)</title>"), std::string::npos);
  EXPECT_NE(plot.caption.find("70 modules are too many"), std::string::npos) << plot.caption;
  // The fixture's items cover only layers 0 and 1 of q_proj and down_proj.
  const std::optional<app::Plot> gain = app::alpha_gain_plot(app::load_run_summary(dir), "gain.svg");
  ASSERT_TRUE(gain.has_value());
  const std::vector<std::string>& notes = gain->rendered.notes;
  EXPECT_NE(std::find(notes.begin(), notes.end(), "module 9.down_proj has an alpha search but no items, so no "
                                                  "per-row result"),
            notes.end());
}

TEST(ComparisonReport, AlphaPlotsOnlyForRunsThatSearched) {
  const fs::path root = testing::scratch_dir("report_alpha_compare");
  RunFixture searched{"gptq", 3, -1, true};
  searched.alpha_search = true;
  write_run(root / "runs" / "auto", searched);
  write_run(root / "runs" / "fixed", {"rtn", 3, -1, true});
  write_run(root / "runs" / "plain", {"gptq", 3});
  app::write_comparison_report({root / "runs"}, root / "out");
  EXPECT_TRUE(fs::exists(root / "out" / "plots" / "magr-alpha-auto.svg"));
  EXPECT_FALSE(fs::exists(root / "out" / "plots" / "magr-alpha-fixed.svg"));
  EXPECT_FALSE(fs::exists(root / "out" / "plots" / "magr-alpha-plain.svg"));
  const std::string md = read(root / "out" / "report.md");
  EXPECT_EQ(count(md, "## MagR alpha chosen per row\n"), 1u);
  EXPECT_NE(md.find("(plots/magr-alpha-auto.svg)"), std::string::npos) << md;
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
