// The report's hardware-model section: iteration time and speedup per configuration, per-layer
// stalls, and the timelines the hardware model drew.
#include <cdma/formats/text.hpp>
#include <cdma/report/svg.hpp>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <map>

namespace cdma::report {

using nlohmann::json;

namespace {
double num(const json& j, const char* k) {
  return j.contains(k) && j[k].is_number() ? j[k].get<double>() : std::nan("");
}
std::string str(const json& j, const char* k) {
  return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : "";
}
}  // namespace

std::string replay_section(const json& replay, const std::vector<std::string>& timelines) {
  std::string body;
  const json runs = replay.contains("runs") ? replay["runs"] : json::array();
  for (const auto& run : runs) {
    std::string link = run.contains("link") ? str(run["link"], "name") : "";
    double link_gbps = run.contains("link") ? num(run["link"], "effective_gbps") : std::nan("");
    if (!str(run, "report_label").empty()) body += "<h3>" + escape(str(run, "report_label")) + "</h3>";
    body += fmt::format(
        "<p class=meta><b>{}</b> (batch {:.0f}) on {} + {} ({:.1f} GB/s effective), policy {}, compute: "
        "{}</p>",
        escape(str(run, "network")), num(run, "batch"), escape(str(run, "gpu")), escape(link), link_gbps,
        escape(str(run, "policy")), escape(str(run, "compute")));
    if (run.contains("ratio_sources") && run["ratio_sources"].is_array() && !run["ratio_sources"].empty()) {
      std::string src;
      for (const auto& s : run["ratio_sources"]) src += (src.empty() ? "" : "; ") + s.get<std::string>();
      body += "<p class=meta>Ratios: " + escape(src) + "</p>";
    }
    if (run.contains("unmeasured") && run["unmeasured"].is_object() && run["unmeasured"].contains("layers") &&
        run["unmeasured"]["layers"].is_array() && !run["unmeasured"]["layers"].empty()) {
      const auto& u = run["unmeasured"];
      std::string names;
      for (const auto& s : u["layers"]) names += (names.empty() ? "" : ", ") + s.get<std::string>();
      const bool none = str(u, "fill") == "none";
      body += fmt::format(
          "<p class=meta><b>Not measured:</b> {} offloaded tensors ({}/iteration) had no measured "
          "ratio and were replayed {}: {}</p>",
          u["layers"].size(), formats::human_bytes(num(u, "bytes_per_iteration")),
          none ? "uncompressed" : "with the fill rule '" + escape(str(u, "fill")) + "'", escape(names));
    }
    // Totals: bars of iteration time, table with overhead and speedup.
    std::vector<std::string> cats;
    Series t{"iteration time (ms)", {}, {}};
    std::string table =
        "<table><thead><tr><th>configuration</th><th>iteration (ms)</th><th>stall (ms)</th>"
        "<th>link bytes</th><th>over oracle</th><th>speedup vs vDNN</th></tr></thead><tbody>";
    std::vector<std::string> configs;
    for (const auto& tot : run.value("totals", json::array())) {
      std::string c = str(tot, "config");
      configs.push_back(c);
      cats.push_back(c);
      t.y.push_back(num(tot, "time_s") * 1e3);
      double sp = num(tot, "speedup_vs_vdnn");
      table += fmt::format(
          "<tr><td>{}</td><td class=num>{:.3f}</td><td class=num>{:.3f}</td><td class=num>{}</td>"
          "<td class=num>{:+.1f}%</td><td class=num>{}</td></tr>",
          escape(c), num(tot, "time_s") * 1e3, num(tot, "stall_s") * 1e3,
          std::isnan(num(tot, "link_bytes")) ? std::string("–") : formats::human_bytes(num(tot, "link_bytes")),
          num(tot, "overhead_vs_oracle") * 100, std::isnan(sp) ? "–" : fmt::format("{:+.1f}%", sp * 100));
    }
    table += "</tbody></table>";
    Axes ax;
    ax.title = "Iteration time — " + str(run, "network");
    ax.x_label = "configuration";
    ax.y_label = "time per iteration (ms)";
    ax.height = 340;
    body += "<div class=scroll>" + bar_chart(ax, cats, {t}) + "</div>" + table;

    // Per-layer stalls (forward + backward) for every configuration but the oracle.
    std::vector<std::string> layers;
    std::vector<Series> stalls;
    for (std::size_t k = 1; k < configs.size(); ++k) stalls.push_back({configs[k], {}, {}});
    for (const auto& l : run.value("layers", json::array())) {
      layers.push_back(str(l, "name"));
      for (std::size_t k = 1; k < configs.size(); ++k) {
        double v = std::nan("");
        if (l.contains("configs") && l["configs"].contains(configs[k])) {
          const auto& c = l["configs"][configs[k]];
          v = (num(c, "fwd_stall_s") + num(c, "bwd_stall_s")) * 1e3;
        }
        stalls[k - 1].y.push_back(v);
      }
    }
    Axes sx;
    sx.title = "Stall per layer (forward + backward) — " + str(run, "network");
    sx.x_label = "layer (forward order)";
    sx.y_label = "stall (ms)";
    sx.height = 360;
    sx.width =
        std::min(kPageWidth,
                 std::max(720, 160 + 10 * static_cast<int>(layers.size() * std::max<std::size_t>(stalls.size(), 1))));
    body += "<div class=scroll>" + bar_chart(sx, layers, stalls) + "</div>";
  }
  // Speedup of each cDMA engine over vDNN, per replayed network (the paper's bar chart).
  {
    std::vector<std::string> nets, engines;
    for (const auto& run : runs)
      for (const auto& tot : run.value("totals", json::array())) {
        const std::string c = str(tot, "config");
        if (c != "oracle" && c != "vDNN" && std::find(engines.begin(), engines.end(), c) == engines.end())
          engines.push_back(c);
      }
    std::vector<Series> sp;
    sp.push_back({"vDNN overhead over the oracle", {}, {}});
    for (const auto& e : engines) sp.push_back({e + " speedup over vDNN", {}, {}});
    for (const auto& run : runs) {
      nets.push_back(str(run, "report_label").empty() ? str(run, "network") : str(run, "report_label"));
      const json totals = run.value("totals", json::array());  // `by` points into it
      std::map<std::string, const json*> by;
      for (const auto& tot : totals) by[str(tot, "config")] = &tot;
      sp[0].y.push_back(by.count("vDNN") ? num(*by["vDNN"], "overhead_vs_oracle") * 100 : std::nan(""));
      for (std::size_t k = 0; k < engines.size(); ++k)
        sp[k + 1].y.push_back(by.count(engines[k]) ? num(*by[engines[k]], "speedup_vs_vdnn") * 100 : std::nan(""));
    }
    if (!nets.empty() && !engines.empty()) {
      Axes ax;
      ax.title = "cDMA speedup over vDNN per network";
      ax.x_label = "replayed network";
      ax.y_label = "percent (vDNN / cDMA - 1; vDNN / oracle - 1)";
      ax.y_min = 0;
      ax.height = 380;
      ax.width = std::min(kPageWidth, std::max(720, 260 + 40 * static_cast<int>(nets.size() * sp.size())));
      body = "<div class=scroll>" + bar_chart(ax, nets, sp) + "</div>" + body;
    }
  }
  // Sweeps (e.g. the link bandwidth): iteration time of each configuration over the swept value.
  for (const auto& sw : replay.value("sweeps", json::array())) {
    std::map<std::string, Series> by;
    std::vector<std::string> order{"oracle", "vDNN"};
    for (const auto& row : sw.value("rows", json::array())) {
      const double v = num(row, "value");
      by["oracle"].x.push_back(v);
      by["oracle"].y.push_back(num(row, "oracle_s") * 1e3);
      by["vDNN"].x.push_back(v);
      by["vDNN"].y.push_back(num(row, "vdnn_s") * 1e3);
      const json engines = row.value("engines", json::object());  // items() refers to it
      for (const auto& [eng, e] : engines.items()) {
        if (!by.count(eng)) order.push_back(eng);
        by[eng].x.push_back(v);
        by[eng].y.push_back(num(e, "time_s") * 1e3);
      }
    }
    std::vector<Series> lines;
    for (const auto& name : order) {
      Series l = by[name];
      l.name = name;
      lines.push_back(std::move(l));
    }
    const std::string param = str(sw, "parameter");
    Axes ax;
    ax.title = "Iteration time over the " + param + " sweep — " +
               (str(sw, "report_label").empty() ? str(sw, "network") : str(sw, "report_label"));
    ax.x_label = param == "link" ? "link bandwidth (GB/s effective, log scale)" : param;
    ax.log_x = param == "link";
    ax.y_label = "time per iteration (ms)";
    ax.width = 1000;
    ax.height = 320;
    body += "<div class=scroll>" + line_chart(ax, lines) + "</div>";
  }
  for (const auto& svg : timelines) body += "<div class=timeline>" + svg + "</div>";
  return fmt::format(
      R"~(<section id="replay"><h2>Hardware-model replay</h2><p class="intro">{}</p>{}</section>)~",
      "One training iteration replayed with no offload (oracle), with vDNN offload of every layer's input over "
      "the link, and with a compressing DMA engine (cDMA) that moves the compressed bytes. Speedup vs vDNN is "
      "vDNN time / cDMA time - 1, as the paper reports it; a stall is time a layer waits for its transfer.",
      body);
}

}  // namespace cdma::report
