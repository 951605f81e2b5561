// `cdma replay`: hardware-model replay of vDNN offload and cDMA engines (hwmodel/, HWMODEL.md).
// Thin layer: parse options, build the networks and the study, print tables / JSON / SVG.
#include "util.hpp"
#include "verbs.hpp"

#include <cdma/formats/codec.hpp>
#include <cdma/formats/error.hpp>
#include <cdma/formats/trace.hpp>
#include <cdma/hwmodel/facade.hpp>
#include <cdma/hwmodel/report.hpp>
#include <cdma/hwmodel/trace_input.hpp>
#include <cdma/hwmodel/zoo.hpp>
#include <cdma/version.hpp>

#include <fmt/core.h>
#include <fmt/ranges.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <optional>
#include <set>

namespace cdma::cli {
namespace {

namespace hw = cdma::hwmodel;
using nlohmann::json;

struct Options {
  std::vector<std::string> traces, nets, engines, sweep_values;
  int batch = 256;
  std::string precision = "fp32", gpu = "titan-xp", link = "pcie3", presets, policy = "vdnn-all";
  std::string compute = "auto", ratios, ratios_label, json_out, svg_out, events_out, csv_out, sweep, fill = "none";
  std::optional<double> ratio, density, link_gbps, link_eff, latency_us, compute_eff, dram_eff;
  double compute_scale = 1.0, bwd_factor = 2.0, read_gbps = 0, comp_gbps = 0;
  int conv_kernel = 3, trace_index = 0;
  std::int64_t trace_batch = 0;
  bool layers = false, no_layers = false, list = false, quiet = false;
};

double ms(hw::Ps t) { return static_cast<double>(t) / 1e9; }

// A bad value on the command line (unknown preset, network or engine): exit 2.
class UsageError : public formats::Error {
 public:
  using formats::Error::Error;
};

// Runs `f`, turning the model's rejection of a name or value into a UsageError.
template <class F>
auto as_usage(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const hw::ModelError& e) {
    throw UsageError(e.what());
  } catch (const formats::CodecError& e) {
    throw UsageError(e.what());
  }
}

// A finite number in [lo, hi] (or (lo, hi] when !lo_closed); NaN and infinities are refused.
CLI::Validator finite_range(double lo, double hi, bool lo_closed) {
  return CLI::Validator(
      [=](std::string& s) -> std::string {
        double v = 0;
        try {
          std::size_t n = 0;
          v = std::stod(s, &n);
          if (n != s.size()) return "'" + s + "' is not a number";
        } catch (const std::exception&) {
          return "'" + s + "' is not a number";
        }
        if (!std::isfinite(v) || v > hi || v < lo || (!lo_closed && v == lo))
          return fmt::format("{} is outside {}{:g}, {:g}]", s, lo_closed ? "[" : "(", lo, hi);
        return "";
      },
      fmt::format("{}{:g}, {:g}]", lo_closed ? "[" : "(", lo, hi));
}

// "mc", "mc:zvc", "sm:lz4" -> engine with a canonical codec name.
hw::Engine parse_engine(const std::string& spec, const hw::PresetCatalog& presets, const hw::GpuPreset& gpu,
                        const Options& o) {
  auto colon = spec.find(':');
  std::string place = spec.substr(0, colon);
  std::string codec = colon == std::string::npos ? "zvc" : spec.substr(colon + 1);
  codec = formats::make_codec(codec)->name();
  return hw::make_engine(presets, gpu, hw::parse_placement(place), codec, o.read_gbps, o.comp_gbps);
}

struct Prepared {
  hw::Network net;
  hw::Scenario sc;
};

class Replayer {
 public:
  Replayer(const Options& o) : o_(o) {
    presets_ = hw::PresetCatalog::load(o.presets.empty() ? hw::default_preset_dir() : std::filesystem::path(o.presets));
    gpu_ = as_usage([&] { return presets_.gpu(o.gpu); });
    if (o.compute_eff) gpu_.compute_efficiency = check_pos(*o.compute_eff, "--compute-eff");
    if (o.dram_eff) gpu_.dram_efficiency = check_pos(*o.dram_eff, "--dram-eff");
    gpu_.peak_flops(o.precision);  // validates the precision
    link_ = as_usage([&] { return presets_.link(o.link); });
    if (o.link_gbps) link_.nominal_gbps = check_pos(*o.link_gbps, "--link-gbps");
    if (o.link_eff) link_.efficiency = check_pos(*o.link_eff, "--link-eff");
    if (o.latency_us) {
      if (*o.latency_us < 0) throw hw::ModelError("--latency-us must be >= 0");
      link_.latency_us = *o.latency_us;
    }
    cfg_.policy = hw::parse_policy(o.policy);
    cfg_.link = link_params(link_.effective_bytes_per_s());
    std::vector<std::string> specs = o.engines;
    if (specs.empty()) specs = {"dma:zvc", "mc:zvc", "sm:zvc"};
    for (const auto& s : specs) {
      auto e = as_usage([&] { return parse_engine(s, presets_, gpu_, o); });
      if (e.placement == hw::Placement::none) continue;  // vDNN is always included
      cfg_.engines.push_back(e);
      if (std::find(codecs_.begin(), codecs_.end(), e.codec) == codecs_.end()) codecs_.push_back(e.codec);
    }
    if (o.ratios.size() > 3 && o.ratios.substr(o.ratios.size() - 3) == ".h5") {
      ratio_table_ = hw::measure_ratio_table(o.ratios, codecs_);
    } else if (!o.ratios.empty()) {
      ratio_table_ = hw::load_analysis_json(o.ratios, o.trace_index);
    }
  }

  const hw::PresetCatalog& presets() const { return presets_; }
  const hw::StudyConfig& config() const { return cfg_; }
  hw::StudyConfig& config() { return cfg_; }
  const hw::GpuPreset& gpu() const { return gpu_; }
  const hw::LinkPreset& link() const { return link_; }
  const std::vector<std::string>& codecs() const { return codecs_; }

  hw::LinkParams link_params(double bytes_per_s) const {
    hw::LinkParams p;
    p.bytes_per_s = bytes_per_s;
    p.latency_ps = static_cast<hw::Ps>(std::llround(link_.latency_us * 1e6));
    return p;
  }

  Prepared zoo(const std::string& name) const {
    const int eb = (o_.precision == "fp16" || o_.precision == "bf16") ? 2 : 4;
    Prepared p{hw::zoo_network(name, o_.batch, eb), scenario()};
    hw::apply_roofline(p.net, gpu_, o_.precision, o_.bwd_factor);
    p.sc.compute = fmt::format("roofline ({}, compute eff {}, DRAM eff {}, backward = {} x forward)", gpu_.name,
                               gpu_.compute_efficiency, gpu_.dram_efficiency, o_.bwd_factor);
    apply_ratio_flags(p, eb, false);
    note_unmeasured(p);
    return p;
  }

  Prepared trace(const std::string& path) const {
    hw::TraceNetworkOptions t;
    formats::TraceReader reader(path);
    const bool cpu = reader.attrs().source == "torch-cpu", no_timeline = !reader.has_timeline();
    bool roofline = o_.compute == "roofline" || (o_.compute == "auto" && (cpu || no_timeline));
    if (o_.compute != "auto" && o_.compute != "roofline" && o_.compute != "trace")
      throw hw::ModelError(fmt::format("--compute must be auto, trace or roofline, got '{}'", o_.compute));
    t.roofline = roofline;
    t.gpu = &gpu_;
    t.precision = o_.precision;
    t.conv_kernel = o_.conv_kernel;
    t.compute_scale = o_.compute_scale;
    t.bwd_factor = o_.bwd_factor;
    t.batch = o_.trace_batch;
    Prepared p{hw::network_from_trace(path, t), scenario()};
    p.sc.compute = roofline
                       ? fmt::format("roofline of {} over the trace's layer shapes (conv kernels assumed {}x{}{})",
                                     gpu_.name, o_.conv_kernel, o_.conv_kernel,
                                     o_.compute == "auto"
                                         ? (cpu ? "; the trace's times are CPU times" : "; the trace has no /timeline")
                                         : "")
                       : fmt::format("trace /timeline x {}", o_.compute_scale);
    int eb = 4;
    for (const auto& tm : reader.tensors()) {
      eb = static_cast<int>(formats::dtype_size(tm.dtype));
      break;
    }
    if (!apply_ratio_flags(p, eb, true)) {
      auto table = hw::measure_ratio_table(path, codecs_);
      take(p, hw::apply_ratios(p.net, table, true, false, hw::RatioFill::none));
      p.sc.ratio_sources.push_back(
          fmt::format("measured on the trace's offloaded tensors ({})", fmt::join(codecs_, ", ")));
    }
    note_unmeasured(p);
    return p;
  }

  // Keeps the layers a ratio table had no row for (filled or not) in the scenario.
  static const hw::ApplyRatiosReport& take(Prepared& p, const hw::ApplyRatiosReport& rep) {
    p.sc.unmeasured = rep.unmeasured;
    p.sc.unmeasured_bytes = rep.unmeasured_bytes;
    return rep;
  }

  // Adds every other offloaded tensor that some engine's codec has no ratio for (ratio 1).
  void note_unmeasured(Prepared& p) const {
    std::set<int> seen;  // a shared tensor counts once, at its first consumer
    for (const auto& l : p.net.layers) {
      if (l.x_tensor < 0 || l.x_tensor == p.net.input_tensor || l.x_bytes <= 0 || !seen.insert(l.x_tensor).second)
        continue;
      if (std::find(p.sc.unmeasured.begin(), p.sc.unmeasured.end(), l.name) != p.sc.unmeasured.end()) continue;
      std::vector<std::string> missing;
      for (const auto& c : codecs_)
        if (!l.ratio.count(c)) missing.push_back(c);
      if (missing.empty()) continue;
      p.sc.unmeasured.push_back(
          missing.size() == codecs_.size() ? l.name : fmt::format("{} ({})", l.name, fmt::join(missing, ", ")));
      p.sc.unmeasured_bytes += l.x_bytes;
    }
  }

 private:
  static double check_pos(double v, const char* flag) {
    if (!(v > 0) || !std::isfinite(v)) throw hw::ModelError(fmt::format("{} must be > 0, got {}", flag, v));
    return v;
  }

  hw::Scenario scenario() const {
    hw::Scenario sc;
    sc.gpu = gpu_.name;
    sc.link = link_.name;
    sc.precision = o_.precision;
    sc.link_gbps_effective = link_.effective_bytes_per_s() / 1e9;
    sc.latency_us = link_.latency_us;
    sc.policy = cfg_.policy;
    return sc;
  }

  std::string ratios_name() const { return o_.ratios_label.empty() ? o_.ratios : o_.ratios_label; }

  // Applies --ratios / --ratio / --density; false when none was given.
  bool apply_ratio_flags(Prepared& p, int eb, bool from_trace) const {
    bool any = false;
    const hw::RatioFill fill = hw::parse_fill(o_.fill);
    p.sc.fill = hw::to_string(fill);
    if (ratio_table_ && from_trace) {
      // U stays the trace's own (scaled to the modelled batch); the table gives ratios.
      auto rep = take(p, hw::apply_ratios(p.net, *ratio_table_, true, false, fill));
      p.sc.ratio_sources.push_back(
          fmt::format("{}: {} layers matched by name, {} by index, {} without a measurement ({})", ratios_name(),
                      rep.matched_by_name, rep.matched_by_index, rep.unmatched,
                      fill == hw::RatioFill::none ? "uncompressed" : "filled with the table's network ratio"));
      any = true;
    } else if (ratio_table_) {
      std::map<std::string, double> avg;
      auto rep = take(p, hw::apply_ratios_to_zoo(p.net, *ratio_table_, fill, &avg));
      std::vector<std::string> parts;
      for (const auto& [c, r] : avg) parts.push_back(fmt::format("{} {:.2f}", c, r));
      p.sc.ratio_sources.push_back(
          fill == hw::RatioFill::none
              ? fmt::format("{}: {} layers matched by name and op; {} without a measurement, uncompressed "
                            "(--fill average gives their post-ReLU tensors the measured post-ReLU average: {})",
                            ratios_name(), rep.matched_by_name, rep.unmatched, fmt::join(parts, ", "))
              : fmt::format("{}: {} layers matched by name and op; the other {} take, where post-ReLU, the "
                            "measured post-ReLU average ({}), else ratio 1 (--fill average)",
                            ratios_name(), rep.matched_by_name, rep.unmatched, fmt::join(parts, ", ")));
      any = true;
    }
    if (o_.density) {
      p.net.set_density(*o_.density, eb);
      p.sc.ratio_sources.push_back(fmt::format("ZVC at density {} on post-ReLU tensors (ratio {:.2f}), dense elsewhere",
                                               *o_.density, hw::zvc_ratio(*o_.density, eb)));
      any = true;
    }
    if (o_.ratio) {
      for (const auto& c : codecs_) p.net.set_ratio(c, *o_.ratio);
      p.sc.ratio_sources.push_back(
          fmt::format("ratio {} on every offloaded tensor ({})", *o_.ratio, fmt::join(codecs_, ", ")));
      any = true;
    }
    return any;
  }

  const Options& o_;
  hw::PresetCatalog presets_;
  hw::GpuPreset gpu_;
  hw::LinkPreset link_;
  hw::StudyConfig cfg_;
  std::vector<std::string> codecs_;
  std::optional<hw::RatioTable> ratio_table_;
};

void print_layers(const hw::Network& net, const hw::StudyResult& st) {
  // Per-layer view of vDNN and of the first cDMA engine.
  const auto& v = st.results[1];
  const hw::ReplayResult* c = st.results.size() > 2 ? &st.results[2] : nullptr;
  fmt::print("  per layer: vDNN (off, pre, stall){}\n",
             c ? fmt::format("; ratio and the columns after '|' are {}", c->label) : "");
  fmt::print("  {:>3} {:<28} {:<7} {:>9} {:>9} {:>10} {:>6} {:>9} {:>9} {:>9}", "#", "layer", "op", "F ms", "B ms", "U",
             "ratio", "off ms", "pre ms", "stall ms");
  if (c) fmt::print(" | {:>9} {:>9}", "off ms", "stall ms");
  fmt::print("\n");
  for (size_t i = 0; i < net.layers.size(); ++i) {
    const auto& l = net.layers[i];
    const auto& lr = v.layers[i];
    std::string ratio = "-";
    if (c && c->layers[i].offload_bytes > 0) ratio = fmt::format("{:.2f}", c->layers[i].ratio);
    const double stall = ms(lr.fwd_stall_ps + lr.bwd_stall_ps);
    fmt::print("  {:>3} {:<28.28} {:<7} {:>9.3f} {:>9.3f} {:>10} {:>6} {:>9.3f} {:>9.3f} {:>9.3f}", i, l.name, l.op,
               ms(l.fwd_ps), ms(l.bwd_ps), lr.offload_bytes ? human_bytes(static_cast<double>(lr.offload_bytes)) : "-",
               ratio, ms(lr.offload_ps), ms(lr.prefetch_ps + lr.demand_ps), stall);
    if (c)
      fmt::print(" | {:>9.3f} {:>9.3f}", ms(c->layers[i].offload_ps),
                 ms(c->layers[i].fwd_stall_ps + c->layers[i].bwd_stall_ps));
    fmt::print("\n");
  }
}

void print_totals(const hw::Network& net, const hw::Scenario& sc, const hw::StudyResult& st) {
  fmt::print("{} (batch {}, {}) on {} + {} ({:.2f} GB/s effective, {} us/transfer), policy {}\n", net.name, net.batch,
             sc.precision, sc.gpu, sc.link, sc.link_gbps_effective, sc.latency_us, hw::to_string(sc.policy));
  fmt::print("  compute: {}\n", sc.compute);
  for (const auto& r : sc.ratio_sources) fmt::print("  ratios: {}\n", r);
  if (!sc.unmeasured.empty())
    fmt::print("  unmeasured: {} offloaded tensors ({}/iteration) have no measured ratio, replayed {}: {}\n",
               sc.unmeasured.size(), human_bytes(static_cast<double>(sc.unmeasured_bytes)),
               sc.fill == "none" ? "uncompressed" : "with the fill rule '" + sc.fill + "'",
               fmt::join(sc.unmeasured, ", "));
  const double oracle = static_cast<double>(st.results[0].total_ps);
  const double vdnn = static_cast<double>(st.results[1].total_ps);
  fmt::print("  {:<18} {:>11} {:>11} {:>11} {:>12} {:>12} {:>10}\n", "config", "iter ms", "fwd ms", "bwd ms",
             "link bytes", "vs oracle", "vs vDNN");
  for (const auto& r : st.results) {
    const double t = static_cast<double>(r.total_ps);
    fmt::print("  {:<18} {:>11.2f} {:>11.2f} {:>11.2f} {:>12} {:>+11.1f}% {:>+9.1f}%\n", r.label, ms(r.total_ps),
               ms(r.forward_ps), ms(r.backward_ps), human_bytes(static_cast<double>(r.link_bytes)),
               100 * (t / oracle - 1), 100 * (vdnn / t - 1));
  }
}

// Sweep: replays the network for each value of link bandwidth (GB/s effective), density or ratio.
json run_sweep(const Options& o, const Replayer& rp, hw::Network net, const hw::Scenario& sc, bool print) {
  std::vector<double> values;
  for (const auto& s : o.sweep_values) {
    try {
      values.push_back(std::stod(s));
    } catch (const std::exception&) {
      throw hw::ModelError(fmt::format("--sweep-values: '{}' is not a number", s));
    }
  }
  if (values.empty()) {
    if (o.sweep == "link")
      values = {2, 4, 8, 12.6, 16, 25.2, 32, 50.4, 64, 128, 256, 512};
    else if (o.sweep == "density")
      values = {0, 0.05, 0.1, 0.2, 0.3, 0.35, 0.4, 0.5, 0.6, 0.8, 1.0};
    else
      values = {1, 1.5, 2, 2.6, 3, 4, 6, 8, 13.8, 32};
  }
  const int eb = (o.precision == "fp16" || o.precision == "bf16") ? 2 : 4;
  json rows = json::array();
  if (print) {
    fmt::print("\nsweep of {} for {} ({}):\n  {:>10} {:>11} {:>11}", o.sweep, net.name, hw::to_string(sc.policy),
               o.sweep == "link" ? "GB/s" : o.sweep, "oracle ms", "vDNN ms");
    for (const auto& e : rp.config().engines) fmt::print(" {:>18}", e.label);
    fmt::print(" {:>10}\n", "vDNN ovh");
  }
  for (double v : values) {
    hw::StudyConfig cfg = rp.config();
    if (o.sweep == "link") {
      if (!(v > 0)) throw hw::ModelError(fmt::format("link sweep values must be > 0 GB/s, got {}", v));
      cfg.link = rp.link_params(v * 1e9);
    } else if (o.sweep == "density") {
      net.set_density(v, eb);
    } else {
      for (const auto& c : rp.codecs()) net.set_ratio(c, v);
    }
    auto st = hw::run_study(net, cfg);
    if (!st.disagreement.empty()) throw hw::ModelError("internal check failed: " + st.disagreement);
    const double vdnn = static_cast<double>(st.results[1].total_ps);
    json row = {{"value", v}, {"oracle_s", ms(st.results[0].total_ps) / 1e3}, {"vdnn_s", vdnn / 1e12}};
    json eng = json::object();
    for (size_t k = 2; k < st.results.size(); ++k)
      eng[st.results[k].label] = {{"time_s", ms(st.results[k].total_ps) / 1e3},
                                  {"speedup_vs_vdnn", vdnn / static_cast<double>(st.results[k].total_ps) - 1}};
    row["engines"] = eng;
    rows.push_back(row);
    if (print) {
      fmt::print("  {:>10g} {:>11.2f} {:>11.2f}", v, ms(st.results[0].total_ps), ms(st.results[1].total_ps));
      for (size_t k = 2; k < st.results.size(); ++k)
        fmt::print(" {:>9.2f} ({:>+5.0f}%)", ms(st.results[k].total_ps),
                   100 * (vdnn / static_cast<double>(st.results[k].total_ps) - 1));
      fmt::print(" {:>+9.1f}%\n", 100 * (vdnn / static_cast<double>(st.results[0].total_ps) - 1));
    }
  }
  return {{"parameter", o.sweep}, {"network", net.name}, {"rows", rows}};
}

void list_presets(const Replayer& rp) {
  fmt::print("presets from {}\nGPUs:\n", rp.presets().dir.string());
  for (const auto& g : rp.presets().gpus) {
    std::vector<std::string> peaks;
    for (const auto& [k, v] : g.peak_tflops) peaks.push_back(fmt::format("{} {}", k, v));
    fmt::print("  {:<16} {:>7.1f} GB/s  {:>4.0f} GiB  TFLOP/s: {}\n", g.name, g.dram_gbps, g.memory_gib,
               fmt::join(peaks, ", "));
  }
  fmt::print("links:\n");
  for (const auto& l : rp.presets().links)
    fmt::print("  {:<16} {:>7.2f} GB/s nominal x {} = {:.2f} GB/s, {} us/transfer\n", l.name, l.nominal_gbps,
               l.efficiency, l.effective_bytes_per_s() / 1e9, l.latency_us);
  fmt::print("networks: {}\nengine placements: dma, mc, sm (codecs: {})\n", fmt::join(hw::zoo_names(), ", "),
             fmt::join(formats::codec_families(), ", "));
}

int run(int argc, char** argv) {
  Options o;
  CLI::App app{
      "Hardware-model replay of one training iteration: oracle (no offload), vDNN offload, and compressing "
      "DMA engines (cDMA), from a trace or from the built-in network zoo.",
      "cdma replay"};
  app.add_option("traces", o.traces,
                 "trace files (.h5): per-layer compute times from /timeline, bytes and ratios "
                 "from their tensors (or --ratios)")
      ->check(CLI::ExistingFile);
  app.add_option("--net", o.nets,
                 "zoo network(s): alexnet, overfeat, nin, vgg16, squeezenet, squeezenet1.1, "
                 "googlenet, resnet50; 'paper' = the cDMA paper's six; 'all'");
  app.add_option("--batch", o.batch, "batch size of zoo networks")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  app.add_option("--precision", o.precision, "fp32, fp16, bf16 or tf32 (peak FLOP/s; 2-byte activations for fp16/bf16)")
      ->capture_default_str()
      ->check(CLI::IsMember({"fp32", "fp16", "bf16", "tf32"}));
  app.add_option("--gpu", o.gpu, "GPU preset (see --list)")->capture_default_str();
  app.add_option("--link", o.link, "link preset: pcie3, pcie4, pcie5, nvlink-c2c")->capture_default_str();
  app.add_option("--presets", o.presets,
                 "folder with gpus.json, links.json, engines.json (default: $CDMA_PRESETS, "
                 "the install's share/cdma/presets, or the source tree's data/presets)");
  app.add_option("--link-gbps", o.link_gbps, "override the link's nominal GB/s (one direction)")
      ->check(finite_range(1e-3, 1e6, true));
  app.add_option("--link-eff", o.link_eff, "override the link's DMA efficiency")->check(finite_range(0, 1, false));
  app.add_option("--latency-us", o.latency_us, "override the per-transfer latency (us)")
      ->check(finite_range(0, 1e6, true));
  app.add_option("--compute-eff", o.compute_eff, "override the GPU's compute efficiency (share of peak)")
      ->check(finite_range(0, 1, false));
  app.add_option("--dram-eff", o.dram_eff, "override the GPU's DRAM efficiency")->check(finite_range(0, 1, false));
  app.add_option("--bwd-factor", o.bwd_factor, "roofline backward time = factor x forward")
      ->capture_default_str()
      ->check(finite_range(0, 100, true));
  app.add_option("--policy", o.policy, "vdnn-all or vdnn-conv")
      ->capture_default_str()
      ->check(CLI::IsMember({"vdnn-all", "vdnn-conv"}));
  app.add_option("--engine", o.engines,
                 "cDMA engine PLACEMENT[:CODEC], repeatable; placement dma, mc or sm; codec zvc "
                 "(default), zrle-K, zlib-L, zstd-L, lz4 (default: dma:zvc mc:zvc sm:zvc)");
  app.add_option("--read-gbps", o.read_gbps,
                 "override the engines' read bandwidth of uncompressed data (GB/s; 0 = the preset's)")
      ->check(finite_range(0, 1e6, true));
  app.add_option("--comp-gbps", o.comp_gbps, "override the compressor (or sm kernel) throughput (GB/s; 0 = preset)")
      ->check(finite_range(0, 1e6, true));
  auto* r1 =
      app.add_option("--ratio", o.ratio, "compression ratio of every offloaded tensor (e.g. 2.6, the paper's average)")
          ->check(finite_range(1e-3, 1e6, true));
  auto* r2 =
      app.add_option("--density", o.density, "ZVC ratio from a density of post-ReLU tensors: 32/(1+32d) for fp32")
          ->check(finite_range(0, 1, true));
  app.add_option("--ratios", o.ratios,
                 "per-layer ratios from `cdma analyze --json` output, or measured on a trace "
                 "(.h5); a zoo layer takes the row with its name and op, else the measured post-ReLU average")
      ->check(CLI::ExistingFile);
  app.add_option("--trace-index", o.trace_index, "which trace of the analysis JSON")
      ->capture_default_str()
      ->check(CLI::Range(0, 1 << 20));
  // For cdma report: how ratio sources name the --ratios file (instead of its temporary path).
  app.add_option("--ratios-label", o.ratios_label)->group("");
  auto* r3 = app.get_option("--ratios");
  r1->excludes(r2)->excludes(r3);
  r2->excludes(r3);
  app.add_option("--fill", o.fill,
                 "what an offloaded tensor without a row in --ratios is replayed with: 'none' (uncompressed) or "
                 "'average' (a trace layer: the table's network ratio; a zoo layer: the measured post-ReLU "
                 "average where post-ReLU); either way such layers are listed")
      ->capture_default_str()
      ->check(CLI::IsMember({"none", "average"}));
  app.add_option("--compute", o.compute,
                 "trace replays: 'trace' (measured times x --compute-scale), 'roofline' "
                 "(GPU preset over the layer shapes), 'auto' (roofline for torch-cpu traces)")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "trace", "roofline"}));
  app.add_option("--compute-scale", o.compute_scale, "factor on measured compute times")
      ->capture_default_str()
      ->check(finite_range(1e-6, 1e6, true));
  app.add_option("--trace-batch", o.trace_batch,
                 "batch size modelled for traces (0: the trace's batch_size "
                 "attribute, else the captured N); U scales with it")
      ->capture_default_str()
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{1} << 20));
  app.add_option("--conv-kernel", o.conv_kernel, "conv kernel size assumed for trace rooflines")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  app.add_option("--sweep", o.sweep, "sweep 'link' (GB/s effective), 'density' or 'ratio'")
      ->check(CLI::IsMember({"link", "density", "ratio"}));
  app.add_option("--sweep-values", o.sweep_values, "values of the sweep (default: a built-in range)")->delimiter(',');
  app.add_flag("--layers", o.layers, "print the per-layer table (default when one network is replayed)");
  app.add_flag("--no-layers", o.no_layers, "do not print per-layer tables");
  app.add_option("--json", o.json_out, "write the results as JSON (schema cdma-replay v1; '-' = stdout)");
  app.add_option("--svg", o.svg_out, "write a timeline picture (SVG) of the oracle, vDNN and each engine");
  app.add_option("--events", o.events_out, "write the event trace of the event-by-event replay (JSON)");
  app.add_flag("--list", o.list, "list presets and zoo networks");
  app.add_flag("-q,--quiet", o.quiet, "no tables on stdout");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }
  // Command-line combinations first (exit 2), before any file is read.
  std::vector<std::string> nets;
  for (const auto& n : o.nets) {
    if (n == "paper") {
      for (const auto& p : hw::paper_networks()) nets.push_back(p);
    } else if (n == "all") {
      for (const auto& p : hw::zoo_names()) nets.push_back(p);
    } else {
      const auto known = hw::zoo_names();
      if (std::find(known.begin(), known.end(), n) == known.end()) {
        fmt::print(stderr, "cdma replay: unknown network '{}' (known: {}, paper, all)\n", n, fmt::join(known, ", "));
        return kExitUsage;
      }
      nets.push_back(n);
    }
  }
  if (!o.list) {
    if (nets.empty() && o.traces.empty()) {
      fmt::print(stderr, "cdma replay: give a trace or --net NAME (see --help)\n");
      return kExitUsage;
    }
    // A zoo network has no measured ratios: the user says where they come from.
    const bool ratio_sweep = o.sweep == "ratio" || o.sweep == "density";
    const int sources = (o.ratio ? 1 : 0) + (o.density ? 1 : 0) + (o.ratios.empty() ? 0 : 1) + (ratio_sweep ? 1 : 0);
    if (!nets.empty() && sources == 0) {
      fmt::print(stderr,
                 "cdma replay: --net needs compression ratios: --ratio R (every offloaded tensor), --density D "
                 "(ZVC of post-ReLU tensors), --ratios FILE (measured: a trace or `cdma analyze --json`), or "
                 "--sweep ratio|density\n");
      return kExitUsage;
    }
    if (sources > 1) {
      fmt::print(stderr,
                 "cdma replay: give one ratio source (--ratio, --density, --ratios or --sweep ratio|density), "
                 "not {}\n",
                 sources);
      return kExitUsage;
    }
    if (o.fill != "none" && o.ratios.empty()) {
      fmt::print(stderr, "cdma replay: --fill applies to --ratios only\n");
      return kExitUsage;
    }
    if (!o.sweep_values.empty() && o.sweep.empty()) {
      fmt::print(stderr, "cdma replay: --sweep-values needs --sweep\n");
      return kExitUsage;
    }
  }
  try {
    Replayer rp(o);
    if (o.list) {
      list_presets(rp);
      return kExitOk;
    }
    std::vector<Prepared> runs;
    for (const auto& n : nets) runs.push_back(rp.zoo(n));
    for (const auto& t : o.traces) runs.push_back(rp.trace(t));

    const bool print = !o.quiet && o.json_out != "-" && o.svg_out != "-" && o.events_out != "-";
    const bool per_layer = !o.no_layers && (o.layers || runs.size() == 1);
    json doc = {{"schema", "cdma-replay"},
                {"schema_version", hw::kReplaySchemaVersion},
                {"producer", fmt::format("cdma-replay {}", cdma::kVersion)}};
    json jruns = json::array(), sweeps = json::array(), summary = json::array();
    std::vector<std::pair<std::string, hw::EventReplay>> svg_rows;
    json events = json::array();
    struct Agg {
      double sum = 0, max = -1e9;
      int n = 0;
    };
    Agg ovh;
    std::vector<Agg> spd(rp.config().engines.size());
    for (auto& p : runs) {
      auto st = hw::run_study(p.net, rp.config());
      if (!st.disagreement.empty()) {
        fmt::print(stderr, "cdma replay: internal check failed: {}\n", st.disagreement);
        return kExitFailure;
      }
      if (print) {
        print_totals(p.net, p.sc, st);
        if (per_layer) print_layers(p.net, st);
        fmt::print("\n");
      }
      jruns.push_back(hw::run_json(p.net, p.sc, st.results));
      const double oracle = static_cast<double>(st.results[0].total_ps),
                   vdnn = static_cast<double>(st.results[1].total_ps);
      ovh.sum += vdnn / oracle - 1;
      ovh.max = std::max(ovh.max, vdnn / oracle - 1);
      ++ovh.n;
      json srow = {{"network", p.net.name},
                   {"oracle_s", oracle / 1e12},
                   {"vdnn_s", vdnn / 1e12},
                   {"vdnn_overhead", vdnn / oracle - 1}};
      for (size_t k = 2; k < st.results.size(); ++k) {
        double s = vdnn / static_cast<double>(st.results[k].total_ps) - 1;
        spd[k - 2].sum += s;
        spd[k - 2].max = std::max(spd[k - 2].max, s);
        ++spd[k - 2].n;
        srow[st.results[k].label] = s;
      }
      summary.push_back(srow);
      for (size_t k = 0; k < st.events.size(); ++k) {
        const std::string label = runs.size() > 1 ? p.net.name + " " + st.results[k].label : st.results[k].label;
        if (!o.svg_out.empty() && &p == &runs.front()) svg_rows.emplace_back(st.results[k].label, st.events[k]);
        if (!o.events_out.empty()) events.push_back(hw::events_json(p.net, st.events[k], label, rp.config().link));
      }
      if (!o.sweep.empty()) sweeps.push_back(run_sweep(o, rp, p.net, p.sc, print));
    }
    if (print && runs.size() > 1) {
      fmt::print("summary ({} + {}, {}): vDNN overhead over oracle; cDMA speedup over vDNN\n", rp.gpu().name,
                 rp.link().name, o.policy);
      fmt::print("  {:<14} {:>10}", "network", "vDNN ovh");
      for (const auto& e : rp.config().engines) fmt::print(" {:>16}", e.label);
      fmt::print("\n");
      for (const auto& r : summary) {
        fmt::print("  {:<14} {:>+9.1f}%", r["network"].get<std::string>(), 100 * r["vdnn_overhead"].get<double>());
        for (const auto& e : rp.config().engines) fmt::print(" {:>+15.1f}%", 100 * r[e.label].get<double>());
        fmt::print("\n");
      }
      fmt::print("  {:<14} {:>+9.1f}%", "average", 100 * ovh.sum / ovh.n);
      for (const auto& a : spd) fmt::print(" {:>+15.1f}%", 100 * a.sum / a.n);
      fmt::print("\n  {:<14} {:>+9.1f}%", "maximum", 100 * ovh.max);
      for (const auto& a : spd) fmt::print(" {:>+15.1f}%", 100 * a.max);
      fmt::print("\n");
    }
    doc["runs"] = jruns;
    doc["summary"] = summary;
    if (!o.sweep.empty()) doc["sweeps"] = sweeps;
    if (!o.json_out.empty()) write_output(o.json_out, doc.dump(1) + "\n");
    if (!o.svg_out.empty())
      write_output(o.svg_out, hw::timeline_svg(runs.front().net, svg_rows,
                                               fmt::format("cdma replay: {} on {} + {} ({})", runs.front().net.name,
                                                           rp.gpu().name, rp.link().name, o.policy)));
    if (!o.events_out.empty()) write_output(o.events_out, json{{"replays", events}}.dump() + "\n");
    return kExitOk;
  } catch (const UsageError& e) {
    fmt::print(stderr, "cdma replay: {}\n", e.what());
    return kExitUsage;
  } catch (const formats::Error& e) {
    fmt::print(stderr, "cdma replay: {}\n", e.what());
    return kExitFailure;
  } catch (const std::exception& e) {
    fmt::print(stderr, "cdma replay: {}\n", e.what());
    return kExitFailure;
  }
}

}  // namespace

CDMA_REGISTER_VERB("replay", "hardware-model replay: oracle vs vDNN vs cDMA iteration time", run);

}  // namespace cdma::cli
