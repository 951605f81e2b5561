// The one byte-size grammar of cdma (command-line options, CDMA_CAPTURE_* variables):
//
//   size  = digits [unit]        digits: 0-9 only (no sign, no spaces, no fraction, no exponent)
//   unit  = B | K | KiB | M | MiB | G | GiB | T | TiB     (case-insensitive; binary: K = KiB = 2^10)
//
// and the value must not exceed a maximum (2^62 bytes unless the caller gives a smaller one).
// Examples: 4096, 4096B, 4K, 64KiB, 1M, 2G, 1T.
//
// Header-only and standard-library-only, no exceptions, so that the capture interposer (built
// standalone by scripts/build-capture.sh, and never throwing into its host) can use it through
// capture/include/cdma/capture/config.hpp once docs/ARCHITECTURE.md lets capture/common include
// this one header (today capture/common may include nothing, and config.hpp keeps its own parser).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cdma::formats {

inline constexpr std::uint64_t kMaxByteSize = std::uint64_t{1} << 62;

// Why `text` is not a byte size ("empty", "must not be negative", "unknown unit 'Q'", "more than
// 2^62 bytes", ...), or the value. On failure `*why` (when given) says why; the value is nullopt.
inline std::optional<std::uint64_t> parse_byte_size(std::string_view text, std::string* why = nullptr,
                                                    std::uint64_t max = kMaxByteSize) {
  auto fail = [&](std::string reason) -> std::optional<std::uint64_t> {
    if (why) *why = std::move(reason);
    return std::nullopt;
  };
  std::size_t i = 0;
  std::uint64_t v = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
    if (v > (~std::uint64_t{0} - 9) / 10) return fail("too large");
    v = v * 10 + static_cast<std::uint64_t>(text[i] - '0');
  }
  if (i == 0)
    return fail(text.empty() ? "empty" : text[0] == '-' ? "must not be negative" : "not a whole number of bytes");
  std::string unit(text.substr(i));
  for (auto& c : unit)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  if (unit.size() == 3 && unit[0] != 'B' && unit.substr(1) == "IB") unit.resize(1);
  unsigned shift = 0;
  if (unit.empty() || unit == "B")
    shift = 0;
  else if (unit == "K")
    shift = 10;
  else if (unit == "M")
    shift = 20;
  else if (unit == "G")
    shift = 30;
  else if (unit == "T")
    shift = 40;
  else
    return fail("unknown unit '" + std::string(text.substr(i)) + "'");
  if (v > (max >> shift) || (v << shift) > max)
    return fail(max == kMaxByteSize ? std::string("more than 2^62 bytes")
                                    : "more than " + std::to_string(max) + " bytes");
  return v << shift;
}

// The message for an option whose value is not a byte size: "<option> '<text>': <why> (expected
// e.g. 4096, 4K, 64KiB, 1M, 2G)".
inline std::string byte_size_error(std::string_view option, std::string_view text, std::string_view why) {
  return std::string(option) + " '" + std::string(text) + "': " + std::string(why) +
         " (expected e.g. 4096, 4K, 64KiB, 1M, 2G)";
}

}  // namespace cdma::formats
