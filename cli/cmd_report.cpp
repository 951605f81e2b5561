// `cdma report TRACE... -o report.html`: one self-contained HTML page with the plots people want:
// density per layer over training, ratio per layer per codec, layouts and dtypes, the network
// summary, and the hardware-model replay (oracle / vDNN / cDMA) with its timeline.
//
// Everything runs in this process: the analysis (cdma::analyze), then the replays
// (hwmodel::run_study, the same study `cdma replay` runs) with the ratios taken from the analysis's
// typed rows, then the page (cdma::report).
#include "util.hpp"
#include "verbs.hpp"

#include <cdma/analyze/output.hpp>
#include <cdma/analyze/pipeline.hpp>
#include <cdma/formats/codec.hpp>
#include <cdma/formats/trace.hpp>
#include <cdma/hwmodel/study.hpp>
#include <cdma/hwmodel/zoo.hpp>
#include <cdma/report/html.hpp>
#include <cdma/report/timeline.hpp>
#include <cdma/version.hpp>

#include <fmt/core.h>
#include <fmt/ranges.h>
#include <unistd.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>

namespace cdma::cli {
namespace {

namespace fs = std::filesystem;
namespace hw = cdma::hwmodel;
using nlohmann::json;

struct ReportOptions {
  std::vector<std::string> traces;
  std::string output = "report.html";
  std::string title;
  std::vector<std::string> codecs;
  std::vector<std::string> layouts{"stored", "NHWC", "CHWN"};
  std::vector<std::string> dtypes{"stored", "float16", "bfloat16"};
  std::vector<std::string> ops;
  unsigned threads = 0;
  bool no_replay = false, all_tensors = false, compare = false;
  std::vector<std::string> zoo_nets;
  int zoo_batch = 256;
  std::string gpu = "titan-xp", link = "pcie3", policy = "vdnn-all", compute = "auto";
  std::vector<std::string> engines;
  std::string analysis_out;
};

std::string command_line(int argc, char** argv) {
  std::string s = "cdma";
  for (int i = 0; i < argc; ++i) s += std::string(" ") + argv[i];
  return s;
}

// The zoo networks to replay for a trace: --zoo-net, else the one its model is a small version of.
std::vector<std::string> zoo_for(const ReportOptions& o, const analyze::TraceSummary& t) {
  std::vector<std::string> zoo;
  if (!o.zoo_nets.empty()) {
    for (const auto& z : o.zoo_nets)
      if (z != "none") zoo.push_back(z);
    return zoo;
  }
  if (const auto z = hw::zoo_canonical(t.model.value_or(""))) zoo.push_back(*z);  // e.g. the alias vgg -> vgg16
  return zoo;
}

// The replays of the page: per trace, its own network with the ratios this analysis measured (and
// its timeline), then the matching zoo networks at full size with those ratios (--fill average:
// the page states the rule and lists the layers it applied to).
void add_replays(const ReportOptions& o, const analyze::Analysis& a, report::ReportInputs& in) {
  json runs = json::array(), sweeps = json::array();
  for (std::size_t i = 0; i < a.traces.size(); ++i) {
    const std::string label = fs::path(a.traces[i].path).filename().string();
    hw::StudyRequest base;
    base.gpu = o.gpu;
    base.link = o.link;
    base.policy = hw::parse_policy(o.policy);
    base.compute = hw::parse_compute_source(o.compute);
    base.engines = distinct_engines(o.engines);
    base.ratios.table = hw::ratio_table_from_analysis(a, static_cast<int>(i));
    base.ratios.table_label = label;
    auto run = [&](hw::StudyRequest req, const std::string& what, const std::string& report_label) {
      hw::StudyReport rep;
      try {
        rep = hw::run_study(req);
      } catch (const formats::UsageError&) {
        throw;
      } catch (const std::exception& e) {
        throw formats::Error(fmt::format("{}: the replay of {} failed: {} (--no-replay leaves the replay out)",
                                         a.traces[i].path, what, e.what()));
      }
      json doc = hw::study_json(rep);
      for (auto& r : doc["runs"]) {
        r["report_label"] = report_label;
        runs.push_back(std::move(r));
      }
      for (auto& sw : doc.value("sweeps", json::array())) {  // the runs are the unswept replay
        sw["report_label"] = report_label;
        sweeps.push_back(std::move(sw));
      }
      if (req.keep_events)
        in.replay_timelines.push_back(report::replay_timeline(
            hw::study_events_json(rep)["replays"].get<std::vector<json>>(),
            fmt::format("cdma replay: {} on {} + {} ({})", rep.runs.front().net.name, rep.gpu, rep.link, o.policy),
            false));
    };
    hw::StudyRequest own = base;
    own.traces = {a.traces[i].path};
    own.keep_events = true;
    run(own, "trace", fmt::format("{}: the trace's own network", label));
    for (const auto& z : zoo_for(o, a.traces[i])) {
      hw::StudyRequest zoo = base;
      zoo.networks = {z};
      zoo.batch = o.zoo_batch;
      zoo.ratios.fill = hw::RatioFill::average;
      zoo.sweep = hw::SweepParameter::link;  // where compression stops mattering, in the same study
      run(zoo, z,
          fmt::format("{} from the zoo (full size, batch {}) with the ratios measured on {}", z, o.zoo_batch, label));
    }
  }
  in.replay = json{{"runs", runs}, {"sweeps", sweeps}};
}

int run_report(int argc, char** argv) {
  ReportOptions o;
  CLI::App app{
      "Write one self-contained HTML page (inline SVG, no network access) with density per layer over "
      "training, compression ratio per layer and codec, the layout and dtype comparison, the network "
      "summary, and the hardware-model replay (oracle / vDNN / cDMA) for a GPU and link.",
      "cdma report"};
  app.add_option("traces", o.traces, "trace files (trace format v1)")->required();
  app.add_option("-o,--output", o.output, "HTML file to write")->capture_default_str();
  app.add_option("--title", o.title, "page title (default: from the traces)");
  app.add_option("--codecs", o.codecs,
                 "codecs to compare: " + formats::codec_help() + " (default: the analyzer's: " +
                     fmt::format("{}", fmt::join(formats::default_codecs(), ",")) + "; comma-separated)")
      ->allow_extra_args(false)
      ->delimiter(',');
  app.add_option("--layouts", o.layouts, "comma-separated layouts to compare: stored, NCHW, NHWC, CHWN")
      ->allow_extra_args(false)
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--dtypes", o.dtypes,
                 "comma-separated dtypes to compare: stored, float16, bfloat16, fp8-e4m3, fp8-e5m2")
      ->allow_extra_args(false)
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--ops", o.ops,
                 "only tensors of these ops (e.g. conv,pool,linear,dropout to leave out the dense "
                 "inputs of separate ReLU layers)")
      ->allow_extra_args(false)
      ->delimiter(',');
  app.add_option("-j,--jobs,--threads", o.threads, "analysis worker threads (0 = all cores; --threads: old name)")
      ->check(CLI::Range(0u, 1024u));
  app.add_flag("--compare", o.compare,
               "the traces are runs of one network: add a section that overlays their density over training and "
               "compares per-layer ratios with the first trace (the baseline)");
  app.add_flag("--all-tensors", o.all_tensors,
               "analyse every recorded tensor (default: the offload set, what a memory-virtualizing framework "
               "offloads); the replay always offloads the offload set");
  app.add_option("--zoo-net", o.zoo_nets,
                 "replay these zoo networks (full size, --zoo-batch) with the ratios measured on the traces "
                 "(default: the zoo network matching each trace's model, e.g. vgg -> vgg16; 'none' for none)")
      ->allow_extra_args(false)
      ->delimiter(',');
  app.add_option("--zoo-batch", o.zoo_batch, "batch size of the zoo replays")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 16));
  app.add_option("--analysis-json", o.analysis_out, "also write the analysis JSON (schema cdma-analysis v1)");
  app.add_flag("--no-replay", o.no_replay, "leave out the hardware-model replay");
  app.add_option("--gpu", o.gpu, "replay: GPU preset (see cdma replay --list)")->capture_default_str();
  app.add_option("--link", o.link, "replay: link preset")->capture_default_str();
  app.add_option("--policy", o.policy, "replay: vdnn-all or vdnn-conv")
      ->capture_default_str()
      ->check(CLI::IsMember({"vdnn-all", "vdnn-conv"}));
  app.add_option("--compute", o.compute, "replay: compute times from 'trace', 'roofline' or 'auto'")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "trace", "roofline"}));
  app.add_option("--engine", o.engines, "replay: cDMA engine PLACEMENT[:CODEC], repeatable (as cdma replay)")
      ->allow_extra_args(false);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }

  if (const auto word = codec_word_among_traces(o.traces)) {
    fmt::print(stderr, "cdma report: error: {}\n", *word);
    return kExitUsage;
  }
  if (const auto missing = missing_input(o.traces)) {
    fmt::print(stderr, "cdma report: error: {}\n", *missing);
    return kExitFailure;
  }
  for (const auto& z : o.zoo_nets) {
    const auto known = hw::zoo_names();
    if (z != "none" && std::find(known.begin(), known.end(), z) == known.end()) {
      fmt::print(stderr, "cdma report: --zoo-net: unknown network '{}' (known: {}, none)\n", z, fmt::join(known, ", "));
      return kExitUsage;
    }
  }
  try {
    analyze::Options ao;
    if (!o.codecs.empty()) ao.codecs = o.codecs;
    ao.layouts = o.layouts;
    ao.dtypes = o.dtypes;
    ao.threads = o.threads;
    if (!o.ops.empty()) ao.filters.ops = o.ops;
    ao.filters.offloaded_only = !o.all_tensors;
    try {  // a wrong codec, layout or dtype name is a command-line error, found before any work
      ao.validate();
    } catch (const formats::Error& e) {
      throw formats::UsageError(e.what());
    }
    (void)distinct_engines(o.engines);  // a repeated --engine is a command-line error, found before any work
    if (!o.no_replay) {                 // an unknown preset is a command-line error, found before the analysis runs
      const auto presets = hw::PresetCatalog::load(hw::default_preset_dir());
      try {
        presets.gpu(o.gpu);
        presets.link(o.link);
      } catch (const hw::ModelError& e) {
        throw formats::UsageError(e.what());
      }
    }
    if (o.compare && o.traces.size() < 2) throw formats::UsageError("--compare needs two or more traces");
    std::vector<OutputArg> outputs{{"-o", o.output}};
    if (!o.analysis_out.empty()) outputs.push_back({"--analysis-json", o.analysis_out});
    check_outputs(o.traces, outputs);
    std::vector<fs::path> paths(o.traces.begin(), o.traces.end());
    analyze::RunHooks hooks;
    const bool tty = isatty(STDERR_FILENO);
    if (tty)  // progress on a terminal only
      hooks.on_progress = [](const analyze::Progress& p) {
        fmt::print(
            stderr, "\rcdma report: analysing {:5.1f}% ({}/{} tensors)",
            p.bytes_total ? 100.0 * static_cast<double>(p.bytes_done) / static_cast<double>(p.bytes_total) : 100.0,
            p.tensors_done, p.tensors_total);
      };
    const analyze::Analysis a = analyze::run_analysis(paths, ao, hooks);
    if (tty) fmt::print(stderr, "\n");
    if (auto why = analyze::nothing_selected(a)) throw formats::UsageError(*why + "; no report written");
    for (const auto& t : a.traces)
      for (const auto& w : t.warnings) fmt::print(stderr, "cdma report: warning: {}\n", w);
    if (!o.analysis_out.empty()) write_output(o.analysis_out, [&](std::ostream& os) { analyze::write_json(os, a); });
    report::ReportInputs in;
    in.analysis = report::analysis_tables(a);
    in.compare = o.compare;
    if (!o.no_replay) {
      if (isatty(STDERR_FILENO)) fmt::print(stderr, "cdma report: replaying...\n");
      add_replays(o, a, in);
    }
    if (o.title.empty()) {
      std::string models;
      for (const auto& t : a.traces)
        models += (models.empty() ? "" : ", ") + t.model.value_or(fs::path(t.path).stem().string());
      o.title = "cdma report: " + models;
    }
    in.title = o.title;
    in.command = command_line(argc, argv);
    in.generated = formats::iso8601_utc_now();
    const std::string html = report::render_html(in);
    write_output(o.output, html);
    fmt::print("cdma report: wrote {} ({} KiB)\n", o.output, html.size() / 1024);
    return kExitOk;
  } catch (const formats::UsageError& e) {
    fmt::print(stderr, "cdma report: {}\n", e.what());
    return kExitUsage;
  } catch (const std::exception& e) {
    fmt::print(stderr, "cdma report: error: {}\n", e.what());
    return kExitFailure;
  }
}

}  // namespace
CDMA_REGISTER_VERB("report", "one self-contained HTML page with the plots (density, ratios, replay)", run_report);
}  // namespace cdma::cli
