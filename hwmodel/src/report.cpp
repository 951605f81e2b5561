// JSON and SVG outputs of a replay.
#include <cdma/hwmodel/report.hpp>

#include <cdma/version.hpp>

#include <fmt/core.h>

#include <algorithm>

namespace cdma::hwmodel {

namespace {
using nlohmann::json;

double sec(Ps t) { return static_cast<double>(t) / static_cast<double>(kPsPerSecond); }

std::string xml_escape(const std::string& s) {
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
}  // namespace

json run_json(const Network& net, const Scenario& sc, const std::vector<ReplayResult>& results) {
  json run;
  run["network"] = net.name;
  run["source"] = net.source;
  run["batch"] = net.batch;
  run["gpu"] = sc.gpu;
  run["link"] = {{"name", sc.link}, {"effective_gbps", sc.link_gbps_effective}, {"latency_us", sc.latency_us}};
  run["precision"] = sc.precision;
  run["compute"] = sc.compute;
  run["policy"] = to_string(sc.policy);
  run["ratio_sources"] = sc.ratio_sources;
  run["unmeasured"] = {{"layers", sc.unmeasured}, {"bytes_per_iteration", sc.unmeasured_bytes}, {"fill", sc.fill}};
  const Ps oracle = results.empty() ? 0 : results.front().total_ps;
  Ps vdnn = 0;
  for (const auto& r : results)
    if (r.label == "vDNN") vdnn = r.total_ps;
  json totals = json::array();
  for (const auto& r : results) {
    json t = {
        {"config", r.label},
        {"time_s", sec(r.total_ps)},
        {"forward_s", sec(r.forward_ps)},
        {"backward_s", sec(r.backward_ps)},
        {"stall_s", sec(r.stall_ps)},
        {"offloaded_bytes", r.offloaded_bytes},
        {"link_bytes", r.link_bytes},
        {"overhead_vs_oracle", oracle > 0 ? static_cast<double>(r.total_ps) / static_cast<double>(oracle) - 1 : 0.0}};
    t["speedup_vs_vdnn"] = (vdnn > 0 && r.total_ps > 0)
                               ? json(static_cast<double>(vdnn) / static_cast<double>(r.total_ps) - 1)
                               : json(nullptr);
    totals.push_back(t);
  }
  run["totals"] = totals;
  json layers = json::array();
  for (size_t i = 0; i < net.layers.size(); ++i) {
    const Layer& l = net.layers[i];
    json row = {{"index", i},
                {"name", l.name},
                {"op", l.op},
                {"fwd_s", sec(l.fwd_ps)},
                {"bwd_s", sec(l.bwd_ps)},
                {"x_bytes", l.x_tensor >= 0 ? l.x_bytes : 0},
                {"x_tensor", l.x_tensor},
                {"ratio", l.ratio},
                {"flops", l.flops}};
    json configs = json::object();
    for (size_t k = 1; k < results.size(); ++k) {
      const LayerResult& lr = results[k].layers[i];
      configs[results[k].label] = {{"offload_s", sec(lr.offload_ps)},
                                   {"prefetch_s", sec(lr.prefetch_ps)},
                                   {"demand_fetch_s", sec(lr.demand_ps)},
                                   {"prefetch_layer", lr.prefetch_layer},
                                   {"fwd_s", sec(lr.fwd_ps)},
                                   {"bwd_s", sec(lr.bwd_ps)},
                                   {"fwd_stall_s", sec(lr.fwd_stall_ps)},
                                   {"bwd_stall_s", sec(lr.bwd_stall_ps)},
                                   {"offload_bytes", lr.offload_bytes},
                                   {"link_bytes", lr.offload_link_bytes},
                                   {"ratio", lr.ratio}};
    }
    row["configs"] = configs;
    layers.push_back(row);
  }
  run["layers"] = layers;
  return run;
}

json events_json(const Network& net, const EventReplay& replay, const std::string& label, const LinkParams& link) {
  json j = {{"schema", "cdma-replay-events"},
            {"schema_version", kReplaySchemaVersion},
            {"producer", fmt::format("cdma-replay {}", cdma::kVersion)},
            {"network", net.name},
            {"config", label},
            {"total_ps", replay.total_ps},
            {"forward_ps", replay.forward_ps},
            {"link_bytes_per_s", link.bytes_per_s},
            {"latency_ps", link.latency_ps}};
  json layers = json::array();
  for (const auto& l : net.layers)
    layers.push_back({{"name", l.name},
                      {"op", l.op},
                      {"fwd_ps", l.fwd_ps},
                      {"bwd_ps", l.bwd_ps},
                      {"x_tensor", l.x_tensor},
                      {"x_bytes", l.x_bytes}});
  j["layers"] = layers;
  json ev = json::array();
  for (const auto& e : replay.events)
    ev.push_back({{"stream", e.stream},
                  {"kind", e.kind},
                  {"layer", e.layer},
                  {"tensor", e.tensor},
                  {"start_ps", e.start_ps},
                  {"end_ps", e.end_ps},
                  {"bytes", e.bytes}});
  j["events"] = ev;
  return j;
}

std::string timeline_svg(const Network& net, const std::vector<std::pair<std::string, EventReplay>>& rows,
                         const std::string& title) {
  const double width = 1200, left = 150, right = 20, lane = 18, gap = 14, top = 40;
  Ps span = 1;
  for (const auto& [label, r] : rows) span = std::max(span, r.total_ps);
  const double scale = (width - left - right) / static_cast<double>(span);
  const double height = top + static_cast<double>(rows.size()) * (2 * lane + gap) + 40;
  std::string s = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{:.0f}\" height=\"{:.0f}\" font-family=\"sans-serif\" "
      "font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      "<text x=\"10\" y=\"20\" font-size=\"14\">{}</text>\n",
      width, height, xml_escape(title));
  auto color = [](const std::string& kind) {
    if (kind == "forward") return "#4c78a8";
    if (kind == "backward") return "#54a24b";
    if (kind == "compress" || kind == "decompress") return "#b279a2";
    if (kind == "fetch") return "#e45756";
    return "#f58518";  // offload, prefetch
  };
  double y = top;
  for (const auto& [label, r] : rows) {
    s += fmt::format("<text x=\"10\" y=\"{:.1f}\">{}</text>\n", y + lane - 4, xml_escape(label));
    s += fmt::format("<text x=\"10\" y=\"{:.1f}\" fill=\"#666\">{:.1f} ms</text>\n", y + 2 * lane - 4,
                     sec(r.total_ps) * 1e3);
    s += fmt::format("<text x=\"{:.0f}\" y=\"{:.1f}\" fill=\"#666\" text-anchor=\"end\">compute</text>\n", left - 4,
                     y + lane - 5);
    s += fmt::format("<text x=\"{:.0f}\" y=\"{:.1f}\" fill=\"#666\" text-anchor=\"end\">memory</text>\n", left - 4,
                     y + 2 * lane - 5);
    for (const auto& e : r.events) {
      if (e.end_ps <= e.start_ps) continue;
      const double x0 = left + static_cast<double>(e.start_ps) * scale;
      const double w = std::max(0.5, static_cast<double>(e.end_ps - e.start_ps) * scale);
      const double ly = e.stream == "compute" ? y : y + lane;
      std::string name = e.layer >= 0 && e.layer < static_cast<int>(net.layers.size()) ? net.layers[e.layer].name : "";
      s += fmt::format(
          "<rect x=\"{:.2f}\" y=\"{:.1f}\" width=\"{:.2f}\" height=\"{:.1f}\" fill=\"{}\" stroke=\"white\" "
          "stroke-width=\"0.3\"><title>{} {} {:.3f}-{:.3f} ms{}</title></rect>\n",
          x0, ly + 1, w, lane - 2, color(e.kind), e.kind, xml_escape(name), sec(e.start_ps) * 1e3, sec(e.end_ps) * 1e3,
          e.bytes > 0 ? fmt::format(" {} B", e.bytes) : "");
    }
    y += 2 * lane + gap;
  }
  // Time axis.
  const double axis = y;
  s += fmt::format("<line x1=\"{:.0f}\" y1=\"{:.1f}\" x2=\"{:.0f}\" y2=\"{:.1f}\" stroke=\"#333\"/>\n", left, axis,
                   width - right, axis);
  for (int k = 0; k <= 10; ++k) {
    const double x = left + (width - left - right) * k / 10.0;
    s += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"#333\"/>"
        "<text x=\"{0:.1f}\" y=\"{3:.1f}\" text-anchor=\"middle\">{4:.1f} ms</text>\n",
        x, axis, axis + 4, axis + 16, sec(span) * 1e3 * k / 10.0);
  }
  s += "<text x=\"10\" y=\"" + fmt::format("{:.1f}", axis + 32) +
       "\" fill=\"#666\">blue: forward, green: backward, orange: offload/prefetch, red: on-demand fetch, purple: "
       "(de)compression kernel; gaps on the compute lane are stalls</text>\n";
  s += "</svg>\n";
  return s;
}

}  // namespace cdma::hwmodel
