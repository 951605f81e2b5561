// Layout permutation and float conversion applied before compressing (docs/spec/CODECS.md "Layouts and dtypes").
#pragma once

#include <cdma/formats/dtype.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace cdma::analyze {

// fp32 -> fp16 / bfloat16, round to nearest even; NaN stays NaN (quiet, sign and top payload bits
// kept); overflow goes to infinity (fp16), underflow to (signed) zero or subnormals.
std::uint16_t f32_to_f16(std::uint32_t bits) noexcept;
std::uint16_t f32_to_bf16(std::uint32_t bits) noexcept;
// Exact widenings.
std::uint32_t f16_to_f32(std::uint16_t h) noexcept;
std::uint32_t bf16_to_f32(std::uint16_t b) noexcept;

// fp32 -> fp8 (OCP 8-bit floating point, v1.0), round to nearest even, saturating: a finite value
// whose rounded magnitude exceeds the largest finite one, and an infinity, become that largest
// value with the sign kept (e4m3: 448 = 0x7E, e5m2: 57344 = 0x7B); NaN stays NaN with its sign
// (e4m3: S.1111.111 = 0x7F/0xFF, its only NaN; e5m2: quiet, S.11111.1x with the next payload bit);
// magnitudes below half the smallest subnormal (e4m3 2^-9, e5m2 2^-16) go to signed zero.
std::uint8_t f32_to_fp8_e4m3(std::uint32_t bits) noexcept;
std::uint8_t f32_to_fp8_e5m2(std::uint32_t bits) noexcept;
// Exact widenings (e5m2 infinities stay infinities; NaN gives a quiet fp32 NaN with the sign).
std::uint32_t fp8_e4m3_to_f32(std::uint8_t b) noexcept;
std::uint32_t fp8_e5m2_to_f32(std::uint8_t b) noexcept;

// The dtype variants of `--dtypes` besides "stored", by their canonical names (Options::validate):
// "float16", "bfloat16", "fp8-e4m3", "fp8-e5m2".
enum class VariantDtype : std::uint8_t { f16, bf16, fp8_e4m3, fp8_e5m2 };
std::optional<VariantDtype> parse_variant_dtype(std::string_view canonical) noexcept;
std::size_t variant_width(VariantDtype t) noexcept;  // 2, 2, 1, 1

// Converts `in` (elements of the float dtype `from`) to the variant `to` into `out` (resized).
// Returns false (and leaves out untouched) when the conversion does not apply: integer dtypes, or
// `to` equal to `from` (float16 of a float16 tensor). fp8 always converts a float tensor.
bool convert_variant(std::span<const std::byte> in, formats::DType from, VariantDtype to, std::vector<std::byte>& out);

// Converts `in` (elements of `from`, a float dtype) to `to` (f16 or bf16) into `out` (resized).
// Returns false (and leaves out untouched) when the conversion does not apply (integer dtypes,
// or to == f32).
bool convert_dtype(std::span<const std::byte> in, formats::DType from, formats::DType to, std::vector<std::byte>& out);

// Permutes a 4-D tensor with `dims` given in layout `from` into layout `to` (elements of
// `width` bytes) into `out` (resized). Both layouts must be 4-D; dims.size() must be 4.
void permute_layout(std::span<const std::byte> in, std::span<const std::int64_t> dims, formats::Layout from,
                    formats::Layout to, std::size_t width, std::vector<std::byte>& out);

}  // namespace cdma::analyze
