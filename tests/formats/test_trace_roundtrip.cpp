// Write-then-read round trips of every dtype and layout, timeline and stats rows.
#include "test_util.hpp"
#include "trace_fixture.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

using namespace cdma;
using namespace cdma::formats;
using cdma::test::make_meta;
using cdma::test::random_bytes;

namespace {

struct Case {
  DType dtype;
  Layout layout;
  int deflate;
};

class RoundTrip : public ::testing::TestWithParam<Case> {};

TEST_P(RoundTrip, BytesAndMetadataSurvive) {
  test::TempDir dir;
  auto path = dir / "t.h5";
  auto c = GetParam();
  std::vector<TensorMeta> metas;
  std::vector<std::vector<std::byte>> datas;
  {
    WriterOptions o;
    o.deflate_level = c.deflate;
    TraceWriter w(path, test::test_attrs(), o);
    for (int i = 0; i < 3; ++i) {
      auto m = make_meta(c.dtype, c.layout, i * 10, i);
      auto d = random_bytes(static_cast<std::size_t>(m.bytes()), static_cast<unsigned>(i + 1));
      if (c.dtype == DType::f32 && d.size() >= 8) {  // -0.0 and a NaN payload must survive bit-exactly
        std::uint32_t neg_zero = 0x80000000u, nan = 0x7fc00123u;
        std::memcpy(d.data(), &neg_zero, 4);
        std::memcpy(d.data() + 4, &nan, 4);
      }
      EXPECT_EQ(w.append_tensor(m, d), i);
      metas.push_back(m);
      datas.push_back(d);
    }
    w.close();
  }
  TraceReader r(path);
  EXPECT_TRUE(r.attrs().complete);
  EXPECT_TRUE(r.warnings().empty());
  EXPECT_EQ(r.attrs().producer, "cdma-test 0");
  EXPECT_EQ(r.attrs().model.value_or(""), "unit");
  ASSERT_EQ(r.tensors().size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    const auto& t = r.tensors()[i];
    char name[16];
    std::snprintf(name, sizeof name, "%010zu", i);
    EXPECT_EQ(t.name, name);
    EXPECT_EQ(t.dims, metas[i].dims);
    EXPECT_EQ(t.dtype, c.dtype);
    EXPECT_EQ(t.layout, c.layout);
    EXPECT_EQ(t.layer, metas[i].layer);
    EXPECT_EQ(t.layer_index, metas[i].layer_index);
    EXPECT_EQ(t.op, metas[i].op);
    EXPECT_EQ(t.iteration, metas[i].iteration);
    EXPECT_EQ(t.call, metas[i].call);
    EXPECT_EQ(r.read(t), datas[i]);
  }
}

std::vector<Case> all_cases() {
  std::vector<Case> v;
  for (auto d : {DType::f32, DType::f16, DType::bf16, DType::i8, DType::u8})
    for (auto l : {Layout::NCHW, Layout::NHWC, Layout::CHWN, Layout::NC})
      for (int z : {0, 6}) v.push_back({d, l, z});
  return v;
}

INSTANTIATE_TEST_SUITE_P(AllDtypesLayouts, RoundTrip, ::testing::ValuesIn(all_cases()), [](const auto& c) {
  return std::string(to_string(c.param.dtype)) + "_" + std::string(to_string(c.param.layout)) +
         (c.param.deflate ? "_deflate" : "_contiguous");
});

TEST(Trace, TimelineStatsAndRootAttributes) {
  test::TempDir dir;
  auto path = dir / "t.h5";
  {
    TraceWriter w(path, test::test_attrs());
    for (int i = 0; i < 5000; ++i) {  // more than one row buffer
      TimelineRow r;
      r.iteration = i / 100;
      r.call = i;
      r.layer_index = i % 7;
      r.phase = static_cast<std::int8_t>(i % 2);
      r.op = "conv";
      r.layer = "a-very-long-layer-name-that-is-longer-than-sixty-four-bytes-for-sure-yes";
      r.start_ns = i * 10;
      r.end_ns = i * 10 + 5;
      r.device_ns = i % 3 ? 4 : -1;
      w.append_timeline(r);
    }
    StatsRow s;
    s.iteration = 2;
    s.call = 9;
    s.layer = "relu1";
    s.op = "relu";
    s.role = "x";
    s.dtype = "float32";
    s.elements = 1000;
    s.nonzeros = 300;
    s.zero_runs = 50;
    w.append_stats(s);
    w.set_dropped_tensors(4);
    w.set_attribute("device", "cpu");
    w.close();
  }
  TraceReader r(path);
  EXPECT_EQ(r.attrs().dropped_tensors.value_or(-1), 4);
  EXPECT_EQ(r.attrs().device.value_or(""), "cpu");
  EXPECT_TRUE(r.tensors().empty());
  auto tl = r.timeline();
  ASSERT_EQ(tl.size(), 5000u);
  EXPECT_EQ(tl[4321].call, 4321);
  EXPECT_EQ(tl[4321].phase, 1);
  EXPECT_EQ(tl[4321].iteration, 43);
  EXPECT_EQ(tl[4321].layer.size(), 64u);  // fixed 64-byte field, truncated
  EXPECT_EQ(tl[4320].device_ns, -1);
  auto st = r.stats();
  ASSERT_EQ(st.size(), 1u);
  EXPECT_EQ(st[0].nonzeros, 300);
  EXPECT_EQ(st[0].zero_runs, 50);
  EXPECT_EQ(st[0].role, "x");
}

TEST(Trace, WriterRejectsInconsistentTensors) {
  test::TempDir dir;
  TraceWriter w(dir / "t.h5", test::test_attrs());
  auto m = make_meta(DType::f32, Layout::NCHW, 0, 0);
  std::vector<std::byte> short_data(static_cast<std::size_t>(m.bytes()) - 1);
  EXPECT_THROW(w.append_tensor(m, short_data), TraceError);
  auto bad_rank = m;
  bad_rank.dims = {4, 4};
  EXPECT_THROW(w.append_tensor(bad_rank, std::vector<std::byte>(64)), TraceError);
  auto bad_op = m;
  bad_op.op = "convolution";
  EXPECT_THROW(w.append_tensor(bad_op, std::vector<std::byte>(static_cast<std::size_t>(m.bytes()))), TraceError);
  EXPECT_EQ(w.tensor_count(), 0);
}

// Readers refuse layer_index < 0 ("out of range"), so the writer refuses it in tensors and rows,
// naming the object and the value; the file stays readable with what was accepted.
TEST(Trace, WriterRefusesNegativeLayerIndex) {
  test::TempDir dir;
  auto path = dir / "t.h5";
  {
    TraceWriter w(path, test::test_attrs());
    auto m = make_meta(DType::f32, Layout::NCHW, 0, 0);
    const std::vector<std::byte> data(static_cast<std::size_t>(m.bytes()));
    auto bad = m;
    bad.layer_index = -1;
    try {
      w.append_tensor(bad, data);
      ADD_FAILURE() << "a tensor with layer_index -1 was written";
    } catch (const TraceError& e) {
      EXPECT_NE(std::string(e.what()).find("layer_index -1 is negative"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("/tensors/"), std::string::npos) << e.what();
    }
    EXPECT_EQ(w.tensor_count(), 0);
    TimelineRow tl;
    tl.layer_index = -1;
    tl.call = 7;
    tl.op = "conv";
    try {
      w.append_timeline(tl);
      ADD_FAILURE() << "a timeline row with layer_index -1 was written";
    } catch (const TraceError& e) {
      EXPECT_NE(std::string(e.what()).find("/timeline"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("call 7"), std::string::npos) << e.what();
    }
    StatsRow st;
    st.layer_index = -2;
    st.op = "conv";
    st.role = "x";
    st.dtype = "float32";
    EXPECT_THROW(w.append_stats(st), TraceError);
    w.append_tensor(m, data);
    tl.layer_index = 0;
    w.append_timeline(tl);
    w.close();
  }
  TraceReader r(path);
  EXPECT_EQ(r.tensors().size(), 1u);
  EXPECT_EQ(r.timeline().size(), 1u);
  EXPECT_FALSE(r.has_stats());
}

TEST(Trace, WriterRefusesToClobber) {
  test::TempDir dir;
  auto path = dir / "t.h5";
  { TraceWriter w(path, test::test_attrs()); }
  EXPECT_THROW(TraceWriter(path, test::test_attrs()), TraceError);
  WriterOptions o;
  o.overwrite = true;
  EXPECT_NO_THROW(TraceWriter(path, test::test_attrs(), o));
}

TEST(Trace, DestructorClosesCleanly) {
  test::TempDir dir;
  auto path = dir / "t.h5";
  {
    TraceWriter w(path, test::test_attrs());
    auto m = make_meta(DType::u8, Layout::NC, 0, 0);
    w.append_tensor(m, random_bytes(static_cast<std::size_t>(m.bytes()), 3));
  }
  TraceReader r(path);
  EXPECT_TRUE(r.attrs().complete);
  EXPECT_EQ(r.tensors().size(), 1u);
}

TEST(Trace, EmptyTensorIsAllowed) {
  test::TempDir dir;
  auto path = dir / "t.h5";
  {
    TraceWriter w(path, test::test_attrs());
    auto m = make_meta(DType::f32, Layout::NC, 0, 0);
    m.dims = {0, 16};
    w.append_tensor(m, {});
    w.close();
  }
  TraceReader r(path);
  ASSERT_EQ(r.tensors().size(), 1u);
  EXPECT_EQ(r.tensors()[0].elements(), 0);
  EXPECT_TRUE(r.read(r.tensors()[0]).empty());
}

}  // namespace
