// Layout permutation and float conversion applied before compressing (docs/spec/CODECS.md "Layouts and dtypes").
#pragma once

#include <cdma/formats/dtype.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace cdma::analyze {

// fp32 -> fp16 / bfloat16, round to nearest even; NaN stays NaN (quiet, sign and top payload bits
// kept); overflow goes to infinity (fp16), underflow to (signed) zero or subnormals.
std::uint16_t f32_to_f16(std::uint32_t bits) noexcept;
std::uint16_t f32_to_bf16(std::uint32_t bits) noexcept;
// Exact widenings.
std::uint32_t f16_to_f32(std::uint16_t h) noexcept;
std::uint32_t bf16_to_f32(std::uint16_t b) noexcept;

// Converts `in` (elements of `from`, a float dtype) to `to` (f16 or bf16) into `out` (resized).
// Returns false (and leaves out untouched) when the conversion does not apply (integer dtypes,
// or to == f32).
bool convert_dtype(std::span<const std::byte> in, formats::DType from, formats::DType to, std::vector<std::byte>& out);

// Permutes a 4-D tensor with `dims` given in layout `from` into layout `to` (elements of
// `width` bytes) into `out` (resized). Both layouts must be 4-D; dims.size() must be 4.
void permute_layout(std::span<const std::byte> in, std::span<const std::int64_t> dims, formats::Layout from,
                    formats::Layout to, std::size_t width, std::vector<std::byte>& out);

}  // namespace cdma::analyze
