// The comparison section of `cdma report --compare`: two or more runs (traces) of the same network
// side by side: network density over training overlaid, and per layer (matched by name) the ZVC
// ratio of each run with its difference from the first run.
#include <cdma/report/html.hpp>
#include <cdma/report/svg.hpp>

#include <fmt/core.h>

#include <cmath>
#include <map>
#include <set>

namespace cdma::report {

namespace {

bool stored(const AnalysisRow& r) { return r.layout == "stored" && r.dtype == "stored"; }

}  // namespace

std::string compare_body(const AnalysisTables& a, const std::map<int, std::string>& labels) {
  std::vector<int> traces;
  for (const auto& t : a.traces) traces.push_back(t.index);
  auto label = [&](int t) {
    auto it = labels.find(t);
    return it == labels.end() ? "trace " + std::to_string(t) : it->second;
  };
  std::size_t zvc = a.codecs.size();
  for (std::size_t k = 0; k < a.codecs.size(); ++k)
    if (a.codecs[k] == "zvc") zvc = k;
  const std::size_t codec = zvc < a.codecs.size() ? zvc : 0;
  const std::string codec_name = a.codecs.empty() ? "" : a.codecs[codec];
  std::string body;

  // Network density over training, one line per run.
  std::vector<Series> dens;
  for (int t : traces) {
    Series s{label(t), {}, {}};
    for (const auto& r : a.iteration)
      if (r.trace == t && stored(r)) {
        s.x.push_back(static_cast<double>(r.iteration));
        s.y.push_back(r.density);
      }
    dens.push_back(std::move(s));
  }
  Axes dx;
  dx.title = "Network density over training, runs overlaid";
  dx.x_label = "training iteration";
  dx.y_label = "density (byte-weighted over the offload set)";
  dx.y_min = 0;
  dx.width = 1000;
  dx.height = 320;
  body += "<div class=scroll>" + line_chart(dx, dens) + "</div>";

  // Layers by name, in the first run's forward order; a layer missing from a run is shown as such.
  std::vector<std::pair<int, std::string>> order;
  std::set<std::string> seen;
  std::map<std::pair<int, std::string>, const AnalysisRow*> row;
  for (const auto& r : a.layer) {
    if (!stored(r)) continue;
    row[{r.trace, r.layer}] = &r;
  }
  for (int t : traces)
    for (const auto& r : a.layer)
      if (r.trace == t && stored(r) && seen.insert(r.layer).second) order.push_back({r.layer_index, r.layer});
  std::stable_sort(order.begin(), order.end());
  auto ratio = [&](int t, const std::string& layer) {
    auto it = row.find({t, layer});
    return it == row.end() || codec >= it->second->ratio.size() ? std::nan("") : it->second->ratio[codec];
  };
  std::vector<std::string> cats;
  std::vector<Series> bars;
  for (int t : traces) bars.push_back({label(t), {}, {}});
  for (const auto& [idx, layer] : order) {
    cats.push_back(layer);
    for (std::size_t k = 0; k < traces.size(); ++k) bars[k].y.push_back(ratio(traces[k], layer));
  }
  Axes bx;
  bx.title = "Per-layer " + codec_name + " ratio of each run";
  bx.x_label = "layer (matched by name)";
  bx.y_label = "ratio (uncompressed / compressed)";
  bx.y_min = 0;
  bx.width = kPageWidth;
  bx.height = 420;
  body += "<div class=scroll>" + bar_chart(bx, cats, bars) + "</div>";

  std::string table = "<table><thead><tr><th>layer</th>";
  for (int t : traces) table += "<th>" + escape(label(t)) + "</th>";
  for (std::size_t k = 1; k < traces.size(); ++k)
    table += "<th>" + escape(label(traces[k])) + " − " + escape(label(traces[0])) + "</th>";
  table += "</tr></thead><tbody>";
  for (const auto& [idx, layer] : order) {
    table += "<tr><td>" + escape(layer) + "</td>";
    const double base = ratio(traces[0], layer);
    for (int t : traces) {
      const double v = ratio(t, layer);
      table +=
          "<td class=num>" + (std::isnan(v) ? std::string("not in this run") : fmt::format("{:.3f}x", v)) + "</td>";
    }
    for (std::size_t k = 1; k < traces.size(); ++k) {
      const double v = ratio(traces[k], layer);
      table += "<td class=num>" +
               (std::isnan(v) || std::isnan(base) ? std::string("–")
                                                  : fmt::format("{:+.3f} ({:+.1f}%)", v - base, (v / base - 1) * 100)) +
               "</td>";
    }
    table += "</tr>";
  }
  return body + table + "</tbody></table>";
}

}  // namespace cdma::report
