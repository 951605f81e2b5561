// Helpers shared by the codec tests: random tensors with controllable zero structure, the SIMD
// levels this CPU can run.
#pragma once

#include <cdma/formats/simd.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <span>
#include <vector>

namespace cdma::test {

// n elements of width w: each element zero with probability 1 - density; nonzero elements have
// random bits (some are -0.0 / NaN / denormal patterns for 4-byte elements); with `runs`, zeros
// come in runs of random length up to max_run.
inline std::vector<std::byte> random_tensor(std::mt19937_64& rng, std::size_t n, std::size_t w, double density,
                                            std::size_t max_run = 1) {
  std::vector<std::byte> v(n * w);
  std::uniform_real_distribution<double> uni(0.0, 1.0);
  std::size_t i = 0;
  while (i < n) {
    if (uni(rng) < density) {
      std::uint64_t bits;
      do {
        bits = rng();
        const auto pick = rng() % 8;
        if (w == 4 && pick == 0) bits = 0x80000000u;                 // -0.0f
        if (w == 4 && pick == 1) bits = 0x7fc00001u;                 // NaN
        if (pick == 2) bits = 1;                                     // only the lowest bit
        if (pick == 3) bits = std::uint64_t{0x80} << (8 * (w - 1));  // only the highest bit
      } while ((bits & (w == 8 ? ~0ull : ((std::uint64_t{1} << (8 * w)) - 1))) == 0);
      std::memcpy(v.data() + i * w, &bits, w);
      ++i;
    } else {
      const std::size_t len = max_run > 1 ? 1 + rng() % max_run : 1;
      i += len;  // already zero
    }
  }
  return v;
}

inline std::vector<formats::SimdLevel> runnable_levels() {
  std::vector<formats::SimdLevel> out{formats::SimdLevel::scalar};
  if (formats::cpu_simd_level() >= formats::SimdLevel::avx2) out.push_back(formats::SimdLevel::avx2);
  if (formats::cpu_simd_level() >= formats::SimdLevel::avx512) out.push_back(formats::SimdLevel::avx512);
  return out;
}

inline std::span<const std::byte> bytes_of(const std::vector<std::byte>& v) { return v; }

}  // namespace cdma::test
