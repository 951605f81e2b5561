// The per-tensor pure function against direct library calls (zlib, zstd, lz4) and a plain count.
#include <cdma/analyze/tensor.hpp>
#include <cdma/analyze/transform.hpp>
#include <cdma/formats/synth.hpp>

#include <gtest/gtest.h>

#include "ref_codec_sizes.hpp"

#include <algorithm>

namespace cdma::analyze {
namespace {

using formats::DType;
using formats::Layout;

using test::lz4_size;
using test::zlib_size;
using test::zstd_size;

template <class F>
std::size_t chunked(std::span<const std::byte> d, std::size_t chunk, F f) {
  if (chunk == 0) return f(d);
  std::size_t s = 0;
  for (std::size_t i = 0; i < d.size(); i += chunk) s += f(d.subspan(i, std::min(chunk, d.size() - i)));
  return s;
}

// Plain element-by-element counts (docs/spec/CODECS.md: zero = all bits zero).
struct Plain {
  std::uint64_t nnz = 0, runs = 0;
};
Plain plain_count(std::span<const std::byte> d, std::size_t w) {
  Plain p;
  bool prev_zero = false;
  for (std::size_t i = 0; i < d.size(); i += w) {
    bool zero = std::all_of(d.begin() + static_cast<std::ptrdiff_t>(i), d.begin() + static_cast<std::ptrdiff_t>(i + w),
                            [](std::byte b) { return b == std::byte{0}; });
    if (!zero) ++p.nnz;
    if (zero && !prev_zero) ++p.runs;
    prev_zero = zero;
  }
  return p;
}

formats::TensorMeta meta_of(const formats::SynthSpec& s, Layout l = Layout::NCHW) {
  formats::TensorMeta m;
  m.dims = s.dims;
  m.dtype = s.dtype;
  m.layout = l;
  m.layer = "l";
  m.op = "conv";
  return m;
}

class TensorVsLibraries : public ::testing::TestWithParam<std::size_t> {};

TEST_P(TensorVsLibraries, ByteCodecsMatchDirectCalls) {
  const std::size_t chunk = GetParam();
  formats::SynthSpec spec;
  spec.dims = {4, 32, 16, 16};
  spec.density = 0.3;
  spec.clustering = formats::Clustering::mixed;
  spec.seed = 42;
  auto data = formats::synth_activations(spec);
  Options o;
  o.codecs = {"zvc", "zrle-4", "zlib-6", "zlib-1", "zstd-1", "zstd-3", "lz4"};
  o.chunk_bytes = chunk;
  o.layouts = {"stored", "NHWC"};
  o.dtypes = {"stored", "float16", "bfloat16"};
  o.validate();
  TensorAnalyzer an(o);
  Workspace ws;
  auto res = an.analyze(data, meta_of(spec), ws, "t");
  ASSERT_EQ(res.size(), 6u);
  for (std::size_t v = 0; v < res.size(); ++v) {
    const auto& var = an.variants()[v];
    // Build the variant's bytes independently of the analyzer's path.
    std::vector<std::byte> conv = data, perm;
    std::size_t w = 4;
    if (var.dtype != "stored") {
      ASSERT_TRUE(convert_dtype(data, DType::f32, *formats::parse_dtype(var.dtype), conv));
      w = 2;
    }
    if (var.layout == "NHWC") {
      permute_layout(conv, spec.dims, Layout::NCHW, Layout::NHWC, w, perm);
      conv = perm;
    }
    const auto& m = res[v];
    SCOPED_TRACE(var.layout + "/" + var.dtype);
    EXPECT_EQ(m.bytes, conv.size());
    EXPECT_EQ(m.elements, conv.size() / w);
    auto plain = plain_count(conv, w);
    EXPECT_EQ(m.nonzeros, plain.nnz);
    EXPECT_EQ(m.zero_runs, plain.runs);
    EXPECT_EQ(*m.codecs[2].bytes, chunked(conv, chunk / w * w, [](auto d) { return zlib_size(d, 6); }));
    EXPECT_EQ(*m.codecs[3].bytes, chunked(conv, chunk / w * w, [](auto d) { return zlib_size(d, 1); }));
    EXPECT_EQ(*m.codecs[4].bytes, chunked(conv, chunk / w * w, [](auto d) { return zstd_size(d, 1); }));
    EXPECT_EQ(*m.codecs[5].bytes, chunked(conv, chunk / w * w, [](auto d) { return zstd_size(d, 3); }));
    EXPECT_EQ(*m.codecs[6].bytes, chunked(conv, chunk / w * w, [](auto d) { return lz4_size(d); }));
    if (chunk == 0) {
      EXPECT_EQ(*m.codecs[0].bytes, 4 * ((m.elements + 31) / 32) + w * m.nonzeros);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Chunks, TensorVsLibraries, ::testing::Values(0, 4096, 1000));

TEST(Tensor, ZvcZrleSizesAgreeWithRealEncoders) {
  for (auto c : {formats::Clustering::uniform, formats::Clustering::spatial, formats::Clustering::channels}) {
    formats::SynthSpec spec;
    spec.dims = {2, 16, 8, 9};
    spec.density = 0.2;
    spec.clustering = c;
    spec.dtype = DType::f16;
    auto data = formats::synth_activations(spec);
    Options o;
    o.codecs = {"zvc", "zrle-1", "zrle-4", "zrle-16"};
    o.verify = true;  // encodes and decodes, and checks the encoded size against the counted one
    for (std::size_t chunk : {std::size_t{0}, std::size_t{256}, std::size_t{250}}) {
      o.chunk_bytes = chunk;
      o.validate();
      TensorAnalyzer an(o);
      Workspace ws;
      auto res = an.analyze(data, meta_of(spec), ws, "t");
      for (std::size_t i = 0; i < o.codecs.size(); ++i) {
        auto codec = formats::make_codec(o.codecs[i]);
        std::size_t want = 0;
        const std::size_t step = chunk ? chunk / 2 * 2 : data.size();
        for (std::size_t off = 0; off < data.size(); off += step) {
          auto part = std::span(data).subspan(off, std::min(step, data.size() - off));
          std::vector<std::byte> out(codec->max_encoded_size(part.size(), 2));
          want += codec->encode(part, 2, out);
        }
        EXPECT_EQ(*res[0].codecs[i].bytes, want) << o.codecs[i] << " chunk " << chunk;
      }
      // Zero runs are the tensor's, whatever the chunking.
      EXPECT_EQ(res[0].zero_runs, plain_count(data, 2).runs);
    }
  }
}

TEST(Tensor, ZeroRunAcrossChunkEdgeCountsOnce) {
  std::vector<float> v(64, 1.0f);
  for (int i = 10; i < 40; ++i) v[static_cast<std::size_t>(i)] = 0.0f;  // one run over the 16-element edges
  auto bytes = std::as_bytes(std::span(v));
  formats::TensorMeta m;
  m.dims = {1, 64};
  m.layout = Layout::NC;
  Options o;
  o.codecs = {"zvc"};
  o.chunk_bytes = 64;
  o.validate();
  TensorAnalyzer an(o);
  Workspace ws;
  auto r = an.analyze(bytes, m, ws, "t");
  EXPECT_EQ(r[0].zero_runs, 1u);
  EXPECT_EQ(r[0].nonzeros, 34u);
  // Four chunks of 16: each has its own 4-byte mask.
  EXPECT_EQ(*r[0].codecs[0].bytes, 4u * 4 + 4 * 34);
}

TEST(Tensor, NegativeZeroAndNanAreNonzero) {
  std::vector<std::uint32_t> v{0x80000000u, 0x7FC00000u, 0, 0};
  formats::TensorMeta m;
  m.dims = {1, 4};
  m.layout = Layout::NC;
  Options o;
  o.codecs = {"zvc"};
  o.validate();
  TensorAnalyzer an(o);
  Workspace ws;
  auto r = an.analyze(std::as_bytes(std::span(v)), m, ws, "t");
  EXPECT_EQ(r[0].nonzeros, 2u);
  EXPECT_EQ(r[0].zero_runs, 1u);
}

TEST(Tensor, TwoDTensorKeepsItsLayoutAndIntegersTheirDtype) {
  std::vector<std::int8_t> v{0, 1, 0, 0, 2, 3};
  formats::TensorMeta m;
  m.dims = {2, 3};
  m.layout = Layout::NC;
  m.dtype = DType::i8;
  Options o;
  o.codecs = {"zvc", "zrle-2"};
  o.layouts = {"nhwc"};
  o.dtypes = {"fp16"};
  o.validate();
  EXPECT_EQ(o.layouts[0], "NHWC");
  EXPECT_EQ(o.dtypes[0], "float16");
  TensorAnalyzer an(o);
  Workspace ws;
  auto r = an.analyze(std::as_bytes(std::span(v)), m, ws, "t");
  EXPECT_EQ(r[0].actual_layout, "NC");
  EXPECT_EQ(r[0].actual_dtype, "int8");
  EXPECT_EQ(r[0].bytes, 6u);
  EXPECT_EQ(r[0].nonzeros, 3u);
  EXPECT_EQ(r[0].zero_runs, 2u);
}

TEST(Tensor, WrongSizeIsAnError) {
  std::vector<std::byte> d(10);
  formats::TensorMeta m;
  m.dims = {1, 4};
  m.layout = Layout::NC;
  Options o;
  o.validate();
  TensorAnalyzer an(o);
  Workspace ws;
  EXPECT_THROW(an.analyze(d, m, ws, "t"), formats::Error);
}

TEST(Tensor, StatsRowsGiveExactZvcAndBoundedZrle) {
  Options o;
  o.codecs = {"zvc", "zrle-1", "zrle-4", "zlib-6"};
  o.dtypes = {"stored", "bfloat16"};
  o.layouts = {"stored", "NHWC"};
  o.validate();
  TensorAnalyzer an(o);
  formats::StatsRow row;
  row.dtype = "float32";
  row.elements = 64;
  row.nonzeros = 40;
  row.zero_runs = 12;  // 24 zeros in 12 runs
  auto r = an.analyze_stats(row);
  ASSERT_EQ(r.size(), 4u);
  EXPECT_TRUE(r[0].present);
  EXPECT_EQ(*r[0].codecs[0].bytes, 4u * 2 + 4 * 40);
  // k=4: every run fits one token: exact, 12 tokens.
  EXPECT_TRUE(r[0].codecs[2].exact);
  EXPECT_EQ(*r[0].codecs[2].bytes, (40u * 33 + 12 * 5 + 7) / 8);
  // k=1: runs may be longer than 2: at least max(12, 12) tokens, a lower bound.
  EXPECT_FALSE(r[0].codecs[1].exact);
  EXPECT_EQ(*r[0].codecs[1].bytes, (40u * 33 + 12 * 2 + 7) / 8);
  EXPECT_FALSE(r[0].codecs[3].bytes.has_value());
  // Another layout: ZVC still known, ZRLE not.
  EXPECT_TRUE(r[1].codecs[0].bytes.has_value());
  EXPECT_FALSE(r[1].codecs[2].bytes.has_value());
  EXPECT_FALSE(r[2].present);  // bfloat16 conversion of a row without bytes
  row.zero_runs = 30;          // more runs than zeros
  EXPECT_THROW(an.analyze_stats(row), formats::Error);
}

TEST(Options, RejectsBadNames) {
  Options o;
  o.codecs = {"zvc", "gzip"};
  EXPECT_THROW(o.validate(), formats::Error);
  Options l;
  l.layouts = {"NWHC"};
  EXPECT_THROW(l.validate(), formats::Error);
  Options d;
  d.dtypes = {"float64"};
  EXPECT_THROW(d.validate(), formats::Error);
  Options c;
  c.chunk_bytes = 2;
  EXPECT_THROW(c.validate(), formats::Error);
}

TEST(Options, IterationRanges) {
  auto r = parse_iteration_ranges("0-3,7,10-,-1");
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(r[0].first, 0);
  EXPECT_EQ(r[0].last, 3);
  EXPECT_EQ(r[1].first, 7);
  EXPECT_EQ(r[1].last, 7);
  EXPECT_EQ(r[2].first, 10);
  EXPECT_GT(r[2].last, 1000000);
  EXPECT_EQ(r[3].first, -1);
  EXPECT_EQ(r[3].last, -1);
  EXPECT_THROW(parse_iteration_ranges("3-1"), formats::Error);
  EXPECT_THROW(parse_iteration_ranges("a"), formats::Error);
  Filters f;
  f.iterations = r;
  f.ops = std::vector<std::string>{"conv"};
  EXPECT_TRUE(f.pass(2, "x", "conv", "x", true));
  EXPECT_FALSE(f.pass(5, "x", "conv", "x", true));
  EXPECT_FALSE(f.pass(2, "x", "relu", "x", true));
  // The offload set by default; every recorded tensor on request.
  EXPECT_FALSE(f.pass(2, "x", "conv", "x", false));
  f.offloaded_only = false;
  EXPECT_TRUE(f.pass(2, "x", "conv", "x", false));
}

}  // namespace
}  // namespace cdma::analyze
