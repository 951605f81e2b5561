// AVX-512 (F, BW, VL, VBMI2) kernels: nonzero masks and ZVC encode/decode.
//
// vpcompress is always used in its register form followed by a plain store (the memory-destination
// form is microcoded and slow on AMD Zen 4); the store may run up to 64 bytes past the stream, which
// zvc_max_encoded_size() reserves. Decoders load only the bytes the mask accounts for (masked loads
// do not fault on masked-off lanes) and on any inconsistency hand over to the scalar reference,
// which throws the precise error.
#include <cdma/formats/zvc.hpp>

#include "codec_internal.hpp"

#if CDMA_X86
#include <immintrin.h>

namespace cdma::formats::detail {

namespace {

CDMA_TARGET_AVX512 inline std::uint64_t nz_group(const std::byte* p, std::size_t cnt, std::size_t w) {
  // cnt elements (cnt <= 64 / w ... one zmm) starting at p.
  switch (w) {
    case 4: {
      const __mmask16 lm = static_cast<__mmask16>(_bzhi_u32(0xffffu, static_cast<unsigned>(cnt)));
      const __m512i v = _mm512_maskz_loadu_epi32(lm, p);
      return _mm512_test_epi32_mask(v, v);
    }
    case 2: {
      const __mmask32 lm = _bzhi_u32(0xffffffffu, static_cast<unsigned>(cnt));
      const __m512i v = _mm512_maskz_loadu_epi16(lm, p);
      return _mm512_test_epi16_mask(v, v);
    }
    default: {
      const __mmask64 lm = _bzhi_u64(~std::uint64_t{0}, static_cast<unsigned>(cnt));
      const __m512i v = _mm512_maskz_loadu_epi8(lm, p);
      return _mm512_test_epi8_mask(v, v);
    }
  }
}

[[noreturn]] void decode_failed(const std::byte* in, std::size_t in_size, std::size_t w, std::byte* out,
                                std::size_t n) {
  _mm_sfence();  // order any streaming stores of the fast loop before the reference's writes
  zvc_decode_reference({in, in_size}, w, {out, n * w});
  codec_fail("zvc decode: malformed stream");  // not reached: the reference throws first
}

}  // namespace

CDMA_TARGET_AVX512 void nonzero_masks_avx512(const std::byte* p, std::size_t n, std::size_t w, std::uint64_t* words) {
  const std::size_t full = n / 64;
  for (std::size_t i = 0; i < full; ++i) {
    const std::byte* q = p + i * 64 * w;
    std::uint64_t m;
    if (w == 4) {
      const __m512i a = _mm512_loadu_si512(q), b = _mm512_loadu_si512(q + 64);
      const __m512i c = _mm512_loadu_si512(q + 128), d = _mm512_loadu_si512(q + 192);
      m = static_cast<std::uint64_t>(_mm512_test_epi32_mask(a, a)) |
          static_cast<std::uint64_t>(_mm512_test_epi32_mask(b, b)) << 16 |
          static_cast<std::uint64_t>(_mm512_test_epi32_mask(c, c)) << 32 |
          static_cast<std::uint64_t>(_mm512_test_epi32_mask(d, d)) << 48;
    } else if (w == 2) {
      const __m512i a = _mm512_loadu_si512(q), b = _mm512_loadu_si512(q + 64);
      m = static_cast<std::uint64_t>(_mm512_test_epi16_mask(a, a)) |
          static_cast<std::uint64_t>(_mm512_test_epi16_mask(b, b)) << 32;
    } else {
      const __m512i a = _mm512_loadu_si512(q);
      m = _mm512_test_epi8_mask(a, a);
    }
    words[i] = m;
  }
  const std::size_t rest = n - full * 64;
  if (rest) {
    const std::byte* q = p + full * 64 * w;
    const std::size_t lanes = 64 / w;
    std::uint64_t m = 0;
    for (std::size_t done = 0; done < rest; done += lanes)
      m |= nz_group(q + done * w, std::min(lanes, rest - done), w) << done;
    words[full] = m;
  }
}

CDMA_TARGET_AVX512 std::size_t zvc_encode_avx512(const std::byte* in, std::size_t n, std::size_t w, std::byte* out) {
  std::byte* o = out;
  const std::size_t blocks = (n + 31) / 32;
  for (std::size_t blk = 0; blk < blocks; ++blk) {
    const std::size_t b = std::min<std::size_t>(32, n - blk * 32);
    const std::uint32_t lm = _bzhi_u32(0xffffffffu, static_cast<unsigned>(b));
    const std::byte* p = in + blk * 32 * w;
    if (w == 4) {
      __m512i v0, v1;
      if (b == 32) {
        v0 = _mm512_loadu_si512(p);
        v1 = _mm512_loadu_si512(p + 64);
      } else {
        v0 = _mm512_maskz_loadu_epi32(static_cast<__mmask16>(lm), p);
        v1 = _mm512_maskz_loadu_epi32(static_cast<__mmask16>(lm >> 16), p + 64);
      }
      const __mmask16 m0 = _mm512_test_epi32_mask(v0, v0), m1 = _mm512_test_epi32_mask(v1, v1);
      store32(o, static_cast<std::uint32_t>(m0) | static_cast<std::uint32_t>(m1) << 16);
      o += 4;
      _mm512_storeu_si512(o, _mm512_maskz_compress_epi32(m0, v0));
      o += 4 * static_cast<unsigned>(_mm_popcnt_u32(m0));
      _mm512_storeu_si512(o, _mm512_maskz_compress_epi32(m1, v1));
      o += 4 * static_cast<unsigned>(_mm_popcnt_u32(m1));
    } else if (w == 2) {
      const __m512i v = b == 32 ? _mm512_loadu_si512(p) : _mm512_maskz_loadu_epi16(lm, p);
      const __mmask32 m = _mm512_test_epi16_mask(v, v);
      store32(o, m);
      o += 4;
      _mm512_storeu_si512(o, _mm512_maskz_compress_epi16(m, v));
      o += 2 * static_cast<unsigned>(_mm_popcnt_u32(m));
    } else {
      const __m256i v =
          b == 32 ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)) : _mm256_maskz_loadu_epi8(lm, p);
      const __mmask32 m = _mm256_test_epi8_mask(v, v);
      store32(o, m);
      o += 4;
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(o), _mm256_maskz_compress_epi8(m, v));
      o += static_cast<unsigned>(_mm_popcnt_u32(m));
    }
  }
  return static_cast<std::size_t>(o - out);
}

CDMA_TARGET_AVX512 void zvc_decode_avx512(const std::byte* in, std::size_t in_size, std::size_t w, std::byte* out,
                                          std::size_t n) {
  const std::byte* ip = in;
  const std::byte* const end = in + in_size;
  const std::size_t blocks = (n + 31) / 32;
  // Large outputs (kZvcStreamingStoreBytes and more) go out with streaming stores (no read-for-ownership
  // of lines that are wholly overwritten); smaller ones stay in the cache for whoever reads them next.
  const bool stream = n * w >= kZvcStreamingStoreBytes && reinterpret_cast<std::uintptr_t>(out) % 64 == 0 && w != 1;
  for (std::size_t blk = 0; blk < blocks; ++blk) {
    const std::size_t b = std::min<std::size_t>(32, n - blk * 32);
    const std::uint32_t lm = _bzhi_u32(0xffffffffu, static_cast<unsigned>(b));
    if (end - ip < 4) decode_failed(in, in_size, w, out, n);
    const std::uint32_t mask = load32(ip);
    ip += 4;
    const unsigned c = static_cast<unsigned>(_mm_popcnt_u32(mask));
    if ((mask & ~lm) != 0 || static_cast<std::size_t>(end - ip) < c * w) decode_failed(in, in_size, w, out, n);
    std::byte* q = out + blk * 32 * w;
    if (w == 4) {
      const __mmask16 m0 = static_cast<__mmask16>(mask), m1 = static_cast<__mmask16>(mask >> 16);
      const unsigned c0 = static_cast<unsigned>(_mm_popcnt_u32(m0));
      const __m512i s0 = _mm512_maskz_loadu_epi32(static_cast<__mmask16>(_bzhi_u32(0xffff, c0)), ip);
      const __m512i s1 = _mm512_maskz_loadu_epi32(static_cast<__mmask16>(_bzhi_u32(0xffff, c - c0)), ip + 4 * c0);
      const __m512i v0 = _mm512_maskz_expand_epi32(m0, s0), v1 = _mm512_maskz_expand_epi32(m1, s1);
      if ((_mm512_test_epi32_mask(v0, v0) != m0) | (_mm512_test_epi32_mask(v1, v1) != m1))
        decode_failed(in, in_size, w, out, n);
      if (b == 32 && stream) {
        _mm512_stream_si512(reinterpret_cast<__m512i*>(q), v0);
        _mm512_stream_si512(reinterpret_cast<__m512i*>(q + 64), v1);
      } else if (b == 32) {
        _mm512_storeu_si512(q, v0);
        _mm512_storeu_si512(q + 64, v1);
      } else {
        _mm512_mask_storeu_epi32(q, static_cast<__mmask16>(lm), v0);
        _mm512_mask_storeu_epi32(q + 64, static_cast<__mmask16>(lm >> 16), v1);
      }
    } else if (w == 2) {
      const __m512i s = _mm512_maskz_loadu_epi16(_bzhi_u32(0xffffffffu, c), ip);
      const __m512i v = _mm512_maskz_expand_epi16(mask, s);
      if (_mm512_test_epi16_mask(v, v) != mask) decode_failed(in, in_size, w, out, n);
      if (b == 32 && stream)
        _mm512_stream_si512(reinterpret_cast<__m512i*>(q), v);
      else if (b == 32)
        _mm512_storeu_si512(q, v);
      else
        _mm512_mask_storeu_epi16(q, lm, v);
    } else {
      const __m256i s = _mm256_maskz_loadu_epi8(_bzhi_u32(0xffffffffu, c), ip);
      const __m256i v = _mm256_maskz_expand_epi8(mask, s);
      if (_mm256_test_epi8_mask(v, v) != mask) decode_failed(in, in_size, w, out, n);
      if (b == 32)
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(q), v);
      else
        _mm256_mask_storeu_epi8(q, lm, v);
    }
    ip += c * w;
  }
  if (stream) _mm_sfence();
  if (ip != end) decode_failed(in, in_size, w, out, n);
}

}  // namespace cdma::formats::detail
#endif
