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
#include <cdma/formats/text.hpp>
#include <cdma/formats/trace.hpp>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
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

// The traces the command's processes wrote: `out`, and <stem>.<pid><ext> beside it, newer than
// `since` (files of an earlier run under the same name are not listed).
std::vector<fs::path> written_traces(const fs::path& out, fs::file_time_type since) {
  std::vector<fs::path> found;
  std::error_code ec;
  if (fs::is_regular_file(out, ec)) found.push_back(out);
  const std::string stem = out.stem().string(), ext = out.extension().string();
  for (const auto& e : fs::directory_iterator(out.parent_path(), ec)) {
    const std::string name = e.path().filename().string();
    if (name.size() <= stem.size() + ext.size() + 1 || name.rfind(stem + ".", 0) != 0 ||
        name.substr(name.size() - ext.size()) != ext)
      continue;
    const std::string mid = name.substr(stem.size() + 1, name.size() - stem.size() - 1 - ext.size());
    if (mid.find_first_not_of("0123456789") != std::string::npos || e.last_write_time(ec) < since) continue;
    found.push_back(e.path());
  }
  std::sort(found.begin() + (found.empty() || found[0] != out ? 0 : 1), found.end());
  return found;
}

nlohmann::json report(const fs::path& p) {
  formats::TraceReader r(p);
  std::int64_t bytes = 0, offloaded = 0;
  for (const auto& t : r.tensors()) {
    bytes += t.bytes();
    offloaded += t.offloaded() ? 1 : 0;
  }
  const auto iterations = r.root_attribute("iterations");
  const std::int64_t stats = r.has_stats() ? static_cast<std::int64_t>(r.stats().size()) : 0;
  const std::int64_t timeline = r.has_timeline() ? static_cast<std::int64_t>(r.timeline().size()) : 0;
  const std::int64_t dropped = r.attrs().dropped_tensors.value_or(0);
  fmt::print(
      stderr, "cdma capture: {}: {} tensors ({} offloaded, {}), {} stats rows, {} timeline rows, {} iterations{}{}\n",
      formats::clean_text(p.string()), r.tensors().size(), offloaded, human_bytes(static_cast<double>(bytes)), stats,
      timeline, iterations.value_or("?"), dropped ? fmt::format("; {} tensors dropped (budget)", dropped) : "",
      r.attrs().complete ? "" : "; not closed (complete = 0: the process was killed or crashed)");
  return {{"trace", formats::clean_text(p.string())},
          {"tensors", r.tensors().size()},
          {"tensors_offloaded", offloaded},
          {"tensor_bytes", bytes},
          {"stats_rows", stats},
          {"timeline_rows", timeline},
          {"iterations", iterations ? std::stoll(*iterations) : -1},
          {"dropped_tensors", dropped},
          {"complete", r.attrs().complete}};
}

}  // namespace

int run_torch_capture(const TorchLaunchOptions& o) {
  fs::path bootstrap, out;
  std::vector<std::pair<std::string, std::string>> env;
  try {
    check_options(o);
    const fs::path dir = python_dir(o, &bootstrap);
    out = fs::absolute(o.output.empty() ? capture::default_trace_name() : o.output);
    if (fs::is_directory(out)) throw Usage{fmt::format("-o {}: is a directory", formats::clean_text(out.string()))};
    if (!o.force && fs::exists(out))
      throw Usage{fmt::format("{} exists (use --force to replace it)", formats::clean_text(out.string()))};
    std::string path = bootstrap.string() + ":" + dir.string();
    if (const char* old = std::getenv("PYTHONPATH"); old && *old) path += std::string(":") + old;
    env = {{"PYTHONPATH", path}, {"CDMA_TORCH_OUTPUT", out.string()}, {"CDMA_TORCH_COMMAND", joined(o.command)}};
  } catch (const Usage& u) {
    fmt::print(stderr, "cdma capture: {}\n", u.message);
    return kExitUsage;
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

  // The first process to record a tensor creates `out`: a trace of an earlier run there (allowed by
  // --force) is removed first.
  std::error_code ec;
  if (fs::remove(out, ec)) fmt::print(stderr, "cdma capture: replacing {}\n", formats::clean_text(out.string()));
  const auto since = fs::file_time_type::clock::now() - std::chrono::seconds(1);
  capture::LaunchOptions lo;
  lo.argv = o.command;
  lo.env = env;  // LD_PRELOAD is left as it was (nothing is preloaded)
  capture::LaunchResult res;
  try {
    res = capture::run_traced(lo);
  } catch (const formats::Error& e) {
    fmt::print(stderr, "cdma capture: {}\n", e.what());
    return kExitFailure;
  }
  nlohmann::json traces = nlohmann::json::array();
  bool bad = false;
  for (const auto& p : written_traces(out, since)) {
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
               "in a model's forward (did it import torch and train?)\n");
  if (!o.json_path.empty())
    std::ofstream(o.json_path) << nlohmann::json{{"exit_code", res.exit_code}, {"traces", traces}}.dump(2) << "\n";
  if (res.exit_code != 0) return res.exit_code;
  return traces.empty() || bad ? kExitFailure : kExitOk;
}

}  // namespace cdma::cli
