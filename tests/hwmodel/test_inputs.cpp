// Networks from traces and ratios from the analyzer's JSON.
#include "hw_test_util.hpp"

#include <cdma/formats/trace.hpp>
#include <cdma/hwmodel/trace_input.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>

namespace hw = cdma::hwmodel;
namespace fs = std::filesystem;
namespace fm = cdma::formats;

namespace {

using cdma::hwmodel::test::mk;

fs::path tmp(const std::string& name) {
  return fs::temp_directory_path() / ("cdma_hw_" + std::to_string(::getpid()) + "_" + name);
}

// fp32 tensor of n elements whose first nnz elements are 1.0f, the rest 0.
std::vector<std::byte> tensor(std::int64_t n, std::int64_t nnz) {
  std::vector<float> v(static_cast<size_t>(n), 0.0f);
  for (std::int64_t i = 0; i < nnz; ++i) v[static_cast<size_t>(i)] = 1.0f;
  std::vector<std::byte> b(v.size() * 4);
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

// Three layers (conv0, relu1, linear2), two iterations; forward x tensors; timeline rows with
// device_ns known for conv0 only.
fs::path write_trace() {
  auto p = tmp("trace.h5");
  fm::TraceAttrs a;
  a.producer = "hwmodel-test";
  a.source = "synthetic";
  a.model = "tiny";
  fm::TraceWriter w(p, a, {.overwrite = true});
  struct L {
    const char* name;
    const char* op;
    std::vector<std::int64_t> dims;
    fm::Layout layout;
    std::int64_t nnz;
  };
  const L layers[] = {{"conv0", "conv", {2, 3, 8, 8}, fm::Layout::NCHW, 384},
                      {"relu1", "relu", {2, 4, 8, 8}, fm::Layout::NCHW, 100},
                      {"linear2", "linear", {2, 256}, fm::Layout::NC, 64}};
  for (std::int64_t it = 0; it < 2; ++it) {
    for (int i = 0; i < 3; ++i) {
      fm::TensorMeta m;
      m.iteration = it;
      m.layer = layers[i].name;
      m.layer_index = i;
      m.op = layers[i].op;
      m.role = "x";
      m.phase = "forward";
      m.layout = layers[i].layout;
      m.dims = layers[i].dims;
      w.append_tensor(m, tensor(m.elements(), layers[i].nnz));
      for (std::int8_t ph = 0; ph < 2; ++ph) {
        fm::TimelineRow r;
        r.iteration = it;
        r.layer_index = i;
        r.phase = ph;
        r.op = layers[i].op;
        r.layer = layers[i].name;
        r.start_ns = 1000 * (it + 1);
        r.end_ns = r.start_ns + (ph ? 200 : 100) * (i + 1) + 10 * it;  // host times
        r.device_ns = i == 0 ? 50 : -1;
        w.append_timeline(r);
      }
    }
  }
  w.close();
  return p;
}

}  // namespace

TEST(HwTraceInput, TimesBytesAndRatiosFromATrace) {
  auto p = write_trace();
  hw::TraceNetworkOptions o;
  auto net = hw::network_from_trace(p, o);
  ASSERT_EQ(net.layers.size(), 3u);
  EXPECT_EQ(net.name, "tiny");
  EXPECT_EQ(net.layers[0].name, "conv0");
  EXPECT_EQ(net.layers[0].fwd_ps, 50'000);  // device_ns wins
  EXPECT_EQ(net.layers[0].bwd_ps, 50'000);
  EXPECT_EQ(net.layers[1].fwd_ps, 205'000);  // mean of 200 and 210 ns
  EXPECT_EQ(net.layers[2].bwd_ps, 605'000);  // mean of 600 and 610 ns
  EXPECT_EQ(net.layers[1].x_bytes, 2 * 4 * 8 * 8 * 4);
  EXPECT_EQ(net.input_tensor, net.layers[0].x_tensor);
  EXPECT_EQ(net.batch, 2);

  o.compute_scale = 0.5;
  EXPECT_EQ(hw::network_from_trace(p, o).layers[1].fwd_ps, 102'500);

  // ZVC (docs/spec/CODECS.md): 4 * ceil(n/32) + 4 * nnz bytes.
  auto table = hw::measure_ratio_table(p, {"zvc"});
  ASSERT_EQ(table.layers.size(), 3u);
  const double n1 = 2 * 4 * 8 * 8;
  EXPECT_DOUBLE_EQ(table.layers[1].ratio.at("zvc"), (4 * n1) / (4 * (n1 / 32) + 4 * 100));
  // Network row: every layer but the first (the input).
  const double n2 = 512;
  EXPECT_DOUBLE_EQ(table.network.at("zvc"), (4 * n1 + 4 * n2) / (4 * (n1 / 32) + 400 + 4 * (n2 / 32) + 4 * 64));
  auto rep = hw::apply_ratios(net, table, true, false, hw::RatioFill::none);
  EXPECT_EQ(rep.matched_by_name, 2) << "the network input is never offloaded, so it takes no ratio";
  EXPECT_TRUE(rep.unmeasured.empty());
  EXPECT_DOUBLE_EQ(net.layers[1].ratio.at("zvc"), table.layers[1].ratio.at("zvc"));
  fs::remove(p);
}

TEST(HwTraceInput, RooflineModeUsesTheShapes) {
  auto p = write_trace();
  hw::GpuPreset gpu;
  gpu.name = "g";
  gpu.dram_gbps = 1;  // 1 GB/s: memory bound, time = bytes / 1e9 (dram_efficiency 0.8)
  gpu.peak_tflops["fp32"] = 1000;
  hw::TraceNetworkOptions o;
  o.roofline = true;
  o.gpu = &gpu;
  auto net = hw::network_from_trace(p, o);
  // linear2: x [2,256] (no y tensor: output assumed like x) + weights 256x256, fp32.
  const double bytes = (512 + 512 + 256.0 * 256) * 4;
  EXPECT_EQ(net.layers[2].fwd_ps, hw::transfer_ps(bytes, 0.8e9));
  EXPECT_EQ(net.layers[2].bwd_ps, 2 * net.layers[2].fwd_ps);
  o.gpu = nullptr;
  EXPECT_THROW(hw::network_from_trace(p, o), hw::ModelError);
  fs::remove(p);
}

TEST(HwTraceInput, MissingOrBrokenTraceIsATypedError) {
  hw::TraceNetworkOptions o;
  EXPECT_THROW(hw::network_from_trace("/nonexistent.h5", o), cdma::formats::Error);
  auto p = tmp("garbage.h5");
  std::ofstream(p) << "not hdf5";
  EXPECT_THROW(hw::network_from_trace(p, o), cdma::formats::Error);
  fs::remove(p);
}

TEST(HwTraceInput, InSituStatsRowsGiveBytesAndExactZvcRatios) {
  auto p = tmp("stats.h5");
  {
    fm::TraceAttrs a;
    a.producer = "hwmodel-test";
    a.source = "cudnn";
    fm::TraceWriter w(p, a, {.overwrite = true});
    for (std::int64_t it = 0; it < 2; ++it)
      for (int i = 0; i < 2; ++i) {
        fm::StatsRow s;
        s.iteration = it;
        s.layer_index = i;
        s.layer = i == 0 ? "conv0" : "conv1";
        s.op = "conv";
        s.role = "x";
        s.dtype = "float32";
        s.elements = 1000;
        s.nonzeros = i == 0 ? 1000 : 100;
        s.zero_runs = i == 0 ? 0 : 50;  // 900 zeros in 50 runs (the analyzer checks consistency)
        w.append_stats(s);
        fm::TimelineRow r;
        r.iteration = it;
        r.layer_index = i;
        r.layer = s.layer;
        r.op = "conv";
        r.device_ns = 1000;
        w.append_timeline(r);
      }
    w.close();
  }
  auto net = hw::network_from_trace(p, {});
  ASSERT_EQ(net.layers.size(), 2u);
  EXPECT_EQ(net.layers[1].x_bytes, 4000);
  EXPECT_EQ(net.layers[1].fwd_ps, 1'000'000);
  auto t = hw::measure_ratio_table(p, {"zvc", "zstd-1"});
  ASSERT_EQ(t.layers.size(), 2u);
  EXPECT_DOUBLE_EQ(t.layers[1].ratio.at("zvc"), 4000.0 / (4 * 32 + 4 * 100));  // ceil(1000/32) = 32 masks
  EXPECT_EQ(t.layers[1].ratio.count("zstd-1"), 0u);
  EXPECT_DOUBLE_EQ(t.network.at("zvc"), 4000.0 / (4 * 32 + 4 * 100));
  fs::remove(p);
}

TEST(HwAnalysisJson, ReadsLayerRowsAndNetworkRow) {
  nlohmann::json j = {
      {"schema", "cdma-analysis"},
      {"schema_version", 1},
      {"layer",
       {{{"trace", 0},
         {"layer", "relu1"},
         {"layer_index", 1},
         {"op", "relu"},
         {"role", "x"},
         {"layout", "stored"},
         {"dtype", "stored"},
         {"bytes", 4096},
         {"iterations", 2},
         {"density", 0.2},
         {"codecs",
          {{"zvc", {{"bytes", 1000}, {"ratio", 4.096}}}, {"zlib-6", {{"bytes", nullptr}, {"ratio", nullptr}}}}}},
        {{"trace", 0},
         {"layer", "relu1"},
         {"layer_index", 1},
         {"role", "x"},
         {"layout", "NHWC"},
         {"dtype", "stored"},
         {"bytes", 1},
         {"iterations", 1},
         {"codecs", {{"zvc", {{"ratio", 99.0}}}}}},
        {{"trace", 1}, {"layer", "relu1"}, {"layer_index", 1}, {"role", "x"}, {"bytes", 1}, {"iterations", 1}}}},
      {"network",
       {{{"trace", 0}, {"layout", "stored"}, {"dtype", "stored"}, {"codecs", {{"zvc", {{"ratio", 3.0}}}}}}}}};
  auto p = tmp("analysis.json");
  std::ofstream(p) << j.dump();
  auto t = hw::load_analysis_json(p);
  ASSERT_EQ(t.layers.size(), 1u);
  EXPECT_EQ(t.layers[0].bytes_per_iteration, 2048);
  EXPECT_DOUBLE_EQ(t.layers[0].ratio.at("zvc"), 4.096);
  EXPECT_EQ(t.layers[0].ratio.count("zlib-6"), 0u);
  EXPECT_DOUBLE_EQ(t.network.at("zvc"), 3.0);

  hw::Network net;
  net.layers.push_back(mk("conv0", "conv", 0, 0, 0, 10));
  net.layers.push_back(mk("renamed", "relu", 0, 0, 1, 10));
  net.layers.push_back(mk("other", "pool", 0, 0, 2, 10));
  // No fill rule: the layers without a row are replayed uncompressed and listed with their bytes.
  auto filled = net;
  auto rep = hw::apply_ratios(net, t, true, true, hw::RatioFill::none);
  EXPECT_EQ(rep.matched_by_index, 1);
  EXPECT_EQ(rep.unmatched, 2);
  EXPECT_EQ(net.layers[1].x_bytes, 2048);
  EXPECT_DOUBLE_EQ(net.layers[1].ratio.at("zvc"), 4.096);
  EXPECT_EQ(net.layers[2].ratio.count("zvc"), 0u) << "unmeasured: ratio 1";
  EXPECT_EQ(rep.unmeasured, (std::vector<std::string>{"conv0", "other"}));
  EXPECT_EQ(rep.unmeasured_bytes, 20);
  // The explicit fill rule gives them the table's network ratio, and still lists them.
  rep = hw::apply_ratios(filled, t, true, true, hw::RatioFill::average);
  EXPECT_DOUBLE_EQ(filled.layers[2].ratio.at("zvc"), 3.0);
  EXPECT_EQ(rep.unmeasured.size(), 2u);

  j["schema_version"] = 2;
  std::ofstream(p) << j.dump();
  try {
    hw::load_analysis_json(p);
    FAIL();
  } catch (const hw::ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("schema_version 2"), std::string::npos) << e.what();
  }
  // Ratios that are not positive finite numbers name the file and the field; null is "unknown".
  for (const char* bad_ratio : {"0", "-1.5", "\"2.0\"", "true"}) {
    auto jb = j;
    jb["schema_version"] = 1;
    jb["layer"][0]["codecs"]["zvc"]["ratio"] = nlohmann::json::parse(bad_ratio);
    std::ofstream(p) << jb.dump();
    try {
      hw::load_analysis_json(p);
      ADD_FAILURE() << bad_ratio << " accepted";
    } catch (const hw::ModelError& e) {
      EXPECT_NE(std::string(e.what()).find(p.string()), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("layer[0].codecs.zvc.ratio"), std::string::npos) << e.what();
    }
  }
  {
    auto jn = j;
    jn["schema_version"] = 1;
    jn["layer"][0]["codecs"]["zvc"]["ratio"] = nullptr;
    std::ofstream(p) << jn.dump();
    EXPECT_EQ(hw::load_analysis_json(p).layers[0].ratio.count("zvc"), 0u);
    jn["schema_version"] = std::int64_t{1} << 40;
    std::ofstream(p) << jn.dump();
    EXPECT_THROW(hw::load_analysis_json(p), hw::ModelError);
    jn["schema_version"] = 1;
    jn["layer"][0]["layer"] = 5;  // wrong type: named as the file's problem
    std::ofstream(p) << jn.dump();
    try {
      hw::load_analysis_json(p);
      ADD_FAILURE() << "a numeric layer name accepted";
    } catch (const hw::ModelError& e) {
      EXPECT_NE(std::string(e.what()).find(p.string()), std::string::npos) << e.what();
    }
  }
  // Byte and iteration counts: a JSON integer 0 .. 2^62; a float, a negative or a larger number names
  // the file, the row and the field (1e300 bytes became -9223372036854775808).
  for (const char* field : {"bytes", "iterations"})
    for (const char* bad_count : {"1e300", "-5", "2.5", "9223372036854775807", "\"7\""}) {
      auto jb = j;
      jb["schema_version"] = 1;
      jb["layer"][0][field] = nlohmann::json::parse(bad_count);
      std::ofstream(p) << jb.dump();
      try {
        hw::load_analysis_json(p);
        ADD_FAILURE() << field << " " << bad_count << " accepted";
      } catch (const hw::ModelError& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find(p.string()), std::string::npos) << what;
        EXPECT_NE(what.find(std::string("layer[0].") + field + ": expected an integer 0 .. 2^62"), std::string::npos)
            << what;
      }
    }
  std::ofstream(p) << R"({"schema": "something-else", "schema_version": 1})";
  EXPECT_THROW(hw::load_analysis_json(p), hw::ModelError);
  std::ofstream(p) << "[1, 2";
  EXPECT_THROW(hw::load_analysis_json(p), hw::ModelError);
  fs::remove(p);
}
