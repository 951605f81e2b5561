// fp8 dtype variants (docs/spec/CODECS.md "Layouts and dtypes"): the conversions against exact
// tables computed in double from the OCP fp8 definitions, and the analyzer's fp8 variants.
#include <cdma/analyze/tensor.hpp>
#include <cdma/analyze/transform.hpp>
#include <cdma/formats/codec.hpp>
#include <cdma/formats/zero_scan.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

namespace cdma::analyze {
namespace {

std::uint32_t bits_of(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float float_of(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// One fp8 format from its definition: M mantissa bits, exponent bias, largest finite code.
struct Format {
  const char* name;
  int mant_bits;
  int bias;
  std::uint8_t max_code;
  std::uint8_t (*encode)(std::uint32_t);
  std::uint32_t (*decode)(std::uint8_t);
  // Value of a finite non-negative code, computed in double from sign/exponent/mantissa fields.
  double value(std::uint8_t c) const {
    const int e = c >> mant_bits;
    const int m = c & ((1 << mant_bits) - 1);
    if (e == 0) return std::ldexp(static_cast<double>(m), 1 - bias - mant_bits);
    return std::ldexp(1.0 + std::ldexp(static_cast<double>(m), -mant_bits), e - bias);
  }
  // The reference rounding: nearest finite code, ties to the even code, beyond the largest
  // finite value the largest finite value (saturation), the sign applied afterwards.
  std::uint8_t reference(float f) const {
    const double a = std::fabs(static_cast<double>(f));
    const std::uint8_t sign = std::signbit(f) ? 0x80 : 0;
    if (a >= value(max_code)) return static_cast<std::uint8_t>(sign | max_code);  // infinity too
    std::uint8_t best = 0;
    for (int c = 1; c <= max_code; ++c) {
      const double d = std::fabs(value(static_cast<std::uint8_t>(c)) - a), db = std::fabs(value(best) - a);
      if (d < db || (d == db && (c & 1) == 0)) best = static_cast<std::uint8_t>(c);
    }
    return static_cast<std::uint8_t>(sign | best);
  }
};

std::uint8_t enc_e4m3(std::uint32_t x) { return f32_to_fp8_e4m3(x); }
std::uint8_t enc_e5m2(std::uint32_t x) { return f32_to_fp8_e5m2(x); }
std::uint32_t dec_e4m3(std::uint8_t b) { return fp8_e4m3_to_f32(b); }
std::uint32_t dec_e5m2(std::uint8_t b) { return fp8_e5m2_to_f32(b); }

const Format kE4m3{"e4m3", 3, 7, 0x7E, enc_e4m3, dec_e4m3};
const Format kE5m2{"e5m2", 2, 15, 0x7B, enc_e5m2, dec_e5m2};

bool e4m3_nan(std::uint8_t b) { return (b & 0x7F) == 0x7F; }
bool e5m2_nan(std::uint8_t b) { return (b & 0x7C) == 0x7C && (b & 3); }

TEST(Fp8, LargestAndSmallestValues) {
  EXPECT_EQ(kE4m3.value(0x7E), 448.0);
  EXPECT_EQ(kE4m3.value(0x08), std::ldexp(1.0, -6));
  EXPECT_EQ(kE4m3.value(0x01), std::ldexp(1.0, -9));
  EXPECT_EQ(kE5m2.value(0x7B), 57344.0);
  EXPECT_EQ(kE5m2.value(0x04), std::ldexp(1.0, -14));
  EXPECT_EQ(kE5m2.value(0x01), std::ldexp(1.0, -16));
}

TEST(Fp8, EveryCodeWidensExactlyAndRoundTrips) {
  for (const Format* f : {&kE4m3, &kE5m2}) {
    SCOPED_TRACE(f->name);
    for (int c = 0; c < 256; ++c) {
      const auto b = static_cast<std::uint8_t>(c);
      const float w = float_of(f->decode(b));
      const bool nan = f == &kE4m3 ? e4m3_nan(b) : e5m2_nan(b);
      const bool inf = f == &kE5m2 && (b & 0x7F) == 0x7C;
      if (nan) {
        EXPECT_TRUE(std::isnan(w)) << c;
        EXPECT_EQ(std::signbit(w), (c & 0x80) != 0) << c;
        const auto back = f->encode(f->decode(b));
        EXPECT_TRUE(f == &kE4m3 ? e4m3_nan(back) : e5m2_nan(back)) << c;
        EXPECT_EQ(back & 0x80, c & 0x80) << c;
        continue;
      }
      if (inf) {
        EXPECT_TRUE(std::isinf(w)) << c;
        EXPECT_EQ(f->encode(f->decode(b)), (c & 0x80) | 0x7B) << c;  // infinity saturates
        continue;
      }
      const double v = f->value(static_cast<std::uint8_t>(c & 0x7F));
      EXPECT_EQ(static_cast<double>(w), (c & 0x80) ? -v : v) << c;
      EXPECT_EQ(std::signbit(w), (c & 0x80) != 0) << c;
      ASSERT_EQ(f->encode(bits_of(w)), b) << c;
    }
  }
}

TEST(Fp8, HalfwayCasesRoundToEven) {
  for (const Format* f : {&kE4m3, &kE5m2}) {
    SCOPED_TRACE(f->name);
    for (int c = 0; c < f->max_code; ++c) {
      const double lo = f->value(static_cast<std::uint8_t>(c)), hi = f->value(static_cast<std::uint8_t>(c + 1));
      const auto mid = static_cast<float>((lo + hi) / 2);
      ASSERT_EQ(static_cast<double>(mid), (lo + hi) / 2);  // exact in fp32
      const int even = (c & 1) ? c + 1 : c;
      EXPECT_EQ(f->encode(bits_of(mid)), even) << c;
      EXPECT_EQ(f->encode(bits_of(-mid)), 0x80 | even) << c;
      EXPECT_EQ(f->encode(bits_of(std::nextafter(mid, 0.0f))), c) << c;
      EXPECT_EQ(f->encode(bits_of(std::nextafter(mid, 1e9f))), c + 1) << c;
    }
  }
  // Named cases: the smallest subnormal's half goes to zero, 1.5 of it to 2 (even).
  EXPECT_EQ(f32_to_fp8_e4m3(bits_of(std::ldexp(1.0f, -10))), 0x00);
  EXPECT_EQ(f32_to_fp8_e4m3(bits_of(std::ldexp(3.0f, -10))), 0x02);
  EXPECT_EQ(f32_to_fp8_e4m3(bits_of(std::ldexp(15.0f, -10))), 0x08);  // max subnormal / min normal tie
  EXPECT_EQ(f32_to_fp8_e5m2(bits_of(std::ldexp(1.0f, -17))), 0x00);
  EXPECT_EQ(f32_to_fp8_e5m2(bits_of(std::ldexp(3.0f, -17))), 0x02);
  EXPECT_EQ(f32_to_fp8_e4m3(bits_of(1.0625f)), 0x38);  // 1 + 1/16: tie between 1 and 1.125, even 1
  EXPECT_EQ(f32_to_fp8_e4m3(bits_of(1.1875f)), 0x3A);  // tie between 1.125 and 1.25, even 1.25
}

TEST(Fp8, SaturatesAndKeepsNanAndSignedZero) {
  const float inf = std::numeric_limits<float>::infinity();
  for (float v : {448.0f, 449.0f, 464.0f, 480.0f, 1e6f, std::numeric_limits<float>::max(), inf}) {
    EXPECT_EQ(f32_to_fp8_e4m3(bits_of(v)), 0x7E) << v;
    EXPECT_EQ(f32_to_fp8_e4m3(bits_of(-v)), 0xFE) << v;
  }
  for (float v : {57344.0f, 61440.0f, 65536.0f, 1e30f, inf}) {
    EXPECT_EQ(f32_to_fp8_e5m2(bits_of(v)), 0x7B) << v;
    EXPECT_EQ(f32_to_fp8_e5m2(bits_of(-v)), 0xFB) << v;
  }
  EXPECT_EQ(f32_to_fp8_e4m3(0x7FC00000u), 0x7F);
  EXPECT_EQ(f32_to_fp8_e4m3(0xFFC00000u), 0xFF);
  EXPECT_EQ(f32_to_fp8_e4m3(0x7F800001u), 0x7F);  // signalling NaN: still NaN
  EXPECT_EQ(f32_to_fp8_e5m2(0x7FC00000u), 0x7E);
  EXPECT_EQ(f32_to_fp8_e5m2(0x7FE00000u), 0x7F);  // next payload bit kept
  EXPECT_EQ(f32_to_fp8_e5m2(0xFFC00000u), 0xFE);
  EXPECT_EQ(f32_to_fp8_e5m2(0x7F800001u), 0x7E);  // signalling NaN made quiet
  for (auto enc : {kE4m3.encode, kE5m2.encode}) {
    EXPECT_EQ(enc(bits_of(0.0f)), 0x00);
    EXPECT_EQ(enc(bits_of(-0.0f)), 0x80);
    EXPECT_EQ(enc(0x00000001u), 0x00);  // fp32 subnormals are far below fp8's
    EXPECT_EQ(enc(0x807FFFFFu), 0x80);
    EXPECT_EQ(enc(bits_of(std::ldexp(1.0f, -40))), 0x00);
  }
}

TEST(Fp8, RandomFloatsMatchTheReferenceRounding) {
  std::mt19937 rng(11);
  for (int i = 0; i < 300000; ++i) {
    auto u = static_cast<std::uint32_t>(rng());
    u = (u & 0x807FFFFFu) | (static_cast<std::uint32_t>(100 + rng() % 60) << 23);  // 2^-27 .. 2^32
    const float f = float_of(u);
    ASSERT_EQ(f32_to_fp8_e4m3(u), kE4m3.reference(f)) << std::hexfloat << f;
    ASSERT_EQ(f32_to_fp8_e5m2(u), kE5m2.reference(f)) << std::hexfloat << f;
  }
}

// fp16 and bfloat16 tensors are widened exactly, then rounded once.
TEST(Fp8, ConvertsEveryHalfAndBfloat16) {
  std::vector<std::uint16_t> all(65536);
  for (std::uint32_t i = 0; i < 65536; ++i) all[i] = static_cast<std::uint16_t>(i);
  const auto in = std::as_bytes(std::span(all));
  std::vector<std::byte> e4, e5;
  for (auto from : {formats::DType::f16, formats::DType::bf16}) {
    ASSERT_TRUE(convert_variant(in, from, VariantDtype::fp8_e4m3, e4));
    ASSERT_TRUE(convert_variant(in, from, VariantDtype::fp8_e5m2, e5));
    ASSERT_EQ(e4.size(), 65536u);
    for (std::uint32_t i = 0; i < 65536; ++i) {
      const auto h = static_cast<std::uint16_t>(i);
      const float f = float_of(from == formats::DType::f16 ? f16_to_f32(h) : bf16_to_f32(h));
      const auto a = static_cast<std::uint8_t>(e4[i]), b = static_cast<std::uint8_t>(e5[i]);
      if (std::isnan(f)) {
        ASSERT_TRUE(e4m3_nan(a) && e5m2_nan(b)) << i;
        continue;
      }
      ASSERT_EQ(a, kE4m3.reference(f)) << i;
      ASSERT_EQ(b, kE5m2.reference(f)) << i;
    }
  }
  std::vector<std::byte> ints(8, std::byte{3}), out;
  EXPECT_FALSE(convert_variant(ints, formats::DType::i8, VariantDtype::fp8_e4m3, out));
  EXPECT_TRUE(out.empty());
}

TEST(Fp8, AnalyzerVariantsConvertAndCountAfterConversion) {
  // 1e-5 is below half e4m3's smallest subnormal (2^-9 / 2) but not e5m2's (2^-16 / 2 = 7.6e-6).
  std::vector<float> v{0.0f, 1.0f, 1e-5f, -1e-5f, 500.0f, 0.0f, -3.0f, 1e-30f};
  formats::TensorMeta m;
  m.dims = {2, 4};
  m.layout = formats::Layout::NC;
  Options o;
  o.codecs = {"zvc", "zstd-1"};
  o.dtypes = {"stored", "float8_e4m3fn", "e5m2", "fp8-e4m3"};
  o.validate();
  ASSERT_EQ(o.dtypes, (std::vector<std::string>{"stored", "fp8-e4m3", "fp8-e5m2"}));
  TensorAnalyzer an(o);
  Workspace ws;
  auto r = an.analyze(std::as_bytes(std::span(v)), m, ws, "t");
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].actual_dtype, "float32");
  EXPECT_EQ(r[0].nonzeros, 6u);
  EXPECT_EQ(r[1].actual_dtype, "fp8-e4m3");
  EXPECT_EQ(r[1].bytes, 8u);
  EXPECT_EQ(r[1].nonzeros, 4u);  // 1, -0.0 (0x80: not all bits zero), 448, -3
  EXPECT_EQ(*r[1].codecs[0].bytes, formats::zvc_size(8, 4, 1));
  EXPECT_EQ(r[2].actual_dtype, "fp8-e5m2");
  EXPECT_EQ(r[2].nonzeros, 5u);  // 1, +-2^-16, 512, -3
  EXPECT_EQ(*r[2].codecs[0].bytes, formats::zvc_size(8, 5, 1));

  // Integer tensors keep their dtype, as with float16.
  std::vector<std::int8_t> ints{0, 1, 2, 0};
  formats::TensorMeta mi;
  mi.dims = {1, 4};
  mi.layout = formats::Layout::NC;
  mi.dtype = formats::DType::i8;
  auto ri = an.analyze(std::as_bytes(std::span(ints)), mi, ws, "t");
  EXPECT_EQ(ri[1].actual_dtype, "int8");
  EXPECT_EQ(ri[1].nonzeros, 2u);
}

// fp8 tensors through a word codec and the exponent codec: the analyzer's sizes are the codecs'
// own on the converted bytes (expzstd is in the table, not in the defaults).
TEST(Fp8, CodecsSizeTheConvertedBytes) {
  std::vector<float> v(4096);
  std::mt19937 rng(5);
  std::normal_distribution<float> g(0.0f, 2.0f);
  for (auto& x : v) x = std::max(0.0f, g(rng));
  formats::TensorMeta m;
  m.dims = {64, 64};
  m.layout = formats::Layout::NC;
  Options o;
  o.codecs = {"zvc", "expzstd", "zstd-1"};
  o.dtypes = {"fp8-e5m2", "bfloat16"};
  o.validate();
  TensorAnalyzer an(o);
  Workspace ws;
  const auto in = std::as_bytes(std::span(v));
  auto r = an.analyze(in, m, ws, "t");
  std::vector<std::byte> e5, b16;
  ASSERT_TRUE(convert_variant(in, formats::DType::f32, VariantDtype::fp8_e5m2, e5));
  ASSERT_TRUE(convert_variant(in, formats::DType::f32, VariantDtype::bf16, b16));
  for (std::size_t c = 0; c < o.codecs.size(); ++c) {
    const auto codec = formats::make_codec(o.codecs[c]);
    EXPECT_EQ(*r[0].codecs[c].bytes, codec->compressed_size(e5, 1)) << o.codecs[c];
    EXPECT_EQ(*r[1].codecs[c].bytes, codec->compressed_size(b16, 2)) << o.codecs[c];
  }
}

TEST(Fp8, UnknownDtypeNamesTheFp8Spellings) {
  Options o;
  o.dtypes = {"fp8"};
  try {
    o.validate();
    FAIL() << "fp8 accepted";
  } catch (const formats::Error& e) {
    EXPECT_NE(std::string(e.what()).find("fp8-e4m3 or fp8-e5m2"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace cdma::analyze
