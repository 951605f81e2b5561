// ZVC — zero-value compression (docs/spec/CODECS.md): blocks of 32 elements, each a 4-byte little-endian
// nonzero mask followed by the block's nonzero elements packed. No header.
#pragma once

#include <cdma/formats/simd.hpp>

#include <cstddef>
#include <span>

namespace cdma::formats {

// Output capacity encode needs for `bytes` input bytes: the exact worst case (4*ceil(n/32) + bytes)
// plus 64 bytes of slack the fast paths may write past the end of the stream (never read back).
std::size_t zvc_max_encoded_size(std::size_t bytes, std::size_t width) noexcept;

// Encodes; returns the stream size. Throws CodecError when width is not 1, 2, 4, in.size() is not a
// multiple of width, or out is smaller than zvc_max_encoded_size().
std::size_t zvc_encode(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out);
std::size_t zvc_encode(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out, SimdLevel level);

// Decodes into exactly out.size() bytes. Throws CodecError (never reads or writes out of bounds)
// when the stream is truncated, has trailing bytes, sets mask bits past the tensor's end, or marks
// as nonzero an element whose bytes are all zero (such a stream is not what encode produces).
void zvc_decode(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out);
void zvc_decode(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out, SimdLevel level);
// The fast paths write outputs of at least this many bytes with streaming (non-temporal) stores when
// `out` is aligned (32 bytes for AVX2, 64 for AVX-512): no read-for-ownership of the output's lines,
// which then are not in the cache for an immediate reader (measured faster on 64 MiB tensors;
// 8 MiB is four times a recent core's L2). Smaller outputs use ordinary stores.
inline constexpr std::size_t kZvcStreamingStoreBytes = std::size_t{8} << 20;

// Line-by-line implementations of the spec, the reference of the fast paths.
std::size_t zvc_encode_reference(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out);
void zvc_decode_reference(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out);

}  // namespace cdma::formats
