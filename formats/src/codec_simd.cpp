// Run-time ISA detection and dispatch of the nonzero-mask kernel.
#include "codec_internal.hpp"

#include <fmt/format.h>
#include <cstdlib>

namespace cdma::formats {

SimdLevel cpu_simd_level() noexcept {
#if CDMA_X86
  static const SimdLevel level = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512vbmi2") && __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("popcnt"))
      return SimdLevel::avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("popcnt"))
      return SimdLevel::avx2;
    return SimdLevel::scalar;
  }();
  return level;
#else
  return SimdLevel::scalar;
#endif
}

SimdLevel clamp_simd_level(SimdLevel requested) noexcept {
  return static_cast<unsigned char>(requested) <= static_cast<unsigned char>(cpu_simd_level()) ? requested
                                                                                               : cpu_simd_level();
}

SimdLevel active_simd_level() noexcept {
  static const SimdLevel level = [] {
    const char* env = std::getenv("CDMA_SIMD");
    if (env) {
      if (auto l = parse_simd_level(env)) return clamp_simd_level(*l);
    }
    return cpu_simd_level();
  }();
  return level;
}

std::string_view to_string(SimdLevel l) noexcept {
  switch (l) {
    case SimdLevel::scalar:
      return "scalar";
    case SimdLevel::avx2:
      return "avx2";
    case SimdLevel::avx512:
      return "avx512";
  }
  return "?";
}

std::optional<SimdLevel> parse_simd_level(std::string_view s) noexcept {
  if (s == "scalar") return SimdLevel::scalar;
  if (s == "avx2") return SimdLevel::avx2;
  if (s == "avx512") return SimdLevel::avx512;
  return std::nullopt;
}

namespace detail {

void codec_fail(const std::string& msg) { throw CodecError(msg); }

void check_width(std::size_t bytes, std::size_t width, const char* who) {
  if (width != 1 && width != 2 && width != 4)
    codec_fail(fmt::format("{}: element width must be 1, 2 or 4 bytes, got {}", who, width));
  if (bytes % width != 0)
    codec_fail(fmt::format("{}: {} bytes is not a whole number of {}-byte elements", who, bytes, width));
}

void nonzero_masks_scalar(const std::byte* p, std::size_t n, std::size_t w, std::uint64_t* words) {
  const std::size_t nw = (n + 63) / 64;
  for (std::size_t i = 0; i < nw; ++i) {
    const std::size_t lim = (i + 1) * 64 <= n ? 64 : n - i * 64;
    std::uint64_t m = 0;
    for (std::size_t j = 0; j < lim; ++j) m |= static_cast<std::uint64_t>(load_le(p + (i * 64 + j) * w, w) != 0) << j;
    words[i] = m;
  }
}

void inner_runs_scalar(const std::uint64_t* words, std::size_t nw, InnerRuns& r) {
  for (std::size_t i = 0; i < nw; ++i) inner_runs_word(words[i], r);
}

void nonzero_masks(const std::byte* p, std::size_t n, std::size_t w, std::uint64_t* words, SimdLevel level) {
#if CDMA_X86
  switch (clamp_simd_level(level)) {
    case SimdLevel::avx512:
      return nonzero_masks_avx512(p, n, w, words);
    case SimdLevel::avx2:
      return nonzero_masks_avx2(p, n, w, words);
    case SimdLevel::scalar:
      break;
  }
#else
  (void)level;
#endif
  nonzero_masks_scalar(p, n, w, words);
}

}  // namespace detail
}  // namespace cdma::formats
