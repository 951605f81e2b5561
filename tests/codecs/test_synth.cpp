#include <cdma/formats/error.hpp>
#include <cdma/formats/synth.hpp>
#include <cdma/formats/zero_scan.hpp>

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>

using namespace cdma::formats;

namespace {
SynthSpec make(Clustering c, double d, DType t = DType::f32, std::uint64_t seed = 1) {
  SynthSpec s;
  s.dims = {4, 32, 24, 24};
  s.dtype = t;
  s.density = d;
  s.clustering = c;
  s.seed = seed;
  return s;
}
}  // namespace

TEST(Synth, DeterministicAndSeedSensitive) {
  for (auto c : {Clustering::uniform, Clustering::channels, Clustering::spatial, Clustering::mixed}) {
    const auto a = synth_activations(make(c, 0.4));
    EXPECT_EQ(a, synth_activations(make(c, 0.4)));
    EXPECT_NE(a, synth_activations(make(c, 0.4, DType::f32, 2)));
    EXPECT_EQ(a.size(), 4u * 32 * 24 * 24 * 4);
  }
}

TEST(Synth, DensityNearTargetForEveryClusteringAndDtype) {
  for (auto c : {Clustering::uniform, Clustering::channels, Clustering::spatial, Clustering::mixed})
    for (auto t : {DType::f32, DType::f16, DType::bf16, DType::i8, DType::u8})
      for (double d : {0.0, 0.1, 0.5, 0.9, 1.0}) {
        const auto v = synth_activations(make(c, d, t));
        const auto s = zero_scan(v, dtype_size(t));
        SCOPED_TRACE(testing::Message() << to_string(c) << " " << to_string(t) << " d " << d);
        EXPECT_NEAR(s.density(), d, 0.03);
        if (d == 0.0) {
          EXPECT_EQ(s.nonzeros, 0u);
        }
        if (d == 1.0) {
          EXPECT_EQ(s.nonzeros, s.elements);
        }
      }
}

TEST(Synth, ClusteringShapesZeroRuns) {
  const auto runs = [](Clustering c) {
    const auto v = synth_activations(make(c, 0.5));
    return zero_scan(v, 4).zero_runs;
  };
  // i.i.d. zeros at 50 % give about n/4 runs; spatial runs of mean 8 far fewer.
  const auto uniform = runs(Clustering::uniform), spatial = runs(Clustering::spatial);
  EXPECT_GT(uniform, 2 * spatial);
  // Dead channels: some channel plane is entirely zero for every n.
  SynthSpec s = make(Clustering::channels, 0.3);
  const auto v = synth_activations(s);
  const std::size_t plane = 24 * 24 * 4;
  int dead = 0;
  for (std::size_t c = 0; c < 32; ++c) {
    bool all_zero = true;
    for (std::size_t n = 0; n < 4 && all_zero; ++n)
      for (std::size_t i = 0; i < plane; ++i)
        if (v[(n * 32 + c) * plane + i] != std::byte{0}) {
          all_zero = false;
          break;
        }
    dead += all_zero;
  }
  EXPECT_EQ(dead, static_cast<int>(std::lround(0.3 * 0.7 * 32)));
}

TEST(Synth, ValuesLookLikePostReLU) {
  const auto v = synth_activations(make(Clustering::uniform, 1.0));
  std::size_t distinct_mantissa_tops = 0;
  bool seen[256] = {};
  for (std::size_t i = 0; i < v.size(); i += 4) {
    float f;
    std::memcpy(&f, v.data() + i, 4);
    ASSERT_TRUE(f > 0.0f && std::isfinite(f));
    const auto top = (std::bit_cast<std::uint32_t>(f) >> 15) & 0xff;
    if (!seen[top]) ++distinct_mantissa_tops, seen[top] = true;
  }
  EXPECT_GT(distinct_mantissa_tops, 200u);
}

TEST(Synth, HalfConversionsRoundToNearestEven) {
  EXPECT_EQ(f32_to_f16_bits(1.0f), 0x3c00);
  EXPECT_EQ(f32_to_f16_bits(-2.0f), 0xc000);
  EXPECT_EQ(f32_to_f16_bits(65504.0f), 0x7bff);
  EXPECT_EQ(f32_to_f16_bits(65520.0f), 0x7c00);                      // rounds up to inf
  EXPECT_EQ(f32_to_f16_bits(std::ldexp(1.0f, -24)), 0x0001);         // smallest subnormal
  EXPECT_EQ(f32_to_f16_bits(std::ldexp(1.0f, -25)), 0x0000);         // tie -> even (0)
  EXPECT_EQ(f32_to_f16_bits(std::ldexp(3.0f, -25)), 0x0002);         // 1.5 quanta -> 2 (even)
  EXPECT_EQ(f32_to_f16_bits(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // tie -> even
  EXPECT_EQ(f32_to_f16_bits(1.0f + std::ldexp(3.0f, -11)), 0x3c02);  // tie -> even (up)
  EXPECT_EQ(f32_to_f16_bits(std::nanf("")) & 0x7c00, 0x7c00);
  EXPECT_NE(f32_to_f16_bits(std::nanf("")) & 0x03ff, 0);
  EXPECT_EQ(f32_to_bf16_bits(1.0f), 0x3f80);
  EXPECT_EQ(f32_to_bf16_bits(std::bit_cast<float>(0x3f808000u)), 0x3f80);  // tie -> even
  EXPECT_EQ(f32_to_bf16_bits(std::bit_cast<float>(0x3f818000u)), 0x3f82);  // tie -> even (up)
  EXPECT_EQ(f32_to_bf16_bits(std::bit_cast<float>(0x3f808001u)), 0x3f81);
}

TEST(Synth, RejectsInvalidSpecs) {
  SynthSpec s;
  s.dims = {1, 2, 3};
  EXPECT_THROW(synth_activations(s), Error);
  s.dims = {1, -2, 3, 3};
  EXPECT_THROW(synth_activations(s), Error);
  s.dims = {1, 2, 3, 3};
  s.density = 1.5;
  EXPECT_THROW(synth_activations(s), Error);
  s.density = std::nan("");
  EXPECT_THROW(synth_activations(s), Error);
  s.density = 0.5;
  std::vector<std::byte> wrong(7);
  EXPECT_THROW(synth_activations_into(s, wrong), Error);
  s.dims = {0, 2, 3, 3};
  EXPECT_TRUE(synth_activations(s).empty());
}
