// Float conversions and layout permutation against independent references.
#include <cdma/analyze/transform.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

namespace cdma::analyze {
namespace {

std::uint32_t bits_of(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

bool f16_is_nan(std::uint16_t h) { return (h & 0x7C00u) == 0x7C00u && (h & 0x3FFu); }

TEST(Transform, Fp16KnownValues) {
  EXPECT_EQ(f32_to_f16(bits_of(1.0f)), 0x3C00);
  EXPECT_EQ(f32_to_f16(bits_of(-2.0f)), 0xC000);
  EXPECT_EQ(f32_to_f16(bits_of(65504.0f)), 0x7BFF);
  EXPECT_EQ(f32_to_f16(bits_of(65520.0f)), 0x7C00);  // tie at the top rounds to infinity (even)
  EXPECT_EQ(f32_to_f16(bits_of(std::ldexp(1.0f, -24))), 0x0001);
  EXPECT_EQ(f32_to_f16(bits_of(std::ldexp(1.0f, -25))), 0x0000);  // tie to even: zero
  EXPECT_EQ(f32_to_f16(bits_of(std::ldexp(1.5f, -25))), 0x0001);
  EXPECT_EQ(f32_to_f16(bits_of(std::ldexp(3.0f, -25))), 0x0002);  // 1.5 subnormal ulps: tie to even 2
  EXPECT_EQ(f32_to_f16(bits_of(-0.0f)), 0x8000);
  EXPECT_EQ(f32_to_f16(bits_of(1e-9f)), 0x0000);
  EXPECT_EQ(f32_to_f16(bits_of(1.0f + std::ldexp(1.0f, -11))), 0x3C00);      // tie, even stays
  EXPECT_EQ(f32_to_f16(bits_of(1.0f + 3 * std::ldexp(1.0f, -11))), 0x3C02);  // tie, odd rounds up
  EXPECT_EQ(f32_to_f16(0x7F800000u), 0x7C00);
  EXPECT_EQ(f32_to_f16(0x7FC00000u), 0x7E00);
  EXPECT_TRUE(f16_is_nan(f32_to_f16(0x7F800001u)));  // signalling NaN stays NaN (made quiet)
  EXPECT_EQ(f32_to_f16(0x7F800001u) & 0x0200u, 0x0200u);
}

TEST(Transform, Fp16RoundTripsEveryHalf) {
  for (std::uint32_t h = 0; h < 65536; ++h) {
    const auto back = f32_to_f16(f16_to_f32(static_cast<std::uint16_t>(h)));
    if (f16_is_nan(static_cast<std::uint16_t>(h))) {
      EXPECT_TRUE(f16_is_nan(back)) << h;
    } else {
      ASSERT_EQ(back, h) << h;
    }
  }
}

#if defined(__FLT16_MAX__)
// GCC's _Float16 conversion (libgcc, round to nearest even) is an independent reference.
TEST(Transform, Fp16MatchesCompilerConversion) {
  std::mt19937 rng(5);
  for (int i = 0; i < 2000000; ++i) {
    auto u = static_cast<std::uint32_t>(rng());
    if (i % 4 == 0) u = (u & 0x87FFFFFFu) | 0x30000000u;  // concentrate near fp16's range
    float f;
    std::memcpy(&f, &u, 4);
    if (std::isnan(f)) continue;
    const _Float16 h = static_cast<_Float16>(f);
    std::uint16_t hb;
    std::memcpy(&hb, &h, 2);
    ASSERT_EQ(f32_to_f16(u), hb) << std::hex << u;
  }
}
#endif

TEST(Transform, Bf16RoundsToNearestEven) {
  EXPECT_EQ(f32_to_bf16(bits_of(1.0f)), 0x3F80);
  EXPECT_EQ(f32_to_bf16(0x3F808000u), 0x3F80);  // tie, even stays
  EXPECT_EQ(f32_to_bf16(0x3F818000u), 0x3F82);  // tie, odd rounds up
  EXPECT_EQ(f32_to_bf16(0x3F808001u), 0x3F81);
  EXPECT_EQ(f32_to_bf16(0x7F7FFFFFu), 0x7F80);  // rounds up to infinity
  EXPECT_EQ(f32_to_bf16(0x7FC00000u), 0x7FC0);
  EXPECT_EQ(f32_to_bf16(0x7F800001u), 0x7FC0);  // signalling NaN made quiet, still NaN
  EXPECT_EQ(f32_to_bf16(0x80000000u), 0x8000);
  EXPECT_EQ(f32_to_bf16(0x00008000u), 0x0000);  // tie at zero
  EXPECT_EQ(f32_to_bf16(0x00018000u), 0x0002);
  for (std::uint32_t b = 0; b < 65536; ++b) {
    const bool nan = (b & 0x7F80u) == 0x7F80u && (b & 0x7Fu);
    if (!nan) {
      ASSERT_EQ(f32_to_bf16(bf16_to_f32(static_cast<std::uint16_t>(b))), b);
    }
  }
}

TEST(Transform, ConvertDtypeSkipsIntegers) {
  std::vector<std::byte> in(8, std::byte{1}), out;
  EXPECT_FALSE(convert_dtype(in, formats::DType::i8, formats::DType::f16, out));
  EXPECT_TRUE(out.empty());
  EXPECT_TRUE(convert_dtype(in, formats::DType::f32, formats::DType::bf16, out));
  EXPECT_EQ(out.size(), 4u);
}

// Element value = its NCHW coordinates packed, so that each permutation can be checked by index.
TEST(Transform, PermutesEveryLayoutPair) {
  const std::int64_t N = 2, C = 3, H = 4, W = 5;
  auto coord = [](std::int64_t n, std::int64_t c, std::int64_t h, std::int64_t w) {
    return static_cast<std::uint32_t>(n * 1000 + c * 100 + h * 10 + w);
  };
  using formats::Layout;
  auto build = [&](Layout l, std::vector<std::int64_t>& dims) {
    std::vector<std::uint32_t> v;
    auto push = [&](auto n, auto c, auto h, auto w) { v.push_back(coord(n, c, h, w)); };
    if (l == Layout::NCHW) {
      dims = {N, C, H, W};
      for (std::int64_t n = 0; n < N; ++n)
        for (std::int64_t c = 0; c < C; ++c)
          for (std::int64_t h = 0; h < H; ++h)
            for (std::int64_t w = 0; w < W; ++w) push(n, c, h, w);
    } else if (l == Layout::NHWC) {
      dims = {N, H, W, C};
      for (std::int64_t n = 0; n < N; ++n)
        for (std::int64_t h = 0; h < H; ++h)
          for (std::int64_t w = 0; w < W; ++w)
            for (std::int64_t c = 0; c < C; ++c) push(n, c, h, w);
    } else {
      dims = {C, H, W, N};
      for (std::int64_t c = 0; c < C; ++c)
        for (std::int64_t h = 0; h < H; ++h)
          for (std::int64_t w = 0; w < W; ++w)
            for (std::int64_t n = 0; n < N; ++n) push(n, c, h, w);
    }
    return v;
  };
  for (Layout from : {Layout::NCHW, Layout::NHWC, Layout::CHWN})
    for (Layout to : {Layout::NCHW, Layout::NHWC, Layout::CHWN}) {
      std::vector<std::int64_t> dfrom, dto;
      auto src = build(from, dfrom);
      auto want = build(to, dto);
      std::vector<std::byte> out;
      permute_layout(std::as_bytes(std::span(src)), dfrom, from, to, 4, out);
      ASSERT_EQ(out.size(), want.size() * 4);
      EXPECT_EQ(std::memcmp(out.data(), want.data(), out.size()), 0)
          << formats::to_string(from) << " -> " << formats::to_string(to);
    }
}

}  // namespace
}  // namespace cdma::analyze
