// cdma front door: `cdma <verb> [args]`, in the style of git. Verbs compiled into this binary
// register themselves (verbs.hpp); any other verb V runs the executable `cdma-V` installed next to
// this one (so that, e.g., `cdma train` links libtorch and `cdma` itself does not).
#include "util.hpp"
#include "verbs.hpp"

#include <cdma/formats/error.hpp>
#include <cdma/version.hpp>

#include <fmt/core.h>

#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>

namespace cdma::cli {

namespace {
std::vector<Verb>& registry() {
  static std::vector<Verb> v;
  return v;
}

std::filesystem::path self_dir() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::filesystem::path{} : p.parent_path();
}

struct External {
  std::string name, summary;
};
// Executables that live beside cdma and are reached through it.
const External kExternal[] = {
    {"train", "real CPU training run (libtorch, Fashion-MNIST) writing a trace"},
};

void usage(std::FILE* out) {
  fmt::print(out, "cdma {} — activation compression toolkit (cDMA, HPCA 2018)\n\n", kVersion);
  fmt::print(out, "Usage: cdma <command> [options]   (cdma <command> --help for details)\n\nCommands:\n");
  std::vector<std::pair<std::string, std::string>> rows;
  for (const auto& v : registry()) rows.emplace_back(v.name, v.summary);
  for (const auto& e : kExternal) {
    if (std::none_of(rows.begin(), rows.end(), [&](auto& r) { return r.first == e.name; }))
      rows.emplace_back(e.name, e.summary);
  }
  std::sort(rows.begin(), rows.end());
  for (const auto& [n, s] : rows) fmt::print(out, "  {:<10} {}\n", n, s);
  fmt::print(out, "\nOptions:\n  -h, --help     this text\n  --version      print the version\n");
}
}  // namespace

bool register_verb(Verb v) {
  registry().push_back(std::move(v));
  return true;
}
const std::vector<Verb>& verbs() { return registry(); }

}  // namespace cdma::cli

int main(int argc, char** argv) {
  using namespace cdma::cli;
  if (argc < 2) {
    usage(stderr);
    return kExitUsage;
  }
  std::string verb = argv[1];
  if (verb == "-h" || verb == "--help" || verb == "help" || verb == "--version" || verb == "version") {
    if (verb == "--version" || verb == "version")
      fmt::print("cdma {}\n", cdma::kVersion);
    else
      usage(stdout);
    try {
      finish_stdout();
    } catch (const cdma::formats::Error& e) {
      std::fprintf(stderr, "cdma: error: %s\n", e.what());
      return kExitFailure;
    }
    return kExitOk;
  }
  for (const auto& v : verbs()) {
    if (v.name != verb) continue;
    int rc = kExitFailure;
    try {
      rc = v.run(argc - 1, argv + 1);
    } catch (const std::system_error& e) {
      // fmt::print throws when a write fails (stdout on a full disk once its buffer fills up).
      std::fprintf(stderr, "cdma %s: error: cannot write its output (%s)\n", verb.c_str(), e.what());
      return kExitFailure;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "cdma %s: error: %s\n", verb.c_str(), e.what());
      return kExitFailure;
    }
    // Whatever the verb printed must have reached stdout: a full disk or a closed pipe is an error,
    // never an exit 0 with the output lost.
    try {
      finish_stdout();
    } catch (const cdma::formats::Error& e) {
      if (rc == kExitOk) {  // a verb that failed has said why already
        std::fprintf(stderr, "cdma %s: error: %s\n", verb.c_str(), e.what());
        rc = kExitFailure;
      }
    }
    return rc;
  }
  // External verb: cdma-<verb> beside this executable.
  auto exe = self_dir() / ("cdma-" + verb);
  if (!verb.empty() && verb[0] != '-' && verb.find('/') == std::string::npos && access(exe.c_str(), X_OK) == 0) {
    std::string exe_s = exe.string();
    argv[1] = exe_s.data();
    execv(exe_s.c_str(), argv + 1);
    fmt::print(stderr, "cdma: cannot run {}: {}\n", exe_s, std::strerror(errno));
    return kExitFailure;
  }
  for (const auto& e : kExternal) {
    if (e.name == verb) {
      fmt::print(stderr, "cdma: '{}' needs {} which was not built (see README: build options)\n", verb, exe.string());
      return kExitFailure;
    }
  }
  fmt::print(stderr, "cdma: unknown command '{}' (see 'cdma --help')\n", verb);
  return kExitUsage;
}
