// Lossless codecs of shared/design/CODECS.md behind one interface, registered by name.
//
// Streams carry no header: the caller knows the tensor's element count and width, as a DMA
// engine knows the transfer size. Every decoder rejects malformed input with CodecError and
// never reads or writes out of bounds.
#pragma once

#include <cdma/formats/error.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace cdma::formats {

class Codec {
 public:
  virtual ~Codec() = default;

  // Canonical name with parameters: "zvc", "zrle-4", "zlib-6", "zstd-1", "lz4".
  virtual std::string name() const = 0;

  // Upper bound of encode()'s output for `bytes` input bytes of `width`-byte elements.
  virtual std::size_t max_encoded_size(std::size_t bytes, std::size_t width) const = 0;

  // Encodes `in` (a whole number of `width`-byte elements, width 1, 2 or 4) into `out`, which must
  // hold max_encoded_size() bytes. Returns the encoded size.
  virtual std::size_t encode(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out) const = 0;

  // Decodes `in` into exactly out.size() bytes. Throws CodecError when the stream is malformed,
  // too short, too long, or decodes to a different size.
  virtual void decode(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out) const = 0;

  // Encoded size of `in` (may be computed without producing output).
  virtual std::size_t compressed_size(std::span<const std::byte> in, std::size_t width) const;

  // True when compressed_size() follows from counts (ZVC, ZRLE-k) instead of encoding.
  virtual bool size_from_counts() const { return false; }
};

// Makes a codec from its name: "zvc", "zrle" / "zrle-K" (K in 1..16, default 4), "zlib" /
// "zlib-L" (0..9, default 6), "zstd" / "zstd-L" (default 1), "lz4". Throws CodecError naming the
// accepted names on anything else.
std::unique_ptr<Codec> make_codec(std::string_view spec);

// Names of the registered codec families, for --help texts.
std::vector<std::string> codec_families();

// Sum of compressed sizes when `in` is cut into independent chunks of `chunk_bytes` (rounded
// down to whole elements; 0 = whole tensor).
std::size_t chunked_compressed_size(const Codec& codec, std::span<const std::byte> in, std::size_t width,
                                    std::size_t chunk_bytes);

}  // namespace cdma::formats
