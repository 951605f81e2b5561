#include <cdma/formats/error.hpp>
#include <cdma/formats/zero_scan.hpp>
#include <cdma/formats/zvc.hpp>

#include <gtest/gtest.h>

#include "codec_test_util.hpp"

#include <bit>
#include <cstdlib>
#include <cstring>

using namespace cdma::formats;
using cdma::test::random_tensor;
using cdma::test::runnable_levels;

namespace {

std::vector<std::byte> enc_ref(const std::vector<std::byte>& in, std::size_t w) {
  std::vector<std::byte> out(zvc_max_encoded_size(in.size(), w));
  out.resize(zvc_encode_reference(in, w, out));
  return out;
}

std::vector<std::byte> enc(const std::vector<std::byte>& in, std::size_t w, SimdLevel l) {
  std::vector<std::byte> out(zvc_max_encoded_size(in.size(), w));
  out.resize(zvc_encode(in, w, out, l));
  return out;
}

void expect_round_trip(const std::vector<std::byte>& in, std::size_t w) {
  const auto ref = enc_ref(in, w);
  const auto scan = zero_scan_reference(in, w);
  ASSERT_EQ(ref.size(), zvc_size(in.size() / w, scan.nonzeros, w));
  for (SimdLevel l : runnable_levels()) {
    SCOPED_TRACE(std::string(to_string(l)));
    EXPECT_EQ(enc(in, w, l), ref);
    std::vector<std::byte> back(in.size(), std::byte{0x5a});
    zvc_decode(ref, w, back, l);
    EXPECT_EQ(back, in);
  }
  std::vector<std::byte> back(in.size(), std::byte{0x5a});
  zvc_decode_reference(ref, w, back);
  EXPECT_EQ(back, in);
}

}  // namespace

TEST(Zvc, EdgeCasesRoundTripEveryWidth) {
  for (std::size_t w : {1, 2, 4}) {
    SCOPED_TRACE(w);
    for (std::size_t n : {0, 1, 31, 32, 33, 63, 64, 65, 100, 1000, 4097}) {
      SCOPED_TRACE(n);
      expect_round_trip(std::vector<std::byte>(n * w, std::byte{0}), w);     // all zero
      expect_round_trip(std::vector<std::byte>(n * w, std::byte{0x3c}), w);  // all nonzero
    }
  }
}

TEST(Zvc, NegativeZeroAndNaNAreNonzero) {
  const std::uint32_t vals[] = {0x80000000u, 0, 0x7fc00000u, 0xffffffffu, 0, 1};
  std::vector<std::byte> in(sizeof vals);
  std::memcpy(in.data(), vals, sizeof vals);
  EXPECT_EQ(zero_scan_reference(in, 4).nonzeros, 4u);
  const auto e = enc_ref(in, 4);
  EXPECT_EQ(e.size(), 4u + 4 * 4);
  EXPECT_EQ(e[0], std::byte{0b101101});
  expect_round_trip(in, 4);
}

TEST(Zvc, StreamLayoutMatchesSpec) {
  // 34 fp16 elements: block 0 has nonzeros at 0 and 31, block 1 (2 elements) at element 1.
  std::vector<std::uint16_t> v(34, 0);
  v[0] = 0x1111;
  v[31] = 0x2222;
  v[33] = 0x3333;
  std::vector<std::byte> in(v.size() * 2);
  std::memcpy(in.data(), v.data(), in.size());
  const auto e = enc_ref(in, 2);
  const unsigned char want[] = {0x01, 0, 0, 0x80, 0x11, 0x11, 0x22, 0x22, 0x02, 0, 0, 0, 0x33, 0x33};
  ASSERT_EQ(e.size(), sizeof want);
  for (std::size_t i = 0; i < e.size(); ++i) EXPECT_EQ(std::to_integer<unsigned>(e[i]), want[i]) << i;
  expect_round_trip(in, 2);
}

TEST(Zvc, FastPathsMatchReferenceOnRandomInputs) {
  std::mt19937_64 rng(42);
  for (int iter = 0; iter < 600; ++iter) {
    const std::size_t w = std::size_t{1} << (iter % 3);
    const std::size_t n = rng() % (iter < 400 ? 300 : 5000);
    const double d = static_cast<double>(rng() % 11) / 10.0;
    const auto in = random_tensor(rng, n, w, d, rng() % 2 ? 1 : 40);
    SCOPED_TRACE(testing::Message() << "iter " << iter << " w " << w << " n " << n << " d " << d);
    expect_round_trip(in, w);
    if (HasFatalFailure() || HasNonfatalFailure()) return;
  }
}

TEST(Zvc, RatioMatchesFormula) {
  // fp32 at density d: ratio 32 / (1 + 32 d) exactly when n is a multiple of 32.
  std::mt19937_64 rng(7);
  const std::size_t n = 32 * 1024;
  for (double d : {0.0, 0.1, 0.35, 0.5, 1.0}) {
    auto in = random_tensor(rng, n, 4, d);
    const auto nnz = zero_scan_reference(in, 4).nonzeros;
    const double dd = static_cast<double>(nnz) / n;
    const auto e = enc_ref(in, 4);
    EXPECT_DOUBLE_EQ(static_cast<double>(in.size()) / static_cast<double>(e.size()), 32.0 / (1.0 + 32.0 * dd));
    auto in16 = random_tensor(rng, n, 2, d);
    const double d16 = static_cast<double>(zero_scan_reference(in16, 2).nonzeros) / n;
    EXPECT_DOUBLE_EQ(static_cast<double>(in16.size()) / static_cast<double>(enc_ref(in16, 2).size()),
                     16.0 / (1.0 + 16.0 * d16));
  }
}

namespace {

void expect_rejected(const std::vector<std::byte>& stream, std::size_t w, std::size_t n) {
  for (SimdLevel l : runnable_levels()) {
    SCOPED_TRACE(std::string(to_string(l)));
    std::vector<std::byte> out(n * w);
    EXPECT_THROW(zvc_decode(stream, w, out, l), CodecError);
  }
  std::vector<std::byte> out(n * w);
  EXPECT_THROW(zvc_decode_reference(stream, w, out), CodecError);
}

}  // namespace

TEST(Zvc, MalformedStreamsAreRejected) {
  std::mt19937_64 rng(3);
  for (std::size_t w : {1, 2, 4}) {
    for (std::size_t n : {1, 32, 77, 640}) {
      SCOPED_TRACE(testing::Message() << "w " << w << " n " << n);
      const auto in = random_tensor(rng, n, w, 0.6);
      const auto good = enc_ref(in, w);
      // Truncated anywhere.
      for (std::size_t cut = 0; cut < good.size(); cut += 1 + good.size() / 23)
        expect_rejected(std::vector<std::byte>(good.begin(), good.begin() + cut), w, n);
      // Trailing bytes.
      auto longer = good;
      longer.push_back(std::byte{1});
      expect_rejected(longer, w, n);
      const std::size_t last_mask_at = [&] {
        std::size_t at = 0;
        for (std::size_t b = 0; b + 1 < (n + 31) / 32; ++b) {
          std::uint32_t m;
          std::memcpy(&m, good.data() + at, 4);
          at += 4 + w * std::popcount(m);
        }
        return at;
      }();
      // The last mask claiming more values than the stream holds.
      auto greedy = good;
      const std::uint32_t all = n % 32 == 0 ? 0xffffffffu : (1u << (n % 32)) - 1;
      std::memcpy(greedy.data() + last_mask_at, &all, 4);
      if (greedy != good) expect_rejected(greedy, w, n);
      // Mask bits past the end of a short last block.
      if (n % 32) {
        auto past = good;
        past[last_mask_at + 3] |= std::byte{0x80};
        expect_rejected(past, w, n);
      }
      // A value marked nonzero that is zero.
      auto zeroed = good;
      std::uint32_t m0;
      std::memcpy(&m0, zeroed.data(), 4);
      if (m0) {
        std::memset(zeroed.data() + 4, 0, w);
        expect_rejected(zeroed, w, n);
      }
    }
  }
}

TEST(Zvc, LargeOutputsRoundTripThroughStreamingStores) {
  // Large outputs are written with streaming stores by the fast paths' decoders when aligned (32
  // bytes for AVX2, 64 for AVX-512); unaligned ones take the ordinary stores. Both, and a malformed
  // stream in the middle of a large output, at every level.
  constexpr std::size_t kBytes = std::size_t{9} << 20;
  static_assert(kBytes >= kZvcStreamingStoreBytes, "the outputs must take the streaming path");
  std::mt19937_64 rng(21);
  for (std::size_t w : {2, 4}) {
    const std::size_t n = kBytes / w + 77;
    const auto in = random_tensor(rng, n, w, 0.5, 40);
    const auto stream = enc_ref(in, w);
    auto bad = stream;
    std::size_t at = 0;  // the first block past the middle with a nonzero: zero its first value
    for (std::size_t blk = 0;; ++blk) {
      std::uint32_t m;
      std::memcpy(&m, bad.data() + at, 4);
      if (blk >= n / 64 && m) {
        std::memset(bad.data() + at + 4, 0, w);
        break;
      }
      at += 4 + w * std::popcount(m);
    }
    auto* buf = static_cast<std::byte*>(std::aligned_alloc(64, (n * w + 64 + 63) / 64 * 64));
    ASSERT_NE(buf, nullptr);
    for (std::size_t offset : {0, 4}) {
      const std::span<std::byte> out(buf + offset, n * w);
      for (SimdLevel l : runnable_levels()) {
        SCOPED_TRACE(testing::Message() << "w " << w << " offset " << offset << " level " << to_string(l));
        std::memset(out.data(), 0x5a, out.size());
        zvc_decode(stream, w, out, l);
        EXPECT_EQ(std::memcmp(out.data(), in.data(), in.size()), 0);
        EXPECT_THROW(zvc_decode(bad, w, out, l), CodecError);
      }
    }
    std::free(buf);
  }
}

TEST(Zvc, RejectsBadArguments) {
  std::vector<std::byte> in(6), out(100);
  EXPECT_THROW(zvc_encode(in, 4, out), CodecError);  // 6 bytes is not whole fp32 elements
  EXPECT_THROW(zvc_encode(in, 3, out), CodecError);
  std::vector<std::byte> small(4);
  std::vector<std::byte> in8(8, std::byte{1});
  EXPECT_THROW(zvc_encode(in8, 4, small), CodecError);  // output below zvc_max_encoded_size
}
