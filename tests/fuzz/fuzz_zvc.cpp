// Fuzz target: ZVC. Round trip at every SIMD level against the scalar reference; arbitrary bytes
// decoded at every level must be accepted or rejected alike, and an accepted stream must be
// canonical (re-encoding the output gives the same bytes).
#include <cdma/formats/zvc.hpp>

#include "fuzz_codec_common.hpp"

using namespace cdma::formats;

namespace {
const SimdLevel kLevels[] = {SimdLevel::scalar, SimdLevel::avx2, SimdLevel::avx512};
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  cdma::fuzz::Input in;
  if (!cdma::fuzz::parse(data, size, in)) return 0;
  const std::size_t w = in.width;
  if (!in.decode) {
    const auto t = in.payload;
    std::vector<std::byte> ref(zvc_max_encoded_size(t.size(), w));
    ref.resize(zvc_encode_reference(t, w, ref));
    for (SimdLevel l : kLevels) {
      std::vector<std::byte> enc(zvc_max_encoded_size(t.size(), w));
      enc.resize(zvc_encode(t, w, enc, l));
      if (enc != ref) cdma::fuzz::fail("zvc: SIMD encode differs from the reference");
      std::vector<std::byte> back(t.size());
      zvc_decode(enc, w, back, l);
      if (!std::equal(back.begin(), back.end(), t.begin(), t.end())) cdma::fuzz::fail("zvc: round trip differs");
    }
    cdma::fuzz::round_trip(*make_codec("zvc"), t, w);
    return 0;
  }
  std::vector<std::byte> ref_out(in.elements * w);
  bool ref_ok = true;
  try {
    zvc_decode_reference(in.payload, w, ref_out);
  } catch (const CodecError&) {
    ref_ok = false;
  }
  for (SimdLevel l : kLevels) {
    std::vector<std::byte> out(in.elements * w);
    bool ok = true;
    try {
      zvc_decode(in.payload, w, out, l);
    } catch (const CodecError&) {
      ok = false;
    }
    if (ok != ref_ok) cdma::fuzz::fail("zvc: SIMD decode accepts/rejects unlike the reference");
    if (ok && out != ref_out) cdma::fuzz::fail("zvc: SIMD decode output differs");
  }
  if (ref_ok) {
    std::vector<std::byte> again(zvc_max_encoded_size(ref_out.size(), w));
    again.resize(zvc_encode_reference(ref_out, w, again));
    if (!std::equal(again.begin(), again.end(), in.payload.begin(), in.payload.end()))
      cdma::fuzz::fail("zvc: accepted a non-canonical stream");
  }
  return 0;
}
