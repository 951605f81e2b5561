// `cdma replay`: hardware-model replay of vDNN offload and cDMA engines (docs/spec/HWMODEL.md).
// Thin layer: options into a hwmodel::StudyRequest, hwmodel::run_study, then the report's tables,
// JSON (hwmodel::study_json), event trace and SVG timeline (report::replay_timeline).
#include "util.hpp"
#include "verbs.hpp"

#include <cdma/formats/codec.hpp>
#include <cdma/formats/error.hpp>
#include <cdma/hwmodel/study.hpp>
#include <cdma/report/timeline.hpp>

#include <fmt/core.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cmath>
#include <iostream>
#include <optional>
#include <sstream>

namespace cdma::cli {
namespace {

namespace hw = cdma::hwmodel;

struct Options {
  std::vector<std::string> traces, nets, engines;
  std::vector<double> sweep_values;
  int batch = 256;
  std::string precision = "fp32", gpu = "titan-xp", link = "pcie3", presets, policy = "vdnn-all";
  std::string compute = "auto", ratios, json_out, csv_out, csv_layers_out, svg_out, events_out, sweep, fill = "none",
              events_format = "cdma";
  std::optional<double> ratio, density, link_gbps, link_eff, latency_us, compute_eff, dram_eff, peak_tflops, dram_gbps;
  double compute_scale = 1.0, bwd_factor = 2.0, read_gbps = 0, comp_gbps = 0;
  int conv_kernel = 3, trace_index = 0;
  std::int64_t trace_batch = 0;
  bool layers = false, no_layers = false, list = false, quiet = false;
};

// A finite number in [lo, hi] (or (lo, hi] when !lo_closed); NaN and infinities are refused.
// The range hwmodel::validate checks, stated in --help and checked at parse time (exit 2).
CLI::Validator finite_range(const hw::ValueRange& r) {
  const double lo = r.lo, hi = r.hi;
  const bool lo_closed = r.lo_closed;
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

hw::StudyRequest request(const Options& o) {
  hw::StudyRequest r;
  r.networks = hw::expand_networks(o.nets);
  r.traces.assign(o.traces.begin(), o.traces.end());
  r.batch = o.batch;
  r.precision = o.precision;
  r.presets = o.presets;
  r.gpu = o.gpu;
  r.link = o.link;
  r.link_gbps = o.link_gbps;
  r.link_eff = o.link_eff;
  r.latency_us = o.latency_us;
  r.compute_eff = o.compute_eff;
  r.dram_eff = o.dram_eff;
  r.peak_tflops = o.peak_tflops;
  r.dram_gbps = o.dram_gbps;
  r.policy = hw::parse_policy(o.policy);
  r.engines = distinct_engines(o.engines);
  r.read_gbps = o.read_gbps;
  r.comp_gbps = o.comp_gbps;
  r.compute = hw::parse_compute_source(o.compute);
  r.compute_scale = o.compute_scale;
  r.bwd_factor = o.bwd_factor;
  r.conv_kernel = o.conv_kernel;
  r.trace_batch = o.trace_batch;
  r.ratios.ratio = o.ratio;
  r.ratios.density = o.density;
  r.ratios.table_file = o.ratios;
  r.ratios.table_trace_index = o.trace_index;
  r.ratios.fill = hw::parse_fill(o.fill);
  r.sweep = hw::parse_sweep(o.sweep);
  r.sweep_values = o.sweep_values;
  r.keep_events = !o.svg_out.empty() || !o.events_out.empty();
  return r;
}

// The outputs of a study; tables on stdout unless quiet or another output goes there.
void write_outputs(const Options& o, const hw::StudyReport& rep) {
  const bool print = !o.quiet && o.json_out != "-" && o.svg_out != "-" && o.events_out != "-" && o.csv_out != "-" &&
                     o.csv_layers_out != "-";
  if (print) {
    std::ostringstream tables;
    hw::write_tables(tables, rep, !o.no_layers && (o.layers || rep.runs.size() == 1));
    fmt::print("{}", tables.str());
  }
  const nlohmann::json doc = hw::study_json(rep);
  if (!o.json_out.empty()) write_output(o.json_out, doc.dump(1) + "\n");
  if (!o.csv_out.empty() || !o.csv_layers_out.empty()) {
    const hw::ReplayTables t = hw::replay_tables(doc);
    auto csv = [](const formats::Table& table) {
      std::ostringstream os;
      formats::write_csv(os, table);
      return os.str();
    };
    // With a sweep, --csv holds the sweep's rows (the totals are those of the unswept replay).
    if (!o.csv_out.empty()) write_output(o.csv_out, csv(rep.sweep == hw::SweepParameter::none ? t.totals : t.sweep));
    if (!o.csv_layers_out.empty()) write_output(o.csv_layers_out, csv(t.layers));
  }
  const nlohmann::json events = rep.runs.empty() || (o.svg_out.empty() && o.events_out.empty())
                                    ? nlohmann::json::object()
                                    : hw::study_events_json(rep);
  if (!o.svg_out.empty()) {
    // The first run's replays (oracle, vDNN, each engine).
    const std::size_t n = rep.runs.front().events.size();
    std::vector<nlohmann::json> first(events["replays"].begin(), events["replays"].begin() + static_cast<long>(n));
    write_output(o.svg_out, report::replay_timeline(first,
                                                    fmt::format("cdma replay: {} on {} + {} ({})",
                                                                rep.runs.front().net.name, rep.gpu, rep.link, o.policy),
                                                    true));
  }
  if (!o.events_out.empty())
    write_output(o.events_out, (o.events_format == "chrome" ? hw::study_chrome_trace(rep) : events).dump() + "\n");
}

int run(int argc, char** argv) {
  Options o;
  CLI::App app{
      "Hardware-model replay of one training iteration: oracle (no offload), vDNN offload, and compressing "
      "DMA engines (cDMA), from a trace or from the built-in network zoo.",
      "cdma replay"};
  app.add_option("traces", o.traces,
                 "trace files (.h5): per-layer compute times from /timeline, bytes and ratios "
                 "from their tensors (or --ratios)");
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
      ->check(finite_range(hw::ranges::link_gbps));
  app.add_option("--link-eff", o.link_eff, "override the link's DMA efficiency")
      ->check(finite_range(hw::ranges::share));
  app.add_option("--latency-us", o.latency_us, "override the per-transfer latency (us)")
      ->check(finite_range(hw::ranges::latency_us));
  app.add_option("--compute-eff", o.compute_eff, "override the GPU's compute efficiency (share of peak)")
      ->check(finite_range(hw::ranges::share));
  app.add_option("--dram-eff", o.dram_eff, "override the GPU's DRAM efficiency")
      ->check(finite_range(hw::ranges::share));
  app.add_option("--peak-tflops", o.peak_tflops, "override the GPU's peak TFLOP/s at --precision")
      ->check(finite_range(hw::ranges::peak_tflops));
  app.add_option("--dram-gbps", o.dram_gbps, "override the GPU's DRAM bandwidth (GB/s)")
      ->check(finite_range(hw::ranges::dram_gbps));
  app.add_option("--bwd-factor", o.bwd_factor, "roofline backward time = factor x forward")
      ->capture_default_str()
      ->check(finite_range(hw::ranges::bwd_factor));
  app.add_option("--policy", o.policy, "vdnn-all or vdnn-conv")
      ->capture_default_str()
      ->check(CLI::IsMember({"vdnn-all", "vdnn-conv"}));
  app.add_option("--engine", o.engines,
                 "cDMA engine PLACEMENT[:CODEC], repeatable; placement dma, mc or sm; CODEC " + formats::codec_help() +
                     ", zvc when left out (default: dma:zvc mc:zvc sm:zvc)")
      ->allow_extra_args(false);
  app.add_option("--read-gbps", o.read_gbps,
                 "override the engines' read bandwidth of uncompressed data (GB/s; 0 = the preset's)")
      ->check(finite_range(hw::ranges::gbps_override));
  app.add_option("--comp-gbps", o.comp_gbps, "override the compressor (or sm kernel) throughput (GB/s; 0 = preset)")
      ->check(finite_range(hw::ranges::gbps_override));
  auto* r1 =
      app.add_option("--ratio", o.ratio, "compression ratio of every offloaded tensor (e.g. 2.6, the paper's average)")
          ->check(finite_range(hw::ranges::ratio));
  auto* r2 =
      app.add_option("--density", o.density, "ZVC ratio from a density of post-ReLU tensors: 32/(1+32d) for fp32")
          ->check(finite_range(hw::ranges::density));
  app.add_option("--ratios", o.ratios,
                 "per-layer ratios from `cdma analyze --json` output, or measured on a trace "
                 "(.h5); a zoo layer takes the row with its name and op, else the measured post-ReLU average");
  app.add_option("--trace-index", o.trace_index, "which trace of the analysis JSON")
      ->capture_default_str()
      ->check(CLI::Range(0, 1 << 20));
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
      ->check(finite_range(hw::ranges::compute_scale));
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
  app.add_option("--sweep-values", o.sweep_values, "values of the sweep, comma-separated (default: a built-in range)")
      ->delimiter(',');
  app.add_flag("--layers", o.layers, "print the per-layer table (default when one network is replayed)");
  app.add_flag("--no-layers", o.no_layers, "do not print per-layer tables");
  app.add_option("--json", o.json_out, "write the results as JSON (schema cdma-replay v1; '-' = stdout)");
  app.add_option("--csv", o.csv_out,
                 "write the totals as CSV, one row per network x configuration (with --sweep: one row per network x "
                 "value x configuration; '-' = stdout)");
  app.add_option("--csv-layers", o.csv_layers_out,
                 "write the per-layer rows as CSV, one row per network x layer x offloading configuration");
  app.add_option("--svg", o.svg_out, "write a timeline picture (SVG) of the oracle, vDNN and each engine");
  auto* events_opt =
      app.add_option("--events", o.events_out, "write the event trace of the event-by-event replay (JSON)");
  app.add_option("--events-format", o.events_format,
                 "'cdma' (schema cdma-replay-events) or 'chrome' (Chrome trace-event JSON: opens in Perfetto "
                 "and chrome://tracing, a track per stream per configuration)")
      ->capture_default_str()
      ->check(CLI::IsMember({"cdma", "chrome"}))
      ->needs(events_opt);
  app.add_flag("--list", o.list, "list presets and zoo networks");
  app.add_flag("-q,--quiet", o.quiet, "no tables on stdout");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }
  std::vector<std::string> inputs = o.traces;
  if (!o.ratios.empty()) inputs.push_back(o.ratios);
  if (const auto missing = missing_input(inputs)) {
    fmt::print(stderr, "cdma replay: error: {}\n", *missing);
    return kExitFailure;
  }
  try {
    if (o.list) {
      hw::write_catalog(std::cout, hw::PresetCatalog::load(o.presets.empty() ? hw::default_preset_dir()
                                                                             : std::filesystem::path(o.presets)));
      return kExitOk;
    }
    std::vector<OutputArg> outputs;
    for (const auto& [opt, path] : {std::pair<const char*, const std::string&>{"--json", o.json_out},
                                    {"--csv", o.csv_out},
                                    {"--csv-layers", o.csv_layers_out},
                                    {"--svg", o.svg_out},
                                    {"--events", o.events_out}})
      if (app.count(opt)) outputs.push_back({opt, path});
    check_outputs(inputs, outputs);
    const hw::StudyRequest req = request(o);
    write_outputs(o, hw::run_study(req));
    return kExitOk;
  } catch (const formats::UsageError& e) {
    fmt::print(stderr, "cdma replay: {}\n", e.what());
    return kExitUsage;
  } catch (const std::exception& e) {
    fmt::print(stderr, "cdma replay: {}\n", e.what());
    return kExitFailure;
  }
}

}  // namespace

CDMA_REGISTER_VERB("replay", "hardware-model replay: oracle vs vDNN vs cDMA iteration time", run);

}  // namespace cdma::cli
