// Internals shared by the codec sources (not installed): width checks, unaligned loads/stores,
// the per-ISA kernels the public functions dispatch to.
#pragma once

#include <cdma/formats/error.hpp>
#include <cdma/formats/simd.hpp>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#if defined(__x86_64__) || defined(_M_X64)
#define CDMA_X86 1
#define CDMA_TARGET_AVX2 __attribute__((target("avx2,bmi,bmi2,popcnt,lzcnt")))
#define CDMA_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vbmi2,avx2,bmi,bmi2,popcnt,lzcnt")))
#else
#define CDMA_X86 0
#endif

namespace cdma::formats::detail {

// Throws CodecError unless width is 1, 2 or 4 and `bytes` is a whole number of elements.
void check_width(std::size_t bytes, std::size_t width, const char* who);

[[noreturn]] void codec_fail(const std::string& msg);

inline std::uint64_t load_le(const std::byte* p, std::size_t w) noexcept {
  std::uint64_t v = 0;
  std::memcpy(&v, p, w);  // little-endian host (x86-64, aarch64)
  return v;
}
inline std::uint32_t load32(const std::byte* p) noexcept {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline std::uint64_t load64(const std::byte* p) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
inline void store32(std::byte* p, std::uint32_t v) noexcept { std::memcpy(p, &v, 4); }
inline void store64(std::byte* p, std::uint64_t v) noexcept { std::memcpy(p, &v, 8); }

// Fills words[0 .. ceil(n/64)) with nonzero bitmasks: bit j of words[i] is set when element
// 64*i+j is nonzero; bits past n are 0.
void nonzero_masks_scalar(const std::byte* p, std::size_t n, std::size_t w, std::uint64_t* words);
void nonzero_masks(const std::byte* p, std::size_t n, std::size_t w, std::uint64_t* words, SimdLevel level);

// Statistics of the zero runs that lie strictly inside one 64-element word (a nonzero below and
// above, so at most 62 long), summed over words: how many, and their ZRLE-k tokens for k = 1..5
// (for k >= 6 each such run is one token). Runs crossing a word boundary are not counted here.
struct InnerRuns {
  std::uint64_t runs = 0;
  std::uint64_t tokens[6] = {};  // [k] for k = 1..5; [0] unused
};

// bit k of the position, for positions 0..63 of a word (k = 0..4).
inline constexpr std::uint64_t kPositionBit[5] = {0xAAAAAAAAAAAAAAAAull, 0xCCCCCCCCCCCCCCCCull, 0xF0F0F0F0F0F0F0F0ull,
                                                  0xFF00FF00FF00FF00ull, 0xFFFF0000FFFF0000ull};

// One word's inner runs, with no loop over runs. A run's ZRLE-k tokens are its positions at offsets
// from its start that are multiples of 2^k (ceil(L / 2^k) of them). From k-1 to k, of the positions
// at offsets j * 2^(k-1) keep those with j even: those whose bit k-1 equals that of their run's
// start. `fill` marks the runs whose start has bit k-1 set: adding their start bits to `inner`
// clears exactly those runs (each carry stops at the nonzero above its run). Always inlined, so
// that the caller's target decides whether popcount is one instruction.
[[gnu::always_inline]] inline void inner_runs_word(std::uint64_t m, InnerRuns& r) noexcept {
  const std::uint64_t ge_lo = m | (0 - m);  // positions at or above the lowest nonzero (0 if m == 0)
  std::uint64_t le_hi = m;                  // positions at or below the highest nonzero
  le_hi |= le_hi >> 1, le_hi |= le_hi >> 2, le_hi |= le_hi >> 4;
  le_hi |= le_hi >> 8, le_hi |= le_hi >> 16, le_hi |= le_hi >> 32;
  const std::uint64_t inner = ~m & ge_lo & le_hi;
  const std::uint64_t starts = inner & ~(inner << 1);
  r.runs += static_cast<std::uint64_t>(std::popcount(starts));
  std::uint64_t t = inner;
  for (int k = 1; k <= 5; ++k) {
    const std::uint64_t b = kPositionBit[k - 1];
    const std::uint64_t fill = inner & ~(inner + (starts & b));
    t &= ~(b ^ fill);
    r.tokens[k] += static_cast<std::uint64_t>(std::popcount(t));
  }
}

void inner_runs_scalar(const std::uint64_t* words, std::size_t nw, InnerRuns& r);

#if CDMA_X86
void inner_runs_avx2(const std::uint64_t* words, std::size_t nw, InnerRuns& r);
void nonzero_masks_avx2(const std::byte* p, std::size_t n, std::size_t w, std::uint64_t* words);
void nonzero_masks_avx512(const std::byte* p, std::size_t n, std::size_t w, std::uint64_t* words);
// ZVC kernels; arguments already validated (width, output capacity). Decoders validate the stream.
std::size_t zvc_encode_avx2(const std::byte* in, std::size_t n, std::size_t w, std::byte* out);
void zvc_decode_avx2(const std::byte* in, std::size_t in_size, std::size_t w, std::byte* out, std::size_t n);
std::size_t zvc_encode_avx512(const std::byte* in, std::size_t n, std::size_t w, std::byte* out);
void zvc_decode_avx512(const std::byte* in, std::size_t in_size, std::size_t w, std::byte* out, std::size_t n);
#endif

}  // namespace cdma::formats::detail
