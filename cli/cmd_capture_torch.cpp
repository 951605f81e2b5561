// `cdma capture --torch`: see capture_torch.hpp (a part of the capture verb, cmd_capture.cpp). Environment passed to
// the command (read by python/cdma/torch/_launch.py): PYTHONPATH = <bootstrap>:<python dir>[:old], CDMA_TORCH_OUTPUT,
// CDMA_TORCH_MODE, CDMA_TORCH_EVERY, CDMA_TORCH_FIRST, CDMA_TORCH_ITERATIONS, CDMA_TORCH_BUDGET,
// CDMA_TORCH_SAMPLES, CDMA_TORCH_DEFLATE, CDMA_TORCH_MODEL, CDMA_TORCH_COMMAND, CDMA_TORCH_VERBOSE.
#include "capture_torch.hpp"

#include "util.hpp"
#include "verbs.hpp"

#include <cdma/capture/collector.hpp>
#include <cdma/capture/session.hpp>
#include <cdma/formats/byte_size.hpp>
#include <cdma/formats/output_file.hpp>
#include <cdma/formats/text.hpp>
#include <cdma/formats/trace.hpp>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <regex>
#include <set>
#include <utility>

namespace cdma::cli {
namespace {

namespace fs = std::filesystem;

struct Usage {
  std::string message;
};

void check_options(const TorchLaunchOptions& o) {
  if (!o.mode.empty() && o.mode != "full" && o.mode != "insitu")
    throw Usage{fmt::format("--mode {}: with --torch, full or insitu", o.mode)};
  if (o.every < 0) throw Usage{"--every must be >= 1"};
  if (o.first < -1) throw Usage{"--first must be >= 0"};
  if (o.samples < 0) throw Usage{"--samples must be >= 1"};
  if (!o.iterations.empty() && (o.every > 0 || o.first >= 0))
    throw Usage{"--iterations and --every/--first exclude each other"};
  if (!o.iterations.empty() && !std::regex_match(o.iterations, std::regex("[0-9]+(,[0-9]+)*")))
    throw Usage{
        fmt::format("--iterations '{}': a comma-separated list of iteration numbers, e.g. 0,10,20", o.iterations)};
  std::string why;
  if (!o.budget.empty() && !formats::parse_byte_size(o.budget, &why))
    throw Usage{formats::byte_size_error("--budget", o.budget, why)};
}

// The folder holding the cdma package: --python-dir, else <dir of this executable>/../python (the
// build's layout: build/bin/cdma beside build/python/cdma).
fs::path python_dir(const TorchLaunchOptions& o, fs::path* bootstrap) {
  fs::path dir = o.python_dir;
  if (dir.empty()) {
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) dir = exe.parent_path().parent_path() / "python";
  }
  *bootstrap = dir / "cdma" / "torch" / "_bootstrap";
  if (!fs::is_regular_file(*bootstrap / "sitecustomize.py"))
    throw Usage{fmt::format(
        "the cdma Python package is not in '{}' (no {}); give --python-dir DIR, the folder "
        "that holds cdma/ (the build's python/ folder)",
        formats::clean_text(dir.string()), formats::clean_text((*bootstrap / "sitecustomize.py").string()))};
  std::error_code ec;
  bool native = false;
  for (const auto& e : fs::directory_iterator(dir / "cdma", ec))
    native = native || e.path().filename().string().rfind("_native", 0) == 0;
  if (!native)
    throw Usage{
        fmt::format("the cdma Python package in '{}' has no native module (cdma/_native*.so): build the "
                    "target cdma_python_native, or give --python-dir DIR of a build that has it",
                    formats::clean_text(dir.string()))};
  return fs::absolute(dir);
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& a : v) s += (s.empty() ? "" : " ") + a;
  return s;
}

// A folder of this launch's own beside the trace (same filesystem: its files are renamed into place):
// the command's processes write their traces there, so that an earlier trace at -o is replaced only
// once a new one exists, and two launches with one -o never take each other's traces.
fs::path make_staging(const fs::path& target) {
  std::string tmpl = (target.parent_path() / ("." + target.filename().string() + ".torch-XXXXXX")).string();
  if (!::mkdtemp(tmpl.data()))
    throw formats::Error(fmt::format("cannot create a folder beside {} for the command's traces ({})",
                                     formats::clean_text(target.string()), std::strerror(errno)));
  return tmpl;
}

// Moves `from` to `to`; with `force` an existing regular file there is replaced, else it is kept and
// the trace goes to <stem>.<launcher pid><ext> beside it (say so). Returns where it went.
fs::path place(const fs::path& from, const fs::path& to, bool force) {
  const fs::path dest = formats::regular_output_path(to);
  struct stat st {};
  const bool existed = ::lstat(dest.c_str(), &st) == 0;
  if (force) {
    if (existed) fmt::print(stderr, "cdma capture: replacing {}\n", formats::clean_text(to.string()));
    formats::commit_output(from, dest);
    return dest;
  }
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, dest.c_str(), RENAME_NOREPLACE) == 0) return dest;
  if (errno != EEXIST)
    throw formats::Error(fmt::format("cannot move {} to {} ({})", formats::clean_text(from.string()),
                                     formats::clean_text(dest.string()), std::strerror(errno)));
  const fs::path alt =
      dest.parent_path() / (dest.stem().string() + "." + std::to_string(::getpid()) + dest.extension().string());
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, alt.c_str(), RENAME_NOREPLACE) != 0)
    throw formats::Error(fmt::format("cannot move {} to {} ({})", formats::clean_text(from.string()),
                                     formats::clean_text(alt.string()), std::strerror(errno)));
  fmt::print(stderr,
             "cdma capture: {} was created while the command ran (by another command?); this run's trace is {}\n",
             formats::clean_text(dest.string()), formats::clean_text(alt.string()));
  return alt;
}

// The traces the command's processes wrote into `staging` (the first as <name>, the others as
// <stem>.<pid><ext>: python/cdma/torch/_launch.py), moved beside `target`: the first to `target`.
std::vector<fs::path> place_traces(const fs::path& staging, const fs::path& target, bool force, bool* all_placed) {
  std::vector<fs::path> found, placed;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(staging, ec)) found.push_back(e.path());
  std::sort(found.begin(), found.end(), [&](const fs::path& a, const fs::path& b) {
    const bool fa = a.filename() == target.filename(), fb = b.filename() == target.filename();
    return fa != fb ? fa : a < b;
  });
  for (const auto& f : found) {
    try {
      placed.push_back(place(f, target.parent_path() / f.filename(), force));
    } catch (const formats::Error& e) {
      fmt::print(stderr, "cdma capture: error: {}\n", e.what());
      *all_placed = false;
    }
  }
  return placed;
}

nlohmann::json report(const fs::path& p) {
  formats::TraceReader r(p);
  std::int64_t bytes = 0, offloaded = 0;
  std::set<std::int64_t> iterations;  // as `cdma info` counts them: the iterations tensors carry
  for (const auto& t : r.tensors()) {
    bytes += t.bytes();
    offloaded += t.offloaded() ? 1 : 0;
    iterations.insert(t.iteration);
  }
  // The optimizer steps cdma.torch counted (root attribute `iterations`): 0 for a script without
  // an optimizer, whose tensors are all iteration 0.
  std::int64_t steps = -1;
  if (const auto a = r.root_attribute("iterations")) {
    std::int64_t v = 0;
    const auto* end = a->data() + a->size();
    if (const auto [ptr, ec] = std::from_chars(a->data(), end, v); ec == std::errc() && ptr == end && v >= 0) steps = v;
  }
  const std::int64_t stats = r.has_stats() ? static_cast<std::int64_t>(r.stats().size()) : 0;
  const std::int64_t timeline = r.has_timeline() ? static_cast<std::int64_t>(r.timeline().size()) : 0;
  const std::int64_t dropped = r.attrs().dropped_tensors.value_or(0);
  fmt::print(stderr,
             "cdma capture: {}: {} tensors ({} offloaded, {}), {} stats rows, {} timeline rows, {} iterations with "
             "tensors ({} optimizer steps){}{}\n",
             formats::clean_text(p.string()), r.tensors().size(), offloaded, human_bytes(static_cast<double>(bytes)),
             stats, timeline, iterations.size(), steps >= 0 ? std::to_string(steps) : std::string("?"),
             dropped ? fmt::format("; {} tensors dropped (budget)", dropped) : "",
             r.attrs().complete ? "" : "; not closed (complete = 0: the process was killed or crashed)");
  return {{"trace", formats::clean_text(p.string())},
          {"tensors", r.tensors().size()},
          {"tensors_offloaded", offloaded},
          {"tensor_bytes", bytes},
          {"stats_rows", stats},
          {"timeline_rows", timeline},
          {"tensor_iterations", iterations.size()},
          {"iterations", steps},
          {"dropped_tensors", dropped},
          {"complete", r.attrs().complete}};
}

}  // namespace

int run_torch_capture(const TorchLaunchOptions& o) {
  fs::path bootstrap, out, target;
  std::vector<std::pair<std::string, std::string>> env;
  try {
    check_options(o);
    const fs::path dir = python_dir(o, &bootstrap);
    out = fs::absolute(o.output.empty() ? capture::default_trace_name() : o.output);
    try {  // -o's symlinks followed; a directory, device or FIFO refused
      target = formats::regular_output_path(out);
    } catch (const formats::UsageError& e) {
      throw Usage{fmt::format("-o {}", e.what())};
    }
    if (!o.force && fs::exists(target))
      throw Usage{fmt::format("{} exists (use --force to replace it)", formats::clean_text(out.string()))};
    std::string path = bootstrap.string() + ":" + dir.string();
    if (const char* old = std::getenv("PYTHONPATH"); old && *old) path += std::string(":") + old;
    env = {{"PYTHONPATH", path}, {"CDMA_TORCH_COMMAND", joined(o.command)}};
  } catch (const Usage& u) {
    fmt::print(stderr, "cdma capture: {}\n", u.message);
    return kExitUsage;
  } catch (const formats::Error& e) {
    fmt::print(stderr, "cdma capture: error: {}\n", e.what());
    return kExitFailure;
  }
  auto set = [&](const char* k, bool given, const std::string& v) {
    if (given) env.emplace_back(k, v);
  };
  set("CDMA_TORCH_MODE", !o.mode.empty(), o.mode);
  set("CDMA_TORCH_EVERY", o.every > 0, std::to_string(o.every));
  set("CDMA_TORCH_FIRST", o.first >= 0, std::to_string(o.first));
  set("CDMA_TORCH_ITERATIONS", !o.iterations.empty(), o.iterations);
  set("CDMA_TORCH_BUDGET", !o.budget.empty(), o.budget);
  set("CDMA_TORCH_SAMPLES", o.samples > 0, std::to_string(o.samples));
  set("CDMA_TORCH_DEFLATE", o.deflate > 0, std::to_string(o.deflate));
  set("CDMA_TORCH_MODEL", !o.model.empty(), o.model);
  set("CDMA_TORCH_VERBOSE", o.verbose, "1");

  // The processes write into this launch's own folder; the traces are moved into place afterwards
  // (an earlier trace at -o stays until a new one exists).
  fs::path staging;
  try {
    staging = make_staging(target);
  } catch (const formats::Error& e) {
    fmt::print(stderr, "cdma capture: error: {}\n", e.what());
    return kExitFailure;
  }
  env.emplace_back("CDMA_TORCH_OUTPUT", (staging / target.filename()).string());
  capture::LaunchOptions lo;
  lo.argv = o.command;
  lo.env = env;  // LD_PRELOAD is left as it was (nothing is preloaded)
  capture::LaunchResult res;
  try {
    res = capture::run_traced(lo);
  } catch (const formats::Error& e) {
    std::error_code ec;
    fs::remove_all(staging, ec);  // the command never ran: nothing of it there
    fmt::print(stderr, "cdma capture: {}\n", e.what());
    return kExitFailure;
  }
  bool all_placed = true;
  const std::vector<fs::path> placed = place_traces(staging, target, o.force, &all_placed);
  std::error_code ec;
  if (!fs::remove(staging, ec) && fs::exists(staging))  // removed only when empty
    fmt::print(stderr, "cdma capture: files the command wrote are left in {}\n", formats::clean_text(staging.string()));
  nlohmann::json traces = nlohmann::json::array();
  bool bad = !all_placed;
  for (const auto& p : placed) {
    try {
      traces.push_back(report(p));
    } catch (const formats::Error& e) {
      fmt::print(stderr, "cdma capture: {}: {}\n", formats::clean_text(p.string()), e.what());
      bad = true;
    }
  }
  if (traces.empty() && !bad)
    fmt::print(stderr,
               "cdma capture: no trace written: no Python process of the command saved a tensor for backward "
               "in a model's forward (did it import torch and train?){}\n",
               fs::exists(target) ? fmt::format("; {} is unchanged", formats::clean_text(out.string())) : "");
  int rc = res.exit_code != 0 ? res.exit_code : traces.empty() || bad ? kExitFailure : kExitOk;
  if (res.interrupted) rc = kExitInterrupted;  // Ctrl-C, forwarded to the command
  if (!o.json_path.empty()) {
    try {
      write_output(o.json_path, nlohmann::json{{"exit_code", res.exit_code}, {"traces", traces}}.dump(2) + "\n");
    } catch (const formats::Error& e) {
      fmt::print(stderr, "cdma capture: error: {}\n", e.what());
      if (rc == kExitOk) rc = kExitFailure;
    }
  }
  return rc;
}

}  // namespace cdma::cli
