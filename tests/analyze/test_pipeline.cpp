// The threaded pipeline: same results as the pure function, same JSON for any thread count,
// byte-weighted aggregation, filters, stop flag, --keep-going.
#include <cdma/analyze/output.hpp>
#include <cdma/analyze/pipeline.hpp>
#include <cdma/formats/synth.hpp>
#include <cdma/formats/trace.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "test_util.hpp"

#include <map>
#include <sstream>

namespace cdma::analyze {
namespace {

// A synthetic trace: `iters` iterations x 4 layers, layer l at density 0.6 / (l + 1), mixed shapes.
void write_trace(const std::filesystem::path& p, int iters) {
  formats::TraceAttrs a;
  a.producer = "test";
  a.source = "synthetic";
  a.model = "t";
  formats::TraceWriter w(p, a);
  for (int it = 0; it < iters; ++it)
    for (int l = 0; l < 4; ++l) {
      formats::SynthSpec s;
      s.dims = l == 3 ? std::vector<std::int64_t>{8, 100} : std::vector<std::int64_t>{2, 8 + 4 * l, 12, 10};
      s.density = 0.6 / (l + 1);
      s.clustering = formats::Clustering::mixed;
      s.seed = static_cast<std::uint64_t>(it * 10 + l);
      formats::TensorMeta m;
      m.iteration = it;
      m.layer = "layer" + std::to_string(l);
      m.layer_index = l;
      m.op = l == 3 ? "linear" : "conv";
      m.role = l == 2 ? "y" : "x";
      m.layout = l == 3 ? formats::Layout::NC : formats::Layout::NCHW;
      m.dims = s.dims;
      m.offload = true;  // all twelve in the offload set (role y too), so that every test sees them all
      w.append_tensor(m, formats::synth_activations(s));
    }
  w.close();
}

std::string json_of(const Analysis& a) {
  std::ostringstream os;
  write_json(os, a);
  return os.str();
}

class Pipeline : public ::testing::Test {
 protected:
  test::TempDir dir;
  std::filesystem::path trace = dir / "t.h5";
  void SetUp() override { write_trace(trace, 3); }
};

TEST_F(Pipeline, SameJsonWhateverTheThreadCount) {
  Options o;
  o.layouts = {"stored", "CHWN"};
  o.dtypes = {"stored", "bfloat16"};
  o.chunk_bytes = 4096;
  std::string first;
  for (unsigned t : {1u, 2u, 3u, 8u}) {
    o.threads = t;
    o.read = t != 3 ? ReadMode::mmap : ReadMode::hdf5;  // mapped in place or copied through HDF5: same numbers
    auto a = run_analysis({trace, trace}, o);
    EXPECT_EQ(a.stats.threads, t);
    EXPECT_EQ(a.stats.mapped_tensors, o.read == ReadMode::mmap ? 24u : 0u);
    auto j = json_of(a);
    if (first.empty()) first = j;
    EXPECT_EQ(j, first) << t << " threads";
  }
  auto j = nlohmann::json::parse(first);
  EXPECT_EQ(j["tensor"].size(), 2u * 12 * 4);
  EXPECT_EQ(j["network"].size(), 2u * 4);
}

TEST_F(Pipeline, RowsEqualThePureFunctionInCaptureOrder) {
  Options o;
  o.threads = 2;
  auto a = run_analysis({trace}, o);
  Options v = o;
  v.validate();
  TensorAnalyzer an(v);
  Workspace ws;
  formats::TraceReader r(trace);
  ASSERT_EQ(a.tensors.size(), r.tensors().size());
  for (std::size_t i = 0; i < a.tensors.size(); ++i) {
    const auto& meta = r.tensors()[i];
    EXPECT_EQ(a.tensors[i].info.name, meta.name);
    auto want = an.analyze(r.read(meta), meta, ws, meta.name);
    ASSERT_EQ(a.tensors[i].variants.size(), 1u);
    for (std::size_t c = 0; c < want[0].codecs.size(); ++c)
      EXPECT_EQ(a.tensors[i].variants[0].codecs[c].bytes, want[0].codecs[c].bytes);
    EXPECT_EQ(a.tensors[i].variants[0].nonzeros, want[0].nonzeros);
  }
}

TEST_F(Pipeline, AggregatesAreByteWeighted) {
  auto a = run_analysis({trace}, Options{});
  const std::size_t nc = a.codec_names.size();
  std::map<std::string, std::pair<std::uint64_t, std::vector<std::uint64_t>>> by_layer;
  std::map<std::string, std::pair<double, int>> mean;
  for (const auto& t : a.tensors) {
    auto& e = by_layer[t.info.layer];
    e.first += t.variants[0].bytes;
    e.second.resize(nc);
    for (std::size_t c = 0; c < nc; ++c) e.second[c] += *t.variants[0].codecs[c].bytes;
    mean[t.info.layer].first +=
        static_cast<double>(t.variants[0].bytes) / static_cast<double>(*t.variants[0].codecs[0].bytes);
    mean[t.info.layer].second++;
  }
  auto rows = a.rows(Level::layer);
  ASSERT_EQ(rows.size(), 4u);
  for (const auto& r : rows) {
    const auto& e = by_layer.at(*r.layer);
    EXPECT_EQ(r.m.bytes, e.first);
    EXPECT_EQ(r.m.tensors, 3u);
    EXPECT_EQ(r.m.iterations, 3u);
    for (std::size_t c = 0; c < nc; ++c) {
      EXPECT_EQ(*r.m.codecs[c].bytes, e.second[c]);
      EXPECT_DOUBLE_EQ(*r.m.codecs[c].ratio, static_cast<double>(e.first) / static_cast<double>(e.second[c]));
    }
    EXPECT_DOUBLE_EQ(*r.m.codecs[0].mean_ratio, mean.at(*r.layer).first / mean.at(*r.layer).second);
  }
  // Layer order follows layer_index; deeper layers are sparser here, so ZVC ratios grow.
  for (std::size_t i = 1; i < 3; ++i) EXPECT_GT(*rows[i].m.codecs[0].ratio, *rows[i - 1].m.codecs[0].ratio);
  auto net = a.rows(Level::network);
  ASSERT_EQ(net.size(), 1u);
  std::uint64_t total = 0;
  for (const auto& t : a.tensors) total += t.variants[0].bytes;
  EXPECT_EQ(net[0].m.bytes, total);
  EXPECT_EQ(a.rows(Level::iteration).size(), 3u);
  EXPECT_EQ(a.rows(Level::layer_iteration).size(), 12u);
}

TEST_F(Pipeline, Filters) {
  Options o;
  o.filters.iterations = parse_iteration_ranges("1-");
  o.filters.ops = std::vector<std::string>{"conv"};
  o.filters.roles = std::vector<std::string>{"x"};
  auto a = run_analysis({trace}, o);
  EXPECT_EQ(a.tensors.size(), 4u);  // iterations 1, 2 x layers 0, 1
  for (const auto& t : a.tensors) {
    EXPECT_GE(t.info.iteration, 1);
    EXPECT_EQ(t.info.op, "conv");
    EXPECT_EQ(t.info.role, "x");
  }
  EXPECT_EQ(a.traces[0].filtered_out, 8);
  o.filters = {};
  o.filters.layers = std::vector<std::string>{"layer3"};
  EXPECT_EQ(run_analysis({trace}, o).tensors.size(), 3u);
}

TEST_F(Pipeline, StopFlagEndsEarlyAndSaysSo) {
  std::atomic<bool> stop{true};
  RunHooks h;
  h.stop = &stop;
  auto a = run_analysis({trace}, Options{}, h);
  EXPECT_TRUE(a.interrupted);
  EXPECT_TRUE(a.tensors.empty());
}

TEST_F(Pipeline, ProgressReachesTheTotal) {
  Progress last;
  RunHooks h;
  h.on_progress = [&](const Progress& p) { last = p; };
  auto a = run_analysis({trace}, Options{}, h);
  EXPECT_EQ(last.tensors_done, 12u);
  EXPECT_EQ(last.tensors_total, 12u);
  EXPECT_EQ(last.bytes_done, last.bytes_total);
  EXPECT_EQ(last.bytes_done, a.stats.bytes);
}

TEST_F(Pipeline, MissingFileFailsUnlessKeepGoing) {
  const auto missing = dir / "missing.h5";
  try {
    run_analysis({trace, missing}, Options{});
    FAIL() << "no error";
  } catch (const formats::TraceError& e) {
    EXPECT_NE(std::string(e.what()).find("missing.h5"), std::string::npos) << e.what();
  }
  Options o;
  o.keep_going = true;
  auto a = run_analysis({trace, missing}, o);
  EXPECT_EQ(a.tensors.size(), 12u);
  ASSERT_EQ(a.traces.size(), 2u);
  EXPECT_FALSE(a.traces[1].opened);
  ASSERT_EQ(a.traces[1].skipped.size(), 1u);
  EXPECT_EQ(a.traces[1].skipped[0].object, "/");
}

TEST_F(Pipeline, CsvHasOneLinePerRow) {
  auto a = run_analysis({trace}, Options{});
  for (Level l : {Level::tensor, Level::layer, Level::iteration, Level::layer_iteration, Level::network}) {
    std::ostringstream os;
    write_csv(os, a, l);
    std::string s = os.str();
    const auto lines = static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n'));
    EXPECT_EQ(lines, a.rows(l).size() + 1) << to_string(l);
    EXPECT_NE(s.find("zrle-4_ratio"), std::string::npos);
  }
}

}  // namespace
}  // namespace cdma::analyze
