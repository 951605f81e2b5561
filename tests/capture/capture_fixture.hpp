// The fixture of the end-to-end capture tests (test_capture_*.cpp): a temporary directory, shell
// commands with their stderr kept, `cdma capture` of a fake-cuDNN program, and the bytes that
// program recorded as each layer's X.
#pragma once

#include <cdma/formats/trace.hpp>

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace cdma::capture_test {

namespace fs = std::filesystem;
using cdma::formats::TraceReader;

inline const std::string kCdma = std::string(CDMA_BINARY_DIR) + "/bin/cdma";

class Capture : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cdma-capture-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir_);
  }
  // Runs a shell command; returns its exit code.
  int sh(const std::string& cmd) {
    int st = std::system((cmd + " 2>" + (dir_ / "stderr.txt").string()).c_str());
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  }
  std::string stderr_text() {
    std::ifstream f(dir_ / "stderr.txt");
    return std::string(std::istreambuf_iterator<char>(f), {});
  }
  // cdma capture [opts] -f -o trace.h5 -- prog [args] --expect expected.bin (tests capture into the
  // same trace.h5 again and again: --force replaces it; Capture.ExistingOutputIsRefusedBeforeTheRun
  // checks the refusal without it).
  int capture(const std::string& opts, const std::string& prog, const std::string& args) {
    return sh(kCdma + " capture " + opts + " -f -o " + trace().string() + " -- " + prog + " " + args + " --expect " +
              (dir_ / "expected.bin").string());
  }
  fs::path trace() const { return dir_ / "trace.h5"; }

  // (layer, iteration) -> bytes the program passed.
  std::map<std::pair<std::string, std::int64_t>, std::vector<std::byte>> expected() {
    std::map<std::pair<std::string, std::int64_t>, std::vector<std::byte>> m;
    std::ifstream f(dir_ / "expected.bin", std::ios::binary);
    for (;;) {
      std::uint32_t n;
      if (!f.read(reinterpret_cast<char*>(&n), 4)) break;
      std::string name(n, '\0');
      std::int64_t it;
      std::uint64_t nb;
      f.read(name.data(), n);
      f.read(reinterpret_cast<char*>(&it), 8);
      f.read(reinterpret_cast<char*>(&nb), 8);
      std::vector<std::byte> b(nb);
      f.read(reinterpret_cast<char*>(b.data()), static_cast<std::streamsize>(nb));
      m[{name, it}] = std::move(b);
    }
    return m;
  }

  // Every tensor of role x in the trace equals what the program passed. Returns how many.
  int check_x_tensors(const TraceReader& r) {
    auto exp = expected();
    int n = 0;
    for (const auto& t : r.tensors()) {
      if (t.role != "x") continue;
      auto it = exp.find({t.layer, t.iteration});
      EXPECT_NE(it, exp.end()) << "unexpected tensor " << t.layer << " iteration " << t.iteration;
      if (it == exp.end()) continue;
      EXPECT_EQ(r.read(t), it->second) << t.layer << " iteration " << t.iteration;
      ++n;
    }
    return n;
  }

  fs::path dir_;
};

}  // namespace cdma::capture_test
