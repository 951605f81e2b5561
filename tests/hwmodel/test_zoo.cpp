// The zoo against the original papers' published shapes and operation counts.
#include <cdma/hwmodel/study.hpp>
#include <cdma/hwmodel/zoo.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "test_util.hpp"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>

namespace hw = cdma::hwmodel;

namespace {
const hw::Layer& find(const hw::Network& n, const std::string& name) {
  for (const auto& l : n.layers)
    if (l.name == name) return l;
  throw std::runtime_error("no layer " + name);
}
std::vector<std::int64_t> out(const hw::Network& n, const std::string& name) { return find(n, name).out_shape; }
// Multiply-adds per image of the conv and linear layers.
double gmacs(const hw::Network& n) {
  double f = 0;
  for (const auto& l : n.layers)
    if (l.op == "conv" || l.op == "linear") f += l.flops;
  return f / 2 / n.batch / 1e9;
}
}  // namespace

TEST(HwZoo, ShapesFollowThePapers) {
  auto a = hw::zoo_network("alexnet", 1);
  EXPECT_EQ(out(a, "conv1"), (std::vector<std::int64_t>{96, 55, 55}));
  EXPECT_EQ(out(a, "pool2"), (std::vector<std::int64_t>{256, 13, 13}));
  EXPECT_EQ(out(a, "pool5"), (std::vector<std::int64_t>{256, 6, 6}));
  auto o = hw::zoo_network("overfeat", 1);  // Sermanet et al. Table 1: 56, 24, 12, 6
  EXPECT_EQ(out(o, "conv1"), (std::vector<std::int64_t>{96, 56, 56}));
  EXPECT_EQ(out(o, "conv2"), (std::vector<std::int64_t>{256, 24, 24}));
  EXPECT_EQ(out(o, "conv5"), (std::vector<std::int64_t>{1024, 12, 12}));
  EXPECT_EQ(out(o, "pool5"), (std::vector<std::int64_t>{1024, 6, 6}));
  auto g = hw::zoo_network("googlenet", 1);  // Szegedy et al. Table 1
  EXPECT_EQ(out(g, "inception_3a/output"), (std::vector<std::int64_t>{256, 28, 28}));
  EXPECT_EQ(out(g, "inception_3b/output"), (std::vector<std::int64_t>{480, 28, 28}));
  EXPECT_EQ(out(g, "inception_4e/output"), (std::vector<std::int64_t>{832, 14, 14}));
  EXPECT_EQ(out(g, "inception_5b/output"), (std::vector<std::int64_t>{1024, 7, 7}));
  auto r = hw::zoo_network("resnet50", 1);
  EXPECT_EQ(out(r, "pool1"), (std::vector<std::int64_t>{64, 56, 56}));
  EXPECT_EQ(out(r, "res5c"), (std::vector<std::int64_t>{2048, 7, 7}));
  auto s = hw::zoo_network("squeezenet", 1);
  EXPECT_EQ(out(s, "fire9/concat"), (std::vector<std::int64_t>{512, 13, 13}));
  auto v = hw::zoo_network("vgg16", 1);
  EXPECT_EQ(out(v, "pool5"), (std::vector<std::int64_t>{512, 7, 7}));
  int convs = 0;
  for (const auto& l : v.layers) convs += l.op == "conv";
  EXPECT_EQ(convs, 13);
  auto n = hw::zoo_network("nin", 1);
  EXPECT_EQ(out(n, "cccp8"), (std::vector<std::int64_t>{1000, 6, 6}));
  EXPECT_EQ(out(n, "pool4"), (std::vector<std::int64_t>{1000, 1, 1}));
}

TEST(HwZoo, OperationCountsMatchPublishedFigures) {
  // VGG-16 15.5 G multiply-adds (Simonyan & Zisserman; widely cited 15.47), GoogLeNet about 1.5 G
  // (Szegedy et al.), ResNet-50 3.8 G (He et al., Table 1), AlexNet about 0.72 G (two towers).
  EXPECT_NEAR(gmacs(hw::zoo_network("vgg16", 2)), 15.47, 0.3);
  EXPECT_NEAR(gmacs(hw::zoo_network("googlenet", 2)), 1.5, 0.15);
  EXPECT_NEAR(gmacs(hw::zoo_network("resnet50", 2)), 3.86, 0.3);
  EXPECT_NEAR(gmacs(hw::zoo_network("alexnet", 2)), 0.72, 0.06);
}

TEST(HwZoo, OffloadedBytesScaleWithBatchAndElementSize) {
  for (const auto& name : hw::zoo_names()) {
    auto a = hw::zoo_network(name, 8), b = hw::zoo_network(name, 16), h = hw::zoo_network(name, 16, 2);
    ASSERT_EQ(a.layers.size(), b.layers.size());
    for (size_t i = 0; i < a.layers.size(); ++i) {
      EXPECT_EQ(2 * a.layers[i].x_bytes, b.layers[i].x_bytes) << name << " " << a.layers[i].name;
      EXPECT_EQ(b.layers[i].x_bytes, 2 * h.layers[i].x_bytes) << name << " " << a.layers[i].name;
    }
    EXPECT_GE(a.input_tensor, 0);
    EXPECT_EQ(a.layers.front().x_tensor, a.input_tensor) << name;
  }
}

TEST(HwZoo, RooflineTakesTheSlowerOfComputeAndMemory) {
  auto net = hw::zoo_network("vgg16", 4);
  hw::GpuPreset gpu;
  gpu.name = "g";
  gpu.dram_gbps = 100;
  gpu.peak_tflops["fp32"] = 10;
  gpu.compute_efficiency = 0.5;
  gpu.dram_efficiency = 1.0;
  hw::apply_roofline(net, gpu, "fp32", 2.0);
  for (const auto& l : net.layers) {
    const double expect = std::max(l.flops / 5e12, l.dram_bytes / 100e9) * 1e12;
    EXPECT_NEAR(static_cast<double>(l.fwd_ps), expect, 1.0 + expect * 1e-12) << l.name;
    EXPECT_NEAR(static_cast<double>(l.bwd_ps), 2.0 * static_cast<double>(l.fwd_ps), 1.0) << l.name;
  }
  EXPECT_THROW(hw::apply_roofline(net, gpu, "fp8"), hw::ModelError);
}

TEST(HwZoo, DensityAppliesToPostReluTensorsOnly) {
  auto net = hw::zoo_network("resnet50", 2);
  net.set_density(0.0);
  int sparse = 0, dense = 0;
  for (const auto& l : net.layers) {
    if (l.x_tensor < 0) continue;
    (l.x_sparse ? sparse : dense)++;
    EXPECT_DOUBLE_EQ(l.ratio.at("zvc"), l.x_sparse ? 32.0 : 32.0 / 33.0) << l.name;
  }
  EXPECT_GT(dense, 40);  // every BN input (a conv output) is dense
  EXPECT_GT(sparse, 40);
  EXPECT_DOUBLE_EQ(hw::zvc_ratio(0.35), 32.0 / 12.2);
  EXPECT_DOUBLE_EQ(hw::zvc_ratio(0.5, 2), 16.0 / 9.0);
  EXPECT_THROW(net.set_density(1.5), hw::ModelError);
  EXPECT_THROW(net.set_ratio("zvc", 0), hw::ModelError);
}

TEST(HwZoo, RejectsUnknownNamesAndBadSizes) {
  EXPECT_THROW(hw::zoo_network("lenet", 1), hw::ModelError);
  EXPECT_THROW(hw::zoo_network("vgg16", 0), hw::ModelError);
  EXPECT_THROW(hw::zoo_network("vgg16", 1, 3), hw::ModelError);
  EXPECT_EQ(hw::paper_networks().size(), 6u);
}

// The zoo files (data/zoo) against numbers computed without them.
namespace {
struct Totals {
  const char* name;
  std::size_t layers;
  double flops, dram_bytes;
  std::int64_t x_bytes;
  int sparse;
  std::int64_t out_elements;
};
// Per network at batch 1, fp32, as the C++ builders produced them before the networks became data
// files (commit 37e6c4f, hwmodel/src/zoo.cpp): a change of any layer shows up here.
constexpr Totals kBefore[] = {
    {"alexnet", 16, 1454707432, 254602624, 5669920, 14, 1267952},
    {"overfeat", 14, 5603423112, 592179660, 4566252, 12, 982480},
    {"nin", 18, 2201589896, 45754752, 7986080, 17, 1846992},
    {"vgg16", 24, 30946671496, 674798464, 60983200, 22, 15096272},
    {"squeezenet", 40, 1643174000, 68438464, 21899200, 39, 7687128},
    {"squeezenet1.1", 40, 701622512, 41933760, 13355584, 39, 4458552},
    {"googlenet", 85, 3186186376, 93257664, 33576800, 83, 6686080},
    {"resnet50", 126, 7776313224, 340810880, 86515616, 71, 26898384},
};

// Weights and biases of the conv and linear layers, from their DRAM traffic (input + output +
// weights, batch 1, 4-byte elements).
double parameters(const hw::Network& n) {
  double p = 0;
  for (const auto& l : n.layers) {
    if (l.op != "conv" && l.op != "linear") continue;
    double out = 1;
    for (auto d : l.out_shape) out *= static_cast<double>(d);
    p += l.dram_bytes / 4 - static_cast<double>(l.x_bytes) / 4 - out;
  }
  return p;
}

std::string slurp(const std::filesystem::path& p) {
  std::ifstream f(p);
  return {std::istreambuf_iterator<char>(f), {}};
}
}  // namespace

TEST(HwZooFiles, NetworksAreTheOnesTheBuildersMade) {
  ASSERT_EQ(hw::zoo_names().size(), std::size(kBefore));
  for (const auto& want : kBefore) {
    const auto n = hw::zoo_network(want.name, 1);
    EXPECT_EQ(n.name, want.name);
    EXPECT_EQ(n.source, "zoo");
    EXPECT_EQ(n.batch, 1);
    EXPECT_EQ(n.input_tensor, 0);
    ASSERT_EQ(n.layers.size(), want.layers) << want.name;
    double flops = 0, dram = 0;
    std::int64_t x = 0, elems = 0;
    int sparse = 0;
    for (std::size_t i = 0; i < n.layers.size(); ++i) {
      const auto& l = n.layers[i];
      flops += l.flops;
      dram += l.dram_bytes;
      x += l.x_bytes;
      sparse += l.x_sparse;
      std::int64_t e = 1;
      for (auto d : l.out_shape) e *= d;
      elems += e;
      EXPECT_LT(l.x_tensor, static_cast<int>(i) + 1) << want.name << " " << l.name;  // an earlier tensor
    }
    EXPECT_EQ(flops, want.flops) << want.name;
    EXPECT_EQ(dram, want.dram_bytes) << want.name;
    EXPECT_EQ(x, want.x_bytes) << want.name;
    EXPECT_EQ(sparse, want.sparse) << want.name;
    EXPECT_EQ(elems, want.out_elements) << want.name;
  }
  EXPECT_EQ(hw::zoo_network("vgg", 1).name, "vgg16");
  EXPECT_EQ(hw::zoo_network("squeezenet1.0", 1).name, "squeezenet");
  EXPECT_EQ(hw::paper_networks(),
            (std::vector<std::string>{"alexnet", "overfeat", "nin", "vgg16", "squeezenet", "googlenet"}));
}

TEST(HwZooFiles, Vgg16LayerByLayerFromItsConfiguration) {
  // Configuration D recomputed here: 3x3 pad-1 convs keep the size, 2x2/2 pools halve it.
  const auto n = hw::zoo_network("vgg16", 2, 2);
  std::int64_t c = 3, side = 224;
  std::size_t i = 0;
  const int widths[5] = {64, 128, 256, 512, 512}, convs[5] = {2, 2, 3, 3, 3};
  for (int s = 0; s < 5; ++s) {
    for (int k = 0; k < convs[s]; ++k, ++i) {
      const auto& l = n.layers[i];
      EXPECT_EQ(l.name, "conv" + std::to_string(s + 1) + "_" + std::to_string(k + 1));
      EXPECT_EQ(l.op, "conv");
      EXPECT_EQ(l.x_bytes, 2 * 2 * c * side * side);
      EXPECT_EQ(l.out_shape, (std::vector<std::int64_t>{widths[s], side, side}));
      const double C = static_cast<double>(c), S = static_cast<double>(side), W = widths[s];
      EXPECT_EQ(l.flops, 2.0 * 2 * W * S * S * C * 9) << l.name;
      const double weights = W * C * 9 + W;
      EXPECT_EQ(l.dram_bytes, 2.0 * 2 * (C * S * S + W * S * S) + 2 * weights) << l.name;
      c = widths[s];
    }
    EXPECT_EQ(n.layers[i].op, "pool");
    side /= 2;
    EXPECT_EQ(n.layers[i++].out_shape, (std::vector<std::int64_t>{c, side, side}));
  }
  EXPECT_EQ(n.layers[i].name, "fc6");
  EXPECT_EQ(n.layers[i].flops, 2.0 * 2 * 512 * 7 * 7 * 4096);
}

TEST(HwZooFiles, ParameterCountsMatchThePublishedModels) {
  // Caffe's bvlc_alexnet (two-tower grouping) and VGG-16 as published: weights plus biases.
  EXPECT_EQ(parameters(hw::zoo_network("alexnet", 1)), 60965224);
  EXPECT_EQ(parameters(hw::zoo_network("vgg16", 1)), 138357544);
}

TEST(HwZooFiles, EveryFileNamesItsSource) {
  const auto dir = std::filesystem::path(CDMA_SOURCE_DIR) / "data" / "zoo";
  for (const auto& name : hw::zoo_names()) {
    const auto j = nlohmann::json::parse(slurp(dir / (name + ".json")));
    EXPECT_EQ(j.at("name"), name);
    EXPECT_TRUE(j.at("source") == "paper" || j.at("source") == "torchvision") << name;
    EXPECT_FALSE(j.at("reference").get<std::string>().empty()) << name;
  }
}

TEST(HwZooFiles, ErrorsNameTheFileAndTheField) {
  cdma::test::TempDir dir;
  const auto src = std::filesystem::path(CDMA_SOURCE_DIR) / "data" / "zoo";
  for (const auto& f : std::filesystem::directory_iterator(src))
    std::filesystem::copy_file(f.path(), dir / f.path().filename());
  const std::string good = slurp(src / "alexnet.json");
  auto expect_error = [&](const std::string& from, const std::string& to, const std::string& message) {
    const auto at = good.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    std::string bad = good;
    bad.replace(at, from.size(), to);
    std::ofstream(dir / "alexnet.json", std::ios::trunc) << bad;
    try {
      hw::zoo_network("alexnet", 1, 4, dir.path());
      ADD_FAILURE() << "accepted " << to;
    } catch (const hw::ModelError& e) {
      EXPECT_NE(std::string(e.what()).find("alexnet.json: " + message), std::string::npos) << e.what();
    }
  };
  expect_error("\"kernel\": 11", "\"kernal\": 11", "layers[0] 'conv1': unknown key 'kernal'");
  expect_error("\"kernel\": 11", "\"kernel\": 0", "layers[0] 'conv1'.kernel = 0 must be an integer in 1..");
  expect_error("\"kernel\": 11", "\"kernel\": 999", "layers[0] 'conv1': kernel 999 larger than its input");
  expect_error("\"op\": \"lrn\"", "\"op\": \"relu6\"", "layers[1] 'norm1': unknown op 'relu6'");
  expect_error("\"name\": \"norm1\", \"op\": \"lrn\"", "\"name\": \"norm1\", \"op\": \"lrn\", \"input\": \"conv9\"",
               "layers[1] 'norm1'.input: no earlier layer 'conv9'");
  expect_error("\"groups\": 2", "\"groups\": 7", "layers[3] 'conv2': groups = 7 must divide");
  expect_error("\"schema_version\": 1", "\"schema_version\": 2", "schema_version 2 is newer than this cdma supports");
  expect_error("[3, 224, 224]", "[3, 224]", "input must be [channels, height, width]");
  expect_error("\"relu\": false", "\"relu\": 0", "layers[14] 'fc8'.relu must be true or false");
  expect_error("\"name\": \"alexnet\"", "\"name\": \"alexnet2\"", "name is 'alexnet2', expected 'alexnet'");
  expect_error("\"name\": \"norm1\"", "\"name\": \"conv1\"", "layers[1] 'conv1': the name is taken");
  std::filesystem::remove(dir / "alexnet.json");
  EXPECT_THROW(hw::zoo_network("alexnet", 1, 4, dir.path()), hw::ModelError);
  EXPECT_NO_THROW(hw::zoo_network("vgg16", 1, 4, dir.path()));
}

// Aliases live in zoo.json only: every front door (replay --net, report's model -> zoo match)
// resolves names through zoo_canonical.
TEST(HwZoo, AliasesResolveToTheirNetwork) {
  EXPECT_EQ(hw::zoo_canonical("vgg16"), std::optional<std::string>("vgg16"));
  EXPECT_EQ(hw::zoo_canonical("vgg"), std::optional<std::string>("vgg16"));
  EXPECT_EQ(hw::zoo_canonical("resnet"), std::optional<std::string>("resnet50"));
  EXPECT_EQ(hw::zoo_canonical("squeezenet1.0"), std::optional<std::string>("squeezenet"));
  EXPECT_EQ(hw::zoo_canonical("vgg19"), std::nullopt);
  EXPECT_EQ(hw::zoo_canonical(""), std::nullopt);
  EXPECT_EQ(hw::expand_networks({"vgg", "alexnet"}), (std::vector<std::string>{"vgg16", "alexnet"}));
  EXPECT_THROW(hw::expand_networks({"vgg19"}), cdma::formats::UsageError);
}
