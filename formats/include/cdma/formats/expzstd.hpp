// expzstd — an exponent-aware codec for 16-bit floats and fp32 (docs/spec/CODECS.md "expzstd"):
// a ZVC-style zero mask (when it pays), then the nonzero words split into byte planes, most
// significant first (sign and exponent bits), each plane one zstd frame (Huffman-coded literals on
// the exponent planes, fast match search) or stored raw when zstd does not make it smaller.
#pragma once

#include <cstddef>
#include <span>

namespace cdma::formats {

// Output capacity encode needs: 1 + ceil(n / 8) + width * 4 + bytes (n = bytes / width).
std::size_t expzstd_max_encoded_size(std::size_t bytes, std::size_t width) noexcept;

// Encodes; returns the stream size (at least 1). Throws CodecError on a width other than 1, 2, 4,
// a byte count that is not a whole number of words, or an output smaller than the bound above.
std::size_t expzstd_encode(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out);

// Decodes into exactly out.size() bytes. Throws CodecError (never reading or writing out of bounds)
// on anything the encoder would not write: a flags byte other than 0 or 1, a stream that ends
// early or has trailing bytes, nonzero mask padding bits, a mask where the encoder's rule says
// none (or none where it says one), a masked word that decodes to zero, a plane whose zstd frame
// is not exactly its length or is not shorter than the raw plane, or that decodes to another size.
void expzstd_decode(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out);

}  // namespace cdma::formats
