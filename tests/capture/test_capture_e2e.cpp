// End-to-end capture tests: programs drive the fake cuDNN / CUDA / CUPTI libraries (legacy and
// backend API) under `cdma capture`; the traces must hold exactly the bytes each program passed
// as a layer's X, with the right names, shapes, iterations, timeline rows and counters.
#include "capture_fixture.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using cdma::capture_test::Capture;
using cdma::capture_test::kCdma;
using cdma::formats::TraceReader;

namespace {

const char* kLegacyLayers[] = {"conv0", "relu0", "pool0", "conv1", "bn0", "add0", "softmax0"};
const char* kLegacyOps[] = {"conv", "relu", "pool", "conv", "bn", "add", "softmax"};

TEST_F(Capture, LegacyFullCaptureMatchesWhatTheProgramPassed) {
  ASSERT_EQ(capture("", CDMA_LEGACY_NET, "--iterations 3"), 0) << stderr_text();
  TraceReader r(trace());
  EXPECT_TRUE(r.attrs().complete);
  EXPECT_EQ(r.attrs().source, "cudnn");
  EXPECT_EQ(r.attrs().dropped_tensors.value_or(-1), 0);
  ASSERT_EQ(r.tensors().size(), 21u);
  EXPECT_EQ(check_x_tensors(r), 21);
  for (std::size_t i = 0; i < r.tensors().size(); ++i) {
    const auto& t = r.tensors()[i];
    EXPECT_EQ(t.iteration, static_cast<std::int64_t>(i / 7));
    EXPECT_EQ(t.layer, kLegacyLayers[i % 7]);
    EXPECT_EQ(t.op, kLegacyOps[i % 7]);
    EXPECT_EQ(t.layer_index, static_cast<std::int32_t>(i % 7));
    EXPECT_EQ(t.phase, "forward");
    ASSERT_TRUE(t.call.has_value());
  }
  EXPECT_EQ(r.tensors()[0].dims, (std::vector<std::int64_t>{2, 3, 8, 8}));
  EXPECT_EQ(r.tensors()[0].layout, cdma::formats::Layout::NCHW);
  // Timeline: 13 calls per iteration, all timed by the (fake) CUPTI; backward calls find their layer.
  ASSERT_TRUE(r.has_timeline());
  auto tl = r.timeline();
  ASSERT_EQ(tl.size(), 39u);
  std::set<std::string> bwd_layers;
  for (const auto& row : tl) {
    EXPECT_GT(row.device_ns, 0) << row.op << " call " << row.call;
    EXPECT_LE(row.start_ns, row.end_ns);
    if (row.phase == 1) {
      EXPECT_GE(row.layer_index, 0) << row.op << " call " << row.call;
      bwd_layers.insert(row.layer);
    }
  }
  EXPECT_EQ(bwd_layers, (std::set<std::string>{"bn0", "conv0", "conv1", "pool0", "relu0"}));
  // Backward data launches two fake kernels (5000 + 1000 ns + ...): GPU time is their sum.
  for (const auto& row : tl)
    if (row.op == "conv" && row.phase == 1 && row.layer == "conv1" && row.device_ns == 7000) SUCCEED();
}

TEST_F(Capture, LegacyChannelsLastAndPaddedInputs) {
  ASSERT_EQ(capture("--ops conv", CDMA_LEGACY_NET, "--iterations 2 --nhwc"), 0) << stderr_text();
  {
    TraceReader r(trace());
    ASSERT_EQ(r.tensors().size(), 4u);
    EXPECT_EQ(r.tensors()[0].layout, cdma::formats::Layout::NHWC);
    EXPECT_EQ(r.tensors()[0].dims, (std::vector<std::int64_t>{2, 8, 8, 3}));
    EXPECT_EQ(check_x_tensors(r), 4);
  }
  ASSERT_EQ(capture("--ops conv", CDMA_LEGACY_NET, "--iterations 2 --padded"), 0) << stderr_text();
  TraceReader r(trace());
  ASSERT_EQ(r.tensors().size(), 4u);
  EXPECT_EQ(r.tensors()[0].layout, cdma::formats::Layout::NCHW);
  EXPECT_EQ(r.tensors()[0].dims, (std::vector<std::int64_t>{2, 3, 8, 8}));
  EXPECT_EQ(check_x_tensors(r), 4);
}

TEST_F(Capture, SamplingEverySkipFirst) {
  ASSERT_EQ(capture("--every 2 --skip 1", CDMA_LEGACY_NET, "--iterations 6"), 0) << stderr_text();
  std::set<std::int64_t> its;
  {
    TraceReader r(trace());
    for (const auto& t : r.tensors()) its.insert(t.iteration);
    EXPECT_EQ(check_x_tensors(r), 21);
    EXPECT_EQ(r.timeline().size(), 6u * 13u);  // the timeline is not sampled
  }
  EXPECT_EQ(its, (std::set<std::int64_t>{1, 3, 5}));
  ASSERT_EQ(capture("--every 2 --skip 1 --first 2", CDMA_LEGACY_NET, "--iterations 6"), 0) << stderr_text();
  TraceReader r(trace());
  its.clear();
  for (const auto& t : r.tensors()) its.insert(t.iteration);
  EXPECT_EQ(its, (std::set<std::int64_t>{1, 3}));
}

TEST_F(Capture, ByteBudgetDropsAndCounts) {
  const std::int64_t budget = 10000;
  ASSERT_EQ(capture("--budget " + std::to_string(budget), CDMA_LEGACY_NET, "--iterations 3"), 0) << stderr_text();
  TraceReader r(trace());
  std::int64_t kept = 0;
  for (const auto& t : r.tensors()) kept += t.bytes();
  EXPECT_LE(kept, budget);
  EXPECT_GT(kept, budget / 2);
  ASSERT_TRUE(r.attrs().dropped_tensors.has_value());
  EXPECT_EQ(*r.attrs().dropped_tensors + static_cast<std::int64_t>(r.tensors().size()), 21);
  EXPECT_GT(*r.attrs().dropped_tensors, 0);
  EXPECT_EQ(check_x_tensors(r), static_cast<int>(r.tensors().size()));
}

TEST_F(Capture, OpAndRoleFilters) {
  ASSERT_EQ(capture("--ops conv --roles x,y", CDMA_LEGACY_NET, "--iterations 2"), 0) << stderr_text();
  TraceReader r(trace());
  ASSERT_EQ(r.tensors().size(), 8u);
  auto exp = expected();
  for (const auto& t : r.tensors()) {
    EXPECT_EQ(t.op, "conv");
    if (t.role == "y") {
      // conv0's output is relu0's input, conv1's output is bn0's input.
      std::string next = t.layer == "conv0" ? "relu0" : "bn0";
      EXPECT_EQ(r.read(t), (exp[{next, t.iteration}])) << t.layer;
    }
  }
  EXPECT_EQ(check_x_tensors(r), 4);
}

TEST_F(Capture, InPlaceCallsAreCopiedBeforeTheCallRuns) {
  const auto log = dir_ / "cuda.log";
  ASSERT_EQ(capture("", "env FAKECUDA_LOG=" + log.string() + " " + CDMA_LEGACY_NET, "--iterations 1"), 0)
      << stderr_text();
  TraceReader r(trace());
  EXPECT_EQ(check_x_tensors(r), 7);  // relu0 and add0 run in place: their X is the pre-call value
  // In the driver log, the join (framework stream waits for the copy's event) comes before the
  // in-place call, and after the call for an ordinary one.
  std::ifstream f(log);
  std::vector<std::string> lines;
  for (std::string l; std::getline(f, l);) lines.push_back(l);
  auto index_of = [&](const std::string& s, std::size_t from) {
    for (std::size_t i = from; i < lines.size(); ++i)
      if (lines[i].find(s) != std::string::npos) return i;
    return lines.size();
  };
  std::size_t conv = index_of("cudnn cudnnConvolutionForward", 0);
  std::size_t relu = index_of("cudnn cudnnActivationForward", 0);
  ASSERT_LT(conv, lines.size());
  ASSERT_LT(relu, lines.size());
  std::size_t wait_before_relu = lines.size();
  for (std::size_t i = conv + 1; i < relu; ++i)
    if (lines[i].rfind("wait stream=", 0) == 0 && lines[i].find("stream=0") == std::string::npos) wait_before_relu = i;
  // Two waits between the conv kernel and the relu: conv0's join (after its call), relu0's
  // join (before its call); the last one must follow relu0's copy.
  std::size_t relu_copy = lines.size();
  for (std::size_t i = conv + 1; i < relu; ++i)
    if (lines[i].rfind("copy-dtoh", 0) == 0) relu_copy = i;
  ASSERT_LT(relu_copy, relu);
  EXPECT_GT(wait_before_relu, relu_copy);
  EXPECT_LT(wait_before_relu, relu);
  // conv0 (not in place): no wait between its copy and its call.
  std::size_t conv_copy = index_of("copy-dtoh", 0);
  for (std::size_t i = conv_copy; i < conv; ++i) EXPECT_NE(lines[i].rfind("wait stream=", 0), 0u) << lines[i];
}

TEST_F(Capture, NoDataWhileACudaGraphIsCaptured) {
  ASSERT_EQ(capture("", CDMA_LEGACY_NET, "--iterations 3 --graph-iter 1"), 0) << stderr_text();
  TraceReader r(trace());
  EXPECT_EQ(r.tensors().size(), 14u);
  for (const auto& t : r.tensors()) EXPECT_NE(t.iteration, 1);
  EXPECT_EQ(r.timeline().size(), 39u);  // metadata is kept
  EXPECT_EQ(check_x_tensors(r), 14);
}

TEST_F(Capture, SigkillLeavesAReadableTrace) {
  int rc = capture("", CDMA_LEGACY_NET, "--iterations 4 --kill-iter 2");
  EXPECT_EQ(rc, 128 + 9) << stderr_text();
  TraceReader r(trace());
  EXPECT_TRUE(r.attrs().complete);  // the collector finalised it
  EXPECT_GE(r.tensors().size(), 7u);
  EXPECT_LE(r.tensors().size(), 14u);
  EXPECT_EQ(check_x_tensors(r), static_cast<int>(r.tensors().size()));
  EXPECT_NE(stderr_text().find("did not finalise"), std::string::npos);
}

TEST_F(Capture, StatusAndExitCodePassThrough) {
  EXPECT_EQ(capture("", CDMA_LEGACY_NET, "--iterations 1 --status-checks"), 0) << stderr_text();
  EXPECT_EQ(capture("", CDMA_LEGACY_NET, "--iterations 1 --exit-code 7"), 7) << stderr_text();
  EXPECT_EQ(sh(kCdma + " capture -f -o " + trace().string() + " -- /nonexistent/program"), 1);
  EXPECT_EQ(sh(kCdma + " capture --mode bogus -- true"), 2);
  EXPECT_EQ(sh(kCdma + " capture --budget 12Q -- true"), 2);
}

// An existing trace is not replaced without -f/--force: the command is not even started (a training
// run is not wasted), the old trace is untouched, the message names --force; --convert refuses too.
TEST_F(Capture, ExistingOutputIsRefusedBeforeTheRun) {
  ASSERT_EQ(capture("--keep-spool --spool-dir " + (dir_ / "sp").string(), CDMA_LEGACY_NET, "--iterations 1"), 0)
      << stderr_text();
  const auto before = fs::last_write_time(trace());
  const std::size_t size = fs::file_size(trace());
  const fs::path marker = dir_ / "ran";
  EXPECT_EQ(sh(kCdma + " capture -o " + trace().string() + " -- touch " + marker.string()), 2);
  EXPECT_NE(stderr_text().find("exists (use --force to replace it)"), std::string::npos) << stderr_text();
  EXPECT_FALSE(fs::exists(marker)) << "the command ran although its trace could not be written";
  EXPECT_EQ(fs::last_write_time(trace()), before);
  EXPECT_EQ(fs::file_size(trace()), size);
  EXPECT_EQ(sh(kCdma + " capture --torch -o " + trace().string() + " -- touch " + marker.string()), 2);
  EXPECT_NE(stderr_text().find("--force"), std::string::npos) << stderr_text();
  EXPECT_FALSE(fs::exists(marker));
  EXPECT_EQ(sh(kCdma + " capture --convert " + (dir_ / "sp").string() + " -o " + trace().string()), 2);
  EXPECT_NE(stderr_text().find("--force"), std::string::npos) << stderr_text();
  EXPECT_EQ(fs::last_write_time(trace()), before);
  EXPECT_EQ(sh(kCdma + " capture -f --convert " + (dir_ / "sp").string() + " -o " + trace().string()), 0)
      << stderr_text();
  EXPECT_EQ(TraceReader(trace()).tensors().size(), 7u);
}

TEST_F(Capture, IterationMarkerAndCallCountModes) {
  for (std::string opts : {"--iteration marker", "--iteration calls:7"}) {
    ASSERT_EQ(capture(opts, CDMA_LEGACY_NET, "--iterations 3 --mark"), 0) << stderr_text();
    TraceReader r(trace());
    ASSERT_EQ(r.tensors().size(), 21u) << opts;
    EXPECT_EQ(check_x_tensors(r), 21) << opts;
  }
}

// In-situ rows of in-place inputs (relu0, add0: overwritten by their call, so never offloaded)
// are left out of /stats, which has no offload column, and counted.
TEST_F(Capture, InsituStatsMatchTheTensors) {
  ASSERT_EQ(capture("--mode insitu", CDMA_LEGACY_NET, "--iterations 2"), 0) << stderr_text();
  TraceReader r(trace());
  EXPECT_EQ(r.tensors().size(), 0u);
  ASSERT_TRUE(r.has_stats());
  auto rows = r.stats();
  ASSERT_EQ(rows.size(), 10u);
  EXPECT_NE(r.root_attribute("capture_counters").value_or("").find("stats_rows_not_offloaded=4"), std::string::npos)
      << r.root_attribute("capture_counters").value_or("");
  EXPECT_NE(stderr_text().find("4 stats rows of inputs not offloaded"), std::string::npos) << stderr_text();
  auto exp = expected();
  for (const auto& s : rows) {
    EXPECT_NE(s.layer, "relu0");
    EXPECT_NE(s.layer, "add0");
    auto& b = exp[{s.layer, s.iteration}];
    ASSERT_EQ(static_cast<std::int64_t>(b.size()), s.elements * 4) << s.layer;
    std::int64_t nz = 0, runs = 0;
    bool prev_zero = false;
    for (std::int64_t i = 0; i < s.elements; ++i) {
      std::uint32_t v;
      std::memcpy(&v, b.data() + i * 4, 4);
      bool z = v == 0;
      nz += !z;
      runs += z && !prev_zero;
      prev_zero = z;
    }
    EXPECT_EQ(s.nonzeros, nz) << s.layer;
    EXPECT_EQ(s.zero_runs, runs) << s.layer;
    EXPECT_EQ(s.dtype, "float32");
    EXPECT_EQ(s.role, "x");
  }
}

TEST_F(Capture, BackendGraphApiLikePyTorch) {
  ASSERT_EQ(capture("--roles x,y", CDMA_BACKEND_NET, "--iterations 3"), 0) << stderr_text();
  TraceReader r(trace());
  int xs = 0, ys = 0;
  for (const auto& t : r.tensors()) {
    EXPECT_EQ(t.op, "conv");
    EXPECT_EQ(t.phase, "forward");
    EXPECT_EQ(t.dims, (std::vector<std::int64_t>{2, t.layer == "conv0" && t.role == "x" ? 3 : 4, 8, 8}));
    xs += t.role == "x";
    ys += t.role == "y";
  }
  EXPECT_EQ(xs, 6);
  EXPECT_EQ(ys, 6);  // conv0's Y and the fused graph's ReLU output (its conv output is virtual)
  EXPECT_EQ(check_x_tensors(r), 6);
  auto tl = r.timeline();
  ASSERT_EQ(tl.size(), 15u);
  for (const auto& row : tl) {
    EXPECT_GT(row.device_ns, 0);
    if (row.phase == 1) {
      EXPECT_GE(row.layer_index, 0) << "call " << row.call;
    }
  }
}

TEST_F(Capture, BackendChannelsLast) {
  ASSERT_EQ(capture("", CDMA_BACKEND_NET, "--iterations 2 --nhwc"), 0) << stderr_text();
  TraceReader r(trace());
  ASSERT_EQ(r.tensors().size(), 4u);
  EXPECT_EQ(r.tensors()[0].layout, cdma::formats::Layout::NHWC);
  EXPECT_EQ(r.tensors()[0].dims, (std::vector<std::int64_t>{2, 8, 8, 3}));
  EXPECT_EQ(check_x_tensors(r), 4);
}

TEST_F(Capture, KeepSpoolThenConvertAndSeveralProcesses) {
  ASSERT_EQ(sh(kCdma + " capture --keep-spool --spool-dir " + (dir_ / "sp").string() + " -o " + trace().string() +
               " -- sh -c '" + CDMA_LEGACY_NET + " --iterations 1 && " + CDMA_LEGACY_NET + " --iterations 2'"),
            0)
      << stderr_text();
  std::vector<fs::path> traces;
  for (const auto& e : fs::directory_iterator(dir_))
    if (e.path().extension() == ".h5") traces.push_back(e.path());
  ASSERT_EQ(traces.size(), 2u);  // one trace per process, trace.<pid>.h5
  std::set<std::size_t> counts;
  for (const auto& t : traces) counts.insert(TraceReader(t).tensors().size());
  EXPECT_EQ(counts, (std::set<std::size_t>{7, 14}));
  // The spools convert again, to the same content.
  ASSERT_EQ(sh(kCdma + " capture --convert " + (dir_ / "sp").string() + " -o " + (dir_ / "again.h5").string()), 0)
      << stderr_text();
  std::set<std::size_t> again;
  for (const auto& e : fs::directory_iterator(dir_))
    if (e.path().filename().string().rfind("again.", 0) == 0) again.insert(TraceReader(e.path()).tensors().size());
  EXPECT_EQ(again, counts);
}

#ifdef CDMA_REAL_CUDNN_PROBE
TEST_F(Capture, RealCudnnStatusesUnchangedAndCallsBoundToTheInterposer) {
  const std::string probe = CDMA_REAL_CUDNN_PROBE;
  const std::string env = "CDMA_CAPTURE_DIR=" + (dir_ / "sp").string() + " ";
  ASSERT_EQ(sh(probe + " > " + (dir_ / "plain.txt").string()), 0);
  ASSERT_EQ(sh(env + "LD_PRELOAD=" + CDMA_CAPTURE_LIB + " " + probe + " > " + (dir_ / "preloaded.txt").string()), 0)
      << stderr_text();
  auto slurp = [&](const char* name) {
    std::ifstream f(dir_ / name);
    return std::string(std::istreambuf_iterator<char>(f), {});
  };
  EXPECT_NE(slurp("plain.txt").find("finalize tensor 0"), std::string::npos) << slurp("plain.txt");
  EXPECT_EQ(slurp("plain.txt"), slurp("preloaded.txt"));
  ASSERT_EQ(sh(env + "LD_DEBUG=bindings LD_PRELOAD=" + CDMA_CAPTURE_LIB + " " + probe + " > /dev/null"), 0);
  std::string b = stderr_text();
  for (const char* fn : {"cudnnBackendSetAttribute", "cudnnBackendFinalize", "cudnnConvolutionForward"}) {
    std::string want = std::string("to ") + CDMA_CAPTURE_LIB;
    bool bound = false;
    for (std::size_t p = b.find(std::string("`") + fn + "'"); p != std::string::npos;
         p = b.find(std::string("`") + fn + "'", p + 1)) {
      std::size_t line = b.rfind('\n', p);
      std::string l = b.substr(line + 1, p - line);
      bound = bound || (l.find("capture_real_cudnn_probe") != std::string::npos && l.find(want) != std::string::npos);
    }
    EXPECT_TRUE(bound) << fn << " is not bound to the interposer";
  }
}
#endif

}  // namespace
