#include <cdma/formats/error.hpp>
#include <cdma/formats/synth.hpp>
#include <cdma/formats/zero_scan.hpp>
#include <cdma/formats/zrle.hpp>
#include <cdma/formats/zvc.hpp>

#include <gtest/gtest.h>

#include "codec_test_util.hpp"

using namespace cdma::formats;
using cdma::test::random_tensor;
using cdma::test::runnable_levels;

TEST(ZeroScan, HandCountedExample) {
  // u8: 0 0 0 5 0 7 0 0 0 0 0 -> runs 3, 1, 5; nnz 2.
  std::vector<std::byte> in(11, std::byte{0});
  in[3] = std::byte{5};
  in[5] = std::byte{7};
  for (SimdLevel l : runnable_levels()) {
    const ZeroScan s = zero_scan(in, 1, l);
    EXPECT_EQ(s.elements, 11u);
    EXPECT_EQ(s.nonzeros, 2u);
    EXPECT_EQ(s.zero_runs, 3u);
    EXPECT_EQ(s.zrle_tokens[1], 2u + 1u + 3u);  // ceil(3/2) + ceil(1/2) + ceil(5/2)
    EXPECT_EQ(s.zrle_tokens[2], 1u + 1u + 2u);
    EXPECT_EQ(s.zrle_tokens[3], 3u);
    EXPECT_EQ(s.zrle_tokens[16], 3u);
  }
}

TEST(ZeroScan, FastPathsMatchReferenceOnRandomInputs) {
  std::mt19937_64 rng(9);
  for (int iter = 0; iter < 400; ++iter) {
    const std::size_t w = std::size_t{1} << (iter % 3);
    const std::size_t n = rng() % (iter < 250 ? 400 : 20000);
    const double d = static_cast<double>(rng() % 11) / 10.0;
    const std::size_t max_run = iter % 4 == 0 ? 1 : iter % 4 == 1 ? 70 : iter % 4 == 2 ? 5000 : 3;
    const auto in = random_tensor(rng, n, w, d, max_run);
    const ZeroScan ref = zero_scan_reference(in, w);
    for (SimdLevel l : runnable_levels()) {
      ASSERT_EQ(zero_scan(in, w, l), ref) << "iter " << iter << " level " << to_string(l) << " w " << w << " n " << n;
    }
    ASSERT_EQ(count_nonzeros(in, w), ref.nonzeros);
  }
}

TEST(ZeroScan, SizesEqualEncodedSizes) {
  std::mt19937_64 rng(13);
  for (int iter = 0; iter < 120; ++iter) {
    const std::size_t w = std::size_t{1} << (iter % 3);
    const auto in = random_tensor(rng, rng() % 3000, w, static_cast<double>(rng() % 11) / 10.0, 1 + rng() % 300);
    const ZeroScan s = zero_scan(in, w);
    std::vector<std::byte> out(std::max(zvc_max_encoded_size(in.size(), w), zrle_max_encoded_size(in.size(), w)));
    EXPECT_EQ(zvc_size(s.elements, s.nonzeros, w), zvc_encode(in, w, out));
    for (int k = kZrleMinK; k <= kZrleMaxK; ++k) EXPECT_EQ(zrle_size(s, w, k), zrle_encode(in, w, k, out)) << "k " << k;
  }
}

TEST(ZeroScan, LongRunsBeyondOneWord) {
  // Runs of 64, 65, 4096, 70000 zeros between nonzeros exercise the histogram and direct paths.
  std::vector<std::uint32_t> v;
  for (std::size_t len : {64u, 65u, 4096u, 70000u, 1u, 127u}) {
    v.push_back(1);
    v.insert(v.end(), len, 0);
  }
  std::vector<std::byte> in(v.size() * 4);
  std::memcpy(in.data(), v.data(), in.size());
  const ZeroScan ref = zero_scan_reference(in, 4);
  EXPECT_EQ(ref.zero_runs, 6u);
  for (SimdLevel l : runnable_levels()) EXPECT_EQ(zero_scan(in, 4, l), ref);
}

TEST(ZeroScan, EveryRunInsideAWord) {
  // Runs strictly inside a 64-element word are counted with word operations (no loop over runs):
  // every start position and length of a run, for 2- and 4-byte elements, in 8-word tensors (the
  // vector paths take 4 words at a time), the run in word 1; word 2 holds one run elsewhere and
  // word 5 three runs one nonzero apart (carries must stop between runs of one word).
  for (std::size_t w : {2, 4}) {
    for (std::size_t start = 1; start < 63; ++start) {
      for (std::size_t len = 1; start + len < 64; ++len) {
        std::vector<std::uint32_t> v(512, 0x3c00u);  // nonzero in both widths' low bytes
        const auto zero = [&](std::size_t word, std::size_t from, std::size_t n) {
          std::fill_n(v.begin() + static_cast<std::ptrdiff_t>(64 * word + from), n, 0u);
        };
        zero(1, start, len);
        const std::size_t start2 = (start * 7 + 3) % 62 + 1;
        zero(2, start2, std::min<std::size_t>(len, 63 - start2));
        const std::size_t a = (start * 5) % 20 + 1, la = len % 13 + 1;
        const std::size_t b0 = a + la + 1, lb = (len * 3) % 17 + 1;
        const std::size_t c0 = b0 + lb + 1,
                          lc = std::min<std::size_t>(start % 9 + 1, 63 - std::min<std::size_t>(c0, 63));
        zero(5, a, la);
        zero(5, b0, lb);
        if (c0 < 63) zero(5, c0, lc);
        std::vector<std::byte> in(v.size() * w);
        for (std::size_t i = 0; i < v.size(); ++i) std::memcpy(in.data() + i * w, &v[i], w);
        const ZeroScan ref = zero_scan_reference(in, w);
        ASSERT_EQ(ref.zero_runs, c0 < 63 ? 5u : 4u);
        for (SimdLevel l : runnable_levels())
          ASSERT_EQ(zero_scan(in, w, l), ref)
              << "w " << w << " start " << start << " len " << len << " level " << to_string(l);
      }
    }
  }
}

TEST(ZeroScan, RejectsBadWidth) {
  std::vector<std::byte> in(5);
  EXPECT_THROW(zero_scan(in, 4), CodecError);
  EXPECT_THROW(zero_scan(in, 8), CodecError);
  EXPECT_THROW(zrle_size(ZeroScan{}, 4, 0), CodecError);
}
