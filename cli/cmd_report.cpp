// `cdma report TRACE... -o report.html`: one self-contained HTML page with the plots people want:
// density per layer over training, ratio per layer per codec, layouts and dtypes, the network
// summary, and the hardware-model replay (oracle / vDNN / cDMA) with its timeline.
//
// The analysis runs in-process (cdma::analyze). The replay runs as `cdma replay` on this same
// executable (fed the analysis JSON as --ratios), so the page shows exactly what that command
// prints and its flags mean the same here.
#include "util.hpp"
#include "verbs.hpp"

#include <cdma/analyze/output.hpp>
#include <cdma/analyze/pipeline.hpp>
#include <cdma/formats/trace.hpp>
#include <cdma/hwmodel/zoo.hpp>
#include <cdma/report/html.hpp>
#include <cdma/version.hpp>

#include <fmt/core.h>
#include <fmt/ranges.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <sys/wait.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace cdma::cli {
namespace {

namespace fs = std::filesystem;
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
  bool no_replay = false, all_tensors = false;
  std::vector<std::string> zoo_nets;
  int zoo_batch = 256;
  std::string gpu = "titan-xp", link = "pcie3", policy = "vdnn-all", compute = "auto";
  std::vector<std::string> engines;
  std::string analysis_out;
};

// Runs this executable with `args`; returns its exit code (or -1 when it could not run).
int run_self(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  std::string self = fs::read_symlink("/proc/self/exe").string();
  argv.push_back(self.data());
  std::vector<std::string> copy = args;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    execv(self.c_str(), argv.data());
    _exit(127);
  }
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class ScratchDir {
 public:
  ScratchDir() {
    std::string t = (fs::temp_directory_path() / "cdma-report-XXXXXX").string();
    if (!mkdtemp(t.data())) throw formats::Error("cannot create a temporary directory");
    path_ = t;
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::string command_line(int argc, char** argv) {
  std::string s = "cdma";
  for (int i = 0; i < argc; ++i) s += std::string(" ") + argv[i];
  return s;
}

int run_report(int argc, char** argv) {
  ReportOptions o;
  CLI::App app{
      "Write one self-contained HTML page (inline SVG, no network access) with density per layer over "
      "training, compression ratio per layer and codec, the layout and dtype comparison, the network "
      "summary, and the hardware-model replay (oracle / vDNN / cDMA) for a GPU and link.",
      "cdma report"};
  app.add_option("traces", o.traces, "trace files (trace format v1)")->required()->check(CLI::ExistingFile);
  app.add_option("-o,--output", o.output, "HTML file to write")->capture_default_str();
  app.add_option("--title", o.title, "page title (default: from the traces)");
  app.add_option("--codecs", o.codecs, "codecs to compare (default: the analyzer's: zvc zrle-4 zlib-6 zstd-1 lz4)")
      ->delimiter(',');
  app.add_option("--layouts", o.layouts, "layouts to compare: stored, NCHW, NHWC, CHWN")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--dtypes", o.dtypes, "dtypes to compare: stored, float16, bfloat16")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--ops", o.ops,
                 "only tensors of these ops (e.g. conv,pool,linear,dropout to leave out the dense "
                 "inputs of separate ReLU layers)")
      ->delimiter(',');
  app.add_option("--threads", o.threads, "analysis worker threads (0 = all cores)")->check(CLI::Range(0u, 1024u));
  app.add_flag("--all-tensors", o.all_tensors,
               "analyse every recorded tensor (default: the offload set, what a memory-virtualizing framework "
               "offloads); the replay always offloads the offload set");
  app.add_option("--zoo-net", o.zoo_nets,
                 "replay these zoo networks (full size, --zoo-batch) with the ratios measured on the traces "
                 "(default: the zoo network matching each trace's model, e.g. vgg -> vgg16; 'none' for none)")
      ->delimiter(',');
  app.add_option("--zoo-batch", o.zoo_batch, "batch size of the zoo replays")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 16));
  app.add_option("--analysis-json", o.analysis_out, "also write the analysis JSON (schema cdma-analysis v1)");
  app.add_flag("--no-replay", o.no_replay, "leave out the hardware-model replay");
  app.add_option("--gpu", o.gpu, "replay: GPU preset (see cdma replay --list)")->capture_default_str();
  app.add_option("--link", o.link, "replay: link preset")->capture_default_str();
  app.add_option("--policy", o.policy, "replay: vdnn-all or vdnn-conv")->capture_default_str();
  app.add_option("--compute", o.compute, "replay: compute times from 'trace', 'roofline' or 'auto'")
      ->capture_default_str();
  app.add_option("--engine", o.engines, "replay: cDMA engine PLACEMENT[:CODEC], repeatable (as cdma replay)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }

  for (const auto& z : o.zoo_nets) {
    const auto known = hwmodel::zoo_names();
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
    std::vector<fs::path> paths(o.traces.begin(), o.traces.end());
    if (isatty(STDERR_FILENO)) fmt::print(stderr, "cdma report: analysing {} trace(s)...\n", paths.size());
    analyze::Analysis a = analyze::run_analysis(paths, ao);
    for (const auto& t : a.traces)
      for (const auto& w : t.warnings) fmt::print(stderr, "cdma report: warning: {}\n", w);
    std::ostringstream js;
    analyze::write_json(js, a);
    report::ReportInputs in;
    in.analysis = json::parse(js.str());
    if (!o.analysis_out.empty()) write_output(o.analysis_out, js.str());

    if (!o.no_replay) {
      ScratchDir scratch;
      fs::path ajson = scratch.path() / "analysis.json";
      write_output(ajson.string(), js.str());
      json runs = json::array();
      // One replay: the trace's own network (its offloaded tensors, ratios from this analysis), or a
      // zoo network with those ratios. Layers without a row are listed by the replay; for the zoo the
      // fill rule is stated in the page.
      auto replay = [&](std::size_t i, const std::string& what, bool zoo, const std::string& label) {
        fs::path rj = scratch.path() / fmt::format("replay{}-{}.json", i, what);
        fs::path rs = scratch.path() / fmt::format("replay{}-{}.svg", i, what);
        std::vector<std::string> args{
            "replay",    "--ratios", ajson.string(), "--ratios-label", label,      "--trace-index", std::to_string(i),
            "--gpu",     o.gpu,      "--link",       o.link,           "--policy", o.policy,        "--json",
            rj.string(), "-q"};
        if (zoo) {
          args.insert(args.end(), {"--net", what, "--batch", std::to_string(o.zoo_batch), "--fill", "average"});
        } else {
          args.insert(args.end(), {paths[i].string(), "--compute", o.compute, "--svg", rs.string()});
        }
        for (const auto& e : o.engines) args.insert(args.end(), {"--engine", e});
        int rc = run_self(args);
        if (rc != 0)
          throw formats::Error(
              fmt::format("{}: the replay of {} failed (exit {}); see the message above, or use "
                          "--no-replay",
                          paths[i].string(), what, rc));
        json doc = json::parse(read_file(rj));
        for (auto& r : doc.value("runs", json::array())) {
          r["report_label"] = zoo ? fmt::format("{} from the zoo (full size, batch {}) with the ratios measured on {}",
                                                what, o.zoo_batch, label)
                                  : fmt::format("{}: the trace's own network", label);
          runs.push_back(r);
        }
        if (!zoo) in.replay_timelines.push_back(read_file(rs));
      };
      const auto zoo_known = hwmodel::zoo_names();
      for (std::size_t i = 0; i < paths.size(); ++i) {
        const std::string label = paths[i].filename().string();
        replay(i, "trace", false, label);
        std::vector<std::string> zoo = o.zoo_nets;
        if (zoo.empty()) {
          // The zoo network this trace's model is a small version of.
          std::string m = a.traces[i].model.value_or("");
          if (m == "vgg") m = "vgg16";
          if (m == "resnet") m = "resnet50";
          if (std::find(zoo_known.begin(), zoo_known.end(), m) != zoo_known.end()) zoo.push_back(m);
        }
        for (const auto& z : zoo)
          if (z != "none") replay(i, z, true, label);
      }
      in.replay = json{{"runs", runs}};
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
    std::string html = report::render_html(in);
    write_output(o.output, html);
    fmt::print("cdma report: wrote {} ({} KiB)\n", o.output, html.size() / 1024);
    return kExitOk;
  } catch (const std::exception& e) {
    fmt::print(stderr, "cdma report: error: {}\n", e.what());
    return kExitFailure;
  }
}

}  // namespace
CDMA_REGISTER_VERB("report", "one self-contained HTML page with the plots (density, ratios, replay)", run_report);
}  // namespace cdma::cli
