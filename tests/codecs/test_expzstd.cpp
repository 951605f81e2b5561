// expzstd (docs/spec/CODECS.md "expzstd"): round trips for every width and value class, the exact
// stream of a worked example, strict decoding of every malformed stream class, and the ratio on a
// dense bf16 tensor against zstd-1 and ZVC.
#include <cdma/formats/codec.hpp>
#include <cdma/formats/error.hpp>
#include <cdma/formats/expzstd.hpp>

#include <gtest/gtest.h>

#include "codec_test_util.hpp"

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

using namespace cdma::formats;
using cdma::test::random_tensor;

namespace {

std::vector<std::byte> encode(std::span<const std::byte> in, std::size_t w) {
  std::vector<std::byte> out(expzstd_max_encoded_size(in.size(), w));
  out.resize(expzstd_encode(in, w, out));
  return out;
}

void expect_round_trip(std::span<const std::byte> in, std::size_t w) {
  const auto codec = make_codec("expzstd");
  const auto enc = encode(in, w);
  EXPECT_EQ(codec->compressed_size(in, w), enc.size());
  std::vector<std::byte> back(in.size(), std::byte{0x5A});
  codec->decode(enc, w, back);
  ASSERT_TRUE(std::equal(back.begin(), back.end(), in.begin(), in.end())) << "w " << w << " n " << in.size() / w;
}

template <class T>
std::vector<std::byte> bytes_of(const std::vector<T>& v) {
  std::vector<std::byte> b(v.size() * sizeof(T));
  if (!b.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}

std::vector<std::byte> stream(std::initializer_list<int> v) {
  std::vector<std::byte> s;
  for (int x : v) s.push_back(static_cast<std::byte>(x));
  return s;
}

void expect_rejected(std::span<const std::byte> s, std::size_t w, std::size_t n, const char* why) {
  std::vector<std::byte> out(n * w);
  try {
    expzstd_decode(s, w, out);
    ADD_FAILURE() << "accepted: " << why;
  } catch (const CodecError& e) {
    EXPECT_NE(std::string(e.what()).find("expzstd decode"), std::string::npos) << e.what();
  }
}

// bf16 of a float (round to nearest even), for the transformer-like tensor.
std::uint16_t bf16(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  return static_cast<std::uint16_t>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

TEST(Expzstd, RoundTripsEveryWidthSizeAndDensity) {
  std::mt19937_64 rng(3);
  for (std::size_t w : {1u, 2u, 4u})
    for (std::size_t n : {0u, 1u, 2u, 3u, 7u, 8u, 9u, 17u, 255u, 1000u, 4097u})
      for (double d : {0.0, 0.05, 0.5, 0.9, 1.0})
        for (std::size_t run : {1u, 40u}) expect_round_trip(random_tensor(rng, n, w, d, run), w);
}

TEST(Expzstd, RoundTripsSpecialValues) {
  // fp32: +-0, NaNs, infinities, denormals, the largest finite, ordinary values.
  const std::vector<std::uint32_t> f32{0x80000000u, 0x7FC00000u, 0xFFC00001u, 0x7F800000u, 0xFF800000u,
                                       0x00000001u, 0x807FFFFFu, 0x7F7FFFFFu, 0x3F800000u, 0,
                                       0xBF800000u, 0x00400000u, 0x7F800001u};
  // fp16 and bf16: the same classes in 16 bits.
  const std::vector<std::uint16_t> f16{0x8000, 0x7E00, 0xFE01, 0x7C00, 0xFC00, 0x0001, 0x83FF, 0x7BFF, 0x3C00, 0};
  const std::vector<std::uint16_t> b16{0x8000, 0x7FC0, 0xFFC1, 0x7F80, 0xFF80, 0x0001, 0x807F, 0x7F7F, 0x3F80, 0};
  for (std::size_t len = 0; len <= f32.size(); ++len) {
    expect_round_trip(bytes_of(std::vector<std::uint32_t>(f32.begin(), f32.begin() + len)), 4);
    const std::size_t l16 = std::min(len, f16.size());
    expect_round_trip(bytes_of(std::vector<std::uint16_t>(f16.begin(), f16.begin() + l16)), 2);
    expect_round_trip(bytes_of(std::vector<std::uint16_t>(b16.begin(), b16.begin() + l16)), 2);
  }
  for (std::size_t n : {1u, 2u, 3u, 15u, 16u, 1001u}) {
    expect_round_trip(std::vector<std::byte>(n * 2), 2);  // all zero
    expect_round_trip(std::vector<std::byte>(n * 4), 4);
    expect_round_trip(bytes_of(std::vector<std::uint16_t>(n, 0x8000)), 2);  // all -0.0: nonzero
    expect_round_trip(bytes_of(std::vector<std::uint32_t>(n, 0x7FC00000u)), 4);
    // An all-zero tensor is the flags byte and the mask.
    EXPECT_EQ(encode(std::vector<std::byte>(n * 2), 2).size(), 1 + (n + 7) / 8);
  }
  EXPECT_EQ(encode({}, 2), stream({0x00}));  // n = 0: the flags byte alone
}

// The worked example of docs/spec/CODECS.md: bf16 {1.0, 0, 2.0}: one zero in three words (16 bits
// of zeros > 3 mask bits): a mask 0b101; two coded words, whose 2-byte planes zstd cannot shorten
// (a frame of fewer than 2 bytes does not exist), so both are raw, high byte first.
TEST(Expzstd, WorkedExampleStream) {
  const auto in = bytes_of(std::vector<std::uint16_t>{0x3F80, 0x0000, 0x4000});
  EXPECT_EQ(encode(in, 2), stream({0x01, 0x05, 0, 0, 0, 0, 0x3F, 0x40, 0, 0, 0, 0, 0x80, 0x00}));
  // Dense: no mask; four words {1, 2, 3, 4} in fp32, four raw planes of 4 bytes.
  const auto dense = bytes_of(std::vector<std::uint32_t>{0x3F800000u, 0x40000000u, 0x40400000u, 0x40800000u});
  EXPECT_EQ(encode(dense, 4), stream({0x00, 0, 0, 0, 0, 0x3F, 0x40, 0x40, 0x40, 0, 0, 0, 0, 0x80, 0x00, 0x40, 0x80,
                                      0,    0, 0, 0, 0, 0,    0,    0,    0,    0, 0, 0, 0, 0,    0,    0}));
  // Mask rule at its edge: w = 2, n = 16: one zero word is 16 bits, not more than 16 mask bits.
  std::vector<std::uint16_t> edge(16, 0x3F80);
  edge[3] = 0;
  EXPECT_EQ(encode(bytes_of(edge), 2)[0], std::byte{0});
  edge[4] = 0;
  EXPECT_EQ(encode(bytes_of(edge), 2)[0], std::byte{1});
}

TEST(Expzstd, RejectsEveryMalformedStreamClass) {
  const auto ex = stream({0x01, 0x05, 0, 0, 0, 0, 0x3F, 0x40, 0, 0, 0, 0, 0x80, 0x00});
  for (std::size_t len = 0; len < ex.size(); ++len)
    expect_rejected(std::span(ex).first(len), 2, 3, "truncated worked example");
  auto t = ex;
  t.push_back(std::byte{0});
  expect_rejected(t, 2, 3, "trailing byte");
  t = ex;
  t[0] = std::byte{2};
  expect_rejected(t, 2, 3, "flags 2");
  t = ex;
  t[1] = std::byte{0x0D};  // bit 3: padding past n = 3
  expect_rejected(t, 2, 3, "mask padding bit");
  t = ex;
  t[1] = std::byte{0x07};  // three coded words where the planes hold two
  expect_rejected(t, 2, 3, "mask popcount disagrees with the planes");
  t = ex;
  t[6] = std::byte{0};  // word 0 = 0x0080: still nonzero; word 2 high byte...
  t[12] = std::byte{0};
  expect_rejected(t, 2, 3, "masked word decodes to zero");
  // A mask where the rule says none: n = 16, one zero word.
  std::vector<std::uint16_t> edge(16, 0x3F80);
  edge[3] = 0;
  auto e = encode(bytes_of(edge), 2);  // flags 0, 16 words in two planes
  expect_round_trip(bytes_of(edge), 2);
  std::vector<std::byte> masked{std::byte{1}, std::byte{0xF7}, std::byte{0xFF}};
  for (int p = 0; p < 2; ++p) {  // 15 coded words, raw planes
    masked.insert(masked.end(), 4, std::byte{0});
    for (int j = 0; j < 15; ++j) masked.push_back(p == 0 ? std::byte{0x3F} : std::byte{0x80});
  }
  expect_rejected(masked, 2, 16, "mask the encoder would not write");
  // No mask where the rule says one: three words {1, 0, 2} as raw planes without a mask.
  expect_rejected(stream({0x00, 0, 0, 0, 0, 0x3F, 0x00, 0x40, 0, 0, 0, 0, 0x80, 0x00, 0x00}), 2, 3,
                  "zeros without the mask the encoder writes");
  // zstd planes: a frame not shorter than the raw plane, a length that cuts the frame, a frame
  // that decodes to another size.
  std::vector<std::uint32_t> ramp(256);
  for (std::size_t i = 0; i < ramp.size(); ++i) ramp[i] = 0x3F800000u + static_cast<std::uint32_t>(i % 4) * 0x10000u;
  auto z = encode(bytes_of(ramp), 4);
  std::uint32_t len0;
  std::memcpy(&len0, z.data() + 1, 4);
  ASSERT_GT(len0, 0u);  // the exponent plane is a zstd frame
  ASSERT_LT(len0, 256u);
  expect_round_trip(bytes_of(ramp), 4);
  for (std::uint32_t bad : {len0 - 1, len0 + 1, 256u, 257u}) {
    auto b = z;
    std::memcpy(b.data() + 1, &bad, 4);
    expect_rejected(b, 4, 256, "plane length does not match its frame");
  }
  expect_rejected(z, 4, 255, "frame decodes to another size");
  expect_rejected(z, 4, 257, "frame decodes to another size");
  auto flip = z;
  flip[8] ^= std::byte{0x40};  // inside the first frame
  std::vector<std::byte> out(256 * 4);
  try {
    expzstd_decode(flip, 4, out);
    EXPECT_EQ(out, bytes_of(ramp));  // zstd may not notice every flip; then the content must be right
  } catch (const CodecError&) {
  }
  EXPECT_THROW(expzstd_decode(z, 3, out), CodecError);
}

// A dense bf16 tensor shaped like transformer activations (GELU of a Gaussian pre-activation, a
// few outlier channels): the exponent plane is skewed, the mantissa plane near-random. expzstd
// must beat zstd-1 (which sees interleaved bytes) and ZVC (which has nothing to drop).
TEST(Expzstd, BeatsZstdAndZvcOnDenseBf16) {
  std::mt19937_64 rng(7);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<std::uint16_t> v(1 << 16);
  for (std::size_t i = 0; i < v.size(); ++i) {
    const float x = g(rng) * (i % 768 < 4 ? 20.0f : 1.0f);
    const float gelu = 0.5f * x * (1.0f + std::erf(x / std::sqrt(2.0f)));
    v[i] = bf16(gelu);
  }
  const auto b = bytes_of(v);
  const double exp_ratio =
      static_cast<double>(b.size()) / static_cast<double>(make_codec("expzstd")->compressed_size(b, 2));
  const double zstd_ratio =
      static_cast<double>(b.size()) / static_cast<double>(make_codec("zstd-1")->compressed_size(b, 2));
  const double zvc_ratio =
      static_cast<double>(b.size()) / static_cast<double>(make_codec("zvc")->compressed_size(b, 2));
  EXPECT_GT(exp_ratio, zstd_ratio);
  EXPECT_GT(exp_ratio, zvc_ratio);
  EXPECT_GT(exp_ratio, 1.2);
  std::printf("dense GELU bf16: expzstd %.3fx, zstd-1 %.3fx, zvc %.3fx\n", exp_ratio, zstd_ratio, zvc_ratio);
  expect_round_trip(b, 2);
}

}  // namespace
