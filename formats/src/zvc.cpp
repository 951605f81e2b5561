// ZVC: the line-by-line reference of docs/spec/CODECS.md and the dispatch to the SIMD kernels.
#include <cdma/formats/zero_scan.hpp>
#include <cdma/formats/zvc.hpp>

#include "codec_internal.hpp"

#include <fmt/format.h>
#include <bit>

namespace cdma::formats {

using detail::codec_fail;

std::size_t zvc_max_encoded_size(std::size_t bytes, std::size_t width) noexcept {
  const std::size_t n = width ? bytes / width : bytes;
  return 4 * ((n + 31) / 32) + bytes + 64;
}

namespace {

void check_encode_args(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out) {
  detail::check_width(in.size(), width, "zvc encode");
  if (out.size() < zvc_max_encoded_size(in.size(), width))
    codec_fail(
        fmt::format("zvc encode: output buffer of {} bytes is smaller than the {} bytes "
                    "zvc_max_encoded_size() asks for",
                    out.size(), zvc_max_encoded_size(in.size(), width)));
}

}  // namespace

std::size_t zvc_encode_reference(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out) {
  check_encode_args(in, width, out);
  const std::size_t n = in.size() / width;
  std::size_t o = 0;
  for (std::size_t first = 0; first < n; first += 32) {
    const std::size_t b = std::min<std::size_t>(32, n - first);  // elements in this block
    std::uint32_t mask = 0;
    std::size_t mask_at = o;
    o += 4;
    for (std::size_t i = 0; i < b; ++i) {
      const std::byte* e = in.data() + (first + i) * width;
      if (detail::load_le(e, width) != 0) {  // zero = all bits zero; -0.0 and NaN are nonzero
        mask |= std::uint32_t{1} << i;
        std::memcpy(out.data() + o, e, width);
        o += width;
      }
    }
    detail::store32(out.data() + mask_at, mask);
  }
  return o;
}

void zvc_decode_reference(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out) {
  detail::check_width(out.size(), width, "zvc decode");
  const std::size_t n = out.size() / width;
  std::size_t ip = 0;
  for (std::size_t first = 0; first < n; first += 32) {
    const std::size_t b = std::min<std::size_t>(32, n - first);
    if (in.size() - ip < 4)
      codec_fail(fmt::format("zvc decode: stream of {} bytes ends inside the mask of block {}", in.size(), first / 32));
    const std::uint32_t mask = detail::load32(in.data() + ip);
    ip += 4;
    if (b < 32 && (mask >> b) != 0)
      codec_fail(fmt::format("zvc decode: mask of the last block sets bits past element {} of {}", b, b));
    const std::size_t need = width * static_cast<std::size_t>(std::popcount(mask));
    if (in.size() - ip < need)
      codec_fail(
          fmt::format("zvc decode: block {} claims {} nonzero values but the stream holds "
                      "only {} more bytes",
                      first / 32, std::popcount(mask), in.size() - ip));
    for (std::size_t i = 0; i < b; ++i) {
      std::byte* e = out.data() + (first + i) * width;
      if (mask >> i & 1) {
        if (detail::load_le(in.data() + ip, width) == 0)
          codec_fail(fmt::format("zvc decode: element {} is marked nonzero but its value is zero", first + i));
        std::memcpy(e, in.data() + ip, width);
        ip += width;
      } else {
        std::memset(e, 0, width);
      }
    }
  }
  if (ip != in.size())
    codec_fail(fmt::format("zvc decode: {} trailing bytes after the {} elements", in.size() - ip, n));
}

std::size_t zvc_encode(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out, SimdLevel level) {
  check_encode_args(in, width, out);
  const std::size_t n = in.size() / width;
#if CDMA_X86
  switch (clamp_simd_level(level)) {
    case SimdLevel::avx512:
      return detail::zvc_encode_avx512(in.data(), n, width, out.data());
    case SimdLevel::avx2:
      if (width != 1) return detail::zvc_encode_avx2(in.data(), n, width, out.data());
      break;
    case SimdLevel::scalar:
      break;
  }
#else
  (void)level;
  (void)n;
#endif
  return zvc_encode_reference(in, width, out);
}

void zvc_decode(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out, SimdLevel level) {
  detail::check_width(out.size(), width, "zvc decode");
  const std::size_t n = out.size() / width;
#if CDMA_X86
  switch (clamp_simd_level(level)) {
    case SimdLevel::avx512:
      return detail::zvc_decode_avx512(in.data(), in.size(), width, out.data(), n);
    case SimdLevel::avx2:
      if (width != 1) return detail::zvc_decode_avx2(in.data(), in.size(), width, out.data(), n);
      break;
    case SimdLevel::scalar:
      break;
  }
#else
  (void)level;
  (void)n;
#endif
  zvc_decode_reference(in, width, out);
}

std::size_t zvc_encode(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out) {
  return zvc_encode(in, width, out, active_simd_level());
}
void zvc_decode(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out) {
  zvc_decode(in, width, out, active_simd_level());
}

}  // namespace cdma::formats
