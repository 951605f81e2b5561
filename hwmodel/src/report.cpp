// JSON and SVG outputs of a replay.
#include <cdma/hwmodel/report.hpp>
#include <cdma/hwmodel/study.hpp>

#include <cdma/formats/text.hpp>
#include <cdma/version.hpp>

#include <fmt/core.h>

#include <algorithm>

namespace cdma::hwmodel {

namespace {
using nlohmann::json;

// Names and phrases come from files and command lines: invalid UTF-8 is escaped (formats::clean_text).
std::string clean(const std::string& s) { return formats::clean_text(s); }
std::vector<std::string> clean(const std::vector<std::string>& v) {
  std::vector<std::string> out;
  for (const auto& s : v) out.push_back(formats::clean_text(s));
  return out;
}

double sec(Ps t) { return static_cast<double>(t) / static_cast<double>(kPsPerSecond); }

}  // namespace

json run_json(const Network& net, const Scenario& sc, const std::vector<const ReplayResult*>& results) {
  json run;
  run["network"] = clean(net.name);
  run["source"] = clean(net.source);
  run["batch"] = net.batch;
  run["gpu"] = sc.gpu;
  run["link"] = {{"name", sc.link}, {"effective_gbps", sc.link_gbps_effective}, {"latency_us", sc.latency_us}};
  run["precision"] = sc.precision;
  run["compute"] = clean(sc.compute);
  run["policy"] = to_string(sc.policy);
  run["ratio_sources"] = clean(sc.ratio_sources);
  run["unmeasured"] = {
      {"layers", clean(sc.unmeasured)}, {"bytes_per_iteration", sc.unmeasured_bytes}, {"fill", sc.fill}};
  const Ps oracle = results.empty() ? 0 : results.front()->total_ps;
  Ps vdnn = 0;
  for (const ReplayResult* r : results)
    if (r->label == "vDNN") vdnn = r->total_ps;
  json totals = json::array();
  for (const ReplayResult* rp : results) {
    const ReplayResult& r = *rp;
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
                {"name", clean(l.name)},
                {"op", l.op},
                {"fwd_s", sec(l.fwd_ps)},
                {"bwd_s", sec(l.bwd_ps)},
                {"x_bytes", l.x_tensor >= 0 ? l.x_bytes : 0},
                {"x_tensor", l.x_tensor},
                {"ratio", l.ratio},
                {"flops", l.flops}};
    json configs = json::object();
    for (size_t k = 1; k < results.size(); ++k) {
      const LayerResult& lr = results[k]->layers[i];
      configs[results[k]->label] = {{"offload_s", sec(lr.offload_ps)},
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
            {"network", clean(net.name)},
            {"config", clean(label)},
            {"total_ps", replay.total_ps},
            {"forward_ps", replay.forward_ps},
            {"link_bytes_per_s", link.bytes_per_s},
            {"latency_ps", link.latency_ps}};
  json layers = json::array();
  for (const auto& l : net.layers)
    layers.push_back({{"name", clean(l.name)},
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

json study_json(const StudyReport& report) {
  json doc = {{"schema", "cdma-replay"},
              {"schema_version", kReplaySchemaVersion},
              {"producer", fmt::format("cdma-replay {}", cdma::kVersion)}};
  json runs = json::array(), summary = json::array(), sweeps = json::array();
  for (const auto& run : report.runs) {
    runs.push_back(run_json(run.net, run.scenario, run.configurations()));
    json row = {{"network", clean(run.net.name)},
                {"oracle_s", sec(run.oracle.total_ps)},
                {"vdnn_s", sec(run.vdnn.total_ps)},
                {"vdnn_overhead", run.vdnn_overhead()}};
    for (std::size_t k = 0; k < run.engines.size(); ++k) row[run.engines[k].label] = run.speedup(k);
    summary.push_back(row);
    if (report.sweep == SweepParameter::none) continue;
    json rows = json::array();
    for (const auto& sr : run.sweep) {
      const double v = static_cast<double>(sr.vdnn_ps);
      json eng = json::object();
      for (std::size_t k = 0; k < sr.engine_ps.size() && k < report.engines.size(); ++k)
        eng[report.engines[k].label] = {{"time_s", sec(sr.engine_ps[k])},
                                        {"speedup_vs_vdnn", v / static_cast<double>(sr.engine_ps[k]) - 1}};
      rows.push_back(
          {{"value", sr.value}, {"oracle_s", sec(sr.oracle_ps)}, {"vdnn_s", sec(sr.vdnn_ps)}, {"engines", eng}});
    }
    sweeps.push_back({{"parameter", to_string(report.sweep)}, {"network", clean(run.net.name)}, {"rows", rows}});
  }
  doc["runs"] = runs;
  doc["summary"] = summary;
  if (report.sweep != SweepParameter::none) doc["sweeps"] = sweeps;
  return doc;
}

json study_events_json(const StudyReport& report) {
  json replays = json::array();
  for (const auto& run : report.runs) {
    const auto configs = run.configurations();
    for (std::size_t k = 0; k < run.events.size() && k < configs.size(); ++k) {
      const std::string label = report.runs.size() > 1 ? run.net.name + " " + configs[k]->label : configs[k]->label;
      replays.push_back(events_json(run.net, run.events[k], label, report.link_params));
    }
  }
  return {{"replays", replays}};
}

json study_chrome_trace(const StudyReport& report) {
  json events = json::array();
  int pid = 0;
  // Tracks in display order; a memory-stream event goes to "offload" or "prefetch" by its kind.
  const char* tracks[] = {"compute", "offload", "prefetch"};
  auto track_of = [](const Event& e) {
    if (e.stream == "compute") return 0;
    return e.kind == "offload" ? 1 : 2;
  };
  for (const auto& run : report.runs) {
    const auto configs = run.configurations();
    for (std::size_t k = 0; k < run.events.size() && k < configs.size(); ++k) {
      ++pid;
      const std::string process = clean(run.net.name) + " " + clean(configs[k]->label);
      events.push_back(
          {{"name", "process_name"}, {"ph", "M"}, {"pid", pid}, {"tid", 0}, {"args", {{"name", process}}}});
      events.push_back(
          {{"name", "process_sort_index"}, {"ph", "M"}, {"pid", pid}, {"tid", 0}, {"args", {{"sort_index", pid}}}});
      for (int t = 0; t < 3; ++t) {
        events.push_back(
            {{"name", "thread_name"}, {"ph", "M"}, {"pid", pid}, {"tid", t + 1}, {"args", {{"name", tracks[t]}}}});
        events.push_back(
            {{"name", "thread_sort_index"}, {"ph", "M"}, {"pid", pid}, {"tid", t + 1}, {"args", {{"sort_index", t}}}});
      }
      for (const auto& e : run.events[k].events) {
        const std::string layer = e.layer >= 0 && static_cast<std::size_t>(e.layer) < run.net.layers.size()
                                      ? clean(run.net.layers[e.layer].name)
                                      : std::string();
        // Picoseconds to the format's microseconds (a double keeps sub-microsecond steps).
        const double ts = static_cast<double>(e.start_ps) / 1e6;
        const double dur = static_cast<double>(e.end_ps - e.start_ps) / 1e6;
        events.push_back({{"name", layer.empty() ? e.kind : e.kind + " " + layer},
                          {"cat", e.kind},
                          {"ph", "X"},
                          {"pid", pid},
                          {"tid", track_of(e) + 1},
                          {"ts", ts},
                          {"dur", dur},
                          {"args", {{"layer", layer}, {"tensor", e.tensor}, {"bytes", e.bytes}}}});
      }
    }
  }
  return {{"traceEvents", events},
          {"displayTimeUnit", "ms"},
          {"otherData",
           {{"producer", fmt::format("cdma-replay {}", cdma::kVersion)}, {"gpu", report.gpu}, {"link", report.link}}}};
}

}  // namespace cdma::hwmodel
