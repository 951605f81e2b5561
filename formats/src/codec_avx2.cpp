// AVX2 kernels: nonzero masks (all widths) and ZVC encode/decode for 2- and 4-byte elements
// (1-byte elements use the scalar reference at this level). Compress/expand use permutation
// tables indexed by an 8-bit mask; stores may run up to 32 bytes past the stream (reserved by
// zvc_max_encoded_size()); loads never pass the end of the input.
#include <cdma/formats/zvc.hpp>

#include "codec_internal.hpp"

#include <array>
#include <bit>

#if CDMA_X86
#include <immintrin.h>

namespace cdma::formats::detail {

namespace {

struct Tables {
  alignas(32) std::uint32_t compress32[256][8];  // lane j <- index of the j-th set bit
  alignas(32) std::uint32_t expand32[256][8];    // lane i <- rank of bit i (if set)
  alignas(32) std::int32_t lanes32[256][8];      // lane i = -1 when bit i set
  alignas(16) std::uint8_t compress16[256][16];  // pshufb indices, 2-byte elements
  alignas(16) std::uint8_t expand16[256][16];    // pshufb indices, 0x80 zeroes a lane
  alignas(32) std::int32_t prefix32[9][8];       // first c lanes = -1
};

Tables make_tables() {
  Tables t{};
  for (unsigned m = 0; m < 256; ++m) {
    unsigned j = 0;
    for (unsigned i = 0; i < 8; ++i) {
      t.lanes32[m][i] = (m >> i & 1) ? -1 : 0;
      t.expand32[m][i] = (m >> i & 1) ? j : 0;
      t.expand16[m][2 * i] = (m >> i & 1) ? static_cast<std::uint8_t>(2 * j) : 0x80;
      t.expand16[m][2 * i + 1] = (m >> i & 1) ? static_cast<std::uint8_t>(2 * j + 1) : 0x80;
      if (m >> i & 1) {
        t.compress32[m][j] = i;
        t.compress16[m][2 * j] = static_cast<std::uint8_t>(2 * i);
        t.compress16[m][2 * j + 1] = static_cast<std::uint8_t>(2 * i + 1);
        ++j;
      }
    }
    for (unsigned k = j; k < 8; ++k) t.compress16[m][2 * k] = t.compress16[m][2 * k + 1] = 0x80;
  }
  for (unsigned c = 0; c <= 8; ++c)
    for (unsigned i = 0; i < 8; ++i) t.prefix32[c][i] = i < c ? -1 : 0;
  return t;
}

const Tables& tables() {
  static const Tables t = make_tables();
  return t;
}

[[noreturn]] void decode_failed(const std::byte* in, std::size_t in_size, std::size_t w, std::byte* out,
                                std::size_t n) {
  _mm_sfence();  // order any streaming stores of the fast loop before the reference's writes
  zvc_decode_reference({in, in_size}, w, {out, n * w});
  codec_fail("zvc decode: malformed stream");
}

CDMA_TARGET_AVX2 inline std::uint32_t nz32_32(const std::byte* p) {  // 32 x 4-byte elements
  // Four compares packed to bytes (two saturating packs keep 0 / -1), one movemask. The packs
  // interleave 128-bit lanes: dwords come out as a0-3 b0-3 c0-3 d0-3 a4-7 b4-7 c4-7 d4-7.
  const __m256i zero = _mm256_setzero_si256();
  const auto z = [&](int i) CDMA_TARGET_AVX2 {
    return _mm256_cmpeq_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32 * i)), zero);
  };
  const __m256i packed = _mm256_packs_epi16(_mm256_packs_epi32(z(0), z(1)), _mm256_packs_epi32(z(2), z(3)));
  const __m256i ordered = _mm256_permutevar8x32_epi32(packed, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  return ~static_cast<std::uint32_t>(_mm256_movemask_epi8(ordered));
}

CDMA_TARGET_AVX2 inline std::uint32_t nz32_16(const std::byte* p) {  // 32 x 2-byte elements
  const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32));
  const __m256i za = _mm256_cmpeq_epi16(a, _mm256_setzero_si256());
  const __m256i zb = _mm256_cmpeq_epi16(b, _mm256_setzero_si256());
  const __m256i packed = _mm256_permute4x64_epi64(_mm256_packs_epi16(za, zb), 0xD8);
  return ~static_cast<std::uint32_t>(_mm256_movemask_epi8(packed));
}

CDMA_TARGET_AVX2 inline std::uint32_t nz32_8(const std::byte* p) {  // 32 x 1-byte elements
  const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return ~static_cast<std::uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(a, _mm256_setzero_si256())));
}

}  // namespace

CDMA_TARGET_AVX2 void nonzero_masks_avx2(const std::byte* p, std::size_t n, std::size_t w, std::uint64_t* words) {
  const std::size_t full = n / 64;
  for (std::size_t i = 0; i < full; ++i) {
    const std::byte* q = p + i * 64 * w;
    std::uint64_t m = 0;
    if (w == 4) {
      m = nz32_32(q) | static_cast<std::uint64_t>(nz32_32(q + 128)) << 32;
    } else if (w == 2) {
      m = nz32_16(q) | static_cast<std::uint64_t>(nz32_16(q + 64)) << 32;
    } else {
      m = nz32_8(q) | static_cast<std::uint64_t>(nz32_8(q + 32)) << 32;
    }
    words[i] = m;
  }
  if (n % 64) nonzero_masks_scalar(p + full * 64 * w, n % 64, w, words + full);
}

// inner_runs_word (codec_internal.hpp) on four words at a time; popcounts by nibble lookup into
// per-byte counters (at most 8 per step, flushed before they could reach 256).
CDMA_TARGET_AVX2 void inner_runs_avx2(const std::uint64_t* words, std::size_t nw, InnerRuns& r) {
  const __m256i lut =
      _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
  const __m256i nibble = _mm256_set1_epi8(0x0f);
  const auto popcount_bytes = [&](__m256i x) CDMA_TARGET_AVX2 {
    return _mm256_add_epi8(_mm256_shuffle_epi8(lut, _mm256_and_si256(x, nibble)),
                           _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(x, 4), nibble)));
  };
  const __m256i zero = _mm256_setzero_si256();
  __m256i bit[5];
  for (int k = 0; k < 5; ++k) bit[k] = _mm256_set1_epi64x(static_cast<long long>(kPositionBit[k]));
  const auto add_up = [&](__m256i acc) CDMA_TARGET_AVX2 {
    const __m256i s = _mm256_sad_epu8(acc, zero);
    return static_cast<std::uint64_t>(_mm256_extract_epi64(s, 0) + _mm256_extract_epi64(s, 1) +
                                      _mm256_extract_epi64(s, 2) + _mm256_extract_epi64(s, 3));
  };
  std::size_t i = 0;
  while (i + 4 <= nw) {
    __m256i acc[6] = {zero, zero, zero, zero, zero, zero};  // [0]: runs, [k]: tokens
    for (int step = 0; step < 31 && i + 4 <= nw; ++step, i += 4) {
      const __m256i m = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(words + i));
      const __m256i ge_lo = _mm256_or_si256(m, _mm256_sub_epi64(zero, m));
      __m256i le_hi = _mm256_or_si256(m, _mm256_srli_epi64(m, 1));
      le_hi = _mm256_or_si256(le_hi, _mm256_srli_epi64(le_hi, 2));
      le_hi = _mm256_or_si256(le_hi, _mm256_srli_epi64(le_hi, 4));
      le_hi = _mm256_or_si256(le_hi, _mm256_srli_epi64(le_hi, 8));
      le_hi = _mm256_or_si256(le_hi, _mm256_srli_epi64(le_hi, 16));
      le_hi = _mm256_or_si256(le_hi, _mm256_srli_epi64(le_hi, 32));
      const __m256i inner = _mm256_andnot_si256(m, _mm256_and_si256(ge_lo, le_hi));
      const __m256i starts = _mm256_andnot_si256(_mm256_slli_epi64(inner, 1), inner);
      acc[0] = _mm256_add_epi8(acc[0], popcount_bytes(starts));
      __m256i t = inner;
#pragma GCC unroll 5
      for (int k = 1; k <= 5; ++k) {
        const __m256i fill = _mm256_andnot_si256(_mm256_add_epi64(inner, _mm256_and_si256(starts, bit[k - 1])), inner);
        t = _mm256_andnot_si256(_mm256_xor_si256(bit[k - 1], fill), t);
        acc[k] = _mm256_add_epi8(acc[k], popcount_bytes(t));
      }
    }
    r.runs += add_up(acc[0]);
    for (int k = 1; k <= 5; ++k) r.tokens[k] += add_up(acc[k]);
  }
  for (; i < nw; ++i) inner_runs_word(words[i], r);
}

CDMA_TARGET_AVX2 std::size_t zvc_encode_avx2(const std::byte* in, std::size_t n, std::size_t w, std::byte* out) {
  const Tables& t = tables();
  std::byte* o = out;
  const std::size_t full = n / 32;
  for (std::size_t blk = 0; blk < full; ++blk) {
    const std::byte* p = in + blk * 32 * w;
    if (w == 2) {
      // The block's 32-bit mask from two 256-bit compares, then four 8-element shuffles.
      const std::uint32_t mask = nz32_16(p);
      store32(o, mask);
      o += 4;
#pragma GCC unroll 4
      for (unsigned g = 0; g < 4; ++g) {
        const unsigned m = mask >> (8 * g) & 0xffu;
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * g));
        const __m128i idx = _mm_load_si128(reinterpret_cast<const __m128i*>(t.compress16[m]));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(o), _mm_shuffle_epi8(v, idx));
        o += 2 * std::popcount(m);
      }
      continue;
    }
    std::byte* mask_at = o;  // 4-byte elements: one compare and one permutation per 8 elements
    o += 4;
    std::uint32_t mask = 0;
#pragma GCC unroll 4
    for (unsigned g = 0; g < 4; ++g) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32 * g));
      const unsigned m = ~static_cast<unsigned>(
                             _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(v, _mm256_setzero_si256())))) &
                         0xffu;
      const __m256i idx = _mm256_load_si256(reinterpret_cast<const __m256i*>(t.compress32[m]));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(o), _mm256_permutevar8x32_epi32(v, idx));
      o += 4 * std::popcount(m);
      mask |= m << (8 * g);
    }
    store32(mask_at, mask);
  }
  if (n % 32) {  // last short block: the scalar rule, element by element
    const std::byte* p = in + full * 32 * w;
    std::byte* mask_at = o;
    o += 4;
    std::uint32_t mask = 0;
    for (std::size_t i = 0; i < n % 32; ++i)
      if (load_le(p + i * w, w) != 0) {
        mask |= 1u << i;
        std::memcpy(o, p + i * w, w);
        o += w;
      }
    store32(mask_at, mask);
  }
  return static_cast<std::size_t>(o - out);
}

namespace {

// The decoder's hot loop: blocks of 32 W-byte elements while a whole block (4 + 32 W bytes at most)
// is left, so that every group's load stays inside the stream; the four groups unrolled and one
// zero-check branch per block (1.3-1.6x a per-group loop, bench/README.md). Advances ip and blk;
// false when a kept element is zero (a malformed stream).
template <unsigned W, bool Stream>
CDMA_TARGET_AVX2 inline bool decode_whole_blocks(const Tables& t, const std::byte*& ip, const std::byte* end,
                                                 std::byte* out, std::size_t& blk, std::size_t full) {
  for (; blk < full && end - ip >= 4 + 32 * W; ++blk) {
    const std::uint32_t mask = load32(ip);
    ip += 4;
    std::byte* q = out + blk * 32 * W;
    unsigned bad = 0;
#pragma GCC unroll 4
    for (unsigned g = 0; g < 4; ++g) {
      const unsigned m = mask >> (8 * g) & 0xffu;
      if constexpr (W == 4) {
        const __m256i s = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ip));
        const __m256i v = _mm256_and_si256(
            _mm256_permutevar8x32_epi32(s, _mm256_load_si256(reinterpret_cast<const __m256i*>(t.expand32[m]))),
            _mm256_load_si256(reinterpret_cast<const __m256i*>(t.lanes32[m])));
        bad |= static_cast<unsigned>(
                   _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(v, _mm256_setzero_si256())))) &
               m;
        if constexpr (Stream)
          _mm256_stream_si256(reinterpret_cast<__m256i*>(q + 32 * g), v);
        else
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + 32 * g), v);
      } else {
        const __m128i s = _mm_loadu_si128(reinterpret_cast<const __m128i*>(ip));
        const __m128i v = _mm_shuffle_epi8(s, _mm_load_si128(reinterpret_cast<const __m128i*>(t.expand16[m])));
        const __m128i z = _mm_cmpeq_epi16(v, _mm_setzero_si128());
        bad |= static_cast<unsigned>(_mm_movemask_epi8(_mm_packs_epi16(z, _mm_setzero_si128()))) & m;
        if constexpr (Stream)
          _mm_stream_si128(reinterpret_cast<__m128i*>(q + 16 * g), v);
        else
          _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 16 * g), v);
      }
      ip += W * static_cast<unsigned>(std::popcount(m));
    }
    if (bad) return false;
  }
  return true;
}

}  // namespace

CDMA_TARGET_AVX2 void zvc_decode_avx2(const std::byte* in, std::size_t in_size, std::size_t w, std::byte* out,
                                      std::size_t n) {
  const Tables& t = tables();
  const std::byte* ip = in;
  const std::byte* const end = in + in_size;
  const std::size_t full = n / 32;
  std::size_t blk = 0;
  // Large outputs (kZvcStreamingStoreBytes and more) go out with streaming stores (no read-for-ownership
  // of lines that are wholly overwritten); smaller ones stay in the cache for whoever reads them next.
  const bool stream = n * w >= kZvcStreamingStoreBytes && reinterpret_cast<std::uintptr_t>(out) % 32 == 0;
  bool ok;
  if (w == 4)
    ok = stream ? decode_whole_blocks<4, true>(t, ip, end, out, blk, full)
                : decode_whole_blocks<4, false>(t, ip, end, out, blk, full);
  else
    ok = stream ? decode_whole_blocks<2, true>(t, ip, end, out, blk, full)
                : decode_whole_blocks<2, false>(t, ip, end, out, blk, full);
  if (stream) _mm_sfence();
  if (!ok) decode_failed(in, in_size, w, out, n);
  for (; blk < full; ++blk) {
    if (end - ip < 4) decode_failed(in, in_size, w, out, n);
    const std::uint32_t mask = load32(ip);
    ip += 4;
    if (static_cast<std::size_t>(end - ip) < w * static_cast<std::size_t>(std::popcount(mask)))
      decode_failed(in, in_size, w, out, n);
    std::byte* q = out + blk * 32 * w;
    for (unsigned g = 0; g < 4; ++g) {
      const unsigned m = mask >> (8 * g) & 0xffu;
      const unsigned c = static_cast<unsigned>(std::popcount(m));
      if (w == 4) {
        const __m256i s =
            end - ip >= 32 ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ip))
                           : _mm256_maskload_epi32(reinterpret_cast<const int*>(ip),
                                                   _mm256_load_si256(reinterpret_cast<const __m256i*>(t.prefix32[c])));
        const __m256i lanes = _mm256_load_si256(reinterpret_cast<const __m256i*>(t.lanes32[m]));
        const __m256i v = _mm256_and_si256(
            _mm256_permutevar8x32_epi32(s, _mm256_load_si256(reinterpret_cast<const __m256i*>(t.expand32[m]))), lanes);
        const unsigned zero = static_cast<unsigned>(
            _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(v, _mm256_setzero_si256()))));
        if ((zero & m) != 0) decode_failed(in, in_size, w, out, n);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + 32 * g), v);
      } else {
        __m128i s;
        if (end - ip >= 16) {
          s = _mm_loadu_si128(reinterpret_cast<const __m128i*>(ip));
        } else {
          alignas(16) std::byte tmp[16] = {};
          std::memcpy(tmp, ip, 2 * c);
          s = _mm_load_si128(reinterpret_cast<const __m128i*>(tmp));
        }
        const __m128i v = _mm_shuffle_epi8(s, _mm_load_si128(reinterpret_cast<const __m128i*>(t.expand16[m])));
        const __m128i z = _mm_cmpeq_epi16(v, _mm_setzero_si128());
        const unsigned zero = static_cast<unsigned>(_mm_movemask_epi8(_mm_packs_epi16(z, _mm_setzero_si128())));
        if ((zero & m) != 0) decode_failed(in, in_size, w, out, n);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 16 * g), v);
      }
      ip += c * w;
    }
  }
  if (n % 32) {
    // The short last block and the trailing-bytes check: the reference on the rest of the stream.
    try {
      zvc_decode_reference({ip, static_cast<std::size_t>(end - ip)}, w, {out + full * 32 * w, (n % 32) * w});
    } catch (const CodecError&) {
      decode_failed(in, in_size, w, out, n);  // rethrown with whole-stream positions
    }
    return;
  }
  if (ip != end) decode_failed(in, in_size, w, out, n);
}

}  // namespace cdma::formats::detail
#endif
