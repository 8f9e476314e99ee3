// Number formatting shared by the reports and tables.
#pragma once

#include <cstdio>
#include <string>

namespace magrq::app {

// value printed with one printf conversion for a double, such as "%.4f" or "%g".
inline std::string format_double(const char* pattern, double value) {
  char text[64];
  std::snprintf(text, sizeof(text), pattern, value);
  return text;
}

// value with `digits` digits after the point.
inline std::string fixed(double value, int digits) {
  char text[64];
  std::snprintf(text, sizeof(text), "%.*f", digits, value);
  return text;
}

// value in scientific notation with 4 significant digits.
inline std::string scientific(double value) { return format_double("%.3e", value); }

}  // namespace magrq::app
