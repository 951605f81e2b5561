// The parts of `cdma analyze` that a single-process run and rank 0 of an MPI run share.
#include "analyze_io.hpp"

#include "util.hpp"
#include "verbs.hpp"

#include <cdma/analyze/output.hpp>
#include <cdma/formats/error.hpp>

#include <fmt/core.h>
#include <fmt/format.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ostream>
#include <string_view>

namespace cdma::cli {

namespace {
std::atomic<bool> g_stop{false};

extern "C" void on_sigint(int) {
  g_stop.store(true);
  std::signal(SIGINT, SIG_DFL);  // a second Ctrl-C ends the process at once
}
}  // namespace

std::atomic<bool>& analyze_stop_flag() { return g_stop; }

StopOnSigint::StopOnSigint() : old_(std::signal(SIGINT, on_sigint)) {}
StopOnSigint::~StopOnSigint() { std::signal(SIGINT, old_); }

void draw_progress(const analyze::Progress& p, bool final) {
  if (final) {  // clear the bar (drawing an empty Progress here printed a spurious "100.0 % 0/0 tensors")
    fmt::print(stderr, "\r{:100}\r", "");
    std::fflush(stderr);
    return;
  }
  const double frac = p.bytes_total ? static_cast<double>(p.bytes_done) / static_cast<double>(p.bytes_total) : 1.0;
  const int width = 30;
  const int fill = static_cast<int>(frac * width);
  std::string bar(static_cast<std::size_t>(fill), '#');
  bar.resize(width, '.');
  fmt::print(stderr, "\r[{}] {:5.1f}%  {}/{} tensors  {:.2f}/{:.2f} GB", bar, 100.0 * frac, p.tensors_done,
             p.tensors_total, static_cast<double>(p.bytes_done) * 1e-9, static_cast<double>(p.bytes_total) * 1e-9);
  std::fflush(stderr);
}

void print_timing(const analyze::RunStats& s) {
  const double gb = static_cast<double>(s.bytes) * 1e-9;
  fmt::print(stderr,
             "timing: bytes={} wall_s={:.4f} gbps={:.4f} threads={} cpu_s={:.4f} codec_cpu_s={:.4f} "
             "read_cpu_s={:.4f} mapped={} outside_codecs={:.2f}% outside_codecs_and_read={:.2f}%\n",
             s.bytes, s.wall_s, gb / s.wall_s, s.threads, s.cpu_s, s.codec_s, s.read_s, s.mapped_tensors,
             100.0 * (1.0 - s.codec_s / s.cpu_s), 100.0 * (1.0 - (s.codec_s + s.read_s) / s.cpu_s));
}

int write_results(const analyze::Analysis& result, const AnalyzeOutputs& out) {
  int rc = kExitOk;
  if (auto why = analyze::nothing_selected(result)) {  // an empty table would look like a result
    fmt::print(stderr, "cdma analyze: {}; nothing written\n", *why);
    return kExitUsage;
  }
  try {
    if (!out.json_path.empty()) write_output(out.json_path, [&](std::ostream& os) { analyze::write_json(os, result); });
    if (!out.csv_path.empty())
      write_output(out.csv_path, [&](std::ostream& os) {
        if (out.long_csv)
          formats::write_csv(os, analyze::long_table(result, out.level));
        else
          analyze::write_csv(os, result, out.level);
      });
    if (!out.quiet && out.json_path != "-" && out.csv_path != "-")
      write_output("-", [&](std::ostream& os) { analyze::write_table(os, result, out.level); });
    if (result.options.verify) {  // say what was checked, not only that nothing failed
      std::int64_t tensors = 0;   // with bytes: /stats rows have none to decode
      for (const auto& t : result.traces) tensors += t.tensors;
      fmt::print(stderr,
                 "cdma analyze: verified: every encoding ({}) of the {} tensors analysed decoded to the "
                 "original bytes\n",
                 fmt::join(result.codec_names, ", "), tensors);
    }
  } catch (const formats::Error& e) {
    fmt::print(stderr, "cdma analyze: error: {}\n", e.what());
    rc = kExitFailure;
  }
  for (const auto& t : result.traces) {
    for (const auto& s : t.skipped) {
      // The reason is often a reader error that names the file and object itself: said once.
      std::string_view why = s.reason;
      for (const std::string& said : {t.path + ": ", s.object + ": "})
        if (why.substr(0, said.size()) == said) why.remove_prefix(said.size());
      fmt::print(stderr, "cdma analyze: skipped {}: {}: {}\n", t.path, s.object, why);
      rc = kExitFailure;
    }
    for (const auto& w : t.warnings) fmt::print(stderr, "cdma analyze: warning: {}: {}\n", t.path, w);
  }
  return rc;
}

bool mpi_launched() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"})
    if (const char* s = std::getenv(v); s && *s) return true;
  return false;
}

}  // namespace cdma::cli
