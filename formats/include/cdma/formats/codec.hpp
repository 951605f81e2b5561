// Lossless codecs of docs/spec/CODECS.md behind one interface, registered by name.
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

// One codec family of the registry. The table of them (codec_table) is the one place that
// make_codec, the analyzer's default codec list, and the --help texts that list codecs read.
struct CodecFamily {
  std::string name;                // "zrle": the spec is the name, or name-P when there is a parameter
  char param = 0;                  // the parameter's letter in help texts ('K', 'L'); 0 = no parameter
  int min = 0, max = 0, dflt = 0;  // its range and default (when param != 0)
  // Makes the codec at a parameter in [min, max] (ignored without a parameter).
  std::unique_ptr<Codec> (*make)(int param) = nullptr;
  // Whether the analyzer's default codec list holds it (bpc, ebpc and expzstd are named with --codecs:
  // they cost about as much as the other five together and are not the paper's).
  bool in_defaults = true;

  // "zvc", or the name at its default parameter ("zrle-4").
  std::string default_spec() const;
};

// The registered families, in the order the analyzer lists them: zvc, zrle, zlib, zstd, lz4, bpc,
// ebpc, expzstd.
const std::vector<CodecFamily>& codec_table();

// Makes a codec from its spec: a family's name ("zvc", "lz4", "bpc", "ebpc", "expzstd"; "zrle" = its default
// parameter) or name-P with P in the family's range: "zrle-K" (K in 1..16, default 4), "zlib-L"
// (0..9, default 6), "zstd-L" (1..ZSTD_maxCLevel(), default 1). Throws CodecError naming the accepted specs
// (codec_help()) on anything else.
std::unique_ptr<Codec> make_codec(std::string_view spec);

// Names of the registered codec families, in table order.
std::vector<std::string> codec_families();

// Every family marked in_defaults, at its default: the analyzer's default codec list ("zvc",
// "zrle-4", "zlib-6", "zstd-1", "lz4"; the paper's three plus zstd and lz4).
std::vector<std::string> default_codecs();

// The accepted specs as one line for --help texts and errors: "zvc, zrle[-K] (K 1..16, default
// 4), zlib[-L] (L 0..9, default 6), zstd[-L] (L 1..22, default 1), lz4, bpc, ebpc, expzstd".
std::string codec_help();

// Sum of compressed sizes when `in` is cut into independent chunks of `chunk_bytes` (rounded
// down to whole elements; 0 = whole tensor).
std::size_t chunked_compressed_size(const Codec& codec, std::span<const std::byte> in, std::size_t width,
                                    std::size_t chunk_bytes);

}  // namespace cdma::formats
