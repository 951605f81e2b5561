// The zoo against the original papers' published shapes and operation counts.
#include <cdma/hwmodel/zoo.hpp>

#include <gtest/gtest.h>

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
