// Unit tests of the interposer's pure logic: storage planning and packing, iteration detection,
// the staging ring, option parsing, the backend descriptor shadow, and the spool reader.
#include "iteration.hpp"
#include "ring.hpp"
#include "shadow.hpp"
#include "tensor_desc.hpp"

#include <cdma/capture/collector.hpp>
#include <cdma/capture/config.hpp>

#include <cudnn_graph.h>
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <random>

using namespace cdma::capture;

namespace {

TensorDesc desc4(std::int64_t n, std::int64_t c, std::int64_t h, std::int64_t w, std::int64_t sn, std::int64_t sc,
                 std::int64_t sh, std::int64_t sw) {
  TensorDesc d;
  d.cudnn_dtype = 0;
  d.nd = 4;
  std::int64_t dims[4] = {n, c, h, w}, str[4] = {sn, sc, sh, sw};
  std::memcpy(d.dims, dims, sizeof(dims));
  std::memcpy(d.strides, str, sizeof(str));
  return d;
}

TEST(StoragePlan, LayoutsFollowStrides) {
  auto p = plan_storage(desc4(2, 3, 4, 5, 60, 20, 5, 1));
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.layout, spool::Layout::NCHW);
  EXPECT_TRUE(p.packed);
  EXPECT_EQ(p.extent_bytes, 2 * 3 * 4 * 5 * 4);
  p = plan_storage(desc4(2, 3, 4, 5, 60, 1, 15, 3));  // NHWC
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.layout, spool::Layout::NHWC);
  EXPECT_EQ((std::vector<std::int64_t>(p.dims, p.dims + 4)), (std::vector<std::int64_t>{2, 4, 5, 3}));
  EXPECT_TRUE(p.packed);
  p = plan_storage(desc4(2, 3, 4, 5, 1, 40, 10, 2));  // CHWN
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.layout, spool::Layout::CHWN);
  p = plan_storage(desc4(2, 3, 4, 5, 3 * 4 * 8, 4 * 8, 8, 1));  // padded rows
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.layout, spool::Layout::NCHW);
  EXPECT_FALSE(p.packed);
  EXPECT_EQ(p.extent_bytes, ((2 - 1) * 96 + 2 * 32 + 3 * 8 + 4 + 1) * 4);
  TensorDesc nc;
  nc.cudnn_dtype = 2;
  nc.nd = 2;
  nc.dims[0] = 8;
  nc.dims[1] = 10;
  nc.strides[0] = 10;
  nc.strides[1] = 1;
  p = plan_storage(nc);
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.layout, spool::Layout::NC);
  EXPECT_EQ(p.dtype, spool::DType::f16);
  TensorDesc bad = desc4(2, 3, 4, 5, 60, 20, 5, 1);
  bad.cudnn_dtype = 1;  // double
  EXPECT_FALSE(plan_storage(bad).ok);
}

TEST(StoragePlan, FiveDimsMergeDepthIntoHeight) {
  TensorDesc d;
  d.cudnn_dtype = 0;
  d.nd = 5;
  std::int64_t dims[5] = {2, 3, 4, 5, 6}, str[5] = {360, 120, 30, 6, 1};
  std::memcpy(d.dims, dims, sizeof(dims));
  std::memcpy(d.strides, str, sizeof(str));
  auto p = plan_storage(d);
  ASSERT_TRUE(p.ok);
  EXPECT_EQ((std::vector<std::int64_t>(p.dims, p.dims + 4)), (std::vector<std::int64_t>{2, 3, 20, 6}));
  EXPECT_TRUE(p.packed);
}

TEST(StoragePlan, PackGathersPaddedTensorsLikeAReference) {
  std::mt19937 rng(7);
  auto d = desc4(2, 3, 4, 5, 3 * 4 * 7, 4 * 7, 7, 1);
  auto p = plan_storage(d);
  std::vector<float> src(static_cast<std::size_t>(p.extent_bytes / 4));
  for (auto& v : src) v = static_cast<float>(rng() % 100);
  std::vector<float> dst(static_cast<std::size_t>(p.elements)), ref;
  pack_tensor(p, reinterpret_cast<const unsigned char*>(src.data()), reinterpret_cast<unsigned char*>(dst.data()));
  for (int n = 0; n < 2; ++n)
    for (int c = 0; c < 3; ++c)
      for (int h = 0; h < 4; ++h)
        for (int w = 0; w < 5; ++w) ref.push_back(src[static_cast<std::size_t>(n * 84 + c * 28 + h * 7 + w)]);
  EXPECT_EQ(dst, ref);
}

TEST(Iteration, AutoDetectsTrainingIterations) {
  IterationTracker t(IterationMode::kAuto, 0);
  int w0 = 0, w1 = 0;
  std::int64_t dims[4] = {2, 3, 8, 8};
  auto key0 = IterationTracker::anchor_key("conv", &w0, dims, 4);
  auto key1 = IterationTracker::anchor_key("conv", &w1, dims, 4);
  for (int it = 0; it < 3; ++it) {
    auto a = t.on_forward("conv", key0, nullptr, 0);
    EXPECT_EQ(a.iteration, it);
    EXPECT_EQ(a.layer, "conv0");
    EXPECT_EQ(a.layer_index, 0);
    std::uint64_t link = IterationTracker::link_key("conv.w", &w1);
    auto b = t.on_forward("conv", key1, &link, 1);
    EXPECT_EQ(b.layer, "conv1");
    EXPECT_EQ(b.layer_index, 1);
    // The first layer's key seen again inside the forward pass (no backward yet) is not a new
    // iteration once training has shown backward calls.
    auto bw = t.on_backward("conv", &link, 1);
    EXPECT_EQ(bw.layer, "conv1");
    EXPECT_EQ(bw.iteration, it);
    auto unknown = t.on_backward("conv", nullptr, 0);
    EXPECT_EQ(unknown.layer_index, -1);
  }
  EXPECT_EQ(t.iterations_seen(), 3);
}

TEST(Iteration, ForwardOnlyLoopsAndExplicitModes) {
  IterationTracker t(IterationMode::kAuto, 0);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(t.on_forward("conv", 42, nullptr, 0).iteration, i);
    t.on_forward("pool", 43, nullptr, 0);
  }
  IterationTracker m(IterationMode::kMarker, 0);
  m.mark();  // first mark, nothing before it: still iteration 0
  EXPECT_EQ(m.on_forward("conv", 1, nullptr, 0).iteration, 0);
  EXPECT_EQ(m.on_forward("conv", 1, nullptr, 0).iteration, 0);  // markers only
  m.mark();
  EXPECT_EQ(m.on_forward("conv", 1, nullptr, 0).iteration, 1);
  IterationTracker c(IterationMode::kCalls, 3);
  std::vector<std::int64_t> its;
  for (int i = 0; i < 7; ++i) its.push_back(c.on_forward("relu", 5, nullptr, 0).iteration);
  EXPECT_EQ(its, (std::vector<std::int64_t>{0, 0, 0, 1, 1, 1, 2}));
}

// A failed call is only peeked at (never reported with on_*): PyTorch's retried convolution plans.
TEST(Iteration, FailedCallsDoNotAdvanceTheTracker) {
  IterationTracker t(IterationMode::kAuto, 0);
  int w0 = 0, w1 = 0;
  std::int64_t dims[4] = {2, 3, 8, 8};
  auto key0 = IterationTracker::anchor_key("conv", &w0, dims, 4);
  auto key1 = IterationTracker::anchor_key("conv", &w1, dims, 4);
  std::uint64_t link = IterationTracker::link_key("conv.w", &w1);
  for (int it = 0; it < 3; ++it) {
    // The first plan of conv0 fails, twice, then one runs: same names for all, one layer.
    for (int retry = 0; retry < 2; ++retry) {
      auto p = t.peek_forward("conv", key0);
      EXPECT_EQ(p.iteration, it);
      EXPECT_EQ(p.layer, "conv0");
      EXPECT_EQ(p.layer_index, 0);
    }
    auto p = t.peek_forward("conv", key0);
    auto a = t.on_forward("conv", key0, nullptr, 0);
    EXPECT_EQ(a.iteration, p.iteration);
    EXPECT_EQ(a.layer, p.layer);
    EXPECT_EQ(a.layer_index, p.layer_index);
    EXPECT_EQ(a.iteration, it);
    // conv1 fails once, then succeeds.
    EXPECT_EQ(t.peek_forward("conv", key1).layer, "conv1");
    EXPECT_EQ(t.on_forward("conv", key1, &link, 1).layer, "conv1");
    // A failed backward call is named like a successful one but is not a backward call seen.
    auto pb = t.peek_backward("conv", &link, 1);
    EXPECT_EQ(pb.layer, "conv1");
    EXPECT_EQ(pb.iteration, it);
    if (it == 0) {
      // Without a successful backward call, conv0's key seen again would start an iteration only
      // in a forward-only loop; here no backward was ever reported, so it would (peek says so).
      EXPECT_EQ(t.peek_forward("conv", key0).iteration, 1);
    }
    EXPECT_EQ(t.on_backward("conv", &link, 1).layer, "conv1");
  }
  EXPECT_EQ(t.iterations_seen(), 3);
  // Calls mode: failed calls are not counted.
  IterationTracker c(IterationMode::kCalls, 2);
  std::vector<std::int64_t> its;
  for (int i = 0; i < 5; ++i) {
    its.push_back(c.peek_forward("relu", 5).iteration);  // a failed call before each successful one
    its.push_back(c.on_forward("relu", 5, nullptr, 0).iteration);
  }
  EXPECT_EQ(its, (std::vector<std::int64_t>{0, 0, 0, 0, 1, 1, 1, 1, 2, 2}));
}

TEST(Ring, ReservesWrapsAndReleasesOutOfOrder) {
  Ring r;
  r.reset(100);
  std::size_t a, b, c, d;
  ASSERT_TRUE(r.reserve(40, a));
  ASSERT_TRUE(r.reserve(40, b));
  EXPECT_FALSE(r.reserve(40, c));  // 20 left at the end, nothing at the front
  r.release(b);                    // out of order: a still holds the front
  EXPECT_FALSE(r.reserve(40, c));
  r.release(a);
  EXPECT_EQ(r.used(), 0u);
  ASSERT_TRUE(r.reserve(64, c));
  ASSERT_TRUE(r.reserve(32, d));
  EXPECT_EQ(c, 0u);
  EXPECT_EQ(d, 64u);
  r.release(c);
  ASSERT_TRUE(r.reserve(48, a));  // wraps to the front
  EXPECT_EQ(a, 0u);
  EXPECT_FALSE(r.reserve(200, b));  // larger than the ring
  r.release(d);
  r.release(a);
  EXPECT_EQ(r.used(), 0u);
}

TEST(Config, ParsesAndRejects) {
  Config c;
  EXPECT_EQ(set_option(c, "CDMA_CAPTURE_BUDGET", "512M"), "");
  EXPECT_EQ(c.budget, 512ll << 20);
  EXPECT_EQ(set_option(c, "CDMA_CAPTURE_OPS", "conv,bn"), "");
  EXPECT_EQ(c.ops, kOpConv | kOpBn);
  EXPECT_EQ(set_option(c, "CDMA_CAPTURE_ITERATION", "calls:12"), "");
  EXPECT_EQ(c.iteration_calls, 12);
  EXPECT_NE(set_option(c, "CDMA_CAPTURE_OPS", "conv,bogus"), "");
  EXPECT_NE(set_option(c, "CDMA_CAPTURE_EVERY", "0"), "");
  EXPECT_NE(set_option(c, "CDMA_CAPTURE_BUDGET", "12Q"), "");
  EXPECT_NE(set_option(c, "CDMA_CAPTURE_MODE", "fast"), "");
  EXPECT_NE(set_option(c, "CDMA_CAPTURE_NOPE", "1"), "");
  Config s;
  s.skip = 1;
  s.every = 2;
  s.first = 2;
  std::vector<int> sampled;
  for (int i = 0; i < 8; ++i)
    if (iteration_sampled(s, i)) sampled.push_back(i);
  EXPECT_EQ(sampled, (std::vector<int>{1, 3}));
}

TEST(Shadow, PlanSurvivesItsDescriptorsAndJoinsTheVariantPack) {
  BackendShadow sh;
  int mem[16];
  void* x = &mem[0];
  void* w = &mem[1];
  void* y = &mem[2];
  void* op = &mem[3];
  void* graph = &mem[4];
  void* heur = &mem[5];
  void* cfg = &mem[6];
  void* plan = &mem[7];
  void* vp = &mem[8];
  auto tensor = [&](void* d, std::int64_t uid, bool virt) {
    sh.on_create(d, CUDNN_BACKEND_TENSOR_DESCRIPTOR);
    std::int64_t dims[4] = {2, 3, 8, 8}, str[4] = {192, 64, 8, 1};
    int dt = CUDNN_DATA_FLOAT;
    sh.on_set(d, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &dt);
    sh.on_set(d, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dims);
    sh.on_set(d, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, str);
    sh.on_set(d, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid);
    sh.on_set(d, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &virt);
    sh.on_finalize(d);
  };
  tensor(x, 'x', false);
  tensor(w, 'w', false);
  tensor(y, 'y', false);
  sh.on_create(op, CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR);
  sh.on_set(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x);
  sh.on_set(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &w);
  sh.on_set(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y);
  sh.on_finalize(op);
  sh.on_create(graph, CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
  sh.on_set(graph, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &op);
  sh.on_finalize(graph);
  sh.on_create(heur, CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
  sh.on_set(heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &graph);
  sh.on_finalize(heur);
  sh.on_create(cfg, CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
  sh.on_get(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &cfg);
  sh.on_create(plan, CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
  sh.on_set(plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &cfg);
  sh.on_finalize(plan);
  for (void* d : {x, w, y, op, graph, heur, cfg}) sh.on_destroy(d);
  EXPECT_EQ(sh.live_descriptors(), 1u);
  sh.on_create(vp, CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
  std::int64_t uids[3] = {'y', 'x', 'w'};
  void* ptrs[3] = {&mem[12], &mem[10], &mem[11]};
  sh.on_set(vp, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, 3, uids);
  sh.on_set(vp, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, 3, ptrs);
  ExecuteView v;
  ASSERT_TRUE(sh.execute_view(plan, vp, v));
  ASSERT_EQ(v.graph->ops.size(), 1u);
  const OpSnap* p = v.graph->primary();
  EXPECT_STREQ(p->op, "conv");
  EXPECT_EQ(p->phase, 0);
  ASSERT_EQ(p->roles.size(), 3u);
  for (const auto& r : p->roles) {
    if (std::strcmp(r.role, "x") == 0) {
      EXPECT_EQ(v.pointer_of(r.tensor->uid), &mem[10]);
      EXPECT_EQ(r.tensor->desc.dims[1], 3);
    }
  }
  ExecuteView unknown;
  EXPECT_FALSE(sh.execute_view(&mem[15], vp, unknown));
}

TEST(SpoolReader, RejectsForeignFilesAndStopsAtATruncatedRecord) {
  char tmpl[] = "/tmp/cdma-spool-unit-XXXXXX";
  int fd = mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  close(fd);
  {
    std::ofstream f(tmpl, std::ios::binary);
    f << "not a spool at all, but longer than sixty-four bytes ...........................";
  }
  EXPECT_THROW(SpoolReader{tmpl}, CaptureError);
  spool::FileHeader h{};
  std::memcpy(h.magic, spool::kMagic, 8);
  h.version = 1;
  h.header_bytes = 64;
  spool::CorrRecord c{5, 6};
  spool::RecordHeader rh{spool::kRecordMagic, static_cast<std::uint16_t>(spool::RecordType::kCorr), 0, sizeof(c)};
  {
    std::ofstream f(tmpl, std::ios::binary);
    f.write(reinterpret_cast<char*>(&h), sizeof(h));
    f.write(reinterpret_cast<char*>(&rh), sizeof(rh));
    f.write(reinterpret_cast<char*>(&c), sizeof(c));
    f.write(reinterpret_cast<char*>(&rh), sizeof(rh));
    f.write(reinterpret_cast<char*>(&c), 5);  // cut short
  }
  SpoolReader r(tmpl);
  SpoolRecord rec;
  ASSERT_TRUE(r.next(rec, true));
  EXPECT_EQ(rec.type, spool::RecordType::kCorr);
  EXPECT_FALSE(r.next(rec, true));
  EXPECT_TRUE(r.truncated());
  h.version = 2;
  {
    std::ofstream f(tmpl, std::ios::binary);
    f.write(reinterpret_cast<char*>(&h), sizeof(h));
  }
  try {
    SpoolReader bad(tmpl);
    FAIL() << "a newer spool version must be refused";
  } catch (const CaptureError& e) {
    EXPECT_NE(std::string(e.what()).find("version 2"), std::string::npos);
  }
  std::remove(tmpl);
}

}  // namespace
