// Internals shared by the codec sources (not installed): width checks, unaligned loads/stores,
// the per-ISA kernels the public functions dispatch to.
#pragma once

#include <cdma/formats/error.hpp>
#include <cdma/formats/simd.hpp>

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

#if CDMA_X86
void nonzero_masks_avx2(const std::byte* p, std::size_t n, std::size_t w, std::uint64_t* words);
void nonzero_masks_avx512(const std::byte* p, std::size_t n, std::size_t w, std::uint64_t* words);
// ZVC kernels; arguments already validated (width, output capacity). Decoders validate the stream.
std::size_t zvc_encode_avx2(const std::byte* in, std::size_t n, std::size_t w, std::byte* out);
void zvc_decode_avx2(const std::byte* in, std::size_t in_size, std::size_t w, std::byte* out, std::size_t n);
std::size_t zvc_encode_avx512(const std::byte* in, std::size_t n, std::size_t w, std::byte* out);
void zvc_decode_avx512(const std::byte* in, std::size_t in_size, std::size_t w, std::byte* out, std::size_t n);
#endif

}  // namespace cdma::formats::detail
