// The study: a request's networks and traces, set up on its hardware and ratio source, replayed
// under the oracle, vDNN and each engine (closed form checked against the event replay), swept.
#include <cdma/hwmodel/study.hpp>

#include <cdma/formats/codec.hpp>
#include <cdma/formats/error.hpp>
#include <cdma/formats/trace.hpp>
#include <cdma/hwmodel/zoo.hpp>

#include <fmt/core.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <set>

namespace cdma::hwmodel {

ComputeSource parse_compute_source(const std::string& s) {
  if (s == "auto") return ComputeSource::automatic;
  if (s == "trace") return ComputeSource::trace;
  if (s == "roofline") return ComputeSource::roofline;
  throw formats::UsageError(fmt::format("compute source must be auto, trace or roofline, got '{}'", s));
}

const char* to_string(ComputeSource c) {
  switch (c) {
    case ComputeSource::trace:
      return "trace";
    case ComputeSource::roofline:
      return "roofline";
    default:
      return "auto";
  }
}

SweepParameter parse_sweep(const std::string& s) {
  if (s.empty()) return SweepParameter::none;
  if (s == "link") return SweepParameter::link;
  if (s == "density") return SweepParameter::density;
  if (s == "ratio") return SweepParameter::ratio;
  throw formats::UsageError(fmt::format("sweep must be link, density or ratio, got '{}'", s));
}

const char* to_string(SweepParameter p) {
  switch (p) {
    case SweepParameter::link:
      return "link";
    case SweepParameter::density:
      return "density";
    case SweepParameter::ratio:
      return "ratio";
    default:
      return "";
  }
}

std::vector<double> default_sweep_values(SweepParameter p) {
  switch (p) {
    case SweepParameter::link:
      return {2, 4, 8, 12.6, 16, 25.2, 32, 50.4, 64, 128, 256, 512};
    case SweepParameter::density:
      return {0, 0.05, 0.1, 0.2, 0.3, 0.35, 0.4, 0.5, 0.6, 0.8, 1.0};
    case SweepParameter::ratio:
      return {1, 1.5, 2, 2.6, 3, 4, 6, 8, 13.8, 32};
    default:
      return {};
  }
}

std::vector<std::string> expand_networks(const std::vector<std::string>& names) {
  std::vector<std::string> out;
  for (const auto& n : names) {
    if (n == "paper") {
      for (const auto& p : paper_networks()) out.push_back(p);
    } else if (n == "all") {
      for (const auto& p : zoo_names()) out.push_back(p);
    } else if (const auto z = zoo_canonical(n)) {  // a name or an alias (zoo.json)
      out.push_back(*z);
    } else {
      throw formats::UsageError(
          fmt::format("unknown network '{}' (known: {}, paper, all)", n, fmt::join(zoo_names(), ", ")));
    }
  }
  return out;
}

namespace {

using formats::UsageError;

// A finite value in [lo, hi] (or (lo, hi] when !lo_closed); else UsageError naming `what`.
void check_range(std::optional<double> v, const char* what, const ValueRange& r) {
  if (!v) return;
  const double x = *v;
  if (!std::isfinite(x) || x > r.hi || x < r.lo || (!r.lo_closed && x == r.lo))
    throw UsageError(fmt::format("{} must be in {}{:g}, {:g}], got {}", what, r.lo_closed ? "[" : "(", r.lo, r.hi, x));
}

// Runs `f`, turning the model's or the codec registry's rejection of a name into a UsageError.
template <class F>
auto as_usage(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const ModelError& e) {
    throw UsageError(e.what());
  } catch (const formats::CodecError& e) {
    throw UsageError(e.what());
  }
}

int element_bytes(const std::string& precision) { return precision == "fp16" || precision == "bf16" ? 2 : 4; }

// The hardware and ratio setup shared by every run of a study.
class Setup {
 public:
  explicit Setup(const StudyRequest& r) : r_(r) {
    presets_ = PresetCatalog::load(r.presets.empty() ? default_preset_dir() : r.presets);
    gpu_ = as_usage([&] { return presets_.gpu(r.gpu); });
    if (r.compute_eff) gpu_.compute_efficiency = *r.compute_eff;
    if (r.dram_eff) gpu_.dram_efficiency = *r.dram_eff;
    if (r.dram_gbps) gpu_.dram_gbps = *r.dram_gbps;
    if (r.peak_tflops) gpu_.peak_tflops[r.precision] = *r.peak_tflops;
    as_usage([&] { return gpu_.peak_flops(r.precision); });  // validates the precision
    link_ = as_usage([&] { return presets_.link(r.link); });
    if (r.link_gbps) link_.nominal_gbps = *r.link_gbps;
    if (r.link_eff) link_.efficiency = *r.link_eff;
    if (r.latency_us) link_.latency_us = *r.latency_us;
    cfg_.policy = r.policy;
    cfg_.link = link_params(link_.effective_bytes_per_s());
    std::vector<std::string> specs = r.engines;
    if (specs.empty()) specs = {"dma:zvc", "mc:zvc", "sm:zvc"};
    for (const auto& s : specs) {
      Engine e = as_usage([&] { return parse_engine(s); });
      if (e.placement == Placement::none) continue;  // vDNN is always included
      cfg_.engines.push_back(e);
      if (std::find(codecs_.begin(), codecs_.end(), e.codec) == codecs_.end()) codecs_.push_back(e.codec);
    }
    const RatioSource& src = r.ratios;
    if (src.table) {
      table_ = *src.table;
    } else if (!src.table_file.empty()) {
      const std::string f = src.table_file.string();
      table_ = f.size() > 3 && f.substr(f.size() - 3) == ".h5"
                   ? measure_ratio_table(src.table_file, codecs_)
                   : load_analysis_json(src.table_file, src.table_trace_index);
    }
  }

  const StudyConfig& config() const { return cfg_; }
  const std::vector<std::string>& codecs() const { return codecs_; }
  const GpuPreset& gpu() const { return gpu_; }
  const LinkPreset& link() const { return link_; }

  LinkParams link_params(double bytes_per_s) const {
    LinkParams p;
    p.bytes_per_s = bytes_per_s;
    p.latency_ps = static_cast<Ps>(std::llround(link_.latency_us * 1e6));
    return p;
  }

  RunReport zoo(const std::string& name) const {
    const int eb = element_bytes(r_.precision);
    RunReport p{zoo_network(name, r_.batch, eb), scenario(), {}, {}, {}, {}, {}};
    apply_roofline(p.net, gpu_, r_.precision, r_.bwd_factor);
    p.scenario.compute = fmt::format("roofline ({}, compute eff {}, DRAM eff {}, backward = {} x forward)", gpu_.name,
                                     gpu_.compute_efficiency, gpu_.dram_efficiency, r_.bwd_factor);
    apply_source(p, eb, false);
    note_unmeasured(p);
    return p;
  }

  RunReport trace(const std::filesystem::path& path) const {
    formats::TraceReader reader(path);
    const bool cpu = reader.attrs().source == "torch-cpu", no_timeline = !reader.has_timeline();
    const bool roofline =
        r_.compute == ComputeSource::roofline || (r_.compute == ComputeSource::automatic && (cpu || no_timeline));
    TraceNetworkOptions t;
    t.roofline = roofline;
    t.gpu = &gpu_;
    t.precision = r_.precision;
    t.conv_kernel = r_.conv_kernel;
    t.compute_scale = r_.compute_scale;
    t.bwd_factor = r_.bwd_factor;
    t.batch = r_.trace_batch;
    RunReport p{network_from_trace(path, t), scenario(), {}, {}, {}, {}, {}};
    p.scenario.compute =
        roofline ? fmt::format("roofline of {} over the trace's layer shapes (conv kernels assumed {}x{}{})", gpu_.name,
                               r_.conv_kernel, r_.conv_kernel,
                               r_.compute == ComputeSource::automatic
                                   ? (cpu ? "; the trace's times are CPU times" : "; the trace has no /timeline")
                                   : "")
                 : fmt::format("trace /timeline x {}", r_.compute_scale);
    int eb = 4;
    for (const auto& tm : reader.tensors()) {
      eb = static_cast<int>(formats::dtype_size(tm.dtype));
      break;
    }
    if (!apply_source(p, eb, true)) {
      take(p, apply_ratios(p.net, measure_ratio_table(path, codecs_), true, false, RatioFill::none));
      p.scenario.ratio_sources.push_back(
          fmt::format("measured on the trace's offloaded tensors ({})", fmt::join(codecs_, ", ")));
    }
    note_unmeasured(p);
    return p;
  }

 private:
  // "mc", "mc:zvc", "sm:lz4" -> engine with a canonical codec name.
  Engine parse_engine(const std::string& spec) const {
    const auto colon = spec.find(':');
    const std::string place = spec.substr(0, colon);
    std::string codec = colon == std::string::npos ? "zvc" : spec.substr(colon + 1);
    codec = formats::make_codec(codec)->name();
    const Placement placement = as_usage([&] { return parse_placement(place); });
    if (placement == Placement::none)  // "none" is vDNN itself, which every study replays
      throw formats::UsageError("--engine '" + spec + "': the placement must be dma, mc or sm");
    return make_engine(presets_, gpu_, placement, codec, r_.read_gbps, r_.comp_gbps);
  }

  Scenario scenario() const {
    Scenario sc;
    sc.gpu = gpu_.name;
    sc.link = link_.name;
    sc.precision = r_.precision;
    sc.link_gbps_effective = link_.effective_bytes_per_s() / 1e9;
    sc.latency_us = link_.latency_us;
    sc.policy = cfg_.policy;
    return sc;
  }

  std::string table_name() const {
    if (!r_.ratios.table_label.empty()) return r_.ratios.table_label;
    if (!r_.ratios.table_file.empty()) return r_.ratios.table_file.string();
    return table_ ? table_->path.string() : std::string();
  }

  // Keeps the layers a ratio table had no row for (filled or not) in the scenario, and returns the
  // report itself: by value, since callers pass a temporary (a reference returned to it would dangle
  // once the full expression ends).
  static ApplyRatiosReport take(RunReport& p, ApplyRatiosReport rep) {
    p.scenario.unmeasured = rep.unmeasured;
    p.scenario.unmeasured_bytes = rep.unmeasured_bytes;
    return rep;
  }

  // Adds every other offloaded tensor that some engine's codec has no ratio for (ratio 1).
  void note_unmeasured(RunReport& p) const {
    std::set<int> seen;  // a shared tensor counts once, at its first consumer
    auto& sc = p.scenario;
    for (const auto& l : p.net.layers) {
      if (l.x_tensor < 0 || l.x_tensor == p.net.input_tensor || l.x_bytes <= 0 || !seen.insert(l.x_tensor).second)
        continue;
      if (std::find(sc.unmeasured.begin(), sc.unmeasured.end(), l.name) != sc.unmeasured.end()) continue;
      std::vector<std::string> missing;
      for (const auto& c : codecs_)
        if (!l.ratio.count(c)) missing.push_back(c);
      if (missing.empty()) continue;
      sc.unmeasured.push_back(
          missing.size() == codecs_.size() ? l.name : fmt::format("{} ({})", l.name, fmt::join(missing, ", ")));
      sc.unmeasured_bytes += l.x_bytes;
    }
  }

  // Applies the request's ratio source; false when it has none.
  bool apply_source(RunReport& p, int eb, bool from_trace) const {
    const RatioSource& src = r_.ratios;
    const RatioFill fill = src.fill;
    auto& sc = p.scenario;
    sc.fill = to_string(fill);
    if (table_ && from_trace) {
      // U stays the trace's own (scaled to the modelled batch); the table gives ratios.
      const ApplyRatiosReport rep = take(p, apply_ratios(p.net, *table_, true, false, fill));
      sc.ratio_sources.push_back(
          fmt::format("{}: {} layers matched by name, {} by index, {} without a measurement ({})", table_name(),
                      rep.matched_by_name, rep.matched_by_index, rep.unmatched,
                      fill == RatioFill::none ? "uncompressed" : "filled with the table's network ratio"));
      return true;
    }
    if (table_) {
      std::map<std::string, double> avg;
      const ApplyRatiosReport rep = take(p, apply_ratios_to_zoo(p.net, *table_, fill, &avg));
      std::vector<std::string> parts;
      for (const auto& [c, r] : avg) parts.push_back(fmt::format("{} {:.2f}", c, r));
      sc.ratio_sources.push_back(
          fill == RatioFill::none
              ? fmt::format("{}: {} layers matched by name and op; {} without a measurement, uncompressed "
                            "(--fill average gives their post-ReLU tensors the measured post-ReLU average: {})",
                            table_name(), rep.matched_by_name, rep.unmatched, fmt::join(parts, ", "))
              : fmt::format("{}: {} layers matched by name and op; the other {} take, where post-ReLU, the "
                            "measured post-ReLU average ({}), else ratio 1 (--fill average)",
                            table_name(), rep.matched_by_name, rep.unmatched, fmt::join(parts, ", ")));
      return true;
    }
    if (src.density) {
      p.net.set_density(*src.density, eb);
      sc.ratio_sources.push_back(fmt::format("ZVC at density {} on post-ReLU tensors (ratio {:.2f}), dense elsewhere",
                                             *src.density, zvc_ratio(*src.density, eb)));
      return true;
    }
    if (src.ratio) {
      for (const auto& c : codecs_) p.net.set_ratio(c, *src.ratio);
      sc.ratio_sources.push_back(
          fmt::format("ratio {} on every offloaded tensor ({})", *src.ratio, fmt::join(codecs_, ", ")));
      return true;
    }
    return false;
  }

  const StudyRequest& r_;
  PresetCatalog presets_;
  GpuPreset gpu_;
  LinkPreset link_;
  StudyConfig cfg_;
  std::vector<std::string> codecs_;
  std::optional<RatioTable> table_;
};

StudyResult checked_study(const Network& net, const StudyConfig& cfg) {
  StudyResult st = run_study(net, cfg);
  if (!st.disagreement.empty()) throw ModelError("internal check failed: " + st.disagreement);
  return st;
}

// Replays the network for each value of the swept parameter.
std::vector<SweepRow> sweep(const StudyRequest& r, const Setup& s, Network net) {
  std::vector<double> values = r.sweep_values.empty() ? default_sweep_values(r.sweep) : r.sweep_values;
  const int eb = element_bytes(r.precision);
  std::vector<SweepRow> rows;
  for (double v : values) {
    StudyConfig cfg = s.config();
    if (r.sweep == SweepParameter::link) {
      cfg.link = s.link_params(v * 1e9);
    } else if (r.sweep == SweepParameter::density) {
      net.set_density(v, eb);
    } else {
      for (const auto& c : s.codecs()) net.set_ratio(c, v);
    }
    const StudyResult st = checked_study(net, cfg);
    SweepRow row{v, st.results[0].total_ps, st.results[1].total_ps, {}};
    for (std::size_t k = 2; k < st.results.size(); ++k) row.engine_ps.push_back(st.results[k].total_ps);
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace

void validate(const StudyRequest& r) {
  if (r.networks.empty() && r.traces.empty())
    throw UsageError("give a trace or --net NAME (a zoo network) to replay (see --help)");
  const RatioSource& src = r.ratios;
  const bool ratio_sweep = r.sweep == SweepParameter::ratio || r.sweep == SweepParameter::density;
  const int sources = src.count() + (ratio_sweep ? 1 : 0);
  if (!r.networks.empty() && sources == 0)
    throw UsageError(
        "a zoo network needs compression ratios: --ratio R (every offloaded tensor), --density D "
        "(ZVC of post-ReLU tensors), --ratios FILE (measured: a trace or `cdma analyze --json`), or "
        "--sweep ratio|density");
  if (sources > 1)
    throw UsageError(
        fmt::format("give one ratio source (--ratio, --density, --ratios or --sweep ratio|density), not {}", sources));
  if (src.fill != RatioFill::none && !src.has_table()) throw UsageError("--fill applies to --ratios only");
  if (!r.sweep_values.empty() && r.sweep == SweepParameter::none) throw UsageError("--sweep-values needs --sweep");
  if (r.batch < 1 || r.batch > (1 << 20))
    throw UsageError(fmt::format("batch must be in [1, 1048576], got {}", r.batch));
  if (r.trace_batch < 0 || r.trace_batch > (std::int64_t{1} << 20))
    throw UsageError(fmt::format("trace batch must be in [0, 1048576], got {}", r.trace_batch));
  if (r.conv_kernel < 1 || r.conv_kernel > 64)
    throw UsageError(fmt::format("conv kernel must be in [1, 64], got {}", r.conv_kernel));
  if (src.table_trace_index < 0) throw UsageError("the analysis trace index must be >= 0");
  check_range(r.link_gbps, "--link-gbps", ranges::link_gbps);
  check_range(r.link_eff, "--link-eff", ranges::share);
  check_range(r.latency_us, "--latency-us", ranges::latency_us);
  check_range(r.compute_eff, "--compute-eff", ranges::share);
  check_range(r.dram_eff, "--dram-eff", ranges::share);
  check_range(r.peak_tflops, "--peak-tflops", ranges::peak_tflops);
  check_range(r.dram_gbps, "--dram-gbps", ranges::dram_gbps);
  check_range(r.bwd_factor, "--bwd-factor", ranges::bwd_factor);
  check_range(r.read_gbps, "--read-gbps", ranges::gbps_override);
  check_range(r.comp_gbps, "--comp-gbps", ranges::gbps_override);
  check_range(r.compute_scale, "--compute-scale", ranges::compute_scale);
  check_range(src.ratio, "--ratio", ranges::ratio);
  check_range(src.density, "--density", ranges::density);
  for (double v : r.sweep_values) {
    if (r.sweep == SweepParameter::link) check_range(v, "a link sweep value (GB/s)", ranges::link_sweep);
    if (r.sweep == SweepParameter::density) check_range(v, "a density sweep value", ranges::density);
    if (r.sweep == SweepParameter::ratio) check_range(v, "a ratio sweep value", ranges::ratio);
  }
}

std::vector<const ReplayResult*> RunReport::configurations() const {
  std::vector<const ReplayResult*> out{&oracle, &vdnn};
  for (const auto& e : engines) out.push_back(&e);
  return out;
}

double RunReport::vdnn_overhead() const {
  return static_cast<double>(vdnn.total_ps) / static_cast<double>(oracle.total_ps) - 1;
}

double RunReport::speedup(std::size_t engine) const {
  return static_cast<double>(vdnn.total_ps) / static_cast<double>(engines.at(engine).total_ps) - 1;
}

StudyReport run_study(const StudyRequest& req) {
  validate(req);
  const Setup s(req);
  StudyReport out;
  out.gpu = s.gpu().name;
  out.link = s.link().name;
  out.policy = req.policy;
  out.link_params = s.config().link;
  out.engines = s.config().engines;
  out.codecs = s.codecs();
  out.sweep = req.sweep;
  for (const auto& n : req.networks) out.runs.push_back(s.zoo(n));
  for (const auto& t : req.traces) out.runs.push_back(s.trace(t));
  out.speedup.assign(out.engines.size(), {0, -1e300});
  out.vdnn_overhead = {0, -1e300};
  for (auto& run : out.runs) {
    StudyResult st = checked_study(run.net, s.config());
    run.oracle = std::move(st.results[0]);
    run.vdnn = std::move(st.results[1]);
    for (std::size_t k = 2; k < st.results.size(); ++k) run.engines.push_back(std::move(st.results[k]));
    if (req.keep_events) run.events = std::move(st.events);
    if (req.sweep != SweepParameter::none) run.sweep = sweep(req, s, run.net);
    out.vdnn_overhead.mean += run.vdnn_overhead();
    out.vdnn_overhead.max = std::max(out.vdnn_overhead.max, run.vdnn_overhead());
    for (std::size_t k = 0; k < run.engines.size(); ++k) {
      out.speedup[k].mean += run.speedup(k);
      out.speedup[k].max = std::max(out.speedup[k].max, run.speedup(k));
    }
  }
  const double n = static_cast<double>(out.runs.size());
  out.vdnn_overhead.mean /= n;
  for (auto& sp : out.speedup) sp.mean /= n;
  return out;
}

}  // namespace cdma::hwmodel
