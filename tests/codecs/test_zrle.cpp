#include <cdma/formats/error.hpp>
#include <cdma/formats/zero_scan.hpp>
#include <cdma/formats/zrle.hpp>

#include <gtest/gtest.h>

#include "codec_test_util.hpp"

using namespace cdma::formats;
using cdma::test::random_tensor;

namespace {

std::vector<std::byte> enc_ref(const std::vector<std::byte>& in, std::size_t w, int k) {
  std::vector<std::byte> out(zrle_max_encoded_size(in.size(), w));
  out.resize(zrle_encode_reference(in, w, k, out));
  return out;
}
std::vector<std::byte> enc(const std::vector<std::byte>& in, std::size_t w, int k) {
  std::vector<std::byte> out(zrle_max_encoded_size(in.size(), w));
  out.resize(zrle_encode(in, w, k, out));
  return out;
}

void expect_round_trip(const std::vector<std::byte>& in, std::size_t w, int k) {
  const auto ref = enc_ref(in, w, k);
  ASSERT_EQ(ref.size(), zrle_size(zero_scan_reference(in, w), w, k));
  EXPECT_EQ(enc(in, w, k), ref);
  std::vector<std::byte> back(in.size(), std::byte{0x5a});
  zrle_decode(ref, w, k, back);
  EXPECT_EQ(back, in);
  std::fill(back.begin(), back.end(), std::byte{0x5a});
  zrle_decode_reference(ref, w, k, back);
  EXPECT_EQ(back, in);
}

}  // namespace

TEST(Zrle, EdgeCasesRoundTripEveryWidthAndK) {
  for (std::size_t w : {1, 2, 4})
    for (int k : {1, 2, 4, 8, 16})
      for (std::size_t n : {0, 1, 2, 15, 16, 17, 31, 33, 64, 65, 1000, 70000}) {
        SCOPED_TRACE(testing::Message() << "w " << w << " k " << k << " n " << n);
        expect_round_trip(std::vector<std::byte>(n * w, std::byte{0}), w, k);
        expect_round_trip(std::vector<std::byte>(n * w, std::byte{0x80}), w, k);
      }
}

TEST(Zrle, BitLayoutMatchesSpec) {
  // u8 elements [5, 0, 0, 0] with k = 2: "1" + 8 bits of 5, then "0" + (3-1) in 2 bits.
  // Bits LSB-first: 1, 1010 0000, 0, 01 -> 12 bits.
  std::vector<std::byte> in = {std::byte{5}, std::byte{0}, std::byte{0}, std::byte{0}};
  const auto e = enc_ref(in, 1, 2);
  ASSERT_EQ(e.size(), 2u);
  // bit0=1, bits1..8 = 5 (1,0,1,0,0,0,0,0), bit9=0, bits10..11 = 2 -> (0,1)
  // byte0 = bits0..7 = 1,1,0,1,0,0,0,0 = 0x0b; byte1 = bit8=0, bit9=0, bit10=0, bit11=1 -> 0x08
  EXPECT_EQ(std::to_integer<unsigned>(e[0]), 0x0bu);
  EXPECT_EQ(std::to_integer<unsigned>(e[1]), 0x08u);
  expect_round_trip(in, 1, 2);
}

TEST(Zrle, LongRunsSplitIntoFullRunsAndRemainder) {
  // 37 zeros with k = 4: runs 16, 16, 5 -> 3 tokens of 5 bits = 15 bits -> 2 bytes.
  std::vector<std::byte> in(37 * 4, std::byte{0});
  EXPECT_EQ(enc_ref(in, 4, 4).size(), 2u);
  EXPECT_EQ(zero_scan_reference(in, 4).zrle_tokens[4], 3u);
  expect_round_trip(in, 4, 4);
}

TEST(Zrle, FastPathMatchesReferenceOnRandomInputs) {
  std::mt19937_64 rng(11);
  for (int iter = 0; iter < 500; ++iter) {
    const std::size_t w = std::size_t{1} << (iter % 3);
    const int k = 1 + static_cast<int>(rng() % 16);
    const std::size_t n = rng() % (iter < 350 ? 300 : 9000);
    const double d = static_cast<double>(rng() % 11) / 10.0;
    const auto in = random_tensor(rng, n, w, d, rng() % 2 ? 1 : 100);
    SCOPED_TRACE(testing::Message() << "iter " << iter << " w " << w << " k " << k << " n " << n);
    expect_round_trip(in, w, k);
    if (HasFailure()) return;
  }
}

namespace {
void expect_rejected(const std::vector<std::byte>& s, std::size_t w, int k, std::size_t n) {
  std::vector<std::byte> out(n * w);
  EXPECT_THROW(zrle_decode(s, w, k, out), CodecError);
  EXPECT_THROW(zrle_decode_reference(s, w, k, out), CodecError);
}
}  // namespace

TEST(Zrle, MalformedStreamsAreRejected) {
  std::mt19937_64 rng(5);
  for (std::size_t w : {1, 2, 4}) {
    for (int k : {1, 4, 7}) {
      const std::size_t n = 300;
      const auto in = random_tensor(rng, n, w, 0.5, 20);
      const auto good = enc_ref(in, w, k);
      SCOPED_TRACE(testing::Message() << "w " << w << " k " << k);
      for (std::size_t cut = 0; cut < good.size(); cut += 1 + good.size() / 31)
        expect_rejected({good.begin(), good.begin() + cut}, w, k, n);
      auto longer = good;
      longer.push_back(std::byte{0});
      expect_rejected(longer, w, k, n);
      // Too few elements expected: the stream holds more tokens than the output has room for.
      // (32 elements fewer: a lone trailing all-zero run token could hide in the padding bits.)
      expect_rejected(good, w, k, n - 32);
    }
  }
  // A run longer than the elements left: "0" + (16-1) in 4 bits for a 3-element tensor.
  expect_rejected({std::byte{0b00011110}}, 4, 4, 3);
  // Nonzero padding bits: one zero element, k = 1 -> 2 bits; set bit 5.
  expect_rejected({std::byte{0b00100000}}, 1, 1, 1);
  // A "nonzero" element with value zero: bit 1 then 8 zero bits.
  expect_rejected({std::byte{0x01}, std::byte{0x00}}, 1, 4, 1);
  // A short run followed by another run (non-canonical split): 2 zeros as 1 + 1 with k = 4.
  expect_rejected({std::byte{0x00}, std::byte{0x00}}, 1, 4, 2);
  // Empty output, non-empty stream.
  expect_rejected({std::byte{0x00}}, 4, 4, 0);
}

TEST(Zrle, RejectsBadK) {
  std::vector<std::byte> in(8), out(64);
  EXPECT_THROW(zrle_encode(in, 4, 0, out), CodecError);
  EXPECT_THROW(zrle_encode(in, 4, 17, out), CodecError);
  EXPECT_THROW(zrle_decode(out, 4, 0, in), CodecError);
}
