#include <cdma/formats/expzstd.hpp>

#include "codec_internal.hpp"

#include <fmt/format.h>
#define ZSTD_STATIC_LINKING_ONLY  // ZSTD_c_literalCompressionMode (see kFastLevel)
#include <zstd.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <limits>
#include <vector>

namespace cdma::formats {

namespace {

// zstd settings (docs/spec/CODECS.md "expzstd"), chosen for speed at the ratio of Huffman coding:
// level -20 (zstd's fastest match search) with matches of at least 7 bytes; on the two most
// significant planes (sign, exponent and the top mantissa bits: skewed) Huffman-coded literals are
// switched on (a negative level switches them off), on the planes below they stay off (near-random
// mantissa bytes; zstd gives up on them quickly and the plane is stored raw unless matches shorten it).
// The literal switch is libzstd's ZSTD_c_literalCompressionMode, an experimental parameter set
// through the stable ZSTD_CCtx_setParameter: a libzstd that refuses it falls back to level 1 for
// those planes. The decoder reads any zstd frame; the settings only change the encoder's sizes.
constexpr int kFastLevel = -20;
constexpr int kMinMatch = 7;
constexpr int kFallbackLevel = 1;

// The encoder's rule: a mask when the raw bytes of the zero words exceed the mask's bytes.
bool use_mask(std::size_t n, std::size_t zeros, std::size_t w) noexcept { return zeros * w * 8 > n; }

bool word_is_zero(const std::byte* p, std::size_t w) noexcept {
  switch (w) {
    case 1:
      return *p == std::byte{0};
    case 2: {
      std::uint16_t v;
      std::memcpy(&v, p, 2);
      return v == 0;
    }
    default:
      return detail::load32(p) == 0;
  }
}

template <std::size_t W>
std::size_t count_zeros(const std::byte* in, std::size_t n) noexcept {
  std::size_t z = 0;
  for (std::size_t i = 0; i < n; ++i) z += word_is_zero(in + i * W, W);
  return z;
}

// Splits the m coded words (all words, or the nonzero ones when `masked`) into w planes of m bytes:
// planes[p * m + j] = byte p of coded word j.
template <std::size_t W>
void split(const std::byte* in, std::size_t n, bool masked, std::size_t m, std::byte* planes) {
  if (!masked) {
    std::size_t i = 0;
    if constexpr (W == 2) {  // four words per 64-bit load: even bytes to plane 0, odd to plane 1
      for (; i + 4 <= n; i += 4) {
        const std::uint64_t v = detail::load64(in + i * 2);
        const std::uint64_t e = v & 0x00FF00FF00FF00FFull, o = (v >> 8) & 0x00FF00FF00FF00FFull;
        const auto pack = [](std::uint64_t x) {
          x = (x | (x >> 8)) & 0x0000FFFF0000FFFFull;
          return static_cast<std::uint32_t>(x | (x >> 16));
        };
        const std::uint32_t lo = pack(e), hi = pack(o);
        std::memcpy(planes + i, &lo, 4);
        std::memcpy(planes + m + i, &hi, 4);
      }
    }
    for (; i < n; ++i)
      for (std::size_t p = 0; p < W; ++p) planes[p * m + i] = in[i * W + p];
    return;
  }
  std::size_t j = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (word_is_zero(in + i * W, W)) continue;
    for (std::size_t p = 0; p < W; ++p) planes[p * m + j] = in[i * W + p];
    ++j;
  }
}

// The inverse of split(); with a mask, a coded word that is zero is refused.
template <std::size_t W>
void join(const std::byte* planes, std::size_t m, const std::byte* mask, std::size_t n, std::byte* out) {
  if (!mask) {
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t p = 0; p < W; ++p) out[i * W + p] = planes[p * m + i];
    return;
  }
  std::size_t j = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (((static_cast<unsigned>(mask[i >> 3]) >> (i & 7)) & 1u) == 0) {
      std::memset(out + i * W, 0, W);
      continue;
    }
    for (std::size_t p = 0; p < W; ++p) out[i * W + p] = planes[p * m + j];
    if (word_is_zero(out + i * W, W))
      detail::codec_fail(fmt::format("expzstd decode: word {} is marked nonzero but decodes to zero", i));
    ++j;
  }
}

void put32(std::byte* p, std::uint32_t v) noexcept { std::memcpy(p, &v, 4); }

std::vector<std::byte>& scratch() {
  thread_local std::vector<std::byte> s;
  return s;
}

}  // namespace

std::size_t expzstd_max_encoded_size(std::size_t bytes, std::size_t width) noexcept {
  const std::size_t n = width ? bytes / width : bytes;
  return 1 + (n + 7) / 8 + width * 4 + bytes;
}

std::size_t expzstd_encode(std::span<const std::byte> in, std::size_t w, std::span<std::byte> out) {
  detail::check_width(in.size(), w, "expzstd encode");
  if (out.size() < expzstd_max_encoded_size(in.size(), w))
    detail::codec_fail("expzstd encode: output buffer smaller than expzstd_max_encoded_size()");
  const std::size_t n = in.size() / w;
  const std::size_t zeros = w == 1   ? count_zeros<1>(in.data(), n)
                            : w == 2 ? count_zeros<2>(in.data(), n)
                                     : count_zeros<4>(in.data(), n);
  const bool masked = use_mask(n, zeros, w);
  const std::size_t m = masked ? n - zeros : n;
  std::size_t pos = 0;
  out[pos++] = std::byte{masked ? std::uint8_t{1} : std::uint8_t{0}};
  if (masked) {
    std::byte* mask = out.data() + pos;
    const std::size_t mb = (n + 7) / 8;
    std::memset(mask, 0, mb);
    for (std::size_t i = 0; i < n; ++i)
      if (!word_is_zero(in.data() + i * w, w)) mask[i >> 3] |= std::byte{static_cast<std::uint8_t>(1u << (i & 7))};
    pos += mb;
  }
  if (m == 0) return pos;
  auto& planes = scratch();
  planes.resize(w * m);
  switch (w) {
    case 1:
      split<1>(in.data(), n, masked, m, planes.data());
      break;
    case 2:
      split<2>(in.data(), n, masked, m, planes.data());
      break;
    default:
      split<4>(in.data(), n, masked, m, planes.data());
      break;
  }
  // Two contexts per thread: the exponent planes' (Huffman literals on) and the mantissa planes'.
  struct Ctx {
    ZSTD_CCtx* c = ZSTD_createCCtx();
    ~Ctx() { ZSTD_freeCCtx(c); }
    explicit Ctx(bool literals) {
      if (!c) return;
      bool ok = !ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, kFastLevel)) &&
                !ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_minMatch, kMinMatch));
      if (ok && literals) ok = !ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_literalCompressionMode, ZSTD_ps_enable));
      if (!ok) {
        ZSTD_CCtx_reset(c, ZSTD_reset_parameters);
        ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, kFallbackLevel);
      }
    }
    Ctx(const Ctx&) = delete;
    Ctx& operator=(const Ctx&) = delete;
  };
  thread_local Ctx exp_ctx(true), mant_ctx(false);
  if (!exp_ctx.c || !mant_ctx.c) detail::codec_fail("expzstd encode: cannot create a zstd context");
  const std::size_t cap = std::min<std::size_t>(m - 1, std::numeric_limits<std::uint32_t>::max());
  for (std::size_t p = w; p-- > 0;) {  // most significant plane (sign, exponent) first
    const std::byte* plane = planes.data() + p * m;
    std::size_t len = 0;
    if (cap > 0) {
      ZSTD_CCtx* c = p + 2 >= w ? exp_ctx.c : mant_ctx.c;
      const std::size_t r = ZSTD_compress2(c, out.data() + pos + 4, cap, plane, m);
      if (!ZSTD_isError(r) && r < m) len = r;  // else too big for `cap`: raw
    }
    put32(out.data() + pos, static_cast<std::uint32_t>(len));
    pos += 4;
    if (len == 0) {
      std::memcpy(out.data() + pos, plane, m);
      pos += m;
    } else {
      pos += len;
    }
  }
  return pos;
}

void expzstd_decode(std::span<const std::byte> in, std::size_t w, std::span<std::byte> out) {
  detail::check_width(out.size(), w, "expzstd decode");
  const std::size_t n = out.size() / w;
  if (in.empty()) detail::codec_fail("expzstd decode: empty stream (at least the flags byte)");
  const auto flags = static_cast<std::uint8_t>(in[0]);
  if (flags > 1) detail::codec_fail(fmt::format("expzstd decode: flags byte {:#04x} (expected 0 or 1)", flags));
  const bool masked = flags == 1;
  std::size_t pos = 1;
  const std::byte* mask = nullptr;
  std::size_t m = n;
  if (masked) {
    const std::size_t mb = (n + 7) / 8;
    if (in.size() - pos < mb)
      detail::codec_fail(
          fmt::format("expzstd decode: stream of {} bytes ends in the {}-byte zero mask", in.size(), mb));
    mask = in.data() + pos;
    if (n % 8 && (static_cast<unsigned>(mask[mb - 1]) >> (n % 8)) != 0)
      detail::codec_fail("expzstd decode: nonzero padding bits after the zero mask");
    m = 0;
    for (std::size_t b = 0; b < mb; ++b) m += static_cast<std::size_t>(std::popcount(static_cast<unsigned>(mask[b])));
    pos += mb;
    if (!use_mask(n, n - m, w))
      detail::codec_fail(
          fmt::format("expzstd decode: a zero mask for {} zeros in {} words, where the encoder writes none", n - m, n));
  }
  if (m == 0) {
    if (pos != in.size()) detail::codec_fail(fmt::format("expzstd decode: {} trailing bytes", in.size() - pos));
    std::fill(out.begin(), out.end(), std::byte{0});
    return;
  }
  auto& planes = scratch();
  planes.resize(w * m);
  struct Ctx {
    ZSTD_DCtx* d = ZSTD_createDCtx();
    ~Ctx() { ZSTD_freeDCtx(d); }
  };
  thread_local Ctx ctx;
  if (!ctx.d) detail::codec_fail("expzstd decode: cannot create a zstd context");
  for (std::size_t p = w; p-- > 0;) {
    std::byte* plane = planes.data() + p * m;
    if (in.size() - pos < 4)
      detail::codec_fail(fmt::format("expzstd decode: stream ends before the length of byte plane {}", p));
    std::uint32_t len;
    std::memcpy(&len, in.data() + pos, 4);
    pos += 4;
    if (len == 0) {
      if (in.size() - pos < m)
        detail::codec_fail(fmt::format("expzstd decode: stream ends in raw byte plane {} ({} bytes)", p, m));
      std::memcpy(plane, in.data() + pos, m);
      pos += m;
      continue;
    }
    if (len >= m)
      detail::codec_fail(fmt::format(
          "expzstd decode: plane {} has a {}-byte zstd frame, not shorter than its {} raw bytes", p, len, m));
    if (in.size() - pos < len)
      detail::codec_fail(fmt::format("expzstd decode: stream ends in the zstd frame of byte plane {}", p));
    const std::size_t frame = ZSTD_findFrameCompressedSize(in.data() + pos, len);
    if (ZSTD_isError(frame) || frame != len)
      detail::codec_fail(fmt::format("expzstd decode: byte plane {}: not one zstd frame of {} bytes", p, len));
    const std::size_t r = ZSTD_decompressDCtx(ctx.d, plane, m, in.data() + pos, len);
    if (ZSTD_isError(r))
      detail::codec_fail(
          fmt::format("expzstd decode: byte plane {}: malformed zstd frame: {}", p, ZSTD_getErrorName(r)));
    if (r != m)
      detail::codec_fail(fmt::format("expzstd decode: byte plane {} decodes to {} bytes, expected {}", p, r, m));
    pos += len;
  }
  if (pos != in.size()) detail::codec_fail(fmt::format("expzstd decode: {} trailing bytes", in.size() - pos));
  switch (w) {
    case 1:
      join<1>(planes.data(), m, mask, n, out.data());
      break;
    case 2:
      join<2>(planes.data(), m, mask, n, out.data());
      break;
    default:
      join<4>(planes.data(), m, mask, n, out.data());
      break;
  }
  if (!masked) {
    const std::size_t zeros = w == 1   ? count_zeros<1>(out.data(), n)
                              : w == 2 ? count_zeros<2>(out.data(), n)
                                       : count_zeros<4>(out.data(), n);
    if (use_mask(n, zeros, w))
      detail::codec_fail(fmt::format(
          "expzstd decode: {} zero words in {} without a zero mask, where the encoder writes one", zeros, n));
  }
}

}  // namespace cdma::formats
