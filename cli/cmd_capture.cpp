// `cdma capture [options] -- CMD...`: runs CMD with the cuDNN interposer preloaded, then turns the
// spool each traced process wrote into a trace v1 file. `cdma capture --convert SPOOL...` converts
// spools written elsewhere (e.g. on a GPU machine without this project's libraries). The session
// itself is cdma::capture::run_session (capture/include/cdma/capture/session.hpp); this file is its
// command line and its messages. `cdma capture --torch -- CMD` runs a Python command under
// cdma.torch instead (capture_torch.hpp).
#include "capture_torch.hpp"
#include "util.hpp"
#include "verbs.hpp"

#include <cdma/capture/session.hpp>
#include <cdma/formats/output_file.hpp>
#include <cdma/formats/text.hpp>

#include <fmt/core.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <type_traits>

namespace cdma::cli {
namespace {

using namespace cdma::capture;

// Paths come from the command line and attribute values from spools: any bytes. nlohmann::json
// throws on text that is not UTF-8 (type_error 316), so every string enters as clean text.
std::string text(const std::string& s) { return formats::clean_text(s); }

nlohmann::json clean_map(const auto& m) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : m) {
    if constexpr (std::is_convertible_v<decltype(v), std::string>)
      j[text(k)] = text(v);
    else
      j[text(k)] = v;
  }
  return j;
}

nlohmann::json to_json(const ConvertSummary& s) {
  nlohmann::json warnings = nlohmann::json::array();
  for (const auto& w : s.warnings) warnings.push_back(text(w));
  return {{"trace", text(s.trace.string())},
          {"spool", text(s.spool.string())},
          {"pid", s.pid},
          {"tensors", s.tensors},
          {"tensor_bytes", s.tensor_bytes},
          {"stats_rows", s.stats_rows},
          {"timeline_rows", s.timeline_rows},
          {"timeline_rows_with_gpu_time", s.timed_rows},
          {"iterations", s.iterations},
          {"tensor_iterations", s.tensor_iterations},
          {"calls", s.calls},
          {"dropped_tensors", s.dropped},
          {"skipped_graph_capture", s.skipped_graph},
          {"skipped_unsafe", s.skipped_unsafe},
          {"skipped_failed_calls", s.skipped_failed},
          {"tensors_offloaded", s.offloaded},
          {"tensors_not_offloaded", s.not_offloaded},
          {"tensors_offload_unknown", s.offload_unknown},
          {"stats_rows_not_offloaded", s.stats_not_offloaded},
          {"unmatched_backward_tensors", s.unmatched_tensors},
          {"unmatched_backward_stats_rows", s.unmatched_stats_rows},
          {"unmatched_backward_timeline_rows", s.unmatched_timeline_rows},
          {"clean_end", s.clean_end},
          {"ops", clean_map(s.ops)},
          {"attrs", clean_map(s.attrs)},
          {"warnings", warnings}};
}

void print_summary(const ConvertSummary& s) {
  std::string ops;
  for (const auto& [op, n] : s.ops) ops += fmt::format("{}{} {}", ops.empty() ? "" : ", ", n, op);
  std::string offload;
  if (s.tensors && !s.offload_unknown) offload = fmt::format(" ({} offloaded)", s.offloaded);
  fmt::print(stderr,
             "cdma capture: {} (pid {}): {} tensors{} ({}), {} stats rows, {} timeline rows ({} with GPU time), "
             "{} iterations with tensors ({} seen by the interposer){}{}{}{}\n",
             s.trace.string(), s.pid, s.tensors, offload, human_bytes(static_cast<double>(s.tensor_bytes)),
             s.stats_rows, s.timeline_rows, s.timed_rows, s.tensor_iterations, s.iterations,
             ops.empty() ? "" : "; " + ops,
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

struct TorchArgs {
  std::string output, mode, budget, json_path;
};

// --torch: the options the interposer's capture shares with it, then cdma.torch's launcher.
int run_torch(const CLI::App& app, const SessionOptions& so, TorchLaunchOptions to, const TorchArgs& a,
              std::int64_t every, std::int64_t first, bool verbose) {
  for (const char* opt : {"--ops", "--roles", "--phases", "--skip", "--ring", "--ring-wait-ms", "--iteration",
                          "--cupti", "--copy", "--spool-dir", "--keep-spool", "--lib", "--framework", "--convert"})
    if (app.count(opt)) {
      fmt::print(stderr, "cdma capture: {} is an option of the cuDNN interposer, not of --torch\n", opt);
      return kExitUsage;
    }
  to.command = so.command;
  to.output = a.output;
  to.mode = a.mode;
  to.budget = a.budget;
  to.json_path = a.json_path;
  to.model = so.convert_options.model;
  to.deflate = so.convert_options.deflate_level;
  to.every = every;
  to.first = first;
  to.verbose = verbose;
  to.force = so.convert_options.overwrite;
  return run_torch_capture(to);
}

// The largest count an option takes (iterations, samples, milliseconds): what every parser on the
// way (the interposer's, cdma.torch's) reads without overflow.
constexpr std::int64_t kMaxCount = std::int64_t{1} << 53;

int run(int argc, char** argv) {
  CLI::App app{
      "Run a command with the cuDNN interposer preloaded and write a trace of its activations.\n"
      "Usage: cdma capture [options] -- CMD [ARGS...]    or    cdma capture --convert SPOOL... -o OUT\n"
      "   or  cdma capture --torch [options] -- python SCRIPT.py ...  (what autograd saves, via cdma.torch)",
      "cdma capture"};
  SessionOptions so;
  std::string output, mode, ops, roles, phases, budget, ring, iteration, cupti, copy, spool_dir, lib, json_path;
  std::int64_t every = 0, skip = -1, first = -1, ring_wait = -1;
  bool verbose = false;
  TorchLaunchOptions to;
  bool torch = false;
  app.add_flag("--torch", torch,
               "run a Python command under cdma.torch (docs/TORCH_CAPTURE.md): every tensor autograd "
               "saves for backward; options -o, --mode full|insitu, --every, --first, --iterations, --budget, "
               "--samples, --deflate, --model, --summary-json, -v");
  app.add_option("--iterations", to.iterations, "--torch: the iterations to keep, e.g. 0,10,20");
  app.add_option("--samples", to.samples, "--torch: keep the first K samples of each batch (K >= 1)")
      ->check(CLI::Range(std::int64_t{1}, kMaxCount));
  app.add_option("--python-dir", to.python_dir,
                 "--torch: the folder holding the cdma package (default "
                 "<cdma dir>/../python)");
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
  app.add_option("--every", every, "keep every N-th iteration (default 1)")
      ->check(CLI::Range(std::int64_t{1}, kMaxCount));
  app.add_option("--skip", skip, "skip the first K iterations (default 0)")
      ->check(CLI::Range(std::int64_t{0}, kMaxCount));
  app.add_option("--first", first, "keep at most K sampled iterations (default 0: no limit)")
      ->check(CLI::Range(std::int64_t{0}, kMaxCount));
  app.add_option("--budget", budget,
                 "total tensor bytes kept, e.g. 512M, 4G (default 1G); beyond it tensors are "
                 "dropped and counted in dropped_tensors");
  app.add_option("--ring", ring, "pinned staging memory per process (default 256M)");
  app.add_option("--ring-wait-ms", ring_wait, "wait up to MS for staging space before dropping (default 0)")
      ->check(CLI::Range(std::int64_t{0}, kMaxCount));
  app.add_option("--iteration", iteration,
                 "iteration detection: auto (heuristic), marker "
                 "(cdma_capture_mark_iteration() calls), calls:N (default auto)");
  app.add_option("--cupti", cupti, "GPU time per call: auto (use CUPTI if the process loaded it), on, off");
  app.add_option("--copy", copy, "fork (side stream, default) or inline (on the cuDNN stream)");
  app.add_option("--spool-dir", spool_dir, "where processes write their spools (default <output>.spool-<pid>)");
  app.add_flag("--keep-spool", so.keep_spool, "keep the spools after conversion");
  app.add_option("--lib", lib, "the interposer (default <cdma dir>/../lib/libcdma_capture.so)");
  app.add_option("--model", so.convert_options.model, "root attribute `model` of the trace");
  app.add_option("--framework", so.convert_options.framework, "root attribute `framework` of the trace");
  app.add_option("--deflate", so.convert_options.deflate_level,
                 "compress tensors in the trace with deflate level 1-9 (default 0: off)")
      ->check(CLI::Range(0, 9));
  app.add_option("--summary-json", json_path, "write a JSON summary of the traces to this file");
  app.add_flag("--convert", so.convert, "convert the spools given as arguments instead of running a command");
  so.convert_options.overwrite = false;
  app.add_flag("-f,--force", so.convert_options.overwrite, "replace the output trace(s) if they exist");
  app.add_flag("-v,--verbose", verbose, "the interposer reports its spool path and warnings on stderr");
  app.add_option("command", so.command, "the command to run (after --), or spools with --convert");
  app.allow_extras(false);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }
  if (so.command.empty()) {
    fmt::print(stderr, "cdma capture: nothing to run (usage: cdma capture [options] -- CMD [ARGS...])\n");
    return kExitUsage;
  }
  // Outputs that cannot be written are refused before anything runs (exit 2): a --summary-json that
  // is a directory or names an input spool, a trace path that is a device or FIFO, an existing trace
  // without --force (--convert included).
  try {
    if (!json_path.empty()) {
      std::vector<OutputArg> outs;
      if (!output.empty() && output != "-") outs.push_back({"-o", output});  // the summary must not replace the trace
      outs.push_back({"--summary-json", json_path});
      check_outputs(so.convert ? so.command : std::vector<std::string>{}, outs);
    }
    if (!output.empty() && !torch) {
      const auto target = formats::regular_output_path(output);
      if (!so.convert_options.overwrite && std::filesystem::exists(target))
        throw formats::UsageError(output + " exists (use --force to replace it)");
    }
  } catch (const formats::UsageError& e) {
    fmt::print(stderr, "cdma capture: {}\n", e.what());
    return kExitUsage;
  } catch (const formats::Error& e) {  // e.g. -o in a folder that does not exist: not worth a run
    fmt::print(stderr, "cdma capture: error: {}\n", e.what());
    return kExitFailure;
  }
  if (torch) return run_torch(app, so, to, {output, mode, budget, json_path}, every, first, verbose);
  for (const char* opt : {"--iterations", "--samples", "--python-dir"})
    if (app.count(opt)) {
      fmt::print(stderr, "cdma capture: {} is an option of --torch\n", opt);
      return kExitUsage;
    }
  // The interposer settings given, in this order (the first bad one is reported).
  auto set = [&](const char* name, bool given, const std::string& v) {
    if (given) so.settings.emplace_back(name, v);
  };
  set("CDMA_CAPTURE_MODE", !mode.empty(), mode);
  set("CDMA_CAPTURE_OPS", !ops.empty(), ops);
  set("CDMA_CAPTURE_ROLES", !roles.empty(), roles);
  set("CDMA_CAPTURE_PHASES", !phases.empty(), phases);
  set("CDMA_CAPTURE_EVERY", every != 0, std::to_string(every));
  set("CDMA_CAPTURE_SKIP", skip >= 0, std::to_string(skip));
  set("CDMA_CAPTURE_FIRST", first >= 0, std::to_string(first));
  set("CDMA_CAPTURE_BUDGET", !budget.empty(), budget);
  set("CDMA_CAPTURE_RING", !ring.empty(), ring);
  set("CDMA_CAPTURE_RING_WAIT_MS", ring_wait >= 0, std::to_string(ring_wait));
  set("CDMA_CAPTURE_ITERATION", !iteration.empty(), iteration);
  set("CDMA_CAPTURE_CUPTI", !cupti.empty(), cupti);
  set("CDMA_CAPTURE_COPY", !copy.empty(), copy);
  set("CDMA_CAPTURE_VERBOSE", verbose, "1");
  so.output = output;
  so.spool_dir = spool_dir;
  so.preload = lib;
  so.on_message = [](const std::string& m) { fmt::print(stderr, "cdma capture: {}\n", m); };
  so.on_trace = print_summary;

  SessionResult res;
  try {
    res = run_session(so);
  } catch (const formats::UsageError& e) {
    fmt::print(stderr, "cdma capture: {}\n", e.what());
    return kExitUsage;
  } catch (const formats::Error& e) {
    fmt::print(stderr, "cdma capture: {}\n", e.what());
    return kExitFailure;
  }
  int rc = res.exit_status();
  // A command that ran (exit 0) but left no trace did not produce what capture is for (exit 1, as --torch).
  if (rc == kExitOk && res.traces.empty()) rc = kExitFailure;
  if (res.launched.interrupted) rc = kExitInterrupted;  // Ctrl-C, forwarded to the command
  if (!json_path.empty()) {
    nlohmann::json traces = nlohmann::json::array();
    for (const auto& t : res.traces) traces.push_back(to_json(t));
    try {
      write_output(json_path, nlohmann::json{{"exit_code", res.launched.exit_code}, {"traces", traces}}.dump(2) + "\n");
    } catch (const formats::Error& e) {
      fmt::print(stderr, "cdma capture: error: {}\n", e.what());
      if (rc == kExitOk) rc = kExitFailure;
    }
  }
  return rc;
}

}  // namespace

CDMA_REGISTER_VERB("capture", "run a command under the cuDNN interposer and write a trace", run);

}  // namespace cdma::cli
