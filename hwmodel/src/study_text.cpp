// The text tables of a study (what `cdma replay` prints) and the preset catalogue.
#include <cdma/formats/codec.hpp>
#include <cdma/formats/text.hpp>
#include <cdma/hwmodel/study.hpp>
#include <cdma/hwmodel/zoo.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <iterator>

namespace cdma::hwmodel {

namespace {

double ms(Ps t) { return static_cast<double>(t) / 1e9; }

using formats::human_bytes;

// Appends formatted text to `out`.
template <class... A>
void put(std::string& out, fmt::format_string<A...> f, A&&... a) {
  fmt::format_to(std::back_inserter(out), f, std::forward<A>(a)...);
}

void totals(std::string& out, const RunReport& run) {
  const Network& net = run.net;
  const Scenario& sc = run.scenario;
  put(out, "{} (batch {}, {}) on {} + {} ({:.2f} GB/s effective, {} us/transfer), policy {}\n", net.name, net.batch,
      sc.precision, sc.gpu, sc.link, sc.link_gbps_effective, sc.latency_us, to_string(sc.policy));
  put(out, "  compute: {}\n", sc.compute);
  for (const auto& r : sc.ratio_sources) put(out, "  ratios: {}\n", r);
  if (!sc.unmeasured.empty())
    put(out, "  unmeasured: {} offloaded tensors ({}/iteration) have no measured ratio, replayed {}: {}\n",
        sc.unmeasured.size(), human_bytes(static_cast<double>(sc.unmeasured_bytes)),
        sc.fill == "none" ? "uncompressed" : "with the fill rule '" + sc.fill + "'", fmt::join(sc.unmeasured, ", "));
  const double oracle = static_cast<double>(run.oracle.total_ps), vdnn = static_cast<double>(run.vdnn.total_ps);
  put(out, "  {:<18} {:>11} {:>11} {:>11} {:>12} {:>12} {:>10}\n", "config", "iter ms", "fwd ms", "bwd ms",
      "link bytes", "vs oracle", "vs vDNN");
  for (const ReplayResult* r : run.configurations()) {
    const double t = static_cast<double>(r->total_ps);
    put(out, "  {:<18} {:>11.2f} {:>11.2f} {:>11.2f} {:>12} {:>+11.1f}% {:>+9.1f}%\n", r->label, ms(r->total_ps),
        ms(r->forward_ps), ms(r->backward_ps), human_bytes(static_cast<double>(r->link_bytes)), 100 * (t / oracle - 1),
        100 * (vdnn / t - 1));
  }
}

// Per-layer view of vDNN and of the first cDMA engine.
void layers(std::string& out, const RunReport& run) {
  const Network& net = run.net;
  const ReplayResult& v = run.vdnn;
  const ReplayResult* c = run.engines.empty() ? nullptr : &run.engines.front();
  put(out, "  per layer: vDNN (off, pre, stall){}\n",
      c ? fmt::format("; ratio and the columns after '|' are {}", c->label) : "");
  put(out, "  {:>3} {:<28} {:<7} {:>9} {:>9} {:>10} {:>6} {:>9} {:>9} {:>9}", "#", "layer", "op", "F ms", "B ms", "U",
      "ratio", "off ms", "pre ms", "stall ms");
  if (c) put(out, " | {:>9} {:>9}", "off ms", "stall ms");
  out += '\n';
  for (std::size_t i = 0; i < net.layers.size(); ++i) {
    const auto& l = net.layers[i];
    const auto& lr = v.layers[i];
    std::string ratio = "-";
    if (c && c->layers[i].offload_bytes > 0) ratio = fmt::format("{:.2f}", c->layers[i].ratio);
    const double stall = ms(lr.fwd_stall_ps + lr.bwd_stall_ps);
    put(out, "  {:>3} {:<28.28} {:<7} {:>9.3f} {:>9.3f} {:>10} {:>6} {:>9.3f} {:>9.3f} {:>9.3f}", i, l.name, l.op,
        ms(l.fwd_ps), ms(l.bwd_ps), lr.offload_bytes ? human_bytes(static_cast<double>(lr.offload_bytes)) : "-", ratio,
        ms(lr.offload_ps), ms(lr.prefetch_ps + lr.demand_ps), stall);
    if (c)
      put(out, " | {:>9.3f} {:>9.3f}", ms(c->layers[i].offload_ps),
          ms(c->layers[i].fwd_stall_ps + c->layers[i].bwd_stall_ps));
    out += '\n';
  }
}

void sweep(std::string& out, const StudyReport& rep, const RunReport& run) {
  const std::string p = to_string(rep.sweep);
  put(out, "\nsweep of {} for {} ({}):\n  {:>10} {:>11} {:>11}", p, run.net.name, to_string(run.scenario.policy),
      rep.sweep == SweepParameter::link ? "GB/s" : p, "oracle ms", "vDNN ms");
  for (const auto& e : rep.engines) put(out, " {:>18}", e.label);
  put(out, " {:>10}\n", "vDNN ovh");
  for (const auto& r : run.sweep) {
    const double vdnn = static_cast<double>(r.vdnn_ps);
    put(out, "  {:>10g} {:>11.2f} {:>11.2f}", r.value, ms(r.oracle_ps), ms(r.vdnn_ps));
    for (Ps t : r.engine_ps) put(out, " {:>9.2f} ({:>+5.0f}%)", ms(t), 100 * (vdnn / static_cast<double>(t) - 1));
    put(out, " {:>+9.1f}%\n", 100 * (vdnn / static_cast<double>(r.oracle_ps) - 1));
  }
}

void summary(std::string& out, const StudyReport& rep) {
  put(out, "summary ({} + {}, {}): vDNN overhead over oracle; cDMA speedup over vDNN\n", rep.gpu, rep.link,
      to_string(rep.policy));
  put(out, "  {:<14} {:>10}", "network", "vDNN ovh");
  for (const auto& e : rep.engines) put(out, " {:>16}", e.label);
  out += '\n';
  for (const auto& run : rep.runs) {
    put(out, "  {:<14} {:>+9.1f}%", run.net.name, 100 * run.vdnn_overhead());
    for (std::size_t k = 0; k < run.engines.size(); ++k) put(out, " {:>+15.1f}%", 100 * run.speedup(k));
    out += '\n';
  }
  put(out, "  {:<14} {:>+9.1f}%", "average", 100 * rep.vdnn_overhead.mean);
  for (const auto& a : rep.speedup) put(out, " {:>+15.1f}%", 100 * a.mean);
  put(out, "\n  {:<14} {:>+9.1f}%", "maximum", 100 * rep.vdnn_overhead.max);
  for (const auto& a : rep.speedup) put(out, " {:>+15.1f}%", 100 * a.max);
  out += '\n';
}

}  // namespace

void write_tables(std::ostream& os, const StudyReport& rep, bool per_layer) {
  std::string out;
  for (const auto& run : rep.runs) {
    totals(out, run);
    if (per_layer) layers(out, run);
    out += '\n';
    if (rep.sweep != SweepParameter::none) sweep(out, rep, run);
  }
  if (rep.runs.size() > 1) summary(out, rep);
  os << out;
}

void write_catalog(std::ostream& os, const PresetCatalog& presets) {
  std::string out;
  put(out, "presets from {}\nGPUs:\n", presets.dir.string());
  for (const auto& g : presets.gpus) {
    std::vector<std::string> peaks;
    for (const auto& [k, v] : g.peak_tflops) peaks.push_back(fmt::format("{} {}", k, v));
    put(out, "  {:<16} {:>7.1f} GB/s  {:>4.0f} GiB  TFLOP/s: {}\n", g.name, g.dram_gbps, g.memory_gib,
        fmt::join(peaks, ", "));
    for (const auto& src : g.sources) put(out, "  {:<16} source: {}\n", "", src);
  }
  out += "links:\n";
  for (const auto& l : presets.links)
    put(out, "  {:<16} {:>7.2f} GB/s nominal x {} = {:.2f} GB/s, {} us/transfer\n", l.name, l.nominal_gbps,
        l.efficiency, l.effective_bytes_per_s() / 1e9, l.latency_us);
  for (const auto& l : presets.links)
    for (const auto& src : l.sources) put(out, "  {:<16} source: {}\n", l.name, src);
  put(out, "networks: {}\nengine placements: dma, mc, sm (codecs: {})\n", fmt::join(zoo_names(), ", "),
      fmt::join(formats::codec_families(), ", "));
  os << out;
}

}  // namespace cdma::hwmodel
