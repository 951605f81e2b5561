// The report's distribution figures over per-tensor points (AnalysisTables::tensors): CDFs of
// density and of the ZVC ratio, and ratio against density with ZVC's curve w*8/(1 + w*8 d), so that
// a point off the curve is visibly an effect of zero runs (ZRLE) or of byte patterns (byte codecs).
#include <cdma/report/html.hpp>
#include <cdma/report/svg.hpp>

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <map>

namespace cdma::report {

namespace {

// At most n evenly spaced elements of v (all of them when there are fewer).
template <class T>
std::vector<T> thin(const std::vector<T>& v, std::size_t n) {
  if (v.size() <= n) return v;
  std::vector<T> out;
  for (std::size_t i = 0; i < n; ++i) out.push_back(v[i * (v.size() - 1) / (n - 1)]);
  return out;
}

Series cdf(const std::string& name, std::vector<double> values, int colour) {
  values.erase(std::remove_if(values.begin(), values.end(), [](double v) { return std::isnan(v); }), values.end());
  std::sort(values.begin(), values.end());
  Series s{name, {}, {}};
  s.dots = false;
  s.colour = colour;
  const double n = static_cast<double>(values.size());
  std::vector<std::pair<double, double>> pts;
  for (std::size_t i = 0; i < values.size(); ++i) pts.push_back({values[i], static_cast<double>(i + 1) / n});
  for (const auto& [x, y] : thin(pts, 400)) {
    s.x.push_back(x);
    s.y.push_back(y);
  }
  return s;
}

}  // namespace

// The body of the distributions section; labels: trace index -> its label.
std::string distributions_body(const AnalysisTables& a, const std::map<int, std::string>& labels) {
  if (a.tensors.empty()) return "<p>No tensor of the stored layout and dtype was analysed.</p>";
  std::size_t zvc = a.codecs.size(), other = a.codecs.size();
  for (std::size_t k = 0; k < a.codecs.size(); ++k) {
    if (a.codecs[k] == "zvc" && zvc == a.codecs.size())
      zvc = k;
    else if (other == a.codecs.size())
      other = k;
  }
  std::map<int, std::vector<const TensorPoint*>> by_trace;
  bool w4 = false, w2 = false;
  for (const auto& p : a.tensors) {
    by_trace[p.trace].push_back(&p);
    w4 = w4 || p.width == 4;
    w2 = w2 || p.width == 2;
  }
  auto label = [&](int t) {
    auto it = labels.find(t);
    return it == labels.end() ? "trace " + std::to_string(t) : it->second;
  };
  std::string body;
  {
    std::vector<Series> dens, ratio;
    int colour = 0;
    for (const auto& [t, pts] : by_trace) {
      std::vector<double> d, r;
      for (const TensorPoint* p : pts) {
        d.push_back(p->density);
        if (zvc < p->ratio.size()) r.push_back(p->ratio[zvc]);
      }
      dens.push_back(cdf(label(t), d, colour));
      if (zvc < a.codecs.size()) ratio.push_back(cdf(label(t), r, colour));
      ++colour;
    }
    Axes ax;
    ax.title = "CDF of per-tensor density";
    ax.x_label = "density (nonzero fraction of a tensor)";
    ax.y_label = "fraction of tensors <= x";
    ax.y_min = 0;
    ax.y_max = 1;
    ax.height = 300;
    body += "<div class=scroll>" + line_chart(ax, dens) + "</div>";
    if (!ratio.empty()) {
      Axes rx = ax;
      rx.title = "CDF of per-tensor ZVC ratio";
      rx.x_label = "ZVC ratio (uncompressed / compressed), log scale";
      rx.log_x = true;
      body += "<div class=scroll>" + line_chart(rx, ratio) + "</div>";
    }
  }
  if (zvc < a.codecs.size()) {
    std::vector<Series> s;
    int colour = 0;
    for (const auto& [t, pts] : by_trace) {
      Series z{label(t) + ": zvc", {}, {}},
          o{label(t) + ": " + (other < a.codecs.size() ? a.codecs[other] : ""), {}, {}};
      z.line = o.line = false;
      z.colour = colour;
      o.colour = colour + 4;
      for (const TensorPoint* p : thin(pts, 1500)) {
        z.x.push_back(p->density);
        z.y.push_back(zvc < p->ratio.size() ? p->ratio[zvc] : std::nan(""));
        o.x.push_back(p->density);
        o.y.push_back(other < p->ratio.size() ? p->ratio[other] : std::nan(""));
      }
      s.push_back(std::move(z));
      if (other < a.codecs.size()) s.push_back(std::move(o));
      ++colour;
    }
    for (int w : {4, 2}) {
      if ((w == 4 && !w4) || (w == 2 && !w2)) continue;
      const double k = 8.0 * w;
      Series c{fmt::format("ZVC model {:g}/(1+{:g}d)", k, k), {}, {}};
      c.dots = false;
      c.dashed = true;
      c.colour = 7;
      for (int i = 1; i <= 100; ++i) {
        const double d = i / 100.0;
        c.x.push_back(d);
        c.y.push_back(k / (1 + k * d));
      }
      s.push_back(std::move(c));
    }
    Axes ax;
    ax.title = "Compression ratio against density, one point per tensor";
    ax.x_label = "density (nonzero fraction)";
    ax.y_label = "ratio (log scale)";
    ax.log_y = true;
    ax.height = 380;
    ax.width = 900;
    body += "<div class=scroll>" + line_chart(ax, s) + "</div>";
  }
  return body;
}

}  // namespace cdma::report
