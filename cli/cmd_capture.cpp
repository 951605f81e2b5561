// `cdma capture [options] -- CMD...`: runs CMD with the cuDNN interposer preloaded, then turns the
// spool each traced process wrote into a trace v1 file. `cdma capture --convert SPOOL...` converts
// spools written elsewhere (e.g. on a GPU machine without this project's libraries).
#include "util.hpp"
#include "verbs.hpp"

#include <cdma/capture/collector.hpp>
#include <cdma/capture/config.hpp>

#include <fmt/core.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <unistd.h>
#include <ctime>
#include <filesystem>
#include <fstream>

namespace cdma::cli {
namespace {

namespace fs = std::filesystem;
using namespace cdma::capture;

std::string default_output() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "capture-%Y%m%d-%H%M%S.h5", &tm);
  return buf;
}

// Output path of the k-th of n spools: the output itself when there is one, else <stem>.<pid>.h5.
fs::path output_for(const fs::path& out, const fs::path& spool, std::size_t n) {
  if (n <= 1) return out;
  std::string stem = spool.stem().string();  // cdma-<pid>[-k]
  if (stem.rfind("cdma-", 0) == 0) stem = stem.substr(5);
  return out.parent_path() / (out.stem().string() + "." + stem + out.extension().string());
}

nlohmann::json to_json(const ConvertSummary& s) {
  nlohmann::json j;
  j["trace"] = s.trace.string();
  j["spool"] = s.spool.string();
  j["pid"] = s.pid;
  j["tensors"] = s.tensors;
  j["tensor_bytes"] = s.tensor_bytes;
  j["stats_rows"] = s.stats_rows;
  j["timeline_rows"] = s.timeline_rows;
  j["timeline_rows_with_gpu_time"] = s.timed_rows;
  j["iterations"] = s.iterations;
  j["calls"] = s.calls;
  j["dropped_tensors"] = s.dropped;
  j["skipped_graph_capture"] = s.skipped_graph;
  j["skipped_unsafe"] = s.skipped_unsafe;
  j["skipped_failed_calls"] = s.skipped_failed;
  j["tensors_offloaded"] = s.offloaded;
  j["tensors_not_offloaded"] = s.not_offloaded;
  j["tensors_offload_unknown"] = s.offload_unknown;
  j["stats_rows_not_offloaded"] = s.stats_not_offloaded;
  j["clean_end"] = s.clean_end;
  j["ops"] = s.ops;
  j["attrs"] = s.attrs;
  return j;
}

void print_summary(const ConvertSummary& s) {
  std::string ops;
  for (const auto& [op, n] : s.ops) ops += fmt::format("{}{} {}", ops.empty() ? "" : ", ", n, op);
  std::string offload;
  if (s.tensors && !s.offload_unknown) offload = fmt::format(" ({} offloaded)", s.offloaded);
  fmt::print(stderr,
             "cdma capture: {} (pid {}): {} tensors{} ({}), {} stats rows, {} timeline rows ({} with GPU time), "
             "{} iterations{}{}{}{}\n",
             s.trace.string(), s.pid, s.tensors, offload, human_bytes(static_cast<double>(s.tensor_bytes)),
             s.stats_rows, s.timeline_rows, s.timed_rows, s.iterations, ops.empty() ? "" : "; " + ops,
             s.dropped ? fmt::format("; {} tensors dropped (budget or staging ring)", s.dropped) : "",
             s.stats_not_offloaded ? fmt::format("; {} stats rows of inputs not offloaded (in place or backward) left "
                                                 "out",
                                                 s.stats_not_offloaded)
                                   : "",
             s.skipped_failed ? fmt::format("; {} tensors of failed calls not kept", s.skipped_failed) : "");
  if (!s.clean_end)
    fmt::print(stderr,
               "cdma capture: note: process {} did not finalise its spool (killed or crashed); the trace "
               "holds what it had written\n",
               s.pid);
}

int run(int argc, char** argv) {
  CLI::App app{
      "Run a command with the cuDNN interposer preloaded and write a trace of its activations.\n"
      "Usage: cdma capture [options] -- CMD [ARGS...]    or    cdma capture --convert SPOOL... -o OUT",
      "cdma capture"};
  std::string output, mode, ops, roles, phases, budget, ring, iteration, cupti, copy, spool_dir, lib, model, framework,
      json_path;
  std::int64_t every = 0, skip = -1, first = -1, ring_wait = -1;
  int deflate = 0;
  bool keep_spool = false, convert = false, verbose = false;
  std::vector<std::string> command;
  app.add_option("-o,--output", output,
                 "trace file (default capture-<date>-<time>.h5); with several processes, "
                 "<stem>.<pid>.h5 each");
  app.add_option("--mode", mode,
                 "full (tensor bytes), insitu (GPU-side nonzero/zero-run counts into /stats), "
                 "timeline (calls and GPU time only); default full");
  app.add_option("--ops", ops,
                 "ops whose tensors are kept: conv,linear,relu,pool,bn,lrn,dropout,add,concat,"
                 "softmax,other,all (default all)");
  app.add_option("--roles", roles, "tensor roles kept: x,y,dy,dx,all (default x, the layer input vDNN offloads)");
  app.add_option("--phases", phases, "forward,backward,all (default forward)");
  app.add_option("--every", every, "keep every N-th iteration (default 1)");
  app.add_option("--skip", skip, "skip the first K iterations (default 0)");
  app.add_option("--first", first, "keep at most K sampled iterations (default 0: no limit)");
  app.add_option("--budget", budget,
                 "total tensor bytes kept, e.g. 512M, 4G (default 1G); beyond it tensors are "
                 "dropped and counted in dropped_tensors");
  app.add_option("--ring", ring, "pinned staging memory per process (default 256M)");
  app.add_option("--ring-wait-ms", ring_wait, "wait up to MS for staging space before dropping (default 0)");
  app.add_option("--iteration", iteration,
                 "iteration detection: auto (heuristic), marker "
                 "(cdma_capture_mark_iteration() calls), calls:N (default auto)");
  app.add_option("--cupti", cupti, "GPU time per call: auto (use CUPTI if the process loaded it), on, off");
  app.add_option("--copy", copy, "fork (side stream, default) or inline (on the cuDNN stream)");
  app.add_option("--spool-dir", spool_dir, "where processes write their spools (default <output>.spool-<pid>)");
  app.add_flag("--keep-spool", keep_spool, "keep the spools after conversion");
  app.add_option("--lib", lib, "the interposer (default <cdma dir>/../lib/libcdma_capture.so)");
  app.add_option("--model", model, "root attribute `model` of the trace");
  app.add_option("--framework", framework, "root attribute `framework` of the trace");
  app.add_option("--deflate", deflate, "compress tensors in the trace with deflate level 1-9 (default 0: off)")
      ->check(CLI::Range(0, 9));
  app.add_option("--summary-json", json_path, "write a JSON summary of the traces to this file");
  app.add_flag("--convert", convert, "convert the spools given as arguments instead of running a command");
  app.add_flag("-v,--verbose", verbose, "the interposer reports its spool path and warnings on stderr");
  app.add_option("command", command, "the command to run (after --), or spools with --convert");
  app.allow_extras(false);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }
  if (command.empty()) {
    fmt::print(stderr, "cdma capture: nothing to run (usage: cdma capture [options] -- CMD [ARGS...])\n");
    return kExitUsage;
  }
  if (output.empty()) output = default_output();

  // Validate every interposer option here, with the interposer's own parser.
  std::vector<std::pair<std::string, std::string>> env;
  Config cfg;
  auto set = [&](const char* name, const std::string& v) {
    std::string err = set_option(cfg, name, v);
    if (!err.empty()) throw CLI::ValidationError(err);
    env.emplace_back(name, v);
  };
  try {
    if (!mode.empty()) set("CDMA_CAPTURE_MODE", mode);
    if (!ops.empty()) set("CDMA_CAPTURE_OPS", ops);
    if (!roles.empty()) set("CDMA_CAPTURE_ROLES", roles);
    if (!phases.empty()) set("CDMA_CAPTURE_PHASES", phases);
    if (every) set("CDMA_CAPTURE_EVERY", std::to_string(every));
    if (skip >= 0) set("CDMA_CAPTURE_SKIP", std::to_string(skip));
    if (first >= 0) set("CDMA_CAPTURE_FIRST", std::to_string(first));
    if (!budget.empty()) set("CDMA_CAPTURE_BUDGET", budget);
    if (!ring.empty()) set("CDMA_CAPTURE_RING", ring);
    if (ring_wait >= 0) set("CDMA_CAPTURE_RING_WAIT_MS", std::to_string(ring_wait));
    if (!iteration.empty()) set("CDMA_CAPTURE_ITERATION", iteration);
    if (!cupti.empty()) set("CDMA_CAPTURE_CUPTI", cupti);
    if (!copy.empty()) set("CDMA_CAPTURE_COPY", copy);
    if (verbose) set("CDMA_CAPTURE_VERBOSE", "1");
  } catch (const CLI::ValidationError& e) {
    fmt::print(stderr, "cdma capture: {}\n", e.what());
    return kExitUsage;
  }

  ConvertOptions copts;
  copts.model = model;
  copts.framework = framework;
  copts.deflate_level = deflate;
  std::vector<fs::path> spools;
  LaunchResult launched;
  fs::path dir;
  if (convert) {
    for (const auto& c : command) {
      if (fs::is_directory(c)) {
        auto found = find_spools(c);
        spools.insert(spools.end(), found.begin(), found.end());
      } else {
        spools.emplace_back(c);
      }
    }
  } else {
    fs::path preload = lib.empty() ? default_preload_library() : fs::path(lib);
    if (!fs::exists(preload)) {
      fmt::print(stderr,
                 "cdma capture: the interposer {} does not exist (built only with CUDA headers; see "
                 "--lib)\n",
                 preload.string());
      return kExitFailure;
    }
    dir = spool_dir.empty() ? fs::path(output + ".spool-" + std::to_string(getpid())) : fs::path(spool_dir);
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) {
      fmt::print(stderr, "cdma capture: cannot create the spool directory {}: {}\n", dir.string(), ec.message());
      return kExitFailure;
    }
    env.emplace_back("CDMA_CAPTURE_DIR", fs::absolute(dir).string());
    LaunchOptions lo;
    lo.argv = command;
    lo.preload = fs::absolute(preload);
    lo.env = env;
    try {
      launched = run_traced(lo);
    } catch (const formats::Error& e) {
      fmt::print(stderr, "cdma capture: {}\n", e.what());
      return kExitFailure;
    }
    spools = find_spools(dir);
    std::string cmdline;
    for (const auto& c : command) cmdline += (cmdline.empty() ? "" : " ") + c;
    copts.command = cmdline;
    if (launched.signal) fmt::print(stderr, "cdma capture: {} was killed by signal {}\n", command[0], launched.signal);
  }

  bool failed = false;
  nlohmann::json summaries = nlohmann::json::array();
  if (spools.empty())
    fmt::print(stderr, "cdma capture: no process made a cuDNN call that the interposer saw; no trace written\n");
  for (const auto& s : spools) {
    try {
      auto sum = convert_spool(s, output_for(output, s, spools.size()), copts);
      print_summary(sum);
      summaries.push_back(to_json(sum));
    } catch (const formats::Error& e) {
      fmt::print(stderr, "cdma capture: {}\n", e.what());
      failed = true;
    }
  }
  if (!json_path.empty()) {
    std::ofstream(json_path) << nlohmann::json{{"exit_code", launched.exit_code}, {"traces", summaries}}.dump(2)
                             << "\n";
  }
  if (!convert && !keep_spool && !failed) {
    std::error_code ec;
    for (const auto& s : spools) fs::remove(s, ec);
    fs::remove(dir, ec);  // only when empty
  } else if (!convert && (keep_spool || failed)) {
    fmt::print(stderr, "cdma capture: spools kept in {} (convert again with: cdma capture --convert {} -o {})\n",
               dir.string(), dir.string(), output);
  }
  if (convert) return failed ? kExitFailure : kExitOk;
  if (failed && launched.exit_code == 0) return kExitFailure;
  return launched.exit_code;
}

}  // namespace

CDMA_REGISTER_VERB("capture", "run a command under the cuDNN interposer and write a trace", run);

}  // namespace cdma::cli
