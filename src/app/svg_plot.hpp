// A small SVG chart writer for reports: line charts, grouped bar charts and stacked bar
// charts.
//
// The output is plain SVG 1.1 text with no scripts, fonts or external references, so
// a browser, a Markdown viewer or rsvg-convert shows it as is. Rendering is
// deterministic: the same chart gives the same bytes (coordinates are printed with two
// decimals in the C locale's number format, and nothing depends on time or addresses).
//
// Points that cannot be drawn (NaN or infinite values, and values <= 0 on a log scale)
// are skipped, counted and listed in Rendered::notes, and the chart prints how many it
// skipped; no NaN ever reaches the SVG text.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace magrq::app::svg {

// Size and y scale of one chart.
struct ChartOptions {
  // Width of the plotting area plus axes, in pixels, in [320, 4096]. The legend adds
  // its own width on the right.
  int width = 720;
  // Height of the plotting area plus title and axes, in pixels, in [200, 4096]. Rotated
  // category labels add their own height below.
  int height = 400;
  // Logarithmic y axis (base 10). Values <= 0 are skipped and counted.
  bool log_y = false;
  // Linear line charts only: extend the y range to include 0. Bar charts on a linear
  // axis always start at 0, because a bar's length must be proportional to its value.
  bool y_includes_zero = false;

  // Throws ConfigError naming the key and value when a field is out of range.
  void validate() const;
};

// One line: points (x[i], y[i]) joined in order. A point that cannot be drawn breaks
// the line into separate pieces.
struct LineSeries {
  std::string name;
  std::vector<double> x;
  std::vector<double> y;
};

// A horizontal dashed line across the plot, such as a full-precision baseline.
struct ReferenceLine {
  std::string name;
  double y = 0.0;
};

struct LineChart {
  std::string title;
  std::string x_label;
  std::string y_label;
  std::vector<LineSeries> series;
  std::vector<ReferenceLine> references;
  // When not empty, the x axis is categorical: x values are indices into this list
  // and the tick labels are its entries (rotated when they do not fit side by side).
  std::vector<std::string> x_categories;
  // When not empty (numeric x axis only), the x ticks; otherwise ticks at nice numbers.
  std::vector<double> x_ticks;
  ChartOptions options;
};

// One series of a bar chart: one value per category of the chart.
struct BarSeries {
  std::string name;
  std::vector<double> values;
};

// Bars grouped by category, one bar per series in each group.
struct BarChart {
  std::string title;
  std::string x_label;
  std::string y_label;
  std::vector<std::string> categories;
  std::vector<BarSeries> series;
  ChartOptions options;
};

// One layer of a stacked bar chart: one value per category, drawn on top of the layers
// before it.
struct StackedSeries {
  std::string name;
  std::vector<double> values;
  // Fill as "#RRGGBB"; empty for the default palette's colour at the series' index.
  std::string colour;
  // Gray diagonal hatching over the fill, to set one layer apart (such as "none") when
  // its colour alone would be too close to a neighbour's in grayscale.
  bool hatched = false;
};

// One stacked bar per category: the first series at the bottom. The legend lists the
// series top to bottom, in the order they appear in the bars.
struct StackedBarChart {
  std::string title;
  std::string x_label;
  std::string y_label;
  std::vector<std::string> categories;
  std::vector<StackedSeries> series;
  // Draw each category's values as percentages of its own total, on a 0 to 100 axis,
  // instead of the values themselves on an axis from 0.
  bool as_share = false;
  // log_y must be false: stacked lengths only add up on a linear axis.
  ChartOptions options;
};

// An SVG document and one note for each point, bar or series that was not drawn.
struct Rendered {
  std::string svg;
  std::vector<std::string> notes;
};

// Renders a line chart. Throws DataError naming the series when its x and y differ in
// length, and ConfigError for invalid options. Cost O(total points).
Rendered render_line_chart(const LineChart& chart);

// Renders a grouped bar chart. Throws DataError naming the series when its value count
// differs from the category count, and ConfigError for invalid options.
Rendered render_bar_chart(const BarChart& chart);

// Renders a stacked bar chart. A negative or non-finite value is not drawn and noted;
// with as_share, so is a category whose total is 0. Throws DataError naming the series
// when its value count differs from the category count or its colour is not #RRGGBB,
// and ConfigError for invalid options or log_y. Cost O(series x categories).
Rendered render_stacked_bar_chart(const StackedBarChart& chart);

// `count` colours of one hue (blue) from light to dark, as "#RRGGBB", for series with an
// order such as increasing strength. Even the lightest stays visible on white.
std::vector<std::string> sequential_colours(size_t count);

// Replaces &, <, >, " and ' by XML entities. A control character, which XML 1.0 does
// not allow, is written visibly as \xNN.
std::string escape_xml(std::string_view text);

// Ticks at 1, 2 or 5 times a power of ten that cover [low, high] with about `target`
// intervals; the first tick is <= low and the last >= high. Requires finite low <= high.
std::vector<double> nice_ticks(double low, double high, int target);

// Ticks for a log axis covering [low, high], with 0 < low <= high. Up to four decades,
// the ends are the nearest 1, 2 or 5 times a power of ten outside the range, and the
// powers of ten between them are ticks too. Within two decades every 1-2-5 step is a
// tick. Wider ranges end at whole decades.
std::vector<double> log_ticks(double low, double high);

// A short text for a tick value: fixed notation with as many decimals as `step` needs,
// or scientific notation for very large or small numbers.
std::string format_tick(double value, double step);

}  // namespace magrq::app::svg
