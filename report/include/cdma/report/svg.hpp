// Small, dependency-free SVG charts for the HTML report: line charts, grouped bar charts and
// timelines, with labelled axes and a colour-blind-safe palette (Okabe-Ito).
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace cdma::report {

// The widest chart the report page shows whole (its content box, report/src/html.cpp: 1100 px less
// padding): wider charts would hide their title and legend at load (tests/report/check_page.py).
inline constexpr int kPageWidth = 1060;

struct Series {
  std::string name;
  std::vector<double> x, y;  // same length; NaN y values are skipped
  bool line = true;          // join the points
  bool dots = true;          // a marker per point, with its values on hover
  int colour = -1;           // palette index (-1: the series' position)
  bool dashed = false;
};

struct Axes {
  std::string title, x_label, y_label;
  bool log_y = false, log_x = false;
  std::optional<double> y_min, y_max;
  int width = 720, height = 320;
  // A file of its own (white background, the chart styles embedded) rather than a chart inside the
  // report page, whose style sheet styles it.
  bool standalone = false;
};

// One line (with point markers) per series over numeric x; a series may be markers only (a scatter)
// or a line only (a CDF, a model curve). log_x: a logarithmic x axis.
std::string line_chart(const Axes& axes, const std::vector<Series>& series);

// Groups of bars: categories along x, one bar per series in each group (series[i].y[j] is the
// value of series i in category j).
std::string bar_chart(const Axes& axes, const std::vector<std::string>& categories, const std::vector<Series>& series);

struct Span {
  std::string lane;   // row label
  double start, end;  // in x units
  int colour;         // palette index
  std::string label;  // tooltip
};

// Horizontal spans per lane over a shared time axis.
std::string timeline_chart(const Axes& axes, const std::vector<std::string>& lanes, const std::vector<Span>& spans,
                           const std::vector<std::pair<int, std::string>>& legend);

// A grid of cells: rows x columns, values in [lo, hi] mapped to a sequential colour-blind-safe
// scale (NaN cells blank); a colour bar explains the scale.
std::string heatmap(const Axes& axes, const std::vector<std::string>& rows, const std::vector<std::string>& columns,
                    const std::vector<std::vector<double>>& values, double lo, double hi);

// Palette colour i (cycled), as "#rrggbb".
const char* palette(int i);

// Escapes text for HTML/SVG.
std::string escape(const std::string& s);

}  // namespace cdma::report
