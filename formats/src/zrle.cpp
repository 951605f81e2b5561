// ZRLE-k: a bit-by-bit reference of docs/spec/CODECS.md, and a fast path (64-bit bit buffer, zero runs found
// from 64-element nonzero bitmasks) tested against it.
#include <cdma/formats/zero_scan.hpp>
#include <cdma/formats/zrle.hpp>

#include "codec_internal.hpp"

#include <fmt/format.h>
#include <bit>

namespace cdma::formats {

using detail::codec_fail;

namespace {

void check_k(int k, const char* who) {
  if (k < kZrleMinK || k > kZrleMaxK) codec_fail(fmt::format("{}: run field width k must be in 1..16, got {}", who, k));
}

void check_encode_args(std::span<const std::byte> in, std::size_t width, int k, std::span<std::byte> out) {
  detail::check_width(in.size(), width, "zrle encode");
  check_k(k, "zrle encode");
  if (out.size() < zrle_max_encoded_size(in.size(), width))
    codec_fail(
        fmt::format("zrle encode: output buffer of {} bytes is smaller than the {} bytes "
                    "zrle_max_encoded_size() asks for",
                    out.size(), zrle_max_encoded_size(in.size(), width)));
}

// ---- reference: one bit at a time ----

struct RefBitWriter {
  std::byte* out;
  std::size_t bit = 0;
  void put(std::uint64_t v, int len) {
    for (int i = 0; i < len; ++i, ++bit) {
      if (bit % 8 == 0) out[bit / 8] = std::byte{0};
      if (v >> i & 1) out[bit / 8] |= std::byte{static_cast<unsigned char>(1u << (bit % 8))};
    }
  }
};

struct RefBitReader {
  std::span<const std::byte> in;
  std::size_t bit = 0;
  std::uint64_t get(int len, std::size_t element) {
    if (in.size() * 8 - bit < static_cast<std::size_t>(len))
      codec_fail(
          fmt::format("zrle decode: stream of {} bytes ends inside the token of element {}", in.size(), element));
    std::uint64_t v = 0;
    for (int i = 0; i < len; ++i, ++bit)
      v |= static_cast<std::uint64_t>(std::to_integer<unsigned>(in[bit / 8]) >> (bit % 8) & 1u) << i;
    return v;
  }
};

void check_end(std::span<const std::byte> in, std::size_t bits) {
  const std::size_t bytes = (bits + 7) / 8;
  if (in.size() != bytes)
    codec_fail(fmt::format("zrle decode: {} trailing bytes after the last token", in.size() - bytes));
  if (bits % 8 && (std::to_integer<unsigned>(in[bytes - 1]) >> (bits % 8)) != 0)
    codec_fail("zrle decode: padding bits of the last byte are not zero");
}

[[noreturn]] void fail_run(std::uint64_t len, std::size_t at, std::size_t n) {
  codec_fail(fmt::format("zrle decode: run of {} zeros at element {} exceeds the {} elements left", len, at, n - at));
}
[[noreturn]] void fail_zero_value(std::size_t at) {
  codec_fail(fmt::format("zrle decode: element {} is coded as nonzero but its value is zero", at));
}
[[noreturn]] void fail_split(std::size_t at) {
  codec_fail(
      fmt::format("zrle decode: run token at element {} follows a short run (the encoder "
                  "would have merged them)",
                  at));
}

// ---- fast path: 64-bit bit buffer ----

// Writes up to 56 bits per put() with one unaligned 8-byte store; needs 8 bytes of slack.
// v must have no bits at or above len (a zero-length put() writes nothing).
struct BitWriter {
  std::byte* p;
  std::uint64_t acc = 0;
  unsigned n = 0;  // pending bits in acc, < 8 between calls
  void put(std::uint64_t v, unsigned len) {
    acc |= v << n;
    n += len;
    detail::store64(p, acc);
    p += n >> 3;
    acc >>= n & ~7u;
    n &= 7u;
  }
  void flush() {
    if (n) *p++ = static_cast<std::byte>(acc & 0xff);
  }
};

// Keeps at least 57 valid bits after refill() while 8 or more input bytes remain.
struct BitReader {
  const std::byte* begin;
  const std::byte* p;
  const std::byte* end;
  std::uint64_t buf = 0;
  unsigned cnt = 0;
  void refill() {
    if (end - p >= 8) {
      buf |= detail::load64(p) << cnt;
      p += (63 - cnt) >> 3;
      cnt |= 56u;
    } else {
      while (cnt <= 56 && p < end) {
        buf |= static_cast<std::uint64_t>(std::to_integer<unsigned>(*p++)) << cnt;
        cnt += 8;
      }
    }
  }
  void skip(unsigned len) {
    buf >>= len;
    cnt -= len;
  }
  std::size_t consumed_bits() const { return static_cast<std::size_t>(p - begin) * 8 - cnt; }
};

}  // namespace

std::size_t zrle_max_encoded_size(std::size_t bytes, std::size_t width) noexcept {
  const std::size_t n = width ? bytes / width : bytes;
  // Worst case per element: a nonzero (1 + 8w bits) or a lone zero between nonzeros with k = 16
  // (17 bits).
  return (n * std::max<std::size_t>(1 + 8 * width, 1 + kZrleMaxK) + 7) / 8 + 16;
}

std::size_t zrle_encode_reference(std::span<const std::byte> in, std::size_t width, int k, std::span<std::byte> out) {
  check_encode_args(in, width, k, out);
  const std::size_t n = in.size() / width;
  const std::uint64_t max_run = std::uint64_t{1} << k;
  RefBitWriter bw{out.data()};
  std::uint64_t run = 0;
  auto flush_run = [&] {
    while (run > 0) {  // runs longer than 2^k: runs of 2^k, then the remainder
      const std::uint64_t len = std::min(run, max_run);
      bw.put(0, 1);
      bw.put(len - 1, k);
      run -= len;
    }
  };
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint64_t v = detail::load_le(in.data() + i * width, width);
    if (v == 0) {
      ++run;
    } else {
      flush_run();
      bw.put(1, 1);
      bw.put(v, static_cast<int>(8 * width));
    }
  }
  flush_run();
  return (bw.bit + 7) / 8;
}

void zrle_decode_reference(std::span<const std::byte> in, std::size_t width, int k, std::span<std::byte> out) {
  detail::check_width(out.size(), width, "zrle decode");
  check_k(k, "zrle decode");
  const std::size_t n = out.size() / width;
  RefBitReader br{in};
  bool after_short_run = false;
  for (std::size_t i = 0; i < n;) {
    if (br.get(1, i) == 1) {
      const std::uint64_t v = br.get(static_cast<int>(8 * width), i);
      if (v == 0) fail_zero_value(i);
      std::memcpy(out.data() + i * width, &v, width);
      ++i;
      after_short_run = false;
    } else {
      const std::uint64_t len = br.get(k, i) + 1;
      if (after_short_run) fail_split(i);
      if (len > n - i) fail_run(len, i, n);
      std::memset(out.data() + i * width, 0, len * width);
      i += len;
      after_short_run = len < (std::uint64_t{1} << k);
    }
  }
  check_end(in, br.bit);
}

namespace {

// Fast encoder, specialised on the element width so that element loads and stores are single
// fixed-size moves.
template <std::size_t width>
std::size_t zrle_encode_fast(std::span<const std::byte> in, int k, std::span<std::byte> out) {
  const std::size_t n = in.size() / width;
  const SimdLevel level = active_simd_level();
  const unsigned vlen = 1 + 8 * static_cast<unsigned>(width);
  const unsigned rlen = 1 + static_cast<unsigned>(k);
  const std::uint64_t full = std::uint64_t{1} << k;
  const std::uint64_t full_token = (full - 1) << 1;
  BitWriter bw{out.data()};
  // `run` counts the zeros of the current run; it is emitted (2^k sub-runs, then the remainder)
  // when a nonzero ends it, or at the end. Zero elements cost nothing per element: only the
  // nonzero bitmask is walked, segment by segment.
  std::uint64_t run = 0;
  constexpr std::size_t kWords = 64;
  std::uint64_t words[kWords];
  for (std::size_t done = 0; done < n;) {
    const std::size_t chunk = std::min<std::size_t>(n - done, kWords * 64);
    const std::byte* base = in.data() + done * width;
    detail::nonzero_masks(base, chunk, width, words, level);
    for (std::size_t wi = 0; wi * 64 < chunk; ++wi) {
      const unsigned nb = static_cast<unsigned>(std::min<std::size_t>(64, chunk - wi * 64));
      const std::uint64_t m = words[wi];
      if (m == 0) {  // all zero (dead channels, long runs)
        run += nb;
        continue;
      }
      // Walk the word segment by segment: a zero segment only extends `run`; a nonzero segment
      // first emits the run (full 2^k sub-runs and the remainder), then its values back to back.
      unsigned pos = 0;
      while (pos < nb) {
        const std::uint64_t rest = m >> pos;
        if (rest & 1) {
          if (run) {
            for (std::uint64_t t = run >> k; t > 0; --t) bw.put(full_token, rlen);
            if (run & (full - 1)) bw.put(((run & (full - 1)) - 1) << 1, rlen);
            run = 0;
          }
          const unsigned seg = std::min<unsigned>(static_cast<unsigned>(std::countr_one(rest)), nb - pos);
          const std::byte* e = base + (wi * 64 + pos) * width;
          for (unsigned j = 0; j < seg; ++j, e += width) bw.put(1 | detail::load_le(e, width) << 1, vlen);
          pos += seg;
        } else {
          const unsigned seg =
              rest ? std::min<unsigned>(static_cast<unsigned>(std::countr_zero(rest)), nb - pos) : nb - pos;
          run += seg;
          pos += seg;
        }
      }
    }
    done += chunk;
  }
  for (std::uint64_t t = run >> k; t > 0; --t) bw.put(full_token, rlen);
  if (run & (full - 1)) bw.put(((run & (full - 1)) - 1) << 1, rlen);
  bw.flush();
  return static_cast<std::size_t>(bw.p - out.data());
}

}  // namespace

std::size_t zrle_encode(std::span<const std::byte> in, std::size_t width, int k, std::span<std::byte> out) {
  check_encode_args(in, width, k, out);
  switch (width) {
    case 1:
      return zrle_encode_fast<1>(in, k, out);
    case 2:
      return zrle_encode_fast<2>(in, k, out);
    default:
      return zrle_encode_fast<4>(in, k, out);
  }
}

namespace {

template <std::size_t width>
void zrle_decode_fast(std::span<const std::byte> in, int k, std::span<std::byte> out) {
  const std::size_t n = out.size() / width;
  const unsigned vlen = 1 + 8 * static_cast<unsigned>(width);
  const unsigned rlen = 1 + static_cast<unsigned>(k);
  const std::uint64_t vmask = (std::uint64_t{1} << (8 * width)) - 1;
  const std::uint64_t kmask = (std::uint64_t{1} << k) - 1;
  const std::uint64_t full = std::uint64_t{1} << k;
  BitReader br{in.data(), in.data(), in.data() + in.size()};
  std::byte* o = out.data();
  bool after_short_run = false;
  std::size_t i = 0;
  // Fast loop, branch-free per token, while 8 input bytes and 64 output bytes are left: every
  // token stores 64 zero bytes at its position (covering a run of up to 64 bytes; longer runs
  // take a memset) and then its value (0 for a run). Errors are collected and reported by the
  // reference, which names the spot.
  const std::size_t out_fast = out.size() >= 64 ? out.size() - 64 : 0;
  bool bad = false;
  if (out.size() >= 64) {
    while (i < n && i * width <= out_fast && br.end - br.p >= 8) {
      br.refill();
      const std::uint64_t b = br.buf & 1;
      const std::uint64_t v = (br.buf >> 1) & vmask;
      const std::uint64_t len = ((br.buf >> 1) & kmask) + 1;
      std::byte* q = o + i * width;
      std::memset(q, 0, 64);
      if (!b && len * width > 64) {
        if (len > n - i) {
          bad = true;
          break;
        }
        std::memset(q, 0, len * width);
      }
      const std::uint64_t value = b ? v : 0;
      std::memcpy(q, &value, width);
      bad |= b ? v == 0 : (after_short_run || len > n - i);
      if (bad) break;
      after_short_run = !b && len < full;
      i += b ? 1 : len;
      br.skip(b ? vlen : rlen);
    }
  }
  if (bad) {
    zrle_decode_reference(in, width, k, out);  // throws the precise error
    codec_fail("zrle decode: malformed stream");
  }
  while (i < n) {
    br.refill();
    if (br.cnt < 1) break;  // truncated: reported below
    if (br.buf & 1) {
      if (br.cnt < vlen) break;
      const std::uint64_t v = (br.buf >> 1) & vmask;
      if (v == 0) fail_zero_value(i);
      std::memcpy(o + i * width, &v, width);
      br.skip(vlen);
      ++i;
      after_short_run = false;
    } else {
      if (br.cnt < rlen) break;
      const std::uint64_t len = ((br.buf >> 1) & kmask) + 1;
      if (after_short_run) fail_split(i);
      if (len > n - i) fail_run(len, i, n);
      std::memset(o + i * width, 0, len * width);
      br.skip(rlen);
      i += len;
      after_short_run = len < full;
    }
  }
  if (i < n)
    codec_fail(fmt::format("zrle decode: stream of {} bytes ends inside the token of element {}", in.size(), i));
  check_end(in, br.consumed_bits());
}

}  // namespace

void zrle_decode(std::span<const std::byte> in, std::size_t width, int k, std::span<std::byte> out) {
  detail::check_width(out.size(), width, "zrle decode");
  check_k(k, "zrle decode");
  switch (width) {
    case 1:
      return zrle_decode_fast<1>(in, k, out);
    case 2:
      return zrle_decode_fast<2>(in, k, out);
    default:
      return zrle_decode_fast<4>(in, k, out);
  }
}

}  // namespace cdma::formats
