// The report page. Each section is a function that reads the documents and returns HTML; charts
// come from svg.cpp. The small script at the end only marks the page as rendered (the headless
// browser test reads the mark) and reports script errors into the page.
#include <cdma/report/html.hpp>
#include <cdma/report/svg.hpp>

#include <cdma/formats/error.hpp>
#include <cdma/formats/text.hpp>

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

namespace cdma::report {

using formats::human_bytes;
using nlohmann::json;

namespace {

const double kNaN = std::nan("");

std::string fmt_ratio(double r) { return std::isnan(r) ? "–" : fmt::format("{:.2f}x", r); }
std::string fmt_pct(double d) { return std::isnan(d) ? "–" : fmt::format("{:.1f}%", d * 100); }

bool stored_variant(const AnalysisRow& row) { return row.layout == "stored" && row.dtype == "stored"; }

std::string trace_label(const AnalysisTables& a, int trace) {
  for (const auto& t : a.traces)
    if (t.index == trace) {
      auto slash = t.path.find_last_of('/');
      std::string base = slash == std::string::npos ? t.path : t.path.substr(slash + 1);
      return t.model.empty() ? base : t.model + " (" + base + ")";
    }
  return "trace " + std::to_string(trace);
}

std::vector<int> trace_indices(const AnalysisTables& a) {
  std::vector<int> v;
  for (const auto& t : a.traces) v.push_back(t.index);
  return v;
}

double ratio_of(const AnalysisRow& r, std::size_t codec) { return codec < r.ratio.size() ? r.ratio[codec] : kNaN; }

std::string scroll(const std::string& svg) { return "<div class=scroll>" + svg + "</div>"; }

std::string section(const std::string& id, const std::string& title, const std::string& intro,
                    const std::string& body) {
  return fmt::format(R"~(<section id="{}"><h2>{}</h2><p class="intro">{}</p>{}</section>)~", id, escape(title), intro,
                     body);
}

std::string summary_table(const AnalysisTables& a) {
  std::string h = "<table><thead><tr><th>trace</th><th>source</th><th>tensors</th><th>bytes</th><th>density</th>";
  for (const auto& c : a.codecs) h += "<th>" + escape(c) + "</th>";
  h += "</tr></thead><tbody>";
  for (const auto& row : a.network) {
    if (!stored_variant(row)) continue;
    std::string source;
    for (const auto& tr : a.traces)
      if (tr.index == row.trace) source = tr.source;
    h += fmt::format("<tr><td>{}</td><td>{}</td><td class=num>{}</td><td class=num>{}</td><td class=num>{}</td>",
                     escape(trace_label(a, row.trace)), escape(source), row.tensors,
                     human_bytes(static_cast<double>(row.bytes)), fmt_pct(row.density));
    for (std::size_t k = 0; k < a.codecs.size(); ++k) h += "<td class=num>" + fmt_ratio(ratio_of(row, k)) + "</td>";
    h += "</tr>";
  }
  return h + "</tbody></table>";
}

struct LayerKey {
  int index;
  std::string name;
  bool operator<(const LayerKey& o) const { return std::tie(index, name) < std::tie(o.index, o.name); }
};

std::string density_section(const AnalysisTables& a) {
  std::string body;
  for (int t : trace_indices(a)) {
    std::set<LayerKey> layers;
    std::set<std::int64_t> iters;
    std::map<std::pair<LayerKey, std::int64_t>, double> dens;
    for (const auto& r : a.layer_iteration) {
      if (r.trace != t || !stored_variant(r)) continue;
      LayerKey k{r.layer_index, r.layer};
      layers.insert(k);
      iters.insert(r.iteration);
      dens[{k, r.iteration}] = r.density;
    }
    std::vector<std::string> rows, cols;
    for (const auto& l : layers) rows.push_back(l.name);
    for (auto it : iters) cols.push_back(std::to_string(it));
    std::vector<std::vector<double>> v;
    for (const auto& l : layers) {
      std::vector<double> line;
      for (auto it : iters) {
        auto f = dens.find({l, it});
        line.push_back(f == dens.end() ? kNaN : f->second);
      }
      v.push_back(line);
    }
    Axes ax;
    ax.title = "Density of each layer's input over training — " + trace_label(a, t);
    ax.x_label = "training iteration";
    ax.y_label = "density (nonzero fraction)";
    ax.height = std::max(220, 70 + 16 * static_cast<int>(rows.size()));
    body += scroll(heatmap(ax, rows, cols, v, 0.0, 1.0));

    // The layers that offload the most bytes, one line each, values on hover.
    {
      std::vector<const AnalysisRow*> big;
      for (const auto& r : a.layer)
        if (r.trace == t && stored_variant(r)) big.push_back(&r);
      std::stable_sort(big.begin(), big.end(),
                       [](const AnalysisRow* x, const AnalysisRow* y) { return x->bytes > y->bytes; });
      if (big.size() > 8) big.resize(8);
      std::vector<Series> lines;
      for (const AnalysisRow* l : big) {
        Series ls{l->layer + " (" + l->op + ")", {}, {}};
        for (auto it : iters) {
          auto f = dens.find({LayerKey{l->layer_index, l->layer}, it});
          ls.x.push_back(static_cast<double>(it));
          ls.y.push_back(f == dens.end() ? kNaN : f->second);
        }
        lines.push_back(std::move(ls));
      }
      if (!lines.empty() && iters.size() > 1) {
        Axes px;
        px.title = "Density over training of the layers that offload the most bytes — " + trace_label(a, t);
        px.x_label = "training iteration";
        px.y_label = "density";
        px.y_min = 0;
        px.width = 1000;
        px.height = 300;
        body += scroll(line_chart(px, lines));
      }
    }
    Series s{"network (byte-weighted)", {}, {}};
    for (const auto& r : a.iteration) {
      if (r.trace != t || !stored_variant(r)) continue;
      s.x.push_back(static_cast<double>(r.iteration));
      s.y.push_back(r.density);
    }
    Axes lx;
    lx.title = "Network density over training — " + trace_label(a, t);
    lx.x_label = "training iteration";
    lx.y_label = "density";
    lx.y_min = 0;
    lx.height = 260;
    body += scroll(line_chart(lx, {s}));
  }
  return section("density", "Density over training",
                 "Fraction of nonzero elements in each layer's offloaded input X, per captured iteration "
                 "(1 = dense). ReLU outputs become sparse early in training and deeper layers are sparser.",
                 body);
}

std::string ratio_section(const AnalysisTables& a) {
  std::string body;
  for (int t : trace_indices(a)) {
    std::vector<std::string> cats;
    std::vector<Series> series;
    for (const auto& c : a.codecs) series.push_back({c, {}, {}});
    std::vector<const AnalysisRow*> rows;
    for (const auto& r : a.layer)
      if (r.trace == t && stored_variant(r)) rows.push_back(&r);
    std::stable_sort(rows.begin(), rows.end(),
                     [](const AnalysisRow* x, const AnalysisRow* y) { return x->layer_index < y->layer_index; });
    for (const AnalysisRow* r : rows) {
      cats.push_back(r->layer + " (" + r->op + ")");
      for (std::size_t k = 0; k < a.codecs.size(); ++k) series[k].y.push_back(ratio_of(*r, k));
    }
    // Wrapped into charts of at most 64 bars, each within the page's width, so that every
    // chart's title, axes and legend are in view when the page loads (no horizontal scrolling).
    const std::size_t most = std::max<std::size_t>(4, 64 / std::max<std::size_t>(1, a.codecs.size()));
    const std::size_t charts = std::max<std::size_t>(1, (cats.size() + most - 1) / most);
    const std::size_t per_chart = (cats.size() + charts - 1) / charts;  // equal parts, none of a few bars
    for (std::size_t first = 0; first < cats.size() || first == 0; first += std::max<std::size_t>(per_chart, 1)) {
      const std::size_t last = std::min(cats.size(), first + per_chart);
      std::vector<std::string> part(cats.begin() + static_cast<long>(first), cats.begin() + static_cast<long>(last));
      std::vector<Series> ps = series;
      for (auto& s : ps)
        s.y = std::vector<double>(s.y.begin() + static_cast<long>(first), s.y.begin() + static_cast<long>(last));
      Axes ax;
      ax.title = "Compression ratio per layer — " + trace_label(a, t) +
                 (cats.size() > per_chart ? fmt::format(" (layers {}-{} of {})", first + 1, last, cats.size()) : "");
      ax.x_label = "layer (forward order)";
      ax.y_label = "ratio (uncompressed / compressed)";
      ax.y_min = 0;
      ax.height = 440;
      ax.width = std::min(kPageWidth, std::max(720, 200 + 14 * static_cast<int>(part.size() * a.codecs.size())));
      body += scroll(bar_chart(ax, part, ps));
      if (cats.empty()) break;
    }
  }
  return section("ratios", "Compression ratio per layer and codec",
                 "Byte-weighted ratio over all captured iterations of each layer's input (docs/spec/CODECS.md). ZVC's "
                 "ratio depends only on density (32/(1+32d) for fp32); ZRLE and the byte codecs also on how zeros "
                 "cluster.",
                 body);
}

std::string variants_section(const AnalysisTables& a) {
  if (a.layouts.size() * a.dtypes.size() <= 1)
    return section("variants", "Layouts and dtypes",
                   "This report was made with the stored layout and dtype only (run with more layouts/dtypes to "
                   "compare).",
                   "");
  std::string body;
  for (int t : trace_indices(a)) {
    std::vector<std::string> cats;
    std::vector<Series> series;
    for (const auto& c : a.codecs) series.push_back({c, {}, {}});
    std::string table = "<table><thead><tr><th>layout</th><th>dtype</th><th>density</th><th>bytes</th>";
    for (const auto& c : a.codecs) table += "<th>" + escape(c) + "</th>";
    table += "</tr></thead><tbody>";
    for (const auto& r : a.network) {
      if (r.trace != t) continue;
      cats.push_back(r.layout + " / " + r.dtype);
      table += fmt::format("<tr><td>{}</td><td>{}</td><td class=num>{}</td><td class=num>{}</td>", escape(r.layout),
                           escape(r.dtype), fmt_pct(r.density), human_bytes(static_cast<double>(r.bytes)));
      for (std::size_t k = 0; k < a.codecs.size(); ++k) {
        double v = ratio_of(r, k);
        series[k].y.push_back(v);
        table += "<td class=num>" + fmt_ratio(v) + "</td>";
      }
      table += "</tr>";
    }
    Axes ax;
    ax.title = "Network ratio by layout and dtype — " + trace_label(a, t);
    ax.x_label = "layout / dtype";
    ax.y_label = "ratio (uncompressed / compressed)";
    ax.y_min = 0;
    ax.height = 360;
    body += scroll(bar_chart(ax, cats, series) + table + "</tbody></table>");
  }
  return section("variants", "Layouts and dtypes",
                 "The same tensors permuted to other layouts and converted to 16-bit types (round to nearest even) "
                 "before compressing. ZVC is layout-invariant; ZRLE and byte codecs are not. Ratios are relative "
                 "to the bytes at each dtype.",
                 body);
}

const char* kStyle = R"~(
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1100px;padding:16px;color:#222}
h1{font-size:1.6em;margin-bottom:4px}h2{border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:32px}
.meta{color:#555;font-size:.9em}.intro{color:#444;max-width:900px}
table{border-collapse:collapse;margin:12px 0;font-size:.9em}th,td{border:1px solid #ddd;padding:3px 8px}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
svg.chart{display:block;margin:12px 0;background:#fff}
.scroll,.timeline{overflow-x:auto;max-width:100%}
svg .title{font-size:14px;font-weight:600}svg .tick{font-size:11px;fill:#333}svg .label{font-size:12px;fill:#222}
svg .legend{font-size:11px}svg .grid{stroke:#e5e5e5}svg .axis{stroke:#333}
nav a{margin-right:12px}code{background:#f3f3f3;padding:1px 4px}
)~";

}  // namespace

std::string replay_section(const json& replay, const std::vector<std::string>& timelines);  // html_replay.cpp
std::string distributions_body(const AnalysisTables& a,
                               const std::map<int, std::string>& labels);                     // html_distributions.cpp
std::string compare_body(const AnalysisTables& a, const std::map<int, std::string>& labels);  // html_compare.cpp

std::string render_html(const ReportInputs& in) {
  const AnalysisTables& a = in.analysis;
  std::string html =
      "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
      "<meta name=viewport content=\"width=device-width,initial-scale=1\"><title>" +
      escape(in.title) + "</title><style>" + kStyle + "</style></head><body>";
  html += "<h1>" + escape(in.title) + "</h1>";
  html += fmt::format("<p class=meta>Generated {} by <code>{}</code></p>", escape(in.generated), escape(in.command));
  html += "<nav><a href=#summary>summary</a>" + std::string(in.compare ? "<a href=#compare>comparison</a>" : "") +
          "<a href=#density>density</a><a href=#ratios>ratios</a><a "
          "href=#distributions>distributions</a>"
          "<a href=#variants>layouts &amp; dtypes</a><a href=#replay>replay</a></nav>";
  html +=
      section("summary", "Network summary",
              "Byte-weighted compression ratio (uncompressed / compressed bytes) of every captured activation "
              "of each trace, stored layout and dtype. The cDMA paper reports 2.6x on average for ZVC. Where a trace "
              "records ReLU as a layer of its own, that layer's input (a conv or FC output) is dense; frameworks "
              "that run ReLU in place offload only its output (make the report with --ops conv,pool,linear,dropout "
              "to see that).",
              summary_table(a));
  std::map<int, std::string> labels;  // trace index -> its label, for the sections in other files
  for (int t : trace_indices(a)) labels[t] = trace_label(a, t);
  if (in.compare) {
    html += section("compare", "Comparison of runs",
                    "The traces as runs of one network: network density over training overlaid, and each layer's "
                    "ratio in each run (layers matched by name) with its difference from the first run. The first "
                    "trace given is the baseline.",
                    compare_body(a, labels));
  }
  html += density_section(a);
  html += ratio_section(a);
  {
    html += section("distributions", "Distributions over tensors",
                    "Every analysed tensor of the stored layout and dtype is one point (charts of many tensors show an "
                    "evenly spaced sample of at most 1,500 points per trace and 400 per CDF). ZVC's size follows from "
                    "the density alone: fp32 tensors lie on 32/(1+32d), 2-byte tensors on 16/(1+16d), up to the "
                    "rounding of the mask to 32-element words; a codec's point off the curve is the effect of how the "
                    "zeros cluster (ZRLE) or of byte patterns (zlib, zstd, lz4). Hover a point for its values.",
                    distributions_body(a, labels));
  }
  html += variants_section(a);
  if (in.replay)
    html += replay_section(*in.replay, in.replay_timelines);
  else
    html += section("replay", "Hardware-model replay", "No replay in this report.", "");
  html += R"~(<script>
window.cdmaErrors=[];window.addEventListener('error',function(e){window.cdmaErrors.push(String(e.message));document.body.setAttribute('data-errors',window.cdmaErrors.join('|'));});
document.addEventListener('DOMContentLoaded',function(){var n=document.querySelectorAll('svg.chart').length;document.body.setAttribute('data-charts',String(n));document.body.setAttribute('data-ready','1');});
</script></body></html>)~";
  return html;
}

}  // namespace cdma::report
