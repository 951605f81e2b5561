// Fuzz target: the zstd byte codec through the Codec interface. Round trip of arbitrary tensors;
// arbitrary bytes decoded must be accepted (exactly the expected size) or rejected with CodecError.
#include "fuzz_codec_common.hpp"

#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  cdma::fuzz::Input in;
  if (!cdma::fuzz::parse(data, size, in)) return 0;
  const auto codec = cdma::formats::make_codec("zstd-" + std::to_string(1 + in.param % 5));
  return cdma::fuzz::run_byte_codec(*codec, in);
}
