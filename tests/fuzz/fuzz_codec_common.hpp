// Input layout shared by the codec fuzz targets and make_corpus.cpp:
//   byte 0: bits 0-1 width (0 -> 1, 1 -> 2, else 4 bytes); bit 2 mode (0 round trip, 1 decode
//           arbitrary bytes); bits 3-7 a codec parameter (ZRLE: k - 1, k in 1..16 by % 16).
//   round trip: the rest is a tensor (cut to whole elements).
//   decode:     bytes 1-2 little-endian element count (at most 8191), the rest the stream.
// A target aborts (a crash the driver and libFuzzer report) when a round trip differs, when two
// implementations disagree, or when a decoder throws anything but CodecError.
#pragma once

#include <cdma/formats/codec.hpp>
#include <cdma/formats/error.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

namespace cdma::fuzz {

struct Input {
  std::size_t width = 4;
  bool decode = false;
  unsigned param = 0;        // 0..31
  std::size_t elements = 0;  // decode mode
  std::span<const std::byte> payload;
};

inline bool parse(const std::uint8_t* data, std::size_t size, Input& in) {
  if (size < 1) return false;
  const unsigned h = data[0];
  in.width = (h & 3) == 0 ? 1 : (h & 3) == 1 ? 2 : 4;
  in.decode = (h >> 2) & 1;
  in.param = h >> 3;
  const auto* p = reinterpret_cast<const std::byte*>(data);
  if (in.decode) {
    if (size < 3) return false;
    in.elements = (static_cast<std::size_t>(data[1]) | static_cast<std::size_t>(data[2]) << 8) & 0x1fff;
    in.payload = {p + 3, size - 3};
  } else {
    in.payload = {p + 1, (size - 1) / in.width * in.width};
  }
  return true;
}

[[noreturn]] inline void fail(const char* what) {
  std::fprintf(stderr, "fuzz: %s\n", what);
  std::abort();
}

// Encode with `codec`, decode, compare; and check compressed_size() agrees.
inline std::vector<std::byte> round_trip(const formats::Codec& codec, std::span<const std::byte> t, std::size_t w) {
  std::vector<std::byte> enc(codec.max_encoded_size(t.size(), w));
  enc.resize(codec.encode(t, w, enc));
  if (codec.compressed_size(t, w) != enc.size()) fail("compressed_size() != encoded size");
  std::vector<std::byte> back(t.size());
  codec.decode(enc, w, back);
  if (!std::equal(back.begin(), back.end(), t.begin(), t.end())) fail("round trip differs");
  return enc;
}

// Decodes arbitrary bytes; returns true and fills `out` when accepted. Anything but CodecError
// escaping is a bug.
inline bool try_decode(const formats::Codec& codec, std::span<const std::byte> s, std::size_t w,
                       std::vector<std::byte>& out) {
  try {
    codec.decode(s, w, out);
    return true;
  } catch (const formats::CodecError&) {
    return false;
  }
}

// The whole body of a byte-codec target (zlib, zstd, lz4): the round trip of `in`'s tensor, or
// the decoding of its payload as an arbitrary stream.
inline int run_byte_codec(const formats::Codec& codec, const Input& in) {
  if (!in.decode) {
    round_trip(codec, in.payload, in.width);
    return 0;
  }
  std::vector<std::byte> out(in.elements * in.width);
  try_decode(codec, in.payload, in.width, out);
  return 0;
}

}  // namespace cdma::fuzz
