// A trace that shrinks under a run (rewritten in place, truncated) after it was opened for the
// workers: with ReadMode::mmap the lost pages raise SIGBUS, which once killed the process without
// a word; now both read modes give an error that names the file (issue 29). The file is truncated
// by the RunHooks::on_opened hook, after the mapping exists and before any tensor's bytes are read.
#include <cdma/analyze/pipeline.hpp>
#include <cdma/formats/error.hpp>
#include <cdma/formats/trace.hpp>

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include "test_util.hpp"

#include <csignal>
#include <vector>

namespace cdma::analyze {
namespace {

// Four 1 MiB tensors; returns the offset of the first one's bytes in the file.
std::uint64_t write_trace(const std::filesystem::path& p) {
  {
    formats::TraceAttrs a;
    a.producer = "test";
    a.source = "synthetic";
    formats::TraceWriter w(p, a);
    std::vector<float> data(262144);
    for (std::size_t i = 0; i < data.size(); ++i) data[i] = i % 3 == 0 ? 0.0f : static_cast<float>(i);
    for (int i = 0; i < 4; ++i) {
      formats::TensorMeta m;
      m.iteration = 0;
      m.layer = "l" + std::to_string(i);
      m.layer_index = i;
      m.op = "relu";
      m.role = "x";
      m.layout = formats::Layout::NC;
      m.dims = {256, 1024};
      m.offload = true;
      w.append_tensor(m, std::as_bytes(std::span<const float>(data)));
    }
    w.close();
  }
  formats::TraceReader r(p);
  const auto off = r.raw_offset(r.tensors().front());
  EXPECT_TRUE(off.has_value());
  return off.value_or(0);
}

// The message of the error a run throws when the file is cut 4 KiB into its first tensor once the
// run opened it; "(no error)" when it succeeds.
std::string run_on_shrinking(ReadMode mode, unsigned threads) {
  test::TempDir dir;
  const auto p = dir / "shrinks.h5";
  const std::uint64_t first = write_trace(p);
  Options o;
  o.codecs = {"zvc"};
  o.read = mode;
  o.threads = threads;
  RunHooks hooks;
  bool called = false;
  hooks.on_opened = [&](const std::filesystem::path& opened) {
    EXPECT_EQ(opened, p);
    called = true;
    EXPECT_EQ(::truncate(opened.c_str(), static_cast<off_t>(first + 4096)), 0);
  };
  try {
    run_analysis({p}, o, hooks);
  } catch (const formats::Error& e) {
    EXPECT_TRUE(called);
    return e.what();
  }
  EXPECT_TRUE(called);
  return "(no error)";
}

TEST(AnalyzeShrink, MappedFileThatShrinksGivesTheReadError) {
  for (unsigned threads : {1u, 3u}) {
    const std::string e = run_on_shrinking(ReadMode::mmap, threads);
    EXPECT_NE(e.find("shrinks.h5"), std::string::npos) << e;
    EXPECT_NE(e.find("did it change during the run?"), std::string::npos) << e;
  }
}

TEST(AnalyzeShrink, PreadFileThatShrinksGivesTheReadError) {
  const std::string e = run_on_shrinking(ReadMode::pread, 2);
  EXPECT_NE(e.find("shrinks.h5"), std::string::npos) << e;
  EXPECT_NE(e.find("did it change during the run?"), std::string::npos) << e;
}

// A SIGBUS that is not in a guarded mapping still has its default action (the guard does not
// swallow other bus errors): a child maps a file, truncates it and reads.
TEST(AnalyzeShrink, OtherBusErrorsStillKill) {
  test::TempDir dir;
  const auto p = dir / "t.h5";
  write_trace(p);
  // A run first, so that the guard's handler is installed in this process (and so in the child).
  Options o;
  o.codecs = {"zvc"};
  run_analysis({p}, o);
  EXPECT_EXIT(
      {
        const int fd = ::open(p.c_str(), O_RDONLY);
        void* a = mmap(nullptr, 1 << 20, PROT_READ, MAP_SHARED, fd, 0);
        if (ftruncate(::open(p.c_str(), O_RDWR), 0) != 0) _exit(3);
        volatile const char* c = static_cast<const char*>(a);
        _exit(c[8192] == 0 ? 4 : 5);
      },
      ::testing::KilledBySignal(SIGBUS), "");
}

}  // namespace
}  // namespace cdma::analyze
