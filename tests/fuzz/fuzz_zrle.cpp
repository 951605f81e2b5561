// Fuzz target: ZRLE-k (k from the header byte). Fast encoder and decoder against the bit-by-bit
// reference; an accepted stream must be canonical (re-encoding the output gives the same bytes).
#include <cdma/formats/zrle.hpp>

#include "fuzz_codec_common.hpp"

using namespace cdma::formats;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  cdma::fuzz::Input in;
  if (!cdma::fuzz::parse(data, size, in)) return 0;
  const std::size_t w = in.width;
  const int k = 1 + static_cast<int>(in.param % 16);
  if (!in.decode) {
    const auto t = in.payload;
    std::vector<std::byte> ref(zrle_max_encoded_size(t.size(), w));
    ref.resize(zrle_encode_reference(t, w, k, ref));
    const auto enc = cdma::fuzz::round_trip(*make_codec("zrle-" + std::to_string(k)), t, w);
    if (enc != ref) cdma::fuzz::fail("zrle: fast encode differs from the reference");
    return 0;
  }
  std::vector<std::byte> ref_out(in.elements * w), out(in.elements * w);
  bool ref_ok = true, ok = true;
  try {
    zrle_decode_reference(in.payload, w, k, ref_out);
  } catch (const CodecError&) {
    ref_ok = false;
  }
  try {
    zrle_decode(in.payload, w, k, out);
  } catch (const CodecError&) {
    ok = false;
  }
  if (ok != ref_ok) cdma::fuzz::fail("zrle: fast decode accepts/rejects unlike the reference");
  if (ok && out != ref_out) cdma::fuzz::fail("zrle: fast decode output differs");
  if (ok) {
    std::vector<std::byte> again(zrle_max_encoded_size(out.size(), w));
    again.resize(zrle_encode_reference(out, w, k, again));
    if (!std::equal(again.begin(), again.end(), in.payload.begin(), in.payload.end()))
      cdma::fuzz::fail("zrle: accepted a non-canonical stream");
  }
  return 0;
}
