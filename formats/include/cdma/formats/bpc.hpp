// BPC and EBPC — bit-plane compression (Kim et al., ISCA 2016) and extended bit-plane compression
// (Cavigelli et al., JETCAS 2019), as specified in shared/design/EBPC_BPC.md and docs/spec/CODECS.md.
//
// Both are bit streams written most significant bit first (the first bit of the stream is bit 7 of
// byte 0), the last byte padded with zero bits. No header: the caller knows n and the width w
// (ww = 8w bits per word). BPC cuts the words into blocks of 8 (the last one holds n mod 8), codes
// each block as its first word followed by one symbol per bit plane of the XOR-ed delta planes,
// runs of all-zero planes merged into one token. EBPC is a zero/nonzero stream (a nonzero word is
// bit 1, a run of up to 16 zeros is 0 and length-1 in 4 bits; the run that ends the tensor is coded
// too) followed directly by the BPC stream of the nonzero words.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace cdma::formats {

// Output capacity encode needs: the worst case of EBPC_BPC.md (bits <= 5 * zeros + nnz +
// ceil(nnz / 8) * 9 * ww; BPC: ceil(n / 8) * 9 * ww) plus 16 bytes of slack the bit writer may touch
// past the stream (never part of the returned size).
std::size_t bpc_max_encoded_size(std::size_t bytes, std::size_t width) noexcept;
std::size_t ebpc_max_encoded_size(std::size_t bytes, std::size_t width) noexcept;

// Encode; return the stream size in bytes (ceil(bits / 8); 0 for an empty tensor). Throw CodecError
// on a width other than 1, 2, 4, a byte count that is not a whole number of words, or an output
// smaller than the *_max_encoded_size() above.
std::size_t bpc_encode(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out);
std::size_t ebpc_encode(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out);

// Exact stream length in bits (before the padding), computed without writing a stream.
std::uint64_t bpc_bits(std::span<const std::byte> in, std::size_t width);
std::uint64_t ebpc_bits(std::span<const std::byte> in, std::size_t width);

// Decode into exactly out.size() bytes. Accept only the stream the encoder writes: throw CodecError
// (never reading or writing out of bounds) on a stream that ends early or has trailing bytes or
// nonzero padding bits; in BPC, a zero-plane token following another one (a run the encoder would
// have merged), a run of zero planes past the word's D = ww planes, an index field out of range,
// or any symbol the encoder would not have chosen for the plane it decodes to (an all-ones or
// single-one plane written as a literal, a "plane is zero" symbol where the encoder codes the XOR,
// ...); in EBPC also a zero-run token after a run shorter than 16, runs past n, and a word coded as
// nonzero that decodes to 0.
void bpc_decode(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out);
void ebpc_decode(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out);

// Bit-by-bit implementations of the spec (a string of bits per symbol), the reference of the fast
// encoders above; same arguments and results.
std::size_t bpc_encode_reference(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out);
std::size_t ebpc_encode_reference(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out);
// Their stream lengths in bits (the reference of bpc_bits() / ebpc_bits()).
std::uint64_t bpc_bits_reference(std::span<const std::byte> in, std::size_t width);
std::uint64_t ebpc_bits_reference(std::span<const std::byte> in, std::size_t width);

}  // namespace cdma::formats
