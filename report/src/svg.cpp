#include <cdma/report/svg.hpp>

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>
#include <utility>

namespace cdma::report {

namespace {
constexpr const char* kPalette[] = {"#0072B2", "#E69F00", "#009E73", "#D55E00",
                                    "#CC79A7", "#56B4E9", "#F0E442", "#000000"};
constexpr int kLeft = 70, kRight = 20, kTop = 34, kBottom = 50;

// Axis ranges are kept within these bounds, so that the scale's arithmetic (differences, logarithms,
// tick steps) stays finite: a value beyond them is drawn at the edge of the chart.
constexpr double kMaxAbs = 1e300, kMinLog = 1e-300;
// No axis has more ticks than this (every tick loop is bounded by it, whatever the range).
constexpr int kMaxTicks = 24;

struct Scale {
  double lo, hi;
  bool log;
  double px0, px1;
  double operator()(double v) const {
    double a = log ? std::log10(std::clamp(v, kMinLog, kMaxAbs)) : std::clamp(v, -kMaxAbs, kMaxAbs);
    double l = log ? std::log10(lo) : lo, h = log ? std::log10(hi) : hi;
    if (!(h > l) || std::isnan(a)) return (px0 + px1) / 2;
    // (a - l) / (h - l) as a / (h - l) - l / (h - l): no intermediate overflows within +-kMaxAbs.
    const double f = a / (h - l) - l / (h - l);
    // Far outside the range (a clamped y_min/y_max): at most one chart's size beyond the edge.
    return px0 + std::clamp(f, -1.0, 2.0) * (px1 - px0);
  }
};

// A valid range for an axis: finite, lo < hi, within +-kMaxAbs, and on a log axis lo > 0 (at least
// kMinLog). A single value or an empty range is widened around it (x0.5..x2 on a log axis).
std::pair<double, double> axis_range(double lo, double hi, bool log) {
  if (log) {
    if (!(hi > 0) || std::isnan(hi)) hi = lo > 0 ? lo : 1;
    if (!(lo > 0) || std::isnan(lo) || lo > hi) lo = hi;
    lo = std::clamp(lo, kMinLog, kMaxAbs);
    hi = std::clamp(hi, kMinLog, kMaxAbs);
    if (!(lo < hi)) {
      lo = std::max(lo / 2, kMinLog);
      hi = std::min(hi * 2, kMaxAbs);
    }
    return {lo, hi};
  }
  if (std::isnan(lo)) lo = std::isnan(hi) ? 0 : hi;
  if (std::isnan(hi)) hi = lo;
  lo = std::clamp(lo, -kMaxAbs, kMaxAbs);
  hi = std::clamp(hi, -kMaxAbs, kMaxAbs);
  if (lo > hi) std::swap(lo, hi);
  if (!(lo < hi) || hi - lo < std::abs(lo) * 1e-12) {  // one value (or too close to tell apart)
    const double pad = std::max(std::abs(lo) * 0.5, 0.5);
    const double mid = lo;
    lo = std::max(mid - pad, -kMaxAbs);
    hi = std::min(mid + pad, kMaxAbs);
  }
  return {lo, hi};
}

// "Nice" tick values between lo and hi (a range from axis_range): at most kMaxTicks of them; every
// loop below runs a bounded number of times whatever the range.
std::vector<double> ticks(double lo, double hi, bool log) {
  std::vector<double> t;
  if (!(lo < hi) || !std::isfinite(lo) || !std::isfinite(hi)) return t;
  if (log) {
    if (!(lo > 0)) return t;
    const int k0 = static_cast<int>(std::floor(std::log10(lo))), k1 = static_cast<int>(std::ceil(std::log10(hi)));
    const int decades = k1 - k0;  // at most about 600: lo and hi are within [kMinLog, kMaxAbs]
    const int stride = std::max(1, (decades + kMaxTicks / 3 - 1) / (kMaxTicks / 3));
    const std::vector<double> mantissas = stride == 1 ? std::vector<double>{1.0, 2.0, 5.0} : std::vector<double>{1.0};
    for (int k = k0; k <= k1 && static_cast<int>(t.size()) < kMaxTicks; k += stride) {
      const double d = std::pow(10.0, k);
      for (double m : mantissas)
        if (d * m >= lo * 0.9999 && d * m <= hi * 1.0001) t.push_back(d * m);
    }
    return t;
  }
  // Steps of 1, 2 or 5 times a power of ten, so that at most 6 fit in the span (computed as hi/5 -
  // lo/5 to stay finite for the widest range).
  const double fifth = hi / 5 - lo / 5;
  double step = std::pow(10, std::floor(std::log10(fifth)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (fifth * 5 / (step * m) <= 6) {
      step *= m;
      break;
    }
  const double first = std::ceil(lo / step);
  if (!(step > 0) || !std::isfinite(step) || !std::isfinite(first)) return {lo, hi};
  for (int i = 0; i <= kMaxTicks; ++i) {
    const double v = (first + i) * step;
    if (v > hi + step * 1e-9) break;
    if (!t.empty() && !(v > t.back())) return {lo, hi};  // the step is below the values' precision
    t.push_back(std::abs(v) < step * 1e-9 ? 0 : v);
  }
  return t;
}

std::string fmt_num(double v) {
  double a = std::abs(v);
  if (a == 0) return "0";
  if (a >= 1e6 || a < 1e-3) return fmt::format("{:.1e}", v);
  if (a >= 100) return fmt::format("{:.0f}", v);
  if (a >= 10) return fmt::format("{:.1f}", v);
  return fmt::format("{:.3g}", v);
}

std::string open_svg(const Axes& a) {
  const char* style = a.standalone ? R"~(<rect width="100%" height="100%" fill="#fff"/><style>)~"
                                     R"~(text{font-family:sans-serif}.title{font-size:14px;font-weight:600})~"
                                     R"~(.tick{font-size:11px;fill:#333}.label{font-size:12px;fill:#222})~"
                                     R"~(.legend{font-size:11px}.grid{stroke:#e5e5e5}.axis{stroke:#333}</style>)~"
                                   : "";
  return fmt::format(
      R"~(<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{t}">)~"
      R"~({s}<text x="{cx}" y="18" text-anchor="middle" class="title">{t}</text>)~",
      fmt::arg("s", style), fmt::arg("w", a.width), fmt::arg("h", a.height), fmt::arg("cx", a.width / 2),
      fmt::arg("t", escape(a.title)));
}

std::string axes_svg(const Axes& a, const Scale& ys, int x0, int x1, int y0, int y1) {
  std::string s;
  for (double t : ticks(ys.lo, ys.hi, ys.log)) {
    double y = ys(t);
    s += fmt::format(R"~(<line x1="{}" x2="{}" y1="{:.1f}" y2="{:.1f}" class="grid"/>)~", x0, x1, y, y);
    s +=
        fmt::format(R"~(<text x="{}" y="{:.1f}" text-anchor="end" class="tick">{}</text>)~", x0 - 6, y + 4, fmt_num(t));
  }
  s += fmt::format(
      R"~(<line x1="{0}" x2="{0}" y1="{1}" y2="{2}" class="axis"/><line x1="{0}" x2="{3}" y1="{2}" y2="{2}" class="axis"/>)~",
      x0, y0, y1, x1);
  s += fmt::format(R"~(<text x="{}" y="{}" text-anchor="middle" class="label">{}</text>)~", (x0 + x1) / 2, a.height - 8,
                   escape(a.x_label));
  s += fmt::format(R"~(<text transform="translate(16,{}) rotate(-90)" text-anchor="middle" class="label">{}</text>)~",
                   (y0 + y1) / 2, escape(a.y_label));
  return s;
}

// Width of a legend whose longest name is `longest` characters (11 px text: about 6.5 px a character),
// so that no name is cut off; at most half the chart.
int legend_width(const std::vector<Series>& series, int chart_width) {
  std::size_t longest = 0;
  for (const auto& s : series) longest = std::max(longest, s.name.size());
  return std::min(chart_width / 2, std::max(150, 30 + static_cast<int>(6.5 * static_cast<double>(longest))));
}

std::string legend_svg(const std::vector<std::string>& names, const std::vector<int>& colours, int x, int y) {
  std::string s;
  for (std::size_t i = 0; i < names.size(); ++i) {
    int yy = y + static_cast<int>(i) * 16;
    s += fmt::format(
        R"~(<rect x="{}" y="{}" width="10" height="10" fill="{}"/><text x="{}" y="{}" class="legend">{}</text>)~", x,
        yy, palette(colours[i]), x + 14, yy + 9, escape(names[i]));
  }
  return s;
}

Scale y_scale(const Axes& a, double lo, double hi, int y0, int y1) {
  if (a.y_min && std::isfinite(*a.y_min)) lo = *a.y_min;
  if (a.y_max && std::isfinite(*a.y_max)) hi = *a.y_max;
  if (!(lo < hi) && !a.log_y) hi = lo + std::max(std::abs(lo), 1.0);
  if (a.log_y) lo = std::max(lo, hi * 1e-6);
  std::tie(lo, hi) = axis_range(lo, hi, a.log_y);
  return {lo, hi, a.log_y, static_cast<double>(y1), static_cast<double>(y0)};
}

// Whether a point is drawn: finite (a NaN is a gap; an infinity has no place on an axis) and, on a
// log axis, positive.
bool plotted(double v, bool log) { return std::isfinite(v) && (!log || v > 0); }
}  // namespace

const char* palette(int i) { return kPalette[((i % 8) + 8) % 8]; }

std::string escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '<':
        o += "&lt;";
        break;
      case '>':
        o += "&gt;";
        break;
      case '&':
        o += "&amp;";
        break;
      case '"':
        o += "&quot;";
        break;
      default:
        o += c;
    }
  }
  return o;
}

std::string line_chart(const Axes& a, const std::vector<Series>& series) {
  const int legend_w = legend_width(series, a.width);
  int x0 = kLeft, x1 = a.width - kRight - legend_w, y0 = kTop, y1 = a.height - kBottom;
  double xlo = std::numeric_limits<double>::infinity(), xhi = -xlo, ylo = xlo, yhi = -xlo;
  for (const auto& s : series)
    for (std::size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (!plotted(s.y[i], a.log_y) || !plotted(s.x[i], a.log_x)) continue;
      xlo = std::min(xlo, s.x[i]);
      xhi = std::max(xhi, s.x[i]);
      ylo = std::min(ylo, s.y[i]);
      yhi = std::max(yhi, s.y[i]);
    }
  std::string out = open_svg(a);
  if (!std::isfinite(xlo)) return out + R"~(<text x="50%" y="50%" class="tick">no data</text></svg>)~";
  std::tie(xlo, xhi) = axis_range(xlo, xhi, a.log_x);
  Scale xs{xlo, xhi, a.log_x, static_cast<double>(x0), static_cast<double>(x1)};
  Scale ys = y_scale(a, a.log_y ? ylo : std::min(0.0, ylo), yhi * (a.log_y ? 1.2 : 1.05), y0, y1);
  out += axes_svg(a, ys, x0, x1, y0, y1);
  for (double t : ticks(xlo, xhi, a.log_x))
    out += fmt::format(R"~(<text x="{:.1f}" y="{}" text-anchor="middle" class="tick">{}</text>)~", xs(t), y1 + 16,
                       fmt_num(t));
  std::vector<std::string> names;
  std::vector<int> colours;
  for (std::size_t k = 0; k < series.size(); ++k) {
    const auto& s = series[k];
    const int colour = s.colour >= 0 ? s.colour : static_cast<int>(k);
    std::string pts, dots;
    for (std::size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (!plotted(s.y[i], a.log_y) || !plotted(s.x[i], a.log_x)) continue;
      pts += fmt::format("{:.1f},{:.1f} ", xs(s.x[i]), ys(s.y[i]));
      if (s.dots)
        dots += fmt::format(
            R"~(<circle cx="{:.1f}" cy="{:.1f}" r="2.5" fill="{}" class="dot"><title>{}: x={} y={}</title></circle>)~",
            xs(s.x[i]), ys(s.y[i]), palette(colour), escape(s.name), fmt_num(s.x[i]), fmt_num(s.y[i]));
    }
    if (s.line)
      out += fmt::format(
          R"~(<polyline fill="none" stroke="{}" stroke-width="1.8"{} points="{}" class="series"><title>{}</title></polyline>)~",
          palette(colour), s.dashed ? R"~( stroke-dasharray="5,3")~" : "", pts, escape(s.name));
    out += dots;
    names.push_back(s.name);
    colours.push_back(colour);
  }
  out += legend_svg(names, colours, x1 + 12, y0);
  return out + "</svg>";
}

std::string bar_chart(const Axes& a, const std::vector<std::string>& cats, const std::vector<Series>& series) {
  const int legend_w = series.size() > 1 ? legend_width(series, a.width) : 0;
  // Category labels run down-left at 35 degrees from their group's centre (11 px text, about 6 px a
  // character): the margins make room for the longest, so that none is cut off at the left or the
  // bottom edge.
  std::size_t longest = 0;
  for (const auto& c : cats) longest = std::max(longest, c.size());
  const double label_px = 6.0 * static_cast<double>(std::min<std::size_t>(longest, 40));
  const int label_down = static_cast<int>(label_px * 0.574) + 16, label_left = static_cast<int>(label_px * 0.819);
  const int x0 = std::max(kLeft, label_left + 8), x1 = a.width - kRight - legend_w, y0 = kTop;
  const int y1 = a.height - std::max(kBottom + 30, label_down + 24);
  double ylo = std::numeric_limits<double>::infinity(), yhi = -ylo;
  for (const auto& s : series)
    for (double v : s.y)
      if (plotted(v, a.log_y)) {
        ylo = std::min(ylo, v);
        yhi = std::max(yhi, v);
      }
  std::string out = open_svg(a);
  if (!std::isfinite(ylo) || cats.empty()) return out + R"~(<text x="50%" y="50%" class="tick">no data</text></svg>)~";
  Scale ys = y_scale(a, a.log_y ? ylo / 1.5 : std::min(0.0, ylo), yhi * (a.log_y ? 1.5 : 1.08), y0, y1);
  out += axes_svg(a, ys, x0, x1, y0, y1);
  double group_w = static_cast<double>(x1 - x0) / static_cast<double>(cats.size());
  double bar_w = group_w * 0.8 / static_cast<double>(std::max<std::size_t>(series.size(), 1));
  double base = a.log_y ? static_cast<double>(y1) : ys(0);
  for (std::size_t j = 0; j < cats.size(); ++j) {
    double gx = x0 + group_w * static_cast<double>(j) + group_w * 0.1;
    for (std::size_t k = 0; k < series.size(); ++k) {
      if (j >= series[k].y.size()) continue;
      double v = series[k].y[j];
      if (!plotted(v, a.log_y)) continue;
      double y = ys(v);
      out += fmt::format(
          R"~(<rect x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}" fill="{}" class="bar"><title>{} / {}: {}</title></rect>)~",
          gx + bar_w * static_cast<double>(k), std::min(y, base), std::max(bar_w - 1, 1.0), std::abs(base - y),
          palette(static_cast<int>(k)), escape(cats[j]), escape(series[k].name), fmt_num(v));
    }
    double cx = gx + group_w * 0.4;
    out +=
        fmt::format(R"~(<text transform="translate({:.1f},{}) rotate(-35)" text-anchor="end" class="tick">{}</text>)~",
                    cx, y1 + 12, escape(cats[j].size() > 40 ? cats[j].substr(0, 39) + "…" : cats[j]));
  }
  if (series.size() > 1) {
    std::vector<std::string> names;
    std::vector<int> colours;
    for (std::size_t k = 0; k < series.size(); ++k) {
      names.push_back(series[k].name);
      colours.push_back(static_cast<int>(k));
    }
    out += legend_svg(names, colours, x1 + 12, y0);
  }
  return out + "</svg>";
}

std::string timeline_chart(const Axes& a, const std::vector<std::string>& lanes, const std::vector<Span>& spans,
                           const std::vector<std::pair<int, std::string>>& legend) {
  std::size_t longest = 0;  // the left margin fits the longest lane name
  for (const auto& l : lanes) longest = std::max(longest, l.size());
  int x0 = std::max(110, 16 + static_cast<int>(longest) * 6), x1 = a.width - kRight, y0 = kTop, y1 = a.height - kBottom;
  double tlo = 0, thi = 0;
  for (const auto& s : spans)
    if (std::isfinite(s.end)) thi = std::max(thi, std::min(s.end, kMaxAbs));
  std::string out = open_svg(a);
  if (lanes.empty() || thi <= 0) return out + R"~(<text x="50%" y="50%" class="tick">no data</text></svg>)~";
  Scale xs{tlo, thi, false, static_cast<double>(x0), static_cast<double>(x1)};
  double lane_h = static_cast<double>(y1 - y0) / static_cast<double>(lanes.size());
  for (std::size_t i = 0; i < lanes.size(); ++i)
    out += fmt::format(R"~(<text x="{}" y="{:.1f}" text-anchor="end" class="tick">{}</text>)~", x0 - 6,
                       y0 + lane_h * (static_cast<double>(i) + 0.6), escape(lanes[i]));
  for (const auto& s : spans) {
    auto it = std::find(lanes.begin(), lanes.end(), s.lane);
    if (it == lanes.end()) continue;
    double y = y0 + lane_h * static_cast<double>(it - lanes.begin()) + lane_h * 0.15;
    out += fmt::format(
        R"~(<rect x="{:.2f}" y="{:.1f}" width="{:.2f}" height="{:.1f}" fill="{}" stroke="#fff" stroke-width="0.3" class="span"><title>{}</title></rect>)~",
        xs(s.start), y, std::max(xs(s.end) - xs(s.start), 0.3), lane_h * 0.7, palette(s.colour), escape(s.label));
  }
  for (double t : ticks(tlo, thi, false))
    out += fmt::format(
        R"~(<line x1="{0:.1f}" x2="{0:.1f}" y1="{1}" y2="{2}" class="grid"/><text x="{0:.1f}" y="{3}" text-anchor="middle" class="tick">{4}</text>)~",
        xs(t), y0, y1, y1 + 16, fmt_num(t));
  out += fmt::format(R"~(<text x="{}" y="{}" text-anchor="middle" class="label">{}</text>)~", (x0 + x1) / 2,
                     a.height - 8, escape(a.x_label));
  int lx = x0;
  for (const auto& [c, name] : legend) {
    out += fmt::format(
        R"~(<rect x="{}" y="{}" width="10" height="10" fill="{}"/><text x="{}" y="{}" class="legend">{}</text>)~", lx,
        a.height - 30, palette(c), lx + 14, a.height - 21, escape(name));
    lx += 24 + static_cast<int>(name.size()) * 7;
  }
  return out + "</svg>";
}

namespace {
// Sequential scale (viridis-like anchors), t in [0, 1].
std::string seq_colour(double t) {
  static const double a[5][3] = {{68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}};
  if (std::isnan(t)) t = 0.5;  // a value the scale cannot place (e.g. an infinite range)
  t = std::clamp(t, 0.0, 1.0) * 4;
  int i = std::min(static_cast<int>(t), 3);
  double f = t - i;
  int c[3];
  for (int k = 0; k < 3; ++k) c[k] = static_cast<int>(a[i][k] + (a[i + 1][k] - a[i][k]) * f + 0.5);
  return fmt::format("#{:02x}{:02x}{:02x}", c[0], c[1], c[2]);
}
}  // namespace

std::string heatmap(const Axes& a, const std::vector<std::string>& rows, const std::vector<std::string>& cols,
                    const std::vector<std::vector<double>>& v, double lo, double hi) {
  int x0 = 130, x1 = a.width - kRight - 70, y0 = kTop, y1 = a.height - kBottom;
  std::string out = open_svg(a);
  if (rows.empty() || cols.empty()) return out + R"~(<text x="50%" y="50%" class="tick">no data</text></svg>)~";
  double cw = static_cast<double>(x1 - x0) / static_cast<double>(cols.size());
  double ch = static_cast<double>(y1 - y0) / static_cast<double>(rows.size());
  for (std::size_t r = 0; r < rows.size(); ++r) {
    out += fmt::format(R"~(<text x="{}" y="{:.1f}" text-anchor="end" class="tick">{}</text>)~", x0 - 6,
                       y0 + ch * (static_cast<double>(r) + 0.5) + 4, escape(rows[r]));
    for (std::size_t c = 0; c < cols.size() && r < v.size() && c < v[r].size(); ++c) {
      double val = v[r][c];
      if (std::isnan(val)) continue;
      out += fmt::format(
          R"~(<rect x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}" fill="{}" class="cell"><title>{} @ {}: {}</title></rect>)~",
          x0 + cw * static_cast<double>(c), y0 + ch * static_cast<double>(r), cw + 0.3, ch + 0.3,
          seq_colour(hi > lo ? (val - lo) / (hi - lo) : 0.5), escape(rows[r]), escape(cols[c]), fmt_num(val));
    }
  }
  std::size_t step = std::max<std::size_t>(1, cols.size() / 12);
  for (std::size_t c = 0; c < cols.size(); c += step)
    out += fmt::format(R"~(<text x="{:.1f}" y="{}" text-anchor="middle" class="tick">{}</text>)~",
                       x0 + cw * (static_cast<double>(c) + 0.5), y1 + 16, escape(cols[c]));
  out += fmt::format(R"~(<text x="{}" y="{}" text-anchor="middle" class="label">{}</text>)~", (x0 + x1) / 2,
                     a.height - 8, escape(a.x_label));
  // Colour bar.
  int bx = x1 + 16;
  for (int i = 0; i < 20; ++i) {
    double t = 1.0 - i / 19.0;
    out += fmt::format(R"~(<rect x="{}" y="{:.1f}" width="12" height="{:.1f}" fill="{}"/>)~", bx,
                       y0 + (y1 - y0) * i / 20.0, (y1 - y0) / 20.0 + 0.5, seq_colour(t));
  }
  out += fmt::format(R"~(<text x="{}" y="{}" class="tick">{}</text><text x="{}" y="{}" class="tick">{}</text>)~",
                     bx + 15, y0 + 8, fmt_num(hi), bx + 15, y1, fmt_num(lo));
  out += fmt::format(R"~(<text transform="translate({},{}) rotate(90)" text-anchor="middle" class="label">{}</text>)~",
                     bx + 50, (y0 + y1) / 2, escape(a.y_label));
  return out + "</svg>";
}

}  // namespace cdma::report
