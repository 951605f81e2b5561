// `cdma replay` end to end: outputs, the independent event check, bad input, sample traces.
#include <cdma/formats/trace.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sys/wait.h>
#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <tuple>
#include <vector>

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string cdma() {
  if (const char* b = std::getenv("CDMA_TEST_CDMA_BIN"); b && *b) return b;  // a binary built elsewhere
  return std::string(CDMA_BINARY_DIR) + "/bin/cdma";
}

struct Run {
  int code = -1;
  std::string out;
};

// Runs a shell command line; captures stdout and stderr together.
Run sh(const std::string& cmd) {
  Run r;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  int st = ::pclose(p);
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

Run replay(const std::string& args) { return sh(cdma() + " replay " + args); }
Run analyze(const std::string& args) { return sh(cdma() + " analyze " + args); }
std::string cdma_bin() { return cdma(); }

fs::path tmp(const std::string& name) {
  return fs::temp_directory_path() / ("cdma_hwcli_" + std::to_string(::getpid()) + "_" + name);
}

json load(const fs::path& p) {
  std::ifstream in(p);
  return json::parse(in);
}

std::string checker() { return std::string(CDMA_SOURCE_DIR) + "/tests/hwmodel/check_replay_events.py"; }

class HwReplayCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(cdma())) GTEST_SKIP() << "cdma binary not built: " << cdma();
  }
};

}  // namespace

TEST_F(HwReplayCli, ZooReplayWritesConsistentJsonSvgAndEvents) {
  auto j = tmp("r.json"), s = tmp("r.svg"), e = tmp("e.json");
  auto r = replay("--net alexnet --batch 64 --ratio 2.6 --json " + j.string() + " --svg " + s.string() + " --events " +
                  e.string());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("cDMA-zvc-mc"), std::string::npos) << r.out;
  auto doc = load(j);
  EXPECT_EQ(doc["schema"], "cdma-replay");
  EXPECT_EQ(doc["schema_version"], 1);
  const auto& run = doc["runs"][0];
  EXPECT_EQ(run["network"], "alexnet");
  EXPECT_EQ(run["batch"], 64);
  const auto& t = run["totals"];
  ASSERT_EQ(t.size(), 5u);  // oracle, vDNN, dma, mc, sm
  EXPECT_EQ(t[0]["config"], "oracle");
  EXPECT_EQ(t[1]["config"], "vDNN");
  const double oracle = t[0]["time_s"], vdnn = t[1]["time_s"];
  EXPECT_GE(vdnn, oracle);
  for (size_t k = 2; k < t.size(); ++k) {
    const double c = t[k]["time_s"];
    EXPECT_NEAR(t[k]["speedup_vs_vdnn"].get<double>(), vdnn / c - 1, 1e-9);
    EXPECT_NEAR(t[k]["overhead_vs_oracle"].get<double>(), c / oracle - 1, 1e-9);
    EXPECT_LE(c, vdnn);
    EXPECT_GE(c, oracle);
  }
  // Per-layer rows add up to the totals.
  double sum = 0;
  for (const auto& l : run["layers"])
    sum += l["configs"]["vDNN"]["fwd_s"].get<double>() + l["configs"]["vDNN"]["bwd_s"].get<double>();
  EXPECT_NEAR(sum, vdnn, 1e-9 * vdnn);
  std::ifstream svg(s);
  std::stringstream ss;
  ss << svg.rdbuf();
  EXPECT_EQ(ss.str().rfind("<svg", 0), 0u);
  EXPECT_NE(ss.str().find("</svg>"), std::string::npos);
  auto c = sh(std::string(CDMA_H5PY_PYTHON) + " " + checker() + " " + e.string());
  EXPECT_EQ(c.code, 0) << c.out;
  fs::remove(j);
  fs::remove(s);
  fs::remove(e);
}

// The trace-event format's required fields (Chrome "Trace Event Format": name, ph, ts, pid, tid;
// dur for complete events; metadata events naming processes and threads), and what cdma promises
// on top: one process per configuration, tracks compute / offload / prefetch, one op at a time per
// track, and the vDNN process ending at the replay's total time.
TEST_F(HwReplayCli, ChromeTraceEventsAreValidTraceEventJson) {
  auto j = tmp("c.json"), e = tmp("c-events.json");
  auto r = replay("--net alexnet --batch 64 --ratio 2.6 -q --json " + j.string() + " --events " + e.string() +
                  " --events-format chrome");
  ASSERT_EQ(r.code, 0) << r.out;
  const json doc = load(e), rep = load(j);
  ASSERT_TRUE(doc.is_object() && doc.contains("traceEvents") && doc["traceEvents"].is_array());
  std::map<int, std::string> process;
  std::map<std::pair<int, int>, std::string> thread;
  std::map<std::pair<int, int>, std::vector<std::pair<double, double>>> spans;
  for (const auto& ev : doc["traceEvents"]) {
    ASSERT_TRUE(ev.is_object());
    ASSERT_TRUE(ev.contains("name") && ev["name"].is_string()) << ev;
    ASSERT_TRUE(ev.contains("ph") && ev["ph"].is_string()) << ev;
    ASSERT_TRUE(ev.contains("pid") && ev["pid"].is_number_integer()) << ev;
    ASSERT_TRUE(ev.contains("tid") && ev["tid"].is_number_integer()) << ev;
    const std::string ph = ev["ph"];
    const int pid = ev["pid"], tid = ev["tid"];
    if (ph == "M") {
      ASSERT_TRUE(ev.contains("args") && ev["args"].is_object()) << ev;
      if (ev["name"] == "process_name") process[pid] = ev["args"]["name"];
      if (ev["name"] == "thread_name") thread[{pid, tid}] = ev["args"]["name"];
      continue;
    }
    ASSERT_EQ(ph, "X") << ev;
    ASSERT_TRUE(ev.contains("ts") && ev["ts"].is_number() && ev.contains("dur") && ev["dur"].is_number()) << ev;
    EXPECT_GE(ev["ts"].get<double>(), 0);
    EXPECT_GE(ev["dur"].get<double>(), 0);
    EXPECT_TRUE(ev.contains("cat") && ev["cat"].is_string());
    EXPECT_TRUE(thread.count({pid, tid})) << "event on an unnamed track: " << ev;
    spans[{pid, tid}].push_back({ev["ts"].get<double>(), ev["ts"].get<double>() + ev["dur"].get<double>()});
  }
  ASSERT_EQ(process.size(), 5u);  // oracle, vDNN, dma, mc, sm
  EXPECT_EQ(process[1], "alexnet oracle");
  EXPECT_EQ(process[2], "alexnet vDNN");
  for (int pid = 1; pid <= 5; ++pid) {
    EXPECT_EQ(thread[std::make_pair(pid, 1)], "compute");
    EXPECT_EQ(thread[std::make_pair(pid, 2)], "offload");
    EXPECT_EQ(thread[std::make_pair(pid, 3)], "prefetch");
  }
  EXPECT_TRUE(spans[std::make_pair(1, 2)].empty());  // the oracle moves nothing
  EXPECT_FALSE(spans[std::make_pair(2, 2)].empty());
  EXPECT_FALSE(spans[std::make_pair(2, 3)].empty());
  double vdnn_end = 0;
  for (auto& [key, v] : spans) {
    std::sort(v.begin(), v.end());
    for (std::size_t i = 1; i < v.size(); ++i) EXPECT_LE(v[i - 1].second, v[i].first + 1e-6) << key.first;
    if (key.first == 2) vdnn_end = std::max(vdnn_end, v.back().second);
  }
  const double total_us = rep["runs"][0]["totals"][1]["time_s"].get<double>() * 1e6;
  EXPECT_NEAR(vdnn_end, total_us, 1e-6 * total_us);
  // --events-format needs --events, and takes only the two names.
  EXPECT_EQ(replay("--net alexnet --ratio 2 --events-format chrome").code, 2);
  EXPECT_EQ(replay("--net alexnet --ratio 2 --events " + e.string() + " --events-format perfetto").code, 2);
  fs::remove(j);
  fs::remove(e);
}

TEST_F(HwReplayCli, EventCheckerCatchesATamperedTrace) {
  auto e = tmp("t.json");
  ASSERT_EQ(replay("--net vgg16 --batch 8 --density 0.3 -q --events " + e.string()).code, 0);
  auto doc = load(e);
  // Move vDNN's last backward op to start at 0: it now overlaps and precedes its input's return.
  for (auto& rep : doc["replays"])
    if (rep["config"] == "vDNN")
      for (auto& ev : rep["events"])
        if (ev["kind"] == "backward" && ev["layer"] == 3) ev["start_ps"] = 0;
  std::ofstream(e) << doc.dump();
  auto c = sh(std::string(CDMA_H5PY_PYTHON) + " " + checker() + " " + e.string());
  EXPECT_EQ(c.code, 1) << c.out;
  fs::remove(e);
}

TEST_F(HwReplayCli, PaperNetworksSummaryAndSweep) {
  auto j = tmp("p.json");
  auto r = replay("--net paper --batch 32 --ratio 2.6 --engine mc --sweep link --sweep-values 8,16,1e6 --json " +
                  j.string());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("average"), std::string::npos);
  auto doc = load(j);
  EXPECT_EQ(doc["runs"].size(), 6u);
  EXPECT_EQ(doc["summary"].size(), 6u);
  ASSERT_EQ(doc["sweeps"].size(), 6u);
  for (const auto& sw : doc["sweeps"]) {
    const auto& rows = sw["rows"];
    ASSERT_EQ(rows.size(), 3u);
    // Faster link never slower; at 1e6 GB/s vDNN is within latency of the oracle.
    EXPECT_GE(rows[0]["vdnn_s"].get<double>(), rows[1]["vdnn_s"].get<double>());
    EXPECT_NEAR(rows[2]["vdnn_s"].get<double>(), rows[2]["oracle_s"].get<double>(),
                0.001 * rows[2]["oracle_s"].get<double>());
  }
  fs::remove(j);
}

TEST_F(HwReplayCli, BadInputGivesAClearErrorAndNonZeroExit) {
  // A bad command line exits 2 and names what is wrong; a bad file exits 1.
  const std::vector<std::tuple<std::string, int, std::string>> cases = {
      {"--net lenet --ratio 2", 2, "unknown network 'lenet'"},
      {"--net vgg16", 2, "--ratio R"},  // no ratio source: never a silent "no compression"
      {"--net vgg16", 2, "--ratios FILE"},
      {"--net vgg16", 2, "--density D"},
      {"--net vgg16 --ratio 2 --density 0.3", 2, "excludes"},
      {"--net vgg16 --ratio 2 --sweep ratio", 2, "one ratio source"},
      {"--net vgg16 --ratio 2 --fill average", 2, "--fill applies to --ratios only"},
      {"--net vgg16 --ratio 2 --gpu rtx-9090", 2, "rtx-9090"},
      {"--net vgg16 --ratio 2 --link pcie6", 2, "pcie6"},
      {"--net vgg16 --ratio 2 --engine l2:zvc", 2, "l2"},
      {"--net vgg16 --ratio 2 --engine foo", 2, "foo"},
      {"--net vgg16 --ratio 2 --engine mc:nosuchcodec", 2, "nosuchcodec"},
      {"--net vgg16 --ratio -2", 2, "--ratio"},
      {"--net vgg16 --ratio nan", 2, "--ratio"},
      {"--net vgg16 --density 2", 2, "--density"},
      {"--net vgg16 --ratio 2 --link-eff 2", 2, "--link-eff"},
      {"--net vgg16 --ratio 2 --link-eff 0", 2, "--link-eff"},
      {"--net vgg16 --ratio 2 --comp-gbps -1", 2, "--comp-gbps"},
      {"--net vgg16 --ratio 2 --latency-us 1e300", 2, "--latency-us"},
      {"--net vgg16 --ratio 2 --bwd-factor 1e8", 2, "--bwd-factor"},
      {"--net vgg16 --ratio 2 --precision fp8", 2, "fp8"},
      {"--net vgg16 --ratio 2 --sweep-values 1,2", 2, "--sweep"},
      {"--net vgg16 --ratio 2 --presets /nonexistent", 1, "/nonexistent"},
      {"", 2, "give a trace or --net"},
      {"--bogus-flag", 2, "bogus"},
  };
  for (const auto& [args, code, words] : cases) {
    auto r = replay(args);
    EXPECT_EQ(r.code, code) << args << "\n" << r.out;
    EXPECT_NE(r.out.find(words), std::string::npos) << args << ": no '" << words << "' in\n" << r.out;
  }
  EXPECT_EQ(replay("--help").code, 0);
  EXPECT_NE(replay("--help").out.find("--link-eff"), std::string::npos);
  auto r = replay("--help");
  EXPECT_NE(r.out.find("(0, 1]"), std::string::npos) << "ranges are stated in --help\n" << r.out;
  auto bad = tmp("bad.h5");
  std::ofstream(bad) << "not a trace";
  r = replay(bad.string());
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("cdma replay:"), std::string::npos) << r.out;
  fs::remove(bad);
}

TEST_F(HwReplayCli, SampleTracesInDataReplayEndToEnd) {
  int n = 0;
  for (const auto& f : fs::directory_iterator(fs::path(CDMA_SOURCE_DIR) / "data")) {
    if (f.path().extension() != ".h5") continue;
    ++n;
    auto j = tmp("s.json");
    auto r = replay(f.path().string() + " --json " + j.string());
    ASSERT_EQ(r.code, 0) << f.path() << "\n" << r.out;
    auto doc = load(j);
    const auto& run = doc["runs"][0];
    EXPECT_GT(run["layers"].size(), 1u);
    EXPECT_GT(run["totals"][1]["offloaded_bytes"].get<double>(), 0);
    // The zoo replay with this trace's measured ratios works too.
    r = replay("--net vgg16 --batch 16 --ratios " + f.path().string() + " -q");
    EXPECT_EQ(r.code, 0) << r.out;
    fs::remove(j);
  }
  if (n == 0) GTEST_SKIP() << "no sample traces in data/ yet";
}

namespace {
// A small trace as `cdma train` writes one: 4 layers x 2 iterations, forward x tensors with ReLU-like
// zeros, forward and backward /timeline rows.
fs::path synthetic_trace(const std::string& source) {
  namespace fm = cdma::formats;
  auto p = tmp("synthetic.h5");
  fm::TraceAttrs a;
  a.producer = "hwmodel-test";
  a.source = source;
  a.model = "synthetic-cnn";
  fm::TraceWriter w(p, a, {.overwrite = true});
  const char* names[] = {"conv1", "relu1", "conv2", "fc"};
  const char* ops[] = {"conv", "relu", "conv", "linear"};
  const std::vector<std::int64_t> dims[] = {{16, 1, 28, 28}, {16, 8, 28, 28}, {16, 8, 28, 28}, {16, 6272}};
  for (std::int64_t it = 0; it < 2; ++it)
    for (int i = 0; i < 4; ++i) {
      fm::TensorMeta m;
      m.iteration = it;
      m.layer = names[i];
      m.layer_index = i;
      m.op = ops[i];
      m.layout = i == 3 ? fm::Layout::NC : fm::Layout::NCHW;
      m.dims = dims[i];
      std::vector<float> v(static_cast<size_t>(m.elements()));
      for (size_t k = 0; k < v.size(); ++k) v[k] = (i >= 2 && k % 3 != 0) ? 0.0f : 0.5f + static_cast<float>(k % 7);
      std::vector<std::byte> b(v.size() * 4);
      std::memcpy(b.data(), v.data(), b.size());
      w.append_tensor(m, b);
      for (std::int8_t ph = 0; ph < 2; ++ph) {
        fm::TimelineRow r;
        r.iteration = it;
        r.layer_index = i;
        r.phase = ph;
        r.op = ops[i];
        r.layer = names[i];
        r.start_ns = 0;
        r.end_ns = 1'000'000 * (i + 1) * (ph + 1);
        w.append_timeline(r);
      }
    }
  w.close();
  return p;
}
}  // namespace

// Filtering an analysis can never raise a replayed speedup by giving unmeasured layers a ratio: the
// layers a filtered analysis leaves out are replayed uncompressed and listed.
TEST_F(HwReplayCli, FilteredAnalysisLeavesUnmeasuredLayersUncompressed) {
  auto t = synthetic_trace("synthetic");
  auto full = tmp("full.json"), conv = tmp("conv.json"), j = tmp("r.json");
  ASSERT_EQ(analyze(t.string() + " -q --codecs zvc --json " + full.string()).code, 0);
  ASSERT_EQ(analyze(t.string() + " -q --codecs zvc --ops conv --json " + conv.string()).code, 0);
  auto speedup = [&](const fs::path& ratios, nlohmann::json* run) {
    auto r =
        replay(t.string() + " --compute trace --engine mc:zvc --ratios " + ratios.string() + " --json " + j.string());
    EXPECT_EQ(r.code, 0) << r.out;
    *run = load(j)["runs"][0];
    return (*run)["totals"][2]["speedup_vs_vdnn"].get<double>();
  };
  nlohmann::json rf, rc;
  const double s_full = speedup(full, &rf), s_conv = speedup(conv, &rc);
  EXPECT_TRUE(rf["unmeasured"]["layers"].empty()) << rf["unmeasured"];
  // relu1 and fc were filtered out of the analysis: listed, uncompressed, with their bytes.
  EXPECT_EQ(rc["unmeasured"]["layers"], nlohmann::json::array({"relu1", "fc"}));
  EXPECT_EQ(rc["unmeasured"]["bytes_per_iteration"], 16 * 8 * 28 * 28 * 4 + 16 * 6272 * 4);
  EXPECT_TRUE(rc["layers"][3]["ratio"]["zvc"].is_null());
  EXPECT_DOUBLE_EQ(rc["layers"][2]["ratio"]["zvc"].get<double>(), rf["layers"][2]["ratio"]["zvc"].get<double>());
  // fc's input is two-thirds zeros, so leaving it uncompressed can only make cDMA slower.
  EXPECT_LT(s_conv, s_full);
  for (const auto& p : {full, conv, j}) fs::remove(p);
  fs::remove(t);
}

TEST_F(HwReplayCli, SyntheticTraceReplaysWithMeasuredOrGivenRatios) {
  auto t = synthetic_trace("synthetic");
  auto j = tmp("t.json");
  auto r = replay(t.string() + " --compute trace --engine mc:zvc --engine dma:lz4 --json " + j.string());
  ASSERT_EQ(r.code, 0) << r.out;
  auto doc = load(j);
  const auto& run = doc["runs"][0];
  EXPECT_EQ(run["network"], "synthetic-cnn");
  ASSERT_EQ(run["layers"].size(), 4u);
  // Measured times: forward of layer i is (i+1) ms, backward 2 (i+1) ms; oracle = 30 ms.
  EXPECT_NEAR(run["layers"][2]["fwd_s"].get<double>(), 3e-3, 1e-12);
  EXPECT_NEAR(run["totals"][0]["time_s"].get<double>(), 30e-3, 1e-12);
  // conv2's input is two-thirds zeros: its measured ZVC ratio is above 2; the input layer's X is never offloaded.
  EXPECT_GT(run["layers"][2]["ratio"]["zvc"].get<double>(), 2.0);
  EXPECT_EQ(run["layers"][0]["configs"]["vDNN"]["offload_bytes"], 0);
  EXPECT_EQ(run["totals"][1]["offloaded_bytes"], 16 * 8 * 28 * 28 * 4 * 2 + 16 * 6272 * 4);
  EXPECT_TRUE(run["layers"][3]["ratio"].contains("lz4"));

  // Roofline compute times on a GPU preset instead of the CPU's; a given ratio instead of measured ones.
  r = replay(t.string() + " --compute roofline --gpu h100 --link pcie5 --ratio 4 --json " + j.string());
  ASSERT_EQ(r.code, 0) << r.out;
  doc = load(j);
  EXPECT_LT(doc["runs"][0]["totals"][0]["time_s"].get<double>(), 1e-3);
  EXPECT_DOUBLE_EQ(doc["runs"][0]["layers"][2]["ratio"]["zvc"].get<double>(), 4.0);

  // Ratios from an analysis JSON, matched by layer name.
  auto a = tmp("analysis.json");
  std::ofstream(a) << R"({"schema": "cdma-analysis", "schema_version": 1,
    "layer": [{"trace": 0, "layer": "conv2", "layer_index": 2, "role": "x", "layout": "stored", "dtype": "stored",
               "bytes": 802816, "iterations": 2, "codecs": {"zvc": {"bytes": 1, "ratio": 7.5}}}],
    "network": [{"trace": 0, "layout": "stored", "dtype": "stored", "codecs": {"zvc": {"bytes": 1, "ratio": 1.5}}}]})";
  r = replay(t.string() + " --compute trace --ratios " + a.string() + " --json " + j.string());
  ASSERT_EQ(r.code, 0) << r.out;
  doc = load(j);
  EXPECT_DOUBLE_EQ(doc["runs"][0]["layers"][2]["ratio"]["zvc"].get<double>(), 7.5);
  // fc has no row: uncompressed, and listed with its bytes (no ratio is invented for it).
  EXPECT_TRUE(doc["runs"][0]["layers"][3]["ratio"]["zvc"].is_null()) << doc["runs"][0]["layers"][3];
  EXPECT_EQ(doc["runs"][0]["unmeasured"]["layers"], nlohmann::json::array({"relu1", "fc"}));
  EXPECT_EQ(doc["runs"][0]["unmeasured"]["fill"], "none");
  EXPECT_EQ(doc["runs"][0]["layers"][2]["configs"]["vDNN"]["offload_bytes"], 401408);
  EXPECT_NE(r.out.find("unmeasured: 2 offloaded tensors"), std::string::npos) << r.out;
  // Only when asked, the unmeasured layers take the table's network ratio.
  r = replay(t.string() + " --compute trace --ratios " + a.string() + " --fill average --json " + j.string());
  ASSERT_EQ(r.code, 0) << r.out;
  doc = load(j);
  EXPECT_DOUBLE_EQ(doc["runs"][0]["layers"][3]["ratio"]["zvc"].get<double>(), 1.5);
  EXPECT_EQ(doc["runs"][0]["unmeasured"]["fill"], "average");
  fs::remove(a);
  fs::remove(j);
  fs::remove(t);
}

// A trace without /timeline (cdma synth) replays on the roofline and says so; the report replays
// it, and a zoo network with its ratios, with no temporary path in the page.
TEST_F(HwReplayCli, TraceWithoutTimelineFallsBackToTheRooflineAndSaysSo) {
  auto t = tmp("synth.h5"), j = tmp("synth.json"), html = tmp("synth.html");
  ASSERT_EQ(sh(cdma_bin() + " synth -o " + t.string() + " --layers 3 --iterations 2").code, 0);
  auto r = replay(t.string() + " --json " + j.string() + " -q");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(load(j)["runs"][0]["compute"].get<std::string>().find("the trace has no /timeline"), std::string::npos);
  r = sh(cdma_bin() + " report " + t.string() + " --zoo-net vgg16 --layouts stored --dtypes stored -o " +
         html.string());
  ASSERT_EQ(r.code, 0) << r.out;
  std::ifstream in(html);
  std::string page((std::istreambuf_iterator<char>(in)), {});
  EXPECT_NE(page.find("vgg16 from the zoo (full size, batch 256) with the ratios measured on " + t.filename().string()),
            std::string::npos);
  EXPECT_NE(page.find("Not measured:"), std::string::npos) << "vgg16's layers have no counterpart in a synth trace";
  EXPECT_EQ(page.find("cdma-report-"), std::string::npos) << "a temporary path leaked into the page";
  EXPECT_EQ(sh(cdma_bin() + " report " + t.string() + " --zoo-net lenet -o " + html.string()).code, 2);
  for (const auto& p : {t, j, html}) fs::remove(p);
}

// Paths come from the command line and may hold any bytes: the JSON escapes what is not UTF-8
// instead of failing (issue 13, class 1).
TEST_F(HwReplayCli, PathsThatAreNotUtf8AreEscapedInTheJson) {
  const fs::path src = fs::path(CDMA_SOURCE_DIR) / "data" / "vgg-fmnist.h5";
  const fs::path bad = tmp("bad\xff\xfe.h5"), j = tmp("bad.json");
  fs::copy_file(src, bad, fs::copy_options::overwrite_existing);
  auto r = replay("--net vgg16 --ratios '" + bad.string() + "' -q --json " + j.string());
  ASSERT_EQ(r.code, 0) << r.out;
  json doc = load(j);  // parses: valid UTF-8
  const std::string sources = doc["runs"][0]["ratio_sources"][0].get<std::string>();
  EXPECT_EQ(sources.find('\xff'), std::string::npos) << sources;
  EXPECT_NE(sources.find("bad"), std::string::npos) << sources;
  fs::remove(bad);
  fs::remove(j);
}

// cdma report: an unknown GPU or link preset is a command-line error (exit 2) found before the
// analysis runs: with a trace that is not HDF5 the preset is what is reported, not the trace.
TEST_F(HwReplayCli, ReportRefusesAnUnknownPresetBeforeAnalysing) {
  const fs::path page = tmp("bad-preset.html"), junk = tmp("junk.h5");
  std::ofstream(junk) << "not an HDF5 file";
  for (const std::string flag : {"--gpu rtx-nope", "--link pcie9"}) {
    auto r = sh(cdma_bin() + " report " + junk.string() + " " + flag + " -o " + page.string());
    EXPECT_EQ(r.code, 2) << flag << ": " << r.out;
    EXPECT_NE(r.out.find("unknown"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find(junk.filename().string()), std::string::npos) << "the trace was read first: " << r.out;
    EXPECT_FALSE(fs::exists(page));
  }
  auto r = sh(cdma_bin() + " report " + junk.string() + " -o " + page.string());  // good presets: the trace fails
  EXPECT_EQ(r.code, 1) << r.out;
  fs::remove(junk);
}
