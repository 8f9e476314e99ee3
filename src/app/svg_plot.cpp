#include "app/svg_plot.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <limits>

#include "core/error.hpp"

namespace magrq::app::svg {

namespace {

// Okabe and Ito's colour-blind safe palette (with brown in place of its yellow, which is
// unreadable as a thin line on white). The order alternates dark and light colours, so
// neighbouring series also differ in grayscale. Markers, dashes and bar patterns keep
// series apart when colour is lost.
constexpr const char* kPalette[] = {"#0072B2", "#E69F00", "#009E73", "#CC79A7",
                                    "#D55E00", "#56B4E9", "#000000", "#994F00"};
constexpr int kStyleCount = 8;
constexpr const char* kDashes[] = {"", "7 4", "2 3", "9 3 2 3"};
constexpr int kPatternCount = 4;  // none, diagonal stripes, dots, horizontal stripes
// Gray hatching for a stacked series with `hatched`, which is usually light, so white
// stripes would not show on it.
constexpr int kHatchPattern = 4;

// Font sizes in pixels, and the mean advance of one character as a fraction of the font
// size: an estimate for sans-serif text, used only to reserve room for labels.
constexpr double kTickFont = 11.0;
constexpr double kLegendFont = 12.0;
constexpr double kTitleFont = 15.0;
constexpr double kCharWidth = 0.6;
constexpr double kLegendRow = 18.0;
// Markers are left out of lines with more points than this, where they would overlap.
constexpr size_t kMaxMarkedPoints = 80;
constexpr double kNoLength = std::numeric_limits<double>::quiet_NaN();

std::string num(double value) {
  char text[40];
  std::snprintf(text, sizeof(text), "%.2f", value);
  return text;
}

double text_width(std::string_view text, double font) {
  return static_cast<double>(text.size()) * font * kCharWidth;
}

std::string text_element(double x, double y, std::string_view text, double font, const char* anchor,
                         const std::string& extra = "") {
  return "<text x=\"" + num(x) + "\" y=\"" + num(y) + "\" font-size=\"" + num(font) +
         "\" text-anchor=\"" + anchor + "\"" + extra + ">" + escape_xml(text) + "</text>\n";
}

int marker_index(size_t series) {
  return static_cast<int>((series + series / kStyleCount) % kStyleCount);
}

// One marker shape per style index, centred on (x, y).
std::string marker(int shape, double x, double y, const char* colour) {
  const std::string fill = std::string(" fill=\"") + colour + "\"";
  const std::string stroke = std::string(" fill=\"none\" stroke=\"") + colour + "\" stroke-width=\"1.8\"";
  auto path = [&](const std::string& d, const std::string& style) { return "<path d=\"" + d + "\"" + style + "/>\n"; };
  auto at = [&](double dx, double dy) { return num(x + dx) + "," + num(y + dy); };
  switch (shape) {
    case 0: return "<circle cx=\"" + num(x) + "\" cy=\"" + num(y) + "\" r=\"3.5\"" + fill + "/>\n";
    case 1: return "<rect x=\"" + num(x - 3.2) + "\" y=\"" + num(y - 3.2) + "\" width=\"6.4\" height=\"6.4\"" + fill + "/>\n";
    case 2: return path("M" + at(0, -4.5) + " L" + at(4, 3) + " L" + at(-4, 3) + " Z", fill);
    case 3: return path("M" + at(0, -4.5) + " L" + at(4.5, 0) + " L" + at(0, 4.5) + " L" + at(-4.5, 0) + " Z", fill);
    case 4: return path("M" + at(0, 4.5) + " L" + at(4, -3) + " L" + at(-4, -3) + " Z", fill);
    case 5: return path("M" + at(-4.5, 0) + " L" + at(4.5, 0) + " M" + at(0, -4.5) + " L" + at(0, 4.5), stroke);
    case 6: return path("M" + at(-3.5, -3.5) + " L" + at(3.5, 3.5) + " M" + at(-3.5, 3.5) + " L" + at(3.5, -3.5), stroke);
    default:
      return "<circle cx=\"" + num(x) + "\" cy=\"" + num(y) + "\" r=\"3.5\" fill=\"#FFFFFF\" stroke=\"" + colour +
             "\" stroke-width=\"1.5\"/>\n";
  }
}

// White stripes or dots drawn over a bar's colour, so that bars stay apart in grayscale.
std::string pattern_definition(int pattern) {
  const std::string id = "pattern" + std::to_string(pattern);
  const std::string open = "<pattern id=\"" + id + "\" patternUnits=\"userSpaceOnUse\" width=\"6\" height=\"6\"";
  switch (pattern) {
    case 1:
      return open + " patternTransform=\"rotate(45)\"><rect width=\"2.5\" height=\"6\" fill=\"#FFFFFF\" fill-opacity=\"0.6\"/></pattern>\n";
    case 2:
      return open + "><circle cx=\"3\" cy=\"3\" r=\"1.3\" fill=\"#FFFFFF\" fill-opacity=\"0.75\"/></pattern>\n";
    case kHatchPattern:
      return open + " patternTransform=\"rotate(45)\"><rect width=\"1.2\" height=\"6\" fill=\"#555555\" fill-opacity=\"0.55\"/></pattern>\n";
    default:
      return open + "><rect width=\"6\" height=\"2\" fill=\"#FFFFFF\" fill-opacity=\"0.6\"/></pattern>\n";
  }
}

// Draws a bar (or a legend swatch, for css_class "swatch") in the colour and pattern of
// a series. The pattern is a second rectangle, of class css_class + "-pattern".
std::string filled_rect(double x, double y, double width, double height, size_t series, const std::string& css_class) {
  const std::string box = "x=\"" + num(x) + "\" y=\"" + num(y) + "\" width=\"" + num(width) + "\" height=\"" +
                          num(height) + "\"";
  std::string text = "<rect class=\"" + css_class + "\" " + box + " fill=\"" + kPalette[series % kStyleCount] + "\"/>\n";
  const int pattern = static_cast<int>(series % kPatternCount);
  if (pattern != 0) {
    text += "<rect class=\"" + css_class + "-pattern\" " + box + " fill=\"url(#pattern" + std::to_string(pattern) +
            ")\"/>\n";
  }
  return text;
}

bool drawable(double value, bool log_y) {
  return std::isfinite(value) && (!log_y || value > 0.0);
}

std::string why_not_drawn(double value) {
  return std::isfinite(value) ? "not positive on the log scale" : "not finite";
}

// The y axis: its range, ticks and the map from values to pixels.
struct YAxis {
  bool log = false;
  double low = 0.0;
  double high = 1.0;
  std::vector<double> ticks;

  double fraction(double value) const {
    if (log) {
      return (std::log10(value) - std::log10(low)) / (std::log10(high) - std::log10(low));
    }
    return (value - low) / (high - low);
  }
};

YAxis make_y_axis(std::vector<double> values, const ChartOptions& options, bool include_zero) {
  YAxis axis;
  axis.log = options.log_y;
  if (include_zero && !options.log_y) {
    values.push_back(0.0);
  }
  if (values.empty()) {
    axis.ticks = options.log_y ? log_ticks(1.0, 10.0) : nice_ticks(0.0, 1.0, 5);
  } else {
    const auto [low, high] = std::minmax_element(values.begin(), values.end());
    axis.ticks = options.log_y ? log_ticks(*low, *high) : nice_ticks(*low, *high, 5);
  }
  axis.low = axis.ticks.front();
  axis.high = axis.ticks.back();
  return axis;
}

// Pixel geometry shared by both chart kinds: the plot box and the space around it.
struct Layout {
  double left = 0.0;
  double top = 0.0;
  double right = 0.0;
  double bottom = 0.0;
  double width = 0.0;   // whole SVG
  double height = 0.0;  // whole SVG
  double legend_x = 0.0;
  double category_label_room = 0.0;
  bool rotate_categories = false;
  size_t category_label_step = 1;

  double y_pixel(const YAxis& axis, double value) const {
    return bottom - axis.fraction(value) * (bottom - top);
  }
};

std::string y_tick_text(const YAxis& axis, double tick) {
  if (axis.log) {
    return format_tick(tick, tick);
  }
  const double step = axis.ticks.size() > 1 ? axis.ticks[1] - axis.ticks[0] : 1.0;
  return format_tick(tick, step);
}

Layout make_layout(const ChartOptions& options, const YAxis& axis, bool has_title, bool has_x_label,
                   const std::vector<std::string>& categories, const std::vector<std::string>& legend_names,
                   bool has_notes) {
  Layout layout;
  double tick_width = 0.0;
  for (size_t i = 0; i < axis.ticks.size(); ++i) {
    tick_width = std::max(tick_width, text_width(y_tick_text(axis, axis.ticks[i]), kTickFont));
  }
  layout.left = 26.0 + tick_width + 8.0;
  layout.top = has_title ? 40.0 : 16.0;
  layout.right = static_cast<double>(options.width) - 16.0;

  double below = 22.0;  // tick labels
  if (!categories.empty()) {
    double longest = 0.0;
    for (const std::string& name : categories) {
      longest = std::max(longest, text_width(name, kTickFont));
    }
    const double spacing = (layout.right - layout.left) / static_cast<double>(categories.size());
    layout.rotate_categories = longest + 6.0 > spacing;
    if (layout.rotate_categories) {
      // A 45-degree label needs about 1.5 font heights between neighbours to stay apart.
      layout.category_label_step = static_cast<size_t>(std::ceil(1.5 * kTickFont / spacing));
      layout.category_label_room = longest * std::sqrt(0.5) + 8.0;
      below = 12.0 + layout.category_label_room;
    }
  }
  below += has_x_label ? 22.0 : 0.0;
  below += has_notes ? 18.0 : 0.0;
  layout.bottom = static_cast<double>(options.height) - 22.0 - (has_x_label ? 22.0 : 0.0) - (has_notes ? 18.0 : 0.0);
  layout.height = layout.bottom + below;

  double legend_width = 0.0;
  for (const std::string& name : legend_names) {
    legend_width = std::max(legend_width, 36.0 + text_width(name, kLegendFont));
  }
  layout.legend_x = layout.right + 16.0;
  layout.width = legend_names.empty() ? static_cast<double>(options.width) : layout.legend_x + legend_width + 12.0;
  const double legend_bottom = layout.top + kLegendRow * static_cast<double>(legend_names.size());
  layout.height = std::max(layout.height, legend_bottom + 12.0);
  return layout;
}

std::string open_document(const Layout& layout, const std::string& title, const std::vector<int>& patterns) {
  std::string text = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  text += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(layout.width) + "\" height=\"" +
          num(layout.height) + "\" viewBox=\"0 0 " + num(layout.width) + " " + num(layout.height) +
          "\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n";
  text += "<title>" + escape_xml(title) + "</title>\n";
  if (!patterns.empty()) {
    text += "<defs>\n";
    for (int pattern : patterns) {
      text += pattern_definition(pattern);
    }
    text += "</defs>\n";
  }
  text += "<rect width=\"100%\" height=\"100%\" fill=\"#FFFFFF\"/>\n";
  return text;
}

// Grid lines, y tick labels, the plot frame, the title and the axis labels.
std::string draw_frame(const Layout& layout, const YAxis& axis, const std::string& title, const std::string& x_label,
                       const std::string& y_label) {
  std::string text;
  for (size_t i = 0; i < axis.ticks.size(); ++i) {
    const double y = layout.y_pixel(axis, axis.ticks[i]);
    text += "<line x1=\"" + num(layout.left) + "\" y1=\"" + num(y) + "\" x2=\"" + num(layout.right) + "\" y2=\"" +
            num(y) + "\" stroke=\"#DDDDDD\" stroke-width=\"1\"/>\n";
    text += text_element(layout.left - 6.0, y + 4.0, y_tick_text(axis, axis.ticks[i]), kTickFont, "end");
  }
  text += "<rect x=\"" + num(layout.left) + "\" y=\"" + num(layout.top) + "\" width=\"" +
          num(layout.right - layout.left) + "\" height=\"" + num(layout.bottom - layout.top) +
          "\" fill=\"none\" stroke=\"#444444\" stroke-width=\"1\"/>\n";
  if (!title.empty()) {
    text += text_element((layout.left + layout.right) / 2.0, 24.0, title, kTitleFont, "middle", " font-weight=\"bold\"");
  }
  if (!x_label.empty()) {
    const double below_ticks = layout.bottom + 22.0 + (layout.rotate_categories ? layout.category_label_room - 10.0 : 0.0);
    text += text_element((layout.left + layout.right) / 2.0, below_ticks + 16.0, x_label, kLegendFont, "middle");
  }
  if (!y_label.empty()) {
    const double y = (layout.top + layout.bottom) / 2.0;
    text += text_element(16.0, y, y_label, kLegendFont, "middle",
                         " transform=\"rotate(-90 16.00 " + num(y) + ")\"");
  }
  return text;
}

std::string draw_category_labels(const Layout& layout, const std::vector<std::string>& categories) {
  std::string text;
  const double spacing = (layout.right - layout.left) / static_cast<double>(categories.size());
  for (size_t i = 0; i < categories.size(); i += layout.category_label_step) {
    const double x = layout.left + (static_cast<double>(i) + 0.5) * spacing;
    text += "<line x1=\"" + num(x) + "\" y1=\"" + num(layout.bottom) + "\" x2=\"" + num(x) + "\" y2=\"" +
            num(layout.bottom + 4.0) + "\" stroke=\"#444444\"/>\n";
    if (layout.rotate_categories) {
      const double y = layout.bottom + 12.0;
      text += text_element(x + 3.0, y, categories[i], kTickFont, "end",
                           " transform=\"rotate(-45 " + num(x + 3.0) + " " + num(y) + ")\"");
    } else {
      text += text_element(x, layout.bottom + 16.0, categories[i], kTickFont, "middle");
    }
  }
  return text;
}

constexpr const char* kLineAndBarSkipReason = "that are not finite or, on the log scale, not positive";

std::string draw_notes(const Layout& layout, size_t skipped, const std::string& reason = kLineAndBarSkipReason) {
  if (skipped == 0) {
    return "";
  }
  const std::string note = "Not drawn: " + std::to_string(skipped) + " value(s) " + reason + ".";
  return text_element(layout.left, layout.height - 8.0, note, kTickFont, "start",
                      " font-style=\"italic\" fill=\"#555555\"");
}

std::string legend_line_sample(double x, double y, size_t series) {
  const char* colour = kPalette[series % kStyleCount];
  const char* dash = kDashes[series % 4];
  std::string text = "<line x1=\"" + num(x) + "\" y1=\"" + num(y) + "\" x2=\"" + num(x + 26.0) + "\" y2=\"" + num(y) +
                     "\" stroke=\"" + colour + "\" stroke-width=\"2\"" +
                     (dash[0] ? std::string(" stroke-dasharray=\"") + dash + "\"" : std::string()) + "/>\n";
  return text + marker(marker_index(series), x + 13.0, y, colour);
}

std::string legend_reference_sample(double x, double y) {
  return "<line x1=\"" + num(x) + "\" y1=\"" + num(y) + "\" x2=\"" + num(x + 26.0) + "\" y2=\"" + num(y) +
         "\" stroke=\"#555555\" stroke-width=\"1.5\" stroke-dasharray=\"4 4\"/>\n";
}

// The x axis of a line chart: categorical (index) or numeric with ticks.
struct XAxis {
  bool categorical = false;
  double low = 0.0;
  double high = 1.0;
  std::vector<double> ticks;
};

XAxis make_x_axis(const LineChart& chart, const std::vector<double>& xs) {
  XAxis axis;
  if (!chart.x_categories.empty()) {
    axis.categorical = true;
    axis.low = -0.5;
    axis.high = static_cast<double>(chart.x_categories.size()) - 0.5;
    return axis;
  }

  std::vector<double> span = xs;
  for (double tick : chart.x_ticks) {
    if (std::isfinite(tick)) {
      span.push_back(tick);
    }
  }
  if (span.empty()) {
    span = {0.0, 1.0};
  }

  const auto [low, high] = std::minmax_element(span.begin(), span.end());
  double first = *low;
  double last = *high;
  if (chart.x_ticks.empty()) {
    axis.ticks = nice_ticks(*low, *high, 6);
    first = axis.ticks.front();
    last = axis.ticks.back();
  } else {
    axis.ticks = chart.x_ticks;
  }
  // 5% padding on each side keeps the end markers off the frame. A single value gets a
  // unit-wide range, so that the map to pixels stays defined.
  const double pad = last > first ? 0.05 * (last - first) : 0.5;
  axis.low = first - pad;
  axis.high = last + pad;
  return axis;
}

double x_pixel(const Layout& layout, const XAxis& axis, double value) {
  return layout.left + (value - axis.low) / (axis.high - axis.low) * (layout.right - layout.left);
}

std::string draw_x_ticks(const Layout& layout, const XAxis& axis) {
  std::string text;
  const double step = axis.ticks.size() > 1 ? std::abs(axis.ticks[1] - axis.ticks[0]) : 1.0;
  for (double tick : axis.ticks) {
    if (!std::isfinite(tick)) {
      continue;
    }
    const double x = x_pixel(layout, axis, tick);
    text += "<line x1=\"" + num(x) + "\" y1=\"" + num(layout.bottom) + "\" x2=\"" + num(x) + "\" y2=\"" +
            num(layout.bottom + 4.0) + "\" stroke=\"#444444\"/>\n";
    text += text_element(x, layout.bottom + 16.0, format_tick(tick, step), kTickFont, "middle");
  }
  return text;
}

void check_line_input(const LineChart& chart) {
  chart.options.validate();
  for (const LineSeries& series : chart.series) {
    if (series.x.size() != series.y.size()) {
      throw DataError(detail::concat("line series '", series.name, "' has ", series.x.size(), " x values and ",
                                     series.y.size(), " y values; expected the same count"));
    }
  }
}

// The drawable points of each series, with every skipped point noted.
struct SeriesPoints {
  std::vector<std::vector<std::pair<double, double>>> pieces;  // runs of drawable points
  size_t count = 0;
};

SeriesPoints collect_points(const LineSeries& series, const LineChart& chart, std::vector<std::string>& notes) {
  SeriesPoints points;
  points.pieces.emplace_back();
  const double category_limit = static_cast<double>(chart.x_categories.size());
  for (size_t i = 0; i < series.x.size(); ++i) {
    const double x = series.x[i];
    const double y = series.y[i];
    const bool x_ok = std::isfinite(x) && (chart.x_categories.empty() || (x >= 0.0 && x < category_limit));
    if (!x_ok || !drawable(y, chart.options.log_y)) {
      const std::string reason = !x_ok ? "x is not finite or outside the categories" : "y is " + why_not_drawn(y);
      notes.push_back(detail::concat("series '", series.name, "': point ", i, " (x = ", x, ", y = ", y,
                                     ") not drawn: ", reason));
      if (!points.pieces.back().empty()) {
        points.pieces.emplace_back();
      }
      continue;
    }
    points.pieces.back().emplace_back(x, y);
    ++points.count;
  }
  if (points.pieces.back().empty()) {
    points.pieces.pop_back();
  }
  return points;
}

std::string draw_series(const Layout& layout, const XAxis& x_axis, const YAxis& y_axis, const SeriesPoints& points,
                        size_t index) {
  const char* colour = kPalette[index % kStyleCount];
  const char* dash = kDashes[index % 4];
  std::string text;
  for (const auto& piece : points.pieces) {
    std::string coordinates;
    for (const auto& [x, y] : piece) {
      if (!coordinates.empty()) {
        coordinates += ' ';
      }
      coordinates += num(x_pixel(layout, x_axis, x));
      coordinates += ',';
      coordinates += num(layout.y_pixel(y_axis, y));
    }
    text += "<polyline class=\"series\" points=\"" + coordinates + "\" fill=\"none\" stroke=\"" + colour +
            "\" stroke-width=\"2\" stroke-linejoin=\"round\"" +
            (dash[0] ? std::string(" stroke-dasharray=\"") + dash + "\"" : std::string()) + "/>\n";
  }
  if (points.count <= kMaxMarkedPoints) {
    for (const auto& piece : points.pieces) {
      for (const auto& [x, y] : piece) {
        text += marker(marker_index(index), x_pixel(layout, x_axis, x), layout.y_pixel(y_axis, y), colour);
      }
    }
  }
  return text;
}

bool is_hex_colour(const std::string& colour) {
  if (colour.size() != 7 || colour[0] != '#') {
    return false;
  }
  return std::all_of(colour.begin() + 1, colour.end(), [](unsigned char c) { return std::isxdigit(c) != 0; });
}

void check_stacked_input(const StackedBarChart& chart) {
  chart.options.validate();
  if (chart.options.log_y) {
    throw ConfigError("stacked bar chart: log_y = true is not supported, because stacked lengths add up only on a "
                      "linear axis");
  }
  for (const StackedSeries& series : chart.series) {
    if (series.values.size() != chart.categories.size()) {
      throw DataError(detail::concat("stacked series '", series.name, "' has ", series.values.size(),
                                     " values; expected one per category (", chart.categories.size(), ")"));
    }
    if (!series.colour.empty() && !is_hex_colour(series.colour)) {
      throw DataError(detail::concat("stacked series '", series.name, "' has colour '", series.colour,
                                     "'; expected #RRGGBB or empty for the default palette"));
    }
  }
}

// The drawn length of every segment, lengths[series][category]: the value, or its
// percentage of the category's total with as_share. NaN marks a segment that is not
// drawn, and each one gets a note.
std::vector<std::vector<double>> stacked_lengths(const StackedBarChart& chart, std::vector<std::string>& notes) {
  const size_t categories = chart.categories.size();
  std::vector<std::vector<double>> lengths(chart.series.size(), std::vector<double>(categories, kNoLength));
  for (size_t c = 0; c < categories; ++c) {
    double total = 0.0;
    for (size_t s = 0; s < chart.series.size(); ++s) {
      const double value = chart.series[s].values[c];
      if (std::isfinite(value) && value >= 0.0) {
        lengths[s][c] = value;
        total += value;
      } else {
        notes.push_back(detail::concat("series '", chart.series[s].name, "', category '", chart.categories[c],
                                       "': value ", value, " not drawn: ",
                                       std::isfinite(value) ? "negative" : "not finite"));
      }
    }
    if (!chart.as_share) {
      continue;
    }
    if (!(total > 0.0)) {
      notes.push_back("category '" + chart.categories[c] + "': total is 0, so it has no shares and no bar");
      for (auto& series_lengths : lengths) {
        series_lengths[c] = kNoLength;
      }
      continue;
    }
    for (auto& series_lengths : lengths) {
      series_lengths[c] = 100.0 * series_lengths[c] / total;
    }
  }
  return lengths;
}

std::string stacked_fill(const StackedBarChart& chart, size_t series) {
  const std::string& colour = chart.series[series].colour;
  return colour.empty() ? kPalette[series % kStyleCount] : colour;
}

// One segment of a stacked bar, or a legend swatch, and its hatching when the series is
// hatched. A thin white edge keeps neighbouring segments of similar colour apart, and a
// gray one makes a light swatch visible on the white legend.
std::string stacked_rect(double x, double y, double width, double height, const std::string& fill, bool hatched,
                         const std::string& css_class, const std::string& tooltip) {
  const std::string box = "x=\"" + num(x) + "\" y=\"" + num(y) + "\" width=\"" + num(width) + "\" height=\"" +
                          num(height) + "\"";
  const std::string edge = css_class == "swatch" ? "#888888" : "#FFFFFF";
  std::string text = "<rect class=\"" + css_class + "\" " + box + " fill=\"" + fill + "\" stroke=\"" + edge +
                     "\" stroke-width=\"0.6\"";
  text += tooltip.empty() ? "/>\n" : "><title>" + escape_xml(tooltip) + "</title></rect>\n";
  if (hatched) {
    text += "<rect class=\"" + css_class + "-pattern\" " + box + " fill=\"url(#pattern" +
            std::to_string(kHatchPattern) + ")\"/>\n";
  }
  return text;
}

std::string segment_tooltip(const StackedBarChart& chart, size_t series, size_t category, double length) {
  std::string text = chart.categories[category] + ": " + chart.series[series].name + ", " +
                     detail::concat(chart.series[series].values[category]);
  if (chart.as_share) {
    char share[32];
    std::snprintf(share, sizeof(share), " (%.1f%%)", length);
    text += share;
  }
  return text;
}

}  // namespace

void ChartOptions::validate() const {
  if (width < 320 || width > 4096) {
    throw ConfigError(detail::concat("chart width ", width, " px is out of range; expected 320 to 4096"));
  }
  if (height < 200 || height > 4096) {
    throw ConfigError(detail::concat("chart height ", height, " px is out of range; expected 200 to 4096"));
  }
}

std::string escape_xml(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: {
        const auto byte = static_cast<unsigned char>(c);
        if (byte < 0x20 && c != '\t' && c != '\n' && c != '\r') {
          char escaped[8];
          std::snprintf(escaped, sizeof(escaped), "\\x%02X", byte);
          out += escaped;
        } else {
          out += c;
        }
      }
    }
  }
  return out;
}

std::vector<double> nice_ticks(double low, double high, int target) {
  MAGRQ_CHECK(std::isfinite(low) && std::isfinite(high) && low <= high && target >= 1, "low ", low, " high ", high,
              " target ", target);
  if (low == high) {
    // A flat range gets a symmetric margin so that the value sits inside the axis.
    const double margin = low == 0.0 ? 1.0 : 0.5 * std::abs(low);
    low -= margin;
    high += margin;
  }
  const double raw = (high - low) / target;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double fraction = raw / magnitude;
  double step = 10.0 * magnitude;
  for (double multiple : {5.0, 2.0, 1.0}) {
    if (fraction <= multiple) {
      step = multiple * magnitude;
    }
  }

  // Ticks are integer multiples of the step, not sums of steps, so rounding errors do
  // not accumulate. The 1e-9 tolerance keeps a bound that is a multiple of the step from
  // gaining an extra tick.
  const double first = std::floor(low / step + 1e-9);
  const double last = std::ceil(high / step - 1e-9);
  std::vector<double> ticks;
  for (double k = first; k <= last; k += 1.0) {
    ticks.push_back(k * step == 0.0 ? 0.0 : k * step);
  }
  return ticks;
}

std::vector<double> log_ticks(double low, double high) {
  MAGRQ_CHECK(low > 0.0 && std::isfinite(high) && low <= high, "low ", low, " high ", high);
  int first_decade = static_cast<int>(std::floor(std::log10(low) + 1e-12));
  int last_decade = static_cast<int>(std::ceil(std::log10(high) - 1e-12));
  if (last_decade == first_decade) {
    ++last_decade;
  }
  const int decades = last_decade - first_decade;

  if (decades > 4) {
    // Wide ranges end at whole decades and, past eight decades, label every k-th decade
    // so that the labels do not crowd.
    const int stride = (decades + 7) / 8;
    last_decade = first_decade + stride * ((decades + stride - 1) / stride);
    std::vector<double> ticks;
    for (int d = first_decade; d <= last_decade; d += stride) {
      ticks.push_back(std::pow(10.0, d));
    }
    return ticks;
  }

  // Up to four decades, the axis ends at the nearest 1-2-5 step outside the data, so the
  // data fills the plot, instead of at a whole decade.
  std::vector<double> candidates;
  for (int d = first_decade; d <= last_decade; ++d) {
    for (double m : {1.0, 2.0, 5.0}) {
      candidates.push_back(m * std::pow(10.0, d));
    }
  }

  const double tolerance = 1e-9;
  double lower = candidates.front();
  for (double c : candidates) {
    if (c <= low * (1 + tolerance)) {
      lower = c;
    }
  }
  double upper = candidates.back();
  for (auto it = candidates.rbegin(); it != candidates.rend(); ++it) {
    if (*it >= high * (1 - tolerance)) {
      upper = *it;
    }
  }
  if (upper <= lower) {
    upper = *std::upper_bound(candidates.begin(), candidates.end(), lower);
  }

  // Within two decades every 1-2-5 step gets a label. Beyond, the two ends and the
  // powers of ten between them get one.
  std::vector<double> ticks;
  for (double c : candidates) {
    const bool inside = c > lower && c < upper;
    const bool power_of_ten = std::abs(std::log10(c) - std::round(std::log10(c))) < 1e-9;
    if (c == lower || c == upper || (inside && (decades <= 2 || power_of_ten))) {
      ticks.push_back(c);
    }
  }
  return ticks;
}

std::string format_tick(double value, double step) {
  step = std::abs(step);
  if (step == 0.0 || !std::isfinite(step)) {
    step = std::abs(value);
  }
  if (std::abs(value) <= step * 1e-9) {
    return "0";
  }
  const int decimals = std::max(0, static_cast<int>(std::ceil(-std::log10(step) - 1e-9)));
  char text[40];
  if (decimals > 4 || std::abs(value) >= 1e6) {
    std::snprintf(text, sizeof(text), "%.3g", value);
  } else {
    std::snprintf(text, sizeof(text), "%.*f", decimals, value);
  }
  return text;
}

Rendered render_line_chart(const LineChart& chart) {
  check_line_input(chart);
  Rendered rendered;
  std::vector<SeriesPoints> points;
  std::vector<double> xs;
  std::vector<double> ys;
  std::vector<std::string> legend;
  for (const LineSeries& series : chart.series) {
    points.push_back(collect_points(series, chart, rendered.notes));
    if (points.back().count == 0) {
      rendered.notes.push_back("series '" + series.name + "' has no point to draw and is left out of the legend");
    } else {
      legend.push_back(series.name);
    }
    for (const auto& piece : points.back().pieces) {
      for (const auto& [x, y] : piece) {
        xs.push_back(x);
        ys.push_back(y);
      }
    }
  }
  std::vector<const ReferenceLine*> references;
  for (const ReferenceLine& reference : chart.references) {
    if (!drawable(reference.y, chart.options.log_y)) {
      rendered.notes.push_back(detail::concat("reference line '", reference.name, "' (y = ", reference.y,
                                              ") not drawn: y is ", why_not_drawn(reference.y)));
      continue;
    }
    references.push_back(&reference);
    legend.push_back(reference.name);
    ys.push_back(reference.y);
  }

  const YAxis y_axis = make_y_axis(ys, chart.options, chart.options.y_includes_zero);
  const XAxis x_axis = make_x_axis(chart, xs);
  const Layout layout = make_layout(chart.options, y_axis, !chart.title.empty(), !chart.x_label.empty(),
                                    chart.x_categories, legend, !rendered.notes.empty());
  std::string& svg = rendered.svg;
  svg = open_document(layout, chart.title, {});
  svg += draw_frame(layout, y_axis, chart.title, chart.x_label, chart.y_label);
  svg += x_axis.categorical ? draw_category_labels(layout, chart.x_categories) : draw_x_ticks(layout, x_axis);

  double legend_y = layout.top + 9.0;
  for (const ReferenceLine* reference : references) {
    const double y = layout.y_pixel(y_axis, reference->y);
    svg += "<line x1=\"" + num(layout.left) + "\" y1=\"" + num(y) + "\" x2=\"" + num(layout.right) + "\" y2=\"" +
           num(y) + "\" stroke=\"#555555\" stroke-width=\"1.5\" stroke-dasharray=\"4 4\"/>\n";
  }
  for (size_t i = 0; i < points.size(); ++i) {
    if (points[i].count == 0) {
      continue;
    }
    svg += draw_series(layout, x_axis, y_axis, points[i], i);
    svg += legend_line_sample(layout.legend_x, legend_y, i);
    svg += text_element(layout.legend_x + 34.0, legend_y + 4.0, chart.series[i].name, kLegendFont, "start");
    legend_y += kLegendRow;
  }
  for (const ReferenceLine* reference : references) {
    svg += legend_reference_sample(layout.legend_x, legend_y);
    svg += text_element(layout.legend_x + 34.0, legend_y + 4.0, reference->name, kLegendFont, "start");
    legend_y += kLegendRow;
  }
  svg += draw_notes(layout, rendered.notes.size());
  svg += "</svg>\n";
  return rendered;
}

Rendered render_bar_chart(const BarChart& chart) {
  chart.options.validate();
  for (const BarSeries& series : chart.series) {
    if (series.values.size() != chart.categories.size()) {
      throw DataError(detail::concat("bar series '", series.name, "' has ", series.values.size(),
                                     " values; expected one per category (", chart.categories.size(), ")"));
    }
  }
  Rendered rendered;
  std::vector<double> values;
  std::vector<std::string> legend;
  std::vector<int> patterns;
  for (size_t s = 0; s < chart.series.size(); ++s) {
    const BarSeries& series = chart.series[s];
    for (size_t c = 0; c < series.values.size(); ++c) {
      if (drawable(series.values[c], chart.options.log_y)) {
        values.push_back(series.values[c]);
      } else {
        rendered.notes.push_back(detail::concat("series '", series.name, "', category '", chart.categories[c],
                                                "': value ", series.values[c], " not drawn: ",
                                                why_not_drawn(series.values[c])));
      }
    }
    legend.push_back(series.name);
    const int pattern = static_cast<int>(s % kPatternCount);
    if (pattern != 0 && std::find(patterns.begin(), patterns.end(), pattern) == patterns.end()) {
      patterns.push_back(pattern);
    }
  }
  std::sort(patterns.begin(), patterns.end());

  if (chart.options.log_y && !values.empty()) {
    // A log axis has no 0, so bars rise from its lower end, and a bar at exactly that end
    // would have no height. The 1% margin moves the lower end to the next 1-2-5 step.
    values.push_back(0.99 * *std::min_element(values.begin(), values.end()));
  }
  const YAxis y_axis = make_y_axis(values, chart.options, true);
  const Layout layout = make_layout(chart.options, y_axis, !chart.title.empty(), !chart.x_label.empty(),
                                    chart.categories, legend, !rendered.notes.empty());
  std::string& svg = rendered.svg;
  svg = open_document(layout, chart.title, patterns);
  svg += draw_frame(layout, y_axis, chart.title, chart.x_label, chart.y_label);
  if (!chart.categories.empty()) {
    svg += draw_category_labels(layout, chart.categories);
  }

  // Bars start at 0 on a linear axis and at the bottom of a log axis, which has no 0.
  const double base = y_axis.log ? layout.bottom : layout.y_pixel(y_axis, 0.0);
  const double spacing = chart.categories.empty() ? 0.0
                                                  : (layout.right - layout.left) / static_cast<double>(chart.categories.size());
  const double bar_width = chart.series.empty() ? 0.0 : 0.8 * spacing / static_cast<double>(chart.series.size());
  for (size_t s = 0; s < chart.series.size(); ++s) {
    for (size_t c = 0; c < chart.categories.size(); ++c) {
      const double value = chart.series[s].values[c];
      if (!drawable(value, chart.options.log_y)) {
        continue;
      }
      const double x = layout.left + spacing * (static_cast<double>(c) + 0.1) + bar_width * static_cast<double>(s);
      const double y = layout.y_pixel(y_axis, value);
      svg += filled_rect(x, std::min(y, base), bar_width, std::abs(base - y), s, "bar");
    }
  }
  double legend_y = layout.top + 9.0;
  for (size_t s = 0; s < chart.series.size(); ++s) {
    svg += filled_rect(layout.legend_x + 7.0, legend_y - 6.0, 12.0, 12.0, s, "swatch");
    svg += text_element(layout.legend_x + 34.0, legend_y + 4.0, chart.series[s].name, kLegendFont, "start");
    legend_y += kLegendRow;
  }
  svg += draw_notes(layout, rendered.notes.size());
  svg += "</svg>\n";
  return rendered;
}

Rendered render_stacked_bar_chart(const StackedBarChart& chart) {
  check_stacked_input(chart);
  Rendered rendered;
  const std::vector<std::vector<double>> lengths = stacked_lengths(chart, rendered.notes);

  std::vector<double> tops;
  for (size_t c = 0; c < chart.categories.size(); ++c) {
    double top = 0.0;
    for (const auto& series_lengths : lengths) {
      top += std::isnan(series_lengths[c]) ? 0.0 : series_lengths[c];
    }
    tops.push_back(top);
  }
  if (chart.as_share) {
    tops = {0.0, 100.0};  // the share axis always spans 0 to 100 %, whatever the data
  }
  // The legend lists the top layer first, so that it reads in the order of the bars.
  std::vector<std::string> legend;
  for (auto it = chart.series.rbegin(); it != chart.series.rend(); ++it) {
    legend.push_back(it->name);
  }
  const bool any_hatched = std::any_of(chart.series.begin(), chart.series.end(),
                                       [](const StackedSeries& series) { return series.hatched; });

  const YAxis y_axis = make_y_axis(tops, chart.options, true);
  const Layout layout = make_layout(chart.options, y_axis, !chart.title.empty(), !chart.x_label.empty(),
                                    chart.categories, legend, !rendered.notes.empty());
  std::string& svg = rendered.svg;
  svg = open_document(layout, chart.title, any_hatched ? std::vector<int>{kHatchPattern} : std::vector<int>{});
  svg += draw_frame(layout, y_axis, chart.title, chart.x_label, chart.y_label);
  if (!chart.categories.empty()) {
    svg += draw_category_labels(layout, chart.categories);
  }

  const double spacing = chart.categories.empty() ? 0.0
                                                  : (layout.right - layout.left) / static_cast<double>(chart.categories.size());
  for (size_t c = 0; c < chart.categories.size(); ++c) {
    const double x = layout.left + spacing * (static_cast<double>(c) + 0.1);
    double stacked = 0.0;
    for (size_t s = 0; s < chart.series.size(); ++s) {
      const double length = lengths[s][c];
      if (std::isnan(length) || length == 0.0) {
        continue;
      }
      const double top = layout.y_pixel(y_axis, stacked + length);
      const double bottom = layout.y_pixel(y_axis, stacked);
      svg += stacked_rect(x, top, 0.8 * spacing, bottom - top, stacked_fill(chart, s), chart.series[s].hatched,
                          "segment", segment_tooltip(chart, s, c, length));
      stacked += length;
    }
  }
  double legend_y = layout.top + 9.0;
  for (size_t i = 0; i < chart.series.size(); ++i) {
    const size_t s = chart.series.size() - 1 - i;
    svg += stacked_rect(layout.legend_x + 7.0, legend_y - 6.0, 12.0, 12.0, stacked_fill(chart, s),
                        chart.series[s].hatched, "swatch", "");
    svg += text_element(layout.legend_x + 34.0, legend_y + 4.0, chart.series[s].name, kLegendFont, "start");
    legend_y += kLegendRow;
  }
  svg += draw_notes(layout, rendered.notes.size(),
                    chart.as_share ? "that are negative or not finite, or in a category with total 0"
                                   : "that are negative or not finite");
  svg += "</svg>\n";
  return rendered;
}

std::vector<std::string> sequential_colours(size_t count) {
  // Three anchors of one blue hue, light to dark, interpolated linearly in sRGB. The light
  // end is dark enough to show against white and against a light gray "none".
  constexpr int kAnchors[3][3] = {{0xC6, 0xDB, 0xEF}, {0x42, 0x92, 0xC6}, {0x08, 0x30, 0x6B}};
  std::vector<std::string> colours;
  for (size_t i = 0; i < count; ++i) {
    // A single colour takes a middle shade rather than the faint light end.
    const double t = count == 1 ? 0.6 : static_cast<double>(i) / static_cast<double>(count - 1);
    const int segment = t < 0.5 ? 0 : 1;
    const double u = t < 0.5 ? 2.0 * t : 2.0 * t - 1.0;
    char text[8];
    int rgb[3];
    for (int k = 0; k < 3; ++k) {
      const double value = kAnchors[segment][k] + u * (kAnchors[segment + 1][k] - kAnchors[segment][k]);
      rgb[k] = static_cast<int>(std::lround(value));
    }
    std::snprintf(text, sizeof(text), "#%02X%02X%02X", rgb[0], rgb[1], rgb[2]);
    colours.push_back(text);
  }
  return colours;
}

}  // namespace magrq::app::svg
