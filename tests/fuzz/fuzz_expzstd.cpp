// Fuzz target: expzstd. Round trip mode: encode, decode, compare (and compressed_size()). Decode
// mode: arbitrary bytes for an arbitrary element count and width must fail with CodecError or
// decode to words that re-encode consistently: the re-encoded stream decodes to the same words and
// starts with the same flags byte and zero mask (the mask choice is canonical; a plane may be
// re-encoded differently, since any zstd frame shorter than the raw plane is accepted).
#include <cdma/formats/expzstd.hpp>

#include "fuzz_codec_common.hpp"

#include <algorithm>

using namespace cdma::formats;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  cdma::fuzz::Input in;
  if (!cdma::fuzz::parse(data, size, in)) return 0;
  const std::size_t w = in.width;
  const auto codec = make_codec("expzstd");
  if (!in.decode) {
    cdma::fuzz::round_trip(*codec, in.payload, w);
    return 0;
  }
  std::vector<std::byte> out(in.elements * w);
  if (!cdma::fuzz::try_decode(*codec, in.payload, w, out)) return 0;
  const auto again = cdma::fuzz::round_trip(*codec, out, w);
  const std::size_t head = in.payload[0] == std::byte{1} ? 1 + (in.elements + 7) / 8 : 1;
  if (again.size() < head ||
      !std::equal(again.begin(), again.begin() + static_cast<std::ptrdiff_t>(head), in.payload.begin()))
    cdma::fuzz::fail("expzstd: accepted a stream whose flags or zero mask the encoder would not write");
  return 0;
}
