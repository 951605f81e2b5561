// Element types and layouts of captured tensors (trace format v1, "dtype" and "layout").
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace cdma::formats {

enum class DType : std::uint8_t { f32, f16, bf16, i8, u8 };
enum class Layout : std::uint8_t { NCHW, NHWC, CHWN, NC };

// Bytes per element: 4, 2, 2, 1, 1.
constexpr std::size_t dtype_size(DType t) noexcept {
  switch (t) {
    case DType::f32:
      return 4;
    case DType::f16:
    case DType::bf16:
      return 2;
    case DType::i8:
    case DType::u8:
      return 1;
  }
  return 0;
}

// Trace-format spellings: "float32", "float16", "bfloat16", "int8", "uint8".
std::string_view to_string(DType t) noexcept;
std::optional<DType> parse_dtype(std::string_view s) noexcept;

// "NCHW", "NHWC", "CHWN", "NC".
std::string_view to_string(Layout l) noexcept;
std::optional<Layout> parse_layout(std::string_view s) noexcept;

// Number of dimensions a layout implies (4, or 2 for NC).
constexpr int layout_rank(Layout l) noexcept { return l == Layout::NC ? 2 : 4; }

}  // namespace cdma::formats
