// Fuzz target: BPC. Round trip: the fast encoder against the bit-by-bit reference, decode gives the
// input back. Decode mode: arbitrary bytes for an arbitrary element count and width; a stream the
// decoder accepts must be exactly what the encoder writes for the decoded words.
#include <cdma/formats/bpc.hpp>

#include "fuzz_codec_common.hpp"

using namespace cdma::formats;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  cdma::fuzz::Input in;
  if (!cdma::fuzz::parse(data, size, in)) return 0;
  const std::size_t w = in.width;
  if (!in.decode) {
    const auto t = in.payload;
    std::vector<std::byte> ref(bpc_max_encoded_size(t.size(), w));
    ref.resize(bpc_encode_reference(t, w, ref));
    const auto enc = cdma::fuzz::round_trip(*make_codec("bpc"), t, w);
    if (enc != ref) cdma::fuzz::fail("bpc: fast encode differs from the reference");
    if ((bpc_bits(t, w) + 7) / 8 != enc.size()) cdma::fuzz::fail("bpc: bit count differs from the stream");
    return 0;
  }
  std::vector<std::byte> out(in.elements * w);
  if (!cdma::fuzz::try_decode(*make_codec("bpc"), in.payload, w, out)) return 0;
  std::vector<std::byte> again(bpc_max_encoded_size(out.size(), w));
  again.resize(bpc_encode_reference(out, w, again));
  if (!std::equal(again.begin(), again.end(), in.payload.begin(), in.payload.end()))
    cdma::fuzz::fail("bpc: accepted a non-canonical stream");
  return 0;
}
