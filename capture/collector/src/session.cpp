// run_session: the steps of a capture session (session.hpp), in the order `cdma capture` has
// always taken them, so that its messages, files and exit status stay what docs/CAPTURE.md says.
#include <cdma/capture/config.hpp>
#include <cdma/capture/session.hpp>

#include <unistd.h>

#include <ctime>
#include <system_error>

namespace cdma::capture {

namespace fs = std::filesystem;

namespace {

void say(const SessionOptions& o, const std::string& msg) {
  if (o.on_message) o.on_message(msg);
}

// Spools named on the command line of a conversion: files as given, folders searched.
std::vector<fs::path> spools_of(const std::vector<std::string>& args) {
  std::vector<fs::path> spools;
  for (const auto& a : args) {
    if (fs::is_directory(a)) {
      auto found = find_spools(a);
      spools.insert(spools.end(), found.begin(), found.end());
    } else {
      spools.emplace_back(a);
    }
  }
  return spools;
}

// Runs the command with the interposer; returns its end and fills res.spool_dir.
LaunchResult launch(const SessionOptions& o, const fs::path& output, SessionResult& res) {
  fs::path preload = o.preload.empty() ? default_preload_library() : o.preload;
  if (!fs::exists(preload))
    throw CaptureError("the interposer " + preload.string() +
                       " does not exist (built only with CUDA headers; see --lib)");
  fs::path dir = o.spool_dir.empty() ? fs::path(output.string() + ".spool-" + std::to_string(getpid())) : o.spool_dir;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw CaptureError("cannot create the spool directory " + dir.string() + ": " + ec.message());
  res.spool_dir = dir;
  LaunchOptions lo;
  lo.argv = o.command;
  lo.preload = fs::absolute(preload);
  lo.env = o.settings;
  lo.env.emplace_back("CDMA_CAPTURE_DIR", fs::absolute(dir).string());
  LaunchResult r = run_traced(lo);
  if (r.signal) say(o, o.command[0] + " was killed by signal " + std::to_string(r.signal));
  return r;
}

}  // namespace

std::string default_trace_name() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "capture-%Y%m%d-%H%M%S.h5", &tm);
  return buf;
}

fs::path trace_path_for(const fs::path& output, const fs::path& spool, std::size_t n) {
  if (n <= 1) return output;
  std::string stem = spool.stem().string();  // cdma-<pid>[-k]
  if (stem.rfind("cdma-", 0) == 0) stem = stem.substr(5);
  return output.parent_path() / (output.stem().string() + "." + stem + output.extension().string());
}

int SessionResult::exit_status() const noexcept {
  if (spool_dir.empty()) return failed() ? 1 : 0;  // a conversion only
  if (failed() && launched.exit_code == 0) return 1;
  return launched.exit_code;
}

SessionResult run_session(const SessionOptions& o) {
  // Every setting is checked first, with the interposer's own parser.
  Config cfg;
  for (const auto& [name, value] : o.settings) {
    std::string err = set_option(cfg, name, value);
    if (!err.empty()) throw SettingError(err);
  }
  SessionResult res;
  res.output = o.output.empty() ? fs::path(default_trace_name()) : o.output;
  ConvertOptions copts = o.convert_options;
  std::vector<fs::path> spools;
  if (o.convert) {
    spools = spools_of(o.command);
  } else {
    // Refused before the command runs (a training run is not wasted on a trace that cannot be written).
    if (!copts.overwrite && fs::exists(res.output))
      throw formats::UsageError(res.output.string() + " exists (use --force to replace it)");
    res.launched = launch(o, res.output, res);
    spools = find_spools(res.spool_dir);
    if (copts.command.empty())
      for (const auto& c : o.command) copts.command += (copts.command.empty() ? "" : " ") + c;
  }

  if (spools.empty()) say(o, "no process made a cuDNN call that the interposer saw; no trace written");
  for (const auto& s : spools) {
    try {
      res.traces.push_back(convert_spool(s, trace_path_for(res.output, s, spools.size()), copts));
      for (const auto& w : res.traces.back().warnings) say(o, "warning: " + w);
      if (o.on_trace) o.on_trace(res.traces.back());
    } catch (const formats::Error& e) {
      res.errors.emplace_back(e.what());
      say(o, e.what());
    }
  }
  if (o.convert) return res;
  if (!o.keep_spool && !res.failed()) {
    std::error_code ec;
    for (const auto& s : spools) fs::remove(s, ec);
    fs::remove(res.spool_dir, ec);  // only when empty
  } else {
    res.spools_kept = true;
    say(o, "spools kept in " + res.spool_dir.string() + " (convert again with: cdma capture --convert " +
               res.spool_dir.string() + " -o " + res.output.string() + ")");
  }
  return res;
}

}  // namespace cdma::capture
