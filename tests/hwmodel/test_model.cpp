// Timing checks of the replay (docs/spec/HWMODEL.md): limits, edges, monotonicity, and the closed form
// against the event-by-event reference on random networks.
#include "hw_test_util.hpp"

#include <cdma/hwmodel/facade.hpp>
#include <cdma/hwmodel/replay.hpp>
#include <cdma/hwmodel/zoo.hpp>

#include <gtest/gtest.h>

#include <limits>
#include <random>
#include <set>

namespace hw = cdma::hwmodel;

namespace {

using cdma::hwmodel::test::mk;

constexpr double kInf = std::numeric_limits<double>::infinity();

hw::LinkParams link(double bps, hw::Ps latency = 0) { return {bps, latency}; }

hw::Engine engine(hw::Placement p, double read = 0, double comp = 0) {
  hw::Engine e;
  e.label = hw::to_string(p);
  e.placement = p;
  e.read_bytes_per_s = read;
  e.compressor_bytes_per_s = comp;
  if (p == hw::Placement::sm) e.sm_stream_bytes_per_s = 400e9;
  return e;
}

// A random chain-or-branching network: ops drawn from the trace vocabulary, some tensors shared
// by two consumers (as in inception modules), times and sizes from a wide range.
hw::Network random_net(std::mt19937_64& rng, int n) {
  const char* ops[] = {"conv", "relu", "pool", "linear", "bn", "lrn", "dropout", "add", "concat", "softmax"};
  std::uniform_int_distribution<int> op(0, 9);
  std::uniform_int_distribution<hw::Ps> t(0, 5'000'000'000);       // 0..5 ms
  std::uniform_int_distribution<std::int64_t> bytes(0, 64 << 20);  // 0..64 MiB
  std::uniform_real_distribution<double> ratio(0.5, 20);
  std::bernoulli_distribution share(0.25);
  hw::Network net;
  net.name = "random";
  net.input_tensor = 0;
  int tensor = 0;
  for (int i = 0; i < n; ++i) {
    hw::Layer l;
    l.name = "l" + std::to_string(i);
    l.op = ops[op(rng)];
    l.fwd_ps = t(rng);
    l.bwd_ps = t(rng);
    if (l.op != "add" && l.op != "concat") {
      if (i > 0 && share(rng) && net.layers.back().x_tensor >= 0) {
        l.x_tensor = net.layers.back().x_tensor;  // same input as the previous layer
        l.x_bytes = net.layers.back().x_bytes;
      } else {
        l.x_tensor = tensor;
        l.x_bytes = bytes(rng);
      }
      l.ratio["zvc"] = ratio(rng);
    }
    ++tensor;
    net.layers.push_back(l);
  }
  return net;
}

hw::ReplayResult closed(const hw::Network& net, hw::Policy p, const hw::Engine& e, const hw::LinkParams& l) {
  return hw::replay_closed_form(net, hw::plan_offload(net, p), &e, l);
}

}  // namespace

TEST(HwTransfer, RoundsUpToWholePicoseconds) {
  EXPECT_EQ(hw::transfer_ps(0, 1e9), 0);
  EXPECT_EQ(hw::transfer_ps(1, 1e12), 1);
  EXPECT_EQ(hw::transfer_ps(1, 3e12), 1);  // 0.33 ps rounds up
  EXPECT_EQ(hw::transfer_ps(1e9, 1e9), hw::kPsPerSecond);
  EXPECT_EQ(hw::transfer_ps(5, kInf), 0);
  EXPECT_THROW(hw::transfer_ps(1, 0), hw::ModelError);
  EXPECT_THROW(hw::transfer_ps(1, -1), hw::ModelError);
  EXPECT_THROW(hw::transfer_ps(1, std::nan("")), hw::ModelError);
}

TEST(HwModel, InfiniteLinkEqualsOracleForEveryPolicyAndHardwareEngine) {
  std::mt19937_64 rng(1);
  for (int k = 0; k < 50; ++k) {
    auto net = random_net(rng, 30);
    for (auto p : {hw::Policy::vdnn_all, hw::Policy::vdnn_conv})
      for (auto pl : {hw::Placement::none, hw::Placement::dma, hw::Placement::mc}) {
        auto r = closed(net, p, engine(pl), link(kInf));
        EXPECT_EQ(r.total_ps, net.oracle_ps());
        EXPECT_EQ(r.stall_ps, 0);
      }
  }
  for (const auto& name : hw::zoo_names()) {
    auto net = hw::zoo_network(name, 32);
    for (auto& l : net.layers) l.fwd_ps = l.bwd_ps = 1000;
    auto r = closed(net, hw::Policy::vdnn_all, engine(hw::Placement::none), link(kInf));
    EXPECT_EQ(r.total_ps, net.oracle_ps()) << name;
    EXPECT_GT(r.offloaded_bytes, 0) << name;
  }
}

TEST(HwModel, ZeroComputeTakesExactlyTheTransferTime) {
  std::mt19937_64 rng(2);
  for (int k = 0; k < 50; ++k) {
    auto net = random_net(rng, 25);
    for (auto& l : net.layers) l.fwd_ps = l.bwd_ps = 0;
    const auto lk = link(12.6e9, 2'000'000);
    for (auto pl : {hw::Placement::none, hw::Placement::dma}) {
      auto e = engine(pl);
      auto plan = hw::plan_offload(net, hw::Policy::vdnn_all);
      hw::Ps transfers = 0;
      for (const auto& item : plan.items) {
        auto t = hw::item_times(item, e, lk);
        transfers += t.offload_ps + t.prefetch_ps;  // every tensor goes out once and comes back once
      }
      auto r = hw::replay_closed_form(net, plan, &e, lk);
      EXPECT_EQ(r.total_ps, transfers);
    }
  }
}

TEST(HwModel, RatioOneMakesCdmaEqualVdnn) {
  std::mt19937_64 rng(3);
  for (int k = 0; k < 50; ++k) {
    auto net = random_net(rng, 30);
    net.set_ratio("zvc", 1.0);
    const auto lk = link(12.6e9, 2'000'000);
    auto vdnn = closed(net, hw::Policy::vdnn_all, engine(hw::Placement::none), lk);
    // Engines whose read bandwidth and compressor keep up with the link.
    for (auto pl : {hw::Placement::dma, hw::Placement::mc}) {
      auto r = closed(net, hw::Policy::vdnn_all, engine(pl, 137e9, 200e9), lk);
      EXPECT_EQ(r.total_ps, vdnn.total_ps);
      EXPECT_EQ(r.link_bytes, vdnn.link_bytes);
    }
  }
}

TEST(HwModel, RatioBelowOneIsSentRaw) {
  std::mt19937_64 rng(4);
  auto net = random_net(rng, 20);
  net.set_ratio("zvc", 0.97);  // ZVC of a dense fp32 tensor
  const auto lk = link(12.6e9);
  EXPECT_EQ(closed(net, hw::Policy::vdnn_all, engine(hw::Placement::mc), lk).total_ps,
            closed(net, hw::Policy::vdnn_all, engine(hw::Placement::none), lk).total_ps);
}

TEST(HwModel, DoublingTheLinkNeverSlowsAnythingDown) {
  std::mt19937_64 rng(5);
  for (int k = 0; k < 30; ++k) {
    auto net = random_net(rng, 30);
    for (auto p : {hw::Policy::vdnn_all, hw::Policy::vdnn_conv})
      for (auto pl : {hw::Placement::none, hw::Placement::dma, hw::Placement::mc, hw::Placement::sm}) {
        auto e = engine(pl, 100e9, 0);
        hw::Ps prev = std::numeric_limits<hw::Ps>::max();
        for (double bw = 1e9; bw < 1e13; bw *= 2) {
          auto r = closed(net, p, e, link(bw, 1'000'000));
          EXPECT_LE(r.total_ps, prev) << "bw " << bw;
          EXPECT_GE(r.total_ps, net.oracle_ps());
          prev = r.total_ps;
        }
      }
  }
}

TEST(HwModel, HigherRatioNeverSlowsAHardwareEngine) {
  std::mt19937_64 rng(6);
  auto net = random_net(rng, 40);
  hw::Ps prev = std::numeric_limits<hw::Ps>::max();
  for (double r = 1; r <= 32; r *= 1.5) {
    net.set_ratio("zvc", r);
    auto t = closed(net, hw::Policy::vdnn_all, engine(hw::Placement::mc, 500e9), link(12.6e9)).total_ps;
    EXPECT_LE(t, prev);
    prev = t;
  }
}

// Two layers: conv0 reads the network input (never offloaded), conv1's input X (U bytes) is
// offloaded during conv1's forward and fetched on demand before conv1's backward.
hw::Network edge_net(std::int64_t u, hw::Ps f1) {
  hw::Network net;
  net.input_tensor = 0;
  net.layers.push_back(mk("conv0", "conv", 1000, 2000, 0, 100));
  net.layers.push_back(mk("conv1", "conv", f1, 3000, 1, u));
  return net;
}

TEST(HwEdge, TransferExactlyFillingTheComputeWindowDoesNotStallOneByteMoreDoes) {
  const double bw = 1e10;            // 10 GB/s: one byte = 100 ps
  const std::int64_t u = 1'000'000;  // 100 us
  const hw::Ps window = hw::transfer_ps(static_cast<double>(u), bw);
  ASSERT_EQ(window, 100'000'000);
  auto e = engine(hw::Placement::none);
  auto fits = closed(edge_net(u, window), hw::Policy::vdnn_all, e, link(bw));
  EXPECT_EQ(fits.layers[1].fwd_stall_ps, 0);
  auto over = closed(edge_net(u + 1, window), hw::Policy::vdnn_all, e, link(bw));
  EXPECT_EQ(over.layers[1].fwd_stall_ps, 100);  // exactly one byte's time
  // The event replay sees the same edge.
  auto ev_fits = hw::replay_events(edge_net(u, window), hw::Policy::vdnn_all, &e, link(bw));
  auto ev_over = hw::replay_events(edge_net(u + 1, window), hw::Policy::vdnn_all, &e, link(bw));
  EXPECT_EQ(ev_fits.forward_ps, 1000 + window);
  EXPECT_EQ(ev_over.forward_ps, 1000 + window + 100);
}

TEST(HwEdge, PrefetchExactlyFillingTheBackwardWindowDoesNotStall) {
  // conv0(input) conv1 relu2: in relu2's backward, conv1's X is prefetched (nearest offloaded
  // layer below it). relu2's own X is fetched on demand first.
  const double bw = 1e10;
  auto make = [&](std::int64_t u1) {
    hw::Network net;
    net.input_tensor = 0;
    net.layers.push_back(mk("conv0", "conv", 10, 10, 0, 8));
    net.layers.push_back(mk("conv1", "conv", 10, 10, 1, u1));
    net.layers.push_back(mk("relu2", "relu", 10, 500'000, 2, 50));
    return net;
  };
  auto e = engine(hw::Placement::none);
  auto fits = closed(make(5000), hw::Policy::vdnn_all, e, link(bw));  // 5000 B = 500'000 ps
  EXPECT_EQ(fits.layers[2].prefetch_layer, 1);
  EXPECT_EQ(fits.layers[2].demand_ps, hw::transfer_ps(50, bw));
  EXPECT_EQ(fits.layers[2].bwd_stall_ps, fits.layers[2].demand_ps);
  EXPECT_EQ(fits.layers[1].demand_ps, 0);
  auto over = closed(make(5001), hw::Policy::vdnn_all, e, link(bw));
  EXPECT_EQ(over.layers[2].bwd_stall_ps, over.layers[2].demand_ps + 100);
}

TEST(HwPolicy, PrefetchStopsAtAConvLayerAndConvPolicyOffloadsOnlyConvInputs) {
  // input -> conv0 -> conv1 -> pool2 -> relu3 -> linear4. vdnn-all offloads X of 1..4.
  hw::Network net;
  net.input_tensor = 0;
  const char* ops[] = {"conv", "conv", "pool", "relu", "linear"};
  for (int i = 0; i < 5; ++i) net.layers.push_back(mk("l" + std::to_string(i), ops[i], 100, 100, i, 1000));
  auto e = engine(hw::Placement::none);
  auto all = closed(net, hw::Policy::vdnn_all, e, link(1e9));
  // linear4: its own X on demand, prefetch relu3's. relu3: prefetch pool2's. pool2: prefetch conv1's.
  // conv1: conv0's X is the input (not offloaded) and conv0 is a conv: nothing. conv0: nothing.
  EXPECT_GT(all.layers[4].demand_ps, 0);
  EXPECT_EQ(all.layers[4].prefetch_layer, 3);
  EXPECT_EQ(all.layers[3].prefetch_layer, 2);
  EXPECT_EQ(all.layers[2].prefetch_layer, 1);
  EXPECT_EQ(all.layers[1].prefetch_layer, -1);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(all.layers[i].demand_ps, 0) << i;
  auto conv = closed(net, hw::Policy::vdnn_conv, e, link(1e9));
  EXPECT_EQ(conv.offloaded_bytes, 1000);  // only conv1's input
  // Walking back from linear4: relu3, pool2 offer nothing, conv1 offers its X.
  EXPECT_EQ(conv.layers[4].prefetch_layer, 1);
  EXPECT_EQ(conv.layers[1].demand_ps, 0);
}

TEST(HwPolicy, SharedTensorIsOffloadedOnceAndNeededByItsLastConsumer) {
  // Tensors read by several layers whose backward needs them: the input of each of GoogLeNet's 9
  // inception modules (1x1, 3x3_reduce, 5x5_reduce, pool), the squeeze output of SqueezeNet's 8
  // fire modules (two expands), the input of ResNet-50's 4 projection blocks (branch2a, branch1;
  // the residual add needs no activation).
  for (auto [name, expected] : {std::pair{"googlenet", 9}, {"squeezenet", 8}, {"resnet50", 4}}) {
    auto net = hw::zoo_network(name, 4);
    auto plan = hw::plan_offload(net, hw::Policy::vdnn_all);
    int shared = 0;
    std::set<int> tensors;
    for (const auto& item : plan.items) {
      EXPECT_LE(item.offload_at, item.need_at);
      EXPECT_TRUE(tensors.insert(item.tensor).second) << "tensor offloaded twice";
      if (item.need_at > item.offload_at) ++shared;
    }
    EXPECT_EQ(shared, expected) << name;
  }
}

TEST(HwReference, ClosedFormEqualsEventReplayOnRandomNetworks) {
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int> len(1, 60);
  for (int k = 0; k < 300; ++k) {
    auto net = random_net(rng, len(rng));
    for (auto p : {hw::Policy::vdnn_all, hw::Policy::vdnn_conv}) {
      hw::StudyConfig cfg;
      cfg.policy = p;
      cfg.link = link(std::uniform_real_distribution<double>(1e9, 1e11)(rng), 1'500'000);
      cfg.engines = {engine(hw::Placement::dma, 40e9, 0), engine(hw::Placement::mc, 0, 30e9),
                     engine(hw::Placement::sm)};
      auto st = hw::run_study(net, cfg);
      ASSERT_TRUE(st.disagreement.empty()) << st.disagreement;
      ASSERT_EQ(st.results.size(), 5u);
      for (size_t c = 0; c < st.results.size(); ++c) {
        EXPECT_EQ(st.results[c].total_ps, st.events[c].total_ps);
        // Each stream runs one op at a time.
        hw::Ps end[2] = {0, 0};
        for (const auto& ev : st.events[c].events) {
          int s = ev.stream == "compute" ? 0 : 1;
          EXPECT_GE(ev.start_ps, end[s]);
          end[s] = ev.end_ps;
        }
      }
    }
  }
}

TEST(HwReference, ZooNetworksAgreeOnBothReplays) {
  for (const auto& name : hw::zoo_names()) {
    auto net = hw::zoo_network(name, 64);
    hw::GpuPreset gpu;
    gpu.name = "test";
    gpu.dram_gbps = 500;
    gpu.peak_tflops["fp32"] = 10;
    hw::apply_roofline(net, gpu, "fp32");
    net.set_density(0.35);
    hw::StudyConfig cfg;
    cfg.link = link(12.6e9, 2'000'000);
    cfg.engines = {engine(hw::Placement::dma, 137e9), engine(hw::Placement::sm)};
    for (auto p : {hw::Policy::vdnn_all, hw::Policy::vdnn_conv}) {
      cfg.policy = p;
      auto st = hw::run_study(net, cfg);
      EXPECT_TRUE(st.disagreement.empty()) << st.disagreement;
      EXPECT_GE(st.results[1].total_ps, st.results[0].total_ps) << name;
      EXPECT_LE(st.results[2].total_ps, st.results[1].total_ps) << name;
    }
  }
}

TEST(HwEngine, ReadBandwidthAndCompressorLimitTheOffload) {
  hw::OffloadItem item;
  item.bytes = 1'000'000'000;
  std::map<std::string, double> r = {{"zvc", 10.0}};
  item.ratio = &r;
  const auto lk = link(10e9, 0);
  // Link alone: 1e8 compressed bytes at 10 GB/s = 10 ms.
  EXPECT_EQ(hw::item_times(item, engine(hw::Placement::mc), lk).offload_ps, 10'000'000'000);
  // Read at 50 GB/s: 20 ms.
  EXPECT_EQ(hw::item_times(item, engine(hw::Placement::dma, 50e9), lk).offload_ps, 20'000'000'000);
  // Compressor at 25 GB/s: 40 ms.
  EXPECT_EQ(hw::item_times(item, engine(hw::Placement::dma, 50e9, 25e9), lk).offload_ps, 40'000'000'000);
  // Software: plain DMA of the compressed bytes plus a streaming kernel reading 1e9 and writing 1e8 at 400 GB/s.
  auto sm = hw::item_times(item, engine(hw::Placement::sm), lk);
  EXPECT_EQ(sm.offload_ps, 10'000'000'000);
  EXPECT_EQ(sm.compress_ps, 2'750'000'000);
  EXPECT_EQ(sm.link_bytes, 100'000'000);
}

TEST(HwEngine, ParsesNamesAndRejectsUnknownOnes) {
  EXPECT_EQ(hw::parse_policy("vdnn-conv"), hw::Policy::vdnn_conv);
  EXPECT_EQ(hw::parse_placement("mc"), hw::Placement::mc);
  EXPECT_THROW(hw::parse_policy("vdnn-dyn"), hw::ModelError);
  EXPECT_THROW(hw::parse_placement("l2"), hw::ModelError);
}
