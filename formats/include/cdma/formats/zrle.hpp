// ZRLE-k — zero run-length encoding (docs/spec/CODECS.md): an LSB-first bit stream; a nonzero element is bit 1
// and its 8*width bits; a run of L zeros (1 <= L <= 2^k) is bit 0 and L-1 in k bits; longer runs
// are split into runs of 2^k and a remainder; the last byte is padded with zero bits. No header.
#pragma once

#include <cdma/formats/simd.hpp>

#include <cstddef>
#include <span>

namespace cdma::formats {

// Output capacity encode needs for any k: the worst case (every element costing
// max(1 + 8 * width, 17) bits) plus 16 bytes of slack the bit writer may touch past the stream.
std::size_t zrle_max_encoded_size(std::size_t bytes, std::size_t width) noexcept;

// Encodes with run field width k (1..16); returns the stream size. Throws CodecError on a bad
// width or k, or when out is smaller than zrle_max_encoded_size().
std::size_t zrle_encode(std::span<const std::byte> in, std::size_t width, int k, std::span<std::byte> out);

// Decodes into exactly out.size() bytes. Throws CodecError (never reading or writing out of bounds)
// when the stream is truncated, has trailing bytes or nonzero padding bits, holds a run longer than
// the elements left, a "nonzero" element whose bits are all zero, or a run token that the encoder
// would have merged with the previous one (a short run followed by another run).
void zrle_decode(std::span<const std::byte> in, std::size_t width, int k, std::span<std::byte> out);

// Bit-by-bit implementations of the spec, the reference of the fast paths.
std::size_t zrle_encode_reference(std::span<const std::byte> in, std::size_t width, int k, std::span<std::byte> out);
void zrle_decode_reference(std::span<const std::byte> in, std::size_t width, int k, std::span<std::byte> out);

}  // namespace cdma::formats
