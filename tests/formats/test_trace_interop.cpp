// Cross-checks with a trusted other side: h5py reads what cdma writes; cdma reads what h5py writes.
#include "test_util.hpp"
#include "trace_fixture.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

using namespace cdma;
using namespace cdma::formats;
using nlohmann::json;

namespace {

std::string hex(const std::vector<std::byte>& v) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (auto b : v) {
    auto x = std::to_integer<unsigned>(b);
    s += d[x >> 4];
    s += d[x & 15];
  }
  return s;
}

std::string script(const char* name) { return std::string(CDMA_TEST_FORMATS_DIR) + "/" + name; }

TEST(Interop, H5pyReadsWhatCdmaWrites) {
  test::TempDir dir;
  auto path = dir / "cdma.h5";
  json exp;
  exp["root"] = {{"format", "cdma-trace"}, {"format_version", 1}, {"producer", "cdma-test 0"},
                 {"source", "synthetic"},  {"complete", 1},       {"model", "unit"}};
  exp["tensors"] = json::array();
  {
    WriterOptions o;
    o.deflate_level = 4;  // h5py must decode shuffle+deflate chunks too
    TraceWriter w(path, test::test_attrs(), o);
    int i = 0;
    for (auto d : {DType::f32, DType::f16, DType::bf16, DType::i8, DType::u8}) {
      for (auto l : {Layout::NCHW, Layout::NC}) {
        auto m = test::make_meta(d, l, i, i);
        // offload: absent, 1 and 0 in turn (absent means the format's default rule).
        if (i % 3 == 1) m.offload = true;
        if (i % 3 == 2) m.offload = false;
        auto bytes = test::random_bytes(static_cast<std::size_t>(m.bytes()), static_cast<unsigned>(40 + i));
        if (d == DType::f16) {  // keep float16 values finite-or-not but never signalling-NaN ambiguous
          for (std::size_t k = 1; k < bytes.size(); k += 2) bytes[k] &= std::byte{0x7b};
        }
        w.append_tensor(m, bytes);
        char name[16];
        std::snprintf(name, sizeof name, "%010d", i);
        exp["tensors"].push_back({{"name", name},
                                  {"dims", m.dims},
                                  {"dtype", to_string(d)},
                                  {"layout", to_string(l)},
                                  {"layer", m.layer},
                                  {"op", m.op},
                                  {"role", "x"},
                                  {"phase", "forward"},
                                  {"iteration", m.iteration},
                                  {"layer_index", m.layer_index},
                                  {"hex", hex(bytes)},
                                  {"offload", m.offload ? json(*m.offload ? 1 : 0) : json(nullptr)}});
        ++i;
      }
    }
    TimelineRow r;
    r.iteration = 3;
    r.call = 7;
    r.layer_index = 2;
    r.phase = 1;
    r.op = "pool";
    r.layer = "pool1";
    r.start_ns = 10;
    r.end_ns = 20;
    r.device_ns = 5;
    w.append_timeline(r);
    exp["timeline"] = json::array({json::array({3, 7, 2, 1, "pool", "pool1", 10, 20, 5})});
    StatsRow s;
    s.iteration = 1;
    s.call = 2;
    s.layer_index = 3;
    s.layer = "relu";
    s.op = "relu";
    s.role = "x";
    s.dtype = "float16";
    s.elements = 10;
    s.nonzeros = 4;
    s.zero_runs = 2;
    w.append_stats(s);
    exp["stats"] = json::array({json::array({1, 2, 3, "relu", "relu", "x", "float16", 10, 4, 2})});
    w.close();
  }
  auto exp_path = dir / "expected.json";
  std::ofstream(exp_path) << exp.dump();
  auto res = test::run_command(test::h5py_python() + " " + test::quote(script("h5py_check_trace.py")) + " " +
                               test::quote(path.string()) + " " + test::quote(exp_path.string()));
  EXPECT_EQ(res.exit_code, 0) << res.output;
}

TEST(Interop, CdmaReadsWhatH5pyWrites) {
  test::TempDir dir;
  auto path = dir / "h5py.h5";
  auto exp_path = dir / "expected.json";
  auto res = test::run_command(test::h5py_python() + " " + test::quote(script("h5py_write_trace.py")) + " " +
                               test::quote(path.string()) + " " + test::quote(exp_path.string()));
  ASSERT_EQ(res.exit_code, 0) << res.output;
  json exp = json::parse(std::ifstream(exp_path));

  TraceReader r(path);
  EXPECT_EQ(r.attrs().producer, "h5py-test 1.0");
  EXPECT_TRUE(r.attrs().complete);
  EXPECT_EQ(r.attrs().dropped_tensors.value_or(-1), 3);
  ASSERT_EQ(r.tensors().size(), exp["tensors"].size());
  for (std::size_t i = 0; i < r.tensors().size(); ++i) {
    const auto& t = r.tensors()[i];
    const auto& e = exp["tensors"][i];
    EXPECT_EQ(t.name, e["name"].get<std::string>());
    EXPECT_EQ(t.dims, e["dims"].get<std::vector<std::int64_t>>());
    EXPECT_EQ(to_string(t.dtype), e["dtype"].get<std::string>());
    EXPECT_EQ(to_string(t.layout), e["layout"].get<std::string>());
    EXPECT_EQ(t.layer, e["layer"].get<std::string>());
    EXPECT_EQ(t.layer_index, e["layer_index"].get<int>());
    EXPECT_EQ(t.op, e["op"].get<std::string>());
    EXPECT_EQ(t.iteration, e["iteration"].get<std::int64_t>());
    EXPECT_EQ(t.call.value_or(-1), e["call"].get<std::int64_t>());
    EXPECT_EQ(hex(r.read(t)), e["hex"].get<std::string>()) << t.name;
    if (e["offload"].is_null()) {
      EXPECT_FALSE(t.offload.has_value()) << t.name;
    } else {
      ASSERT_TRUE(t.offload.has_value()) << t.name;
      EXPECT_EQ(*t.offload, e["offload"].get<int>() == 1) << t.name;
    }
    EXPECT_EQ(t.offloaded(), e["offloaded"].get<bool>()) << t.name;
  }
  auto tl = r.timeline();
  ASSERT_EQ(tl.size(), 2u);
  EXPECT_EQ(tl[0].device_ns, 120);
  EXPECT_EQ(tl[1].phase, 1);
  EXPECT_EQ(tl[1].layer, "conv1");
  EXPECT_EQ(tl[1].end_ns, 500);
  auto st = r.stats();
  ASSERT_EQ(st.size(), 1u);
  EXPECT_EQ(st[0].zero_runs, 77);
  EXPECT_EQ(st[0].dtype, "float32");

  auto info = test::run_command(test::cdma_binary() + " info --json " + test::quote(path.string()));
  ASSERT_EQ(info.exit_code, 0) << info.output;
  auto j = json::parse(info.output);
  EXPECT_EQ(j[0]["tensors"].get<int>(), 5);
  // relu1 says offload = 0 and pool1 is a backward-phase x without the attribute: 3 offloaded.
  EXPECT_EQ(j[0]["offloaded"]["tensors"].get<int>(), 3);
  EXPECT_EQ(j[0]["offloaded"]["from"].get<std::string>(), "offload attributes");
  EXPECT_EQ(j[0]["producer"].get<std::string>(), "h5py-test 1.0");
  EXPECT_EQ(j[0]["timeline_rows"].get<int>(), 2);
}

}  // namespace
