// Single-pass zero statistics of a tensor, from which the ZVC and every ZRLE-k size follow exactly
// without encoding (docs/spec/CODECS.md). This is the analyzer's hot loop.
#pragma once

#include <cdma/formats/simd.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace cdma::formats {

inline constexpr int kZrleMinK = 1;
inline constexpr int kZrleMaxK = 16;

// Statistics of one tensor. An element is zero when all its `width` bytes are zero (-0.0 and NaN
// are nonzero).
struct ZeroScan {
  std::uint64_t elements = 0;
  std::uint64_t nonzeros = 0;
  std::uint64_t zero_runs = 0;  // maximal runs of consecutive zero elements
  // zrle_tokens[k], k in 1..16: ZRLE-k zero tokens = sum over runs of ceil(L / 2^k).
  // zrle_tokens[0] is unused and 0.
  std::array<std::uint64_t, kZrleMaxK + 1> zrle_tokens{};

  std::uint64_t zeros() const noexcept { return elements - nonzeros; }
  double density() const noexcept {
    return elements ? static_cast<double>(nonzeros) / static_cast<double>(elements) : 0.0;
  }
  friend bool operator==(const ZeroScan&, const ZeroScan&) = default;
};

// Scans `data` (a whole number of `width`-byte elements, width 1, 2 or 4; throws CodecError
// otherwise). Uses the active SIMD level.
ZeroScan zero_scan(std::span<const std::byte> data, std::size_t width);
// Same at an explicit level (clamped to what the CPU supports), for tests and benchmarks.
ZeroScan zero_scan(std::span<const std::byte> data, std::size_t width, SimdLevel level);
// The plain element-by-element reference the fast paths are tested against.
ZeroScan zero_scan_reference(std::span<const std::byte> data, std::size_t width);

// Number of nonzero elements only (cheaper than a full scan; enough for ZVC).
std::uint64_t count_nonzeros(std::span<const std::byte> data, std::size_t width);

// ZVC size in bytes of n elements of `width` bytes with nnz nonzeros: 4 * ceil(n / 32) + width * nnz.
constexpr std::uint64_t zvc_size(std::uint64_t n, std::uint64_t nnz, std::size_t width) noexcept {
  return 4 * ((n + 31) / 32) + static_cast<std::uint64_t>(width) * nnz;
}

// ZRLE-k size in bytes: ceil((nnz * (1 + 8 * width) + tokens_k * (1 + k)) / 8). k in 1..16
// (throws CodecError otherwise).
std::uint64_t zrle_size(const ZeroScan& scan, std::size_t width, int k);

}  // namespace cdma::formats
