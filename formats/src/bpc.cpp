// BPC and EBPC (shared/design/EBPC_BPC.md, docs/spec/CODECS.md): a bit-by-bit reference encoder
// (strings of bits, the spec's wording) and the fast encoder and strict decoder (64-bit bit buffers,
// bit planes from 8x8 bit-matrix transposes, symbol tables).
#include <cdma/formats/bpc.hpp>

#include "codec_internal.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

namespace cdma::formats {

using detail::codec_fail;

namespace {

// ---- common ----

constexpr unsigned ceil_log2(unsigned v) {
  unsigned b = 0;
  while ((1u << b) < v) ++b;
  return b;
}

// Bits of the index field of a block of m words (ceil(log2 m)) and of the zero-run field of a word
// of ww bits (ceil(log2 ww)).
constexpr unsigned index_bits(unsigned m) { return ceil_log2(m); }
constexpr unsigned run_bits(unsigned ww) { return ceil_log2(ww); }

std::uint32_t load_word(const std::byte* p, std::size_t w) { return static_cast<std::uint32_t>(detail::load_le(p, w)); }

void check_encode_args(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out, std::size_t need,
                       const char* who) {
  detail::check_width(in.size(), width, who);
  if (out.size() < need)
    codec_fail(fmt::format("{}: output buffer of {} bytes is smaller than the {} bytes max_encoded_size() asks for",
                           who, out.size(), need));
}

// ---- reference: the spec's steps on strings of '0'/'1' ----

std::string bits_of(std::uint64_t v, unsigned len) {
  std::string s;
  for (unsigned i = len; i-- > 0;) s += (v >> i & 1) ? '1' : '0';
  return s;
}

std::string ref_block(const std::uint32_t* v, unsigned m, unsigned ww) {
  std::string out = bits_of(v[0], ww);
  if (m == 1) return out;
  const unsigned k = m - 1, D = ww;
  const std::uint64_t mask = ww == 32 ? 0xffffffffull : (std::uint64_t{1} << ww) - 1;
  std::vector<std::uint64_t> d(m);
  for (unsigned i = 1; i < m; ++i) d[i] = (std::uint64_t{v[i]} - v[i - 1]) & mask;
  std::vector<std::string> P(D), X(D);
  for (unsigned j = 0; j < D; ++j)
    for (unsigned i = 1; i < m; ++i) P[j] += (d[i] >> (D - 1 - j) & 1) ? '1' : '0';
  for (unsigned j = 0; j < D; ++j) {
    X[j] = P[j];
    if (j + 1 < D)
      for (unsigned i = 0; i < k; ++i) X[j][i] = P[j][i] != P[j + 1][i] ? '1' : '0';
  }
  unsigned run = 0;
  auto flush = [&] {
    if (run == 1) out += "001";
    if (run >= 2) out += "01" + bits_of(run - 2, run_bits(ww));
    run = 0;
  };
  for (unsigned j = 0; j < D; ++j) {
    const std::string& x = X[j];
    const auto ones = static_cast<unsigned>(std::count(x.begin(), x.end(), '1'));
    if (ones == 0) {
      ++run;
      continue;
    }
    flush();
    const auto first = static_cast<unsigned>(x.find('1'));
    if (ones == k)
      out += "00000";
    else if (P[j].find('1') == std::string::npos)
      out += "00001";
    else if (ones == 2 && x[first + 1] == '1')
      out += "00010" + bits_of(first, index_bits(m));
    else if (ones == 1)
      out += "00011" + bits_of(first, index_bits(m));
    else
      out += "1" + x;
  }
  flush();
  return out;
}

std::string ref_bpc(const std::vector<std::uint32_t>& words, unsigned ww) {
  std::string s;
  for (std::size_t b = 0; b < words.size(); b += 8)
    s += ref_block(words.data() + b, static_cast<unsigned>(std::min<std::size_t>(8, words.size() - b)), ww);
  return s;
}

std::size_t pack_bits(const std::string& s, std::span<std::byte> out) {
  const std::size_t bytes = (s.size() + 7) / 8;
  for (std::size_t i = 0; i < bytes; ++i) {
    unsigned b = 0;
    for (std::size_t j = 0; j < 8; ++j) b = b << 1 | (8 * i + j < s.size() && s[8 * i + j] == '1' ? 1u : 0u);
    out[i] = static_cast<std::byte>(b);
  }
  return bytes;
}

// ---- fast path ----

// Transposes an 8x8 bit matrix: bit 8r+c moves to bit 8c+r.
inline std::uint64_t transpose8(std::uint64_t x) noexcept {
  std::uint64_t t;
  t = (x ^ (x >> 7)) & 0x00AA00AA00AA00AAull;
  x = x ^ t ^ (t << 7);
  t = (x ^ (x >> 14)) & 0x0000CCCC0000CCCCull;
  x = x ^ t ^ (t << 14);
  t = (x ^ (x >> 28)) & 0x00000000F0F0F0F0ull;
  x = x ^ t ^ (t << 28);
  return x;
}

// A symbol of a nonzero XOR plane X of k bits (before the "plane is zero" rule): code and length.
struct Sym {
  std::uint8_t code = 0, len = 0;
};

// Lane bits: bit (k - i) of a plane holds delta d_i (i = 1..k), so that X written as a k-bit number
// has d_1 leftmost and "index from the left" of bit p is k - 1 - p.
struct Tables {
  std::array<std::array<Sym, 128>, 8> sym{};  // [k][X], X in 1 .. 2^k - 1
  Tables() {
    for (unsigned k = 1; k <= 7; ++k) {
      const unsigned full = (1u << k) - 1, ib = index_bits(k + 1);
      for (unsigned x = 1; x <= full; ++x) {
        Sym s;
        const unsigned low = x & (0u - x);
        const auto pos = static_cast<unsigned>(std::countr_zero(x));
        if (x == full) {
          s = {0, 5};
        } else if (x == low) {
          s = {static_cast<std::uint8_t>(3u << ib | (k - 1 - pos)), static_cast<std::uint8_t>(5 + ib)};
        } else if (x == 3 * low) {
          s = {static_cast<std::uint8_t>(2u << ib | (k - 2 - pos)), static_cast<std::uint8_t>(5 + ib)};
        } else {
          s = {static_cast<std::uint8_t>(1u << k | x), static_cast<std::uint8_t>(1 + k)};
        }
        sym[k][x] = s;
      }
    }
  }
};
const Tables& tables() {
  static const Tables t;
  return t;
}

// MSB-first bit writer: up to 32 bits per put() with one unaligned 8-byte store (8 bytes of slack).
struct MsbWriter {
  std::byte* begin;
  std::byte* p;
  std::uint64_t acc = 0;  // pending bits at the top
  unsigned n = 0;         // < 8 between calls
  explicit MsbWriter(std::byte* out) : begin(out), p(out) {}
  void put(std::uint64_t v, unsigned len) {  // v < 2^len, 1 <= len <= 32
    acc |= v << (64 - n - len);
    n += len;
    detail::store64(p, __builtin_bswap64(acc));
    p += n >> 3;
    acc <<= (n & ~7u);
    n &= 7u;
  }
  std::size_t finish() {
    if (n) *p++ = static_cast<std::byte>(acc >> 56);
    return static_cast<std::size_t>(p - begin);
  }
};

// Counts bits instead of writing them.
struct BitCounter {
  std::uint64_t bits = 0;
  void put(std::uint64_t, unsigned len) { bits += len; }
};

// A word of W bytes (little-endian host), fixed-size loads.
template <unsigned W>
inline std::uint32_t load_w(const std::byte* p) noexcept {
  if constexpr (W == 4) {
    return detail::load32(p);
  } else if constexpr (W == 2) {
    std::uint16_t v;
    std::memcpy(&v, p, 2);
    return v;
  } else {
    return std::to_integer<std::uint32_t>(*p);
  }
}

// 0x80 in each byte of x that is nonzero, 0 elsewhere.
inline std::uint64_t nonzero_bytes(std::uint64_t x) noexcept {
  constexpr std::uint64_t lo7 = 0x7f7f7f7f7f7f7f7full;
  return (((x & lo7) + lo7) | x) & ~lo7;
}
// 0x80 in each byte of x that equals byte value c.
inline std::uint64_t bytes_equal(std::uint64_t x, unsigned c) noexcept {
  return ~nonzero_bytes(x ^ (0x0101010101010101ull * c)) & 0x8080808080808080ull;
}

// Bit c = the top bit of byte c of y (y holds only 0x80 bytes).
inline unsigned gather_bytes(std::uint64_t y) noexcept {
  return static_cast<unsigned>(((y >> 7) * 0x0102040810204080ull) >> 56);
}

// Run tokens before a nonzero XOR plane: r = 0 nothing, 1 "001", r >= 2 "01" + (r - 2).
struct RunTables {
  std::array<std::array<Sym, 33>, 3> tok{};  // [run_bits - 3][r]
  RunTables() {
    for (unsigned rb = 3; rb <= 5; ++rb) {
      tok[rb - 3][1] = {1, 3};
      for (unsigned r = 2; r <= 32; ++r)
        tok[rb - 3][r] = {static_cast<std::uint8_t>(1u << rb | (r - 2)), static_cast<std::uint8_t>(2 + rb)};
    }
  }
};
const RunTables& run_tables() {
  static const RunTables t;
  return t;
}

// T[b] byte k - i = byte b of the delta d_i = v_i - v_{i-1} (mod 2^(8W)), i = 1 .. k = m - 1.
template <unsigned W, unsigned M>
inline void scatter_deltas(const std::uint32_t* v, std::uint64_t* T) noexcept {
  constexpr std::uint32_t mask = W == 4 ? 0xffffffffu : (1u << (8 * W)) - 1;
#pragma GCC unroll 8
  for (unsigned i = 1; i < M; ++i) {
    const std::uint32_t d = (v[i] - v[i - 1]) & mask;
#pragma GCC unroll 8
    for (unsigned b = 0; b < W; ++b) T[b] |= std::uint64_t{d >> (8 * b) & 0xff} << (8 * (M - 1 - i));
  }
}
template <unsigned W>
inline void scatter_deltas(const std::uint32_t* v, std::uint64_t* T, unsigned m) noexcept {
  constexpr std::uint32_t mask = W == 4 ? 0xffffffffu : (1u << (8 * W)) - 1;
  for (unsigned i = 1; i < m; ++i) {
    const std::uint32_t d = (v[i] - v[i - 1]) & mask;
#pragma GCC unroll 8
    for (unsigned b = 0; b < W; ++b) T[b] |= std::uint64_t{d >> (8 * b) & 0xff} << (8 * (m - 1 - i));
  }
}

// The inverse: the deltas from T (as above), then the prefix sum from v[0].
template <unsigned W, unsigned M>
inline void gather_deltas(const std::uint64_t* T, std::uint32_t* v) noexcept {
  constexpr std::uint32_t mask = W == 4 ? 0xffffffffu : (1u << (8 * W)) - 1;
  std::uint32_t acc = v[0];
#pragma GCC unroll 8
  for (unsigned i = 1; i < M; ++i) {
    std::uint32_t d = 0;
#pragma GCC unroll 8
    for (unsigned b = 0; b < W; ++b) d |= static_cast<std::uint32_t>(T[b] >> (8 * (M - 1 - i)) & 0xff) << (8 * b);
    acc = (acc + d) & mask;
    v[i] = acc;
  }
}
template <unsigned W>
inline void gather_deltas(const std::uint64_t* T, std::uint32_t* v, unsigned m) noexcept {
  constexpr std::uint32_t mask = W == 4 ? 0xffffffffu : (1u << (8 * W)) - 1;
  std::uint32_t acc = v[0];
  for (unsigned i = 1; i < m; ++i) {
    std::uint32_t d = 0;
#pragma GCC unroll 8
    for (unsigned b = 0; b < W; ++b) d |= static_cast<std::uint32_t>(T[b] >> (8 * (m - 1 - i)) & 0xff) << (8 * b);
    acc = (acc + d) & mask;
    v[i] = acc;
  }
}

// One block of m words (1 <= m <= 8) of WW = 8 W bits.
//  1. deltas, placed in the bytes of T[b] (byte k - i of T[b] = byte b of d_i);
//  2. T[b] transposed: byte c of T[b] is the plane of bit 8 b + c (P_j with j = WW - 1 - 8 b - c);
//  3. XOR planes for all bytes at once; the nonzero ones as a bit mask;
//  4. one put() per nonzero XOR plane (the run of zero planes above it merged into the same put),
//     then the run that ends the block.
template <unsigned W, class Sink>
inline void encode_block(const std::uint32_t* v, unsigned m, Sink& s, const Tables& tabs, const RunTables& runs) {
  constexpr unsigned WW = 8 * W;
  s.put(v[0], WW);
  if (m == 1) return;
  const unsigned k = m - 1, full = (1u << k) - 1;
  std::uint64_t T[W] = {};
  if (m == 8)
    scatter_deltas<W, 8>(v, T);  // constant shifts: the words stay in registers
  else
    scatter_deltas<W>(v, T, m);
  std::uint8_t pb[8 * W], xb[8 * W];
  unsigned nz = 0;
  std::uint64_t prev_top = 0;
#pragma GCC unroll 8
  for (unsigned b = 0; b < W; ++b) {
    const std::uint64_t t = transpose8(T[b]);
    const std::uint64_t x = t ^ (t << 8 | prev_top);
    prev_top = t >> 56;
    std::memcpy(pb + 8 * b, &t, 8);
    std::memcpy(xb + 8 * b, &x, 8);
    nz |= gather_bytes(nonzero_bytes(x)) << (8 * b);
  }
  constexpr unsigned rb = run_bits(WW);
  if constexpr (std::is_same_v<Sink, BitCounter>) {
    if (k == 7) {  // sizes from plane masks: every symbol is 8 bits but all ones and 00001 (5)
      constexpr std::uint32_t all = WW == 32 ? 0xffffffffu : (1u << WW) - 1;
      std::uint32_t ones = 0, pzero = 0;
#pragma GCC unroll 8
      for (unsigned b = 0; b < W; ++b) {
        std::uint64_t x, p;
        std::memcpy(&x, xb + 8 * b, 8);
        std::memcpy(&p, pb + 8 * b, 8);
        const std::uint64_t o = bytes_equal(x, 0x7f);
        ones |= gather_bytes(o) << (8 * b);
        pzero |= gather_bytes(bytes_equal(p, 0) & nonzero_bytes(x) & ~o) << (8 * b);
      }
      const std::uint32_t z = ~nz & all, first = z & ~(z << 1);  // zero planes; the lowest of each run
      const auto runs_n = static_cast<unsigned>(std::popcount(first));
      const auto singles = static_cast<unsigned>(std::popcount(first & ~(z >> 1)));
      s.bits += 8u * static_cast<unsigned>(std::popcount(nz)) -
                3u * static_cast<unsigned>(std::popcount(ones | pzero)) + 3u * singles + (2 + rb) * (runs_n - singles);
      return;
    }
  }
  const auto& tab = tabs.sym[k];
  const auto& rtab = runs.tok[rb - 3];
  // Symbols gathered in a local accumulator, handed to the sink 32 bits at a time.
  std::uint64_t acc = 0;
  unsigned nb = 0;
  auto emit = [&](std::uint64_t code, unsigned len) {
    acc = acc << len | code;
    nb += len;
    if (nb >= 32) {
      nb -= 32;
      s.put(acc >> nb & 0xffffffffu, 32);
    }
  };
  unsigned above = WW;  // the plane above the zero run that ends at the next nonzero plane
  while (nz) {
    const unsigned t = 31 - static_cast<unsigned>(std::countl_zero(nz));
    nz ^= 1u << t;
    const Sym r = rtab[above - t - 1];
    above = t;
    const unsigned x = xb[t];
    Sym sym = tab[x];
    if (pb[t] == 0 && x != full) sym = {1, 5};  // 00001: the plane itself is zero
    emit(std::uint64_t{r.code} << sym.len | sym.code, r.len + sym.len);
  }
  if (above) emit(rtab[above].code, rtab[above].len);
  if (nb) s.put(acc & ((std::uint64_t{1} << nb) - 1), nb);
}

// BPC of a word sequence fed one word at a time.
template <unsigned W, class Sink>
struct BlockFeeder {
  Sink& s;
  const Tables& tabs = tables();
  const RunTables& runs = run_tables();
  std::uint32_t buf[8] = {};
  unsigned m = 0;
  explicit BlockFeeder(Sink& sink) : s(sink) {}
  void add(std::uint32_t v) {
    buf[m++] = v;
    if (m == 8) encode_block<W>(buf, 8, s, tabs, runs), m = 0;
  }
  void finish() {
    if (m) encode_block<W>(buf, m, s, tabs, runs), m = 0;
  }
};

template <unsigned W, class Sink>
void bpc_stream(const std::byte* in, std::size_t n, Sink& s) {
  const Tables& tabs = tables();
  const RunTables& runs = run_tables();
  std::uint32_t buf[8];
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (unsigned j = 0; j < 8; ++j) buf[j] = load_w<W>(in + (i + j) * W);
    encode_block<W>(buf, 8, s, tabs, runs);
  }
  if (i < n) {
    const auto m = static_cast<unsigned>(n - i);
    for (unsigned j = 0; j < m; ++j) buf[j] = load_w<W>(in + (i + j) * W);
    encode_block<W>(buf, m, s, tabs, runs);
  }
}

// Nonzero masks of the whole tensor: bit j of masks[i] is element 64 i + j.
const std::vector<std::uint64_t>& nonzero_masks_of(const std::byte* in, std::size_t n, std::size_t w) {
  thread_local std::vector<std::uint64_t> masks;
  masks.assign((n + 63) / 64, 0);
  detail::nonzero_masks(in, n, w, masks.data(), active_simd_level());
  return masks;
}

template <class Sink>
inline void put_zero_run(Sink& s, std::uint64_t run) {
  for (; run > 16; run -= 16) s.put(0x0f, 5);  // 0 + 1111
  s.put(run - 1, 5);
}

template <unsigned W, class Sink>
void ebpc_stream(const std::byte* in, std::size_t n, Sink& s) {
  const auto& masks = nonzero_masks_of(in, n, W);
  // Zero/nonzero stream: ones runs as 1 bits, zero runs (across mask words) as tokens.
  std::uint64_t zrun = 0;
  for (std::size_t wi = 0; wi < masks.size(); ++wi) {
    const unsigned lim = (wi + 1) * 64 <= n ? 64u : static_cast<unsigned>(n - wi * 64);
    std::uint64_t m = masks[wi];
    unsigned pos = 0;
    while (pos < lim) {
      if (m & 1) {
        unsigned r = static_cast<unsigned>(std::countr_one(m));
        if (r > lim - pos) r = lim - pos;
        if (zrun) put_zero_run(s, zrun), zrun = 0;
        for (unsigned left = r; left;) {
          const unsigned c = std::min(left, 32u);
          s.put((std::uint64_t{1} << c) - 1, c);
          left -= c;
        }
        pos += r;
        m = r == 64 ? 0 : m >> r;
      } else {
        unsigned r = m ? static_cast<unsigned>(std::countr_zero(m)) : 64u;
        if (r > lim - pos) r = lim - pos;
        zrun += r;
        pos += r;
        m = r == 64 ? 0 : m >> r;
      }
    }
  }
  if (zrun) put_zero_run(s, zrun);
  // BPC of the nonzero words.
  BlockFeeder<W, Sink> f(s);
  for (std::size_t wi = 0; wi < masks.size(); ++wi) {
    std::uint64_t m = masks[wi];
    const std::byte* base = in + wi * 64 * W;
    while (m) {
      const auto j = static_cast<unsigned>(std::countr_zero(m));
      f.add(load_w<W>(base + j * W));
      m &= m - 1;
    }
  }
  f.finish();
}

// The stream functions at a run-time width.
template <class Sink>
void bpc_stream_w(const std::byte* in, std::size_t n, std::size_t w, Sink& s) {
  if (w == 4) return bpc_stream<4>(in, n, s);
  if (w == 2) return bpc_stream<2>(in, n, s);
  bpc_stream<1>(in, n, s);
}
template <class Sink>
void ebpc_stream_w(const std::byte* in, std::size_t n, std::size_t w, Sink& s) {
  if (w == 4) return ebpc_stream<4>(in, n, s);
  if (w == 2) return ebpc_stream<2>(in, n, s);
  ebpc_stream<1>(in, n, s);
}

// MSB-first bit reader over [begin, end): bits past the end read as zero; `over` counts the zero
// bytes supplied past the end, so a stream that ends early is found by consumed_bits().
struct MsbReader {
  const std::byte* begin;
  const std::byte* p;
  const std::byte* end;
  std::uint64_t buf = 0;  // valid bits at the top
  unsigned cnt = 0;
  std::size_t over = 0;
  std::size_t total_bits;
  MsbReader(const std::byte* b, const std::byte* e)
      : begin(b), p(b), end(e), total_bits(static_cast<std::size_t>(e - b) * 8) {}
  void refill() {
    if (end - p >= 8) {
      buf |= __builtin_bswap64(detail::load64(p)) >> cnt;
      p += (63 - cnt) >> 3;
      cnt |= 56u;
    } else {
      while (cnt <= 56) {
        std::uint64_t b = 0;
        if (p < end)
          b = std::to_integer<std::uint64_t>(*p++);
        else
          ++over;
        buf |= b << (56 - cnt);
        cnt += 8;
      }
    }
  }
  std::uint32_t peek(unsigned len) const { return static_cast<std::uint32_t>(buf >> (64 - len)); }  // 1..32
  void skip(unsigned len) {
    buf <<= len;
    cnt -= len;
  }
  std::uint32_t get(unsigned len) {  // 1..32, after refill()
    const std::uint32_t v = peek(len);
    skip(len);
    return v;
  }
  std::size_t consumed_bits() const { return (static_cast<std::size_t>(p - begin) + over) * 8 - cnt; }
  // True when `more` bits from here would pass the end of the stream.
  bool past(std::size_t more) const { return over && consumed_bits() + more > total_bits; }
};

// Checks that the stream ended exactly at its last byte with zero padding.
void check_end(const MsbReader& r, std::size_t size, const char* who) {
  const std::size_t bits = r.consumed_bits();
  if (bits > size * 8) codec_fail(fmt::format("{}: stream of {} bytes is truncated", who, size));
  const std::size_t bytes = (bits + 7) / 8;
  if (bytes != size) codec_fail(fmt::format("{}: {} trailing bytes after the stream", who, size - bytes));
  if (bits % 8 && (std::to_integer<unsigned>(r.begin[size - 1]) & (0xffu >> (bits % 8))) != 0)
    codec_fail(fmt::format("{}: padding bits of the last byte are not zero", who));
}

[[noreturn]] void fail_truncated(const char* who, std::size_t size, std::size_t element) {
  codec_fail(fmt::format("{}: stream of {} bytes is truncated (element {})", who, size, element));
}

// Kinds of a plane symbol in the decoder's table.
enum Kind : std::uint8_t { kZero, kOnes, kPzero, kPair, kSingle, kLiteral, kBadIndex, kBadSymbol };

// What the decoder reads from the next 8 bits of a block of k + 1 words with zero-run fields of rb
// bits: every symbol is at most 8 bits long. Symbols the encoder never writes whatever the planes
// around them (a literal that is zero, all ones, one one or two adjacent ones; a pair or single one
// that is all ones; an index past the plane) are marked bad here; the rest is checked against the
// decoded planes.
struct DecEntry {
  std::uint8_t len = 0, kind = 0, x = 0, run = 0;
};
struct DecTables {
  std::array<std::array<std::array<DecEntry, 256>, 3>, 8> t{};  // [k][rb - 3][next 8 bits]
  DecTables() {
    const Tables& enc = tables();
    for (unsigned k = 1; k <= 7; ++k) {
      const unsigned full = (1u << k) - 1, ib = index_bits(k + 1);
      for (unsigned rb = 3; rb <= 5; ++rb)
        for (unsigned u = 0; u < 256; ++u) {
          DecEntry e;
          if (u & 0x80) {
            const unsigned x = u >> (7 - k) & full;
            const Sym& s = enc.sym[k][x];
            const bool literal = x != 0 && s.len == 1 + k && (s.code >> k) == 1;
            e = {static_cast<std::uint8_t>(1 + k), literal ? kLiteral : kBadSymbol, static_cast<std::uint8_t>(x), 0};
          } else if (u & 0x40) {
            e = {static_cast<std::uint8_t>(2 + rb), kZero, 0,
                 static_cast<std::uint8_t>(2 + (u >> (6 - rb) & ((1u << rb) - 1)))};
          } else if (u & 0x20) {
            e = {3, kZero, 0, 1};
          } else if ((u >> 3) < 2) {
            e = {5, (u >> 3) == 0 ? kOnes : kPzero, static_cast<std::uint8_t>((u >> 3) == 0 ? full : 0), 0};
          } else {
            const unsigned ones = (u >> 3) == 2 ? 2 : 1, idx = u >> (3 - ib) & ((1u << ib) - 1);
            e.len = static_cast<std::uint8_t>(5 + ib);
            if (idx + ones > k) {
              e.kind = kBadIndex;
            } else {
              const unsigned x = (ones == 2 ? 3u : 1u) << (k - ones - idx);
              e.kind = x == full ? kBadSymbol : ones == 2 ? kPair : kSingle;
              e.x = static_cast<std::uint8_t>(x);
            }
          }
          t[k][rb - 3][u] = e;
        }
    }
  }
};
const DecTables& dec_tables() {
  static const DecTables t;
  return t;
}

[[noreturn]] void fail_block(const MsbReader& r, const char* who, std::size_t first, const std::string& what) {
  if (r.past(0))
    codec_fail(fmt::format("{}: stream of {} bytes is truncated (block at word {})", who, r.total_bits / 8, first));
  codec_fail(fmt::format("{}: block at word {}: {}", who, first, what));
}

// Decodes one block of m words of WW = 8 W bits into v[0..m); `first` is the block's first word
// index (messages).
template <unsigned W>
void decode_block(MsbReader& r, unsigned m, std::uint32_t* v, std::size_t first, const char* who, const DecTables& dt) {
  constexpr unsigned WW = 8 * W, D = WW, rb = run_bits(WW);
  r.refill();
  v[0] = r.get(WW);
  if (m == 1) return;
  const unsigned k = m - 1, full = (1u << k) - 1;
  const auto& tab = dt.t[k][rb - 3];
  // Symbols, most significant plane first, into bytes indexed by bit t = D - 1 - j.
  std::uint8_t xb[8 * W] = {};
  std::uint32_t need_p = 0, pz = 0;  // planes whose symbol needs P != 0; planes coded 00001
  bool prev_zero = false;
  for (unsigned j = 0; j < D;) {
    if (r.cnt < 16) r.refill();
    const std::uint32_t u = r.peek(8);
    const DecEntry e = tab[u];
    if (e.kind == kZero) {
      if (prev_zero) fail_block(r, who, first, "a zero-plane token follows another one (the encoder merges runs)");
      if (e.run > D - j)
        fail_block(r, who, first, fmt::format("a run of {} zero planes at plane {} passes the {} planes", e.run, j, D));
      j += e.run;
      prev_zero = true;
    } else {
      if (e.kind >= kBadIndex) {
        if (e.kind == kBadIndex) {
          const unsigned ib = index_bits(m);
          fail_block(r, who, first,
                     fmt::format("index {} out of range for {}-bit planes", u >> (3 - ib) & ((1u << ib) - 1), k));
        }
        fail_block(r, who, first, fmt::format("plane {} is not coded with the encoder's symbol", j));
      }
      const unsigned t = D - 1 - j;
      xb[t] = e.x;
      need_p |= static_cast<std::uint32_t>(e.kind >= kPair) << t;
      pz |= static_cast<std::uint32_t>(e.kind == kPzero) << t;
      ++j;
      prev_zero = false;
    }
    r.skip(e.len);
  }
  if (r.past(0)) fail_block(r, who, first, "");
  // Planes from the least significant up: P(t) = X(t) ^ P(t - 1), or 0 where coded 00001.
  std::uint64_t P[W];
  if (pz == 0) {  // prefix XOR over the bytes
    std::uint64_t carry = 0;
#pragma GCC unroll 8
    for (unsigned b = 0; b < W; ++b) {
      std::uint64_t y;
      std::memcpy(&y, xb + 8 * b, 8);
      y ^= y << 8;
      y ^= y << 16;
      y ^= y << 32;
      y ^= carry;
      carry = 0x0101010101010101ull * (y >> 56);
      P[b] = y;
    }
  } else {
    std::uint8_t pb[8 * W];
    unsigned below = 0;
    for (unsigned t = 0; t < D; ++t) {
      if (pz >> t & 1) {
        if (below == 0 || below == full)
          fail_block(r, who, first, fmt::format("plane {} coded as zero where the encoder codes its XOR", D - 1 - t));
        below = 0;
      } else {
        below ^= xb[t];
      }
      pb[t] = static_cast<std::uint8_t>(below);
    }
    std::memcpy(P, pb, sizeof P);
  }
  // A pair, single one or literal where the plane is zero: the encoder writes 00001 there.
  std::uint32_t zero_p = 0;
#pragma GCC unroll 8
  for (unsigned b = 0; b < W; ++b) zero_p |= gather_bytes(bytes_equal(P[b], 0)) << (8 * b);
  if (need_p & zero_p)
    fail_block(r, who, first,
               fmt::format("plane {} is zero but not coded so",
                           D - 1 - static_cast<unsigned>(std::countr_zero(need_p & zero_p))));
  // Deltas from the planes (the inverse transpose), then the prefix sum.
  std::uint64_t T[W];
#pragma GCC unroll 8
  for (unsigned b = 0; b < W; ++b) T[b] = transpose8(P[b]);
  if (m == 8)
    gather_deltas<W, 8>(T, v);
  else
    gather_deltas<W>(T, v, m);
}

template <unsigned W>
inline void store_w(std::byte* p, std::uint32_t v) noexcept {
  std::memcpy(p, &v, W);  // little-endian host
}

// Decodes n words of BPC from r into out. With `nonzero`, a decoded 0 is an error.
template <unsigned W>
void bpc_words(MsbReader& r, std::size_t n, std::byte* out, bool nonzero, const char* who) {
  const DecTables& dt = dec_tables();
  std::uint32_t v[8];
  for (std::size_t i = 0; i < n; i += 8) {
    const auto m = static_cast<unsigned>(std::min<std::size_t>(8, n - i));
    decode_block<W>(r, m, v, i, who, dt);
    bool any_zero = false;
    for (unsigned j = 0; j < m; ++j) {
      any_zero |= v[j] == 0;
      store_w<W>(out + (i + j) * W, v[j]);
    }
    if (nonzero && any_zero)
      for (unsigned j = 0; j < m; ++j)
        if (v[j] == 0) codec_fail(fmt::format("{}: nonzero word {} of the BPC part decodes to 0", who, i + j));
  }
}

void bpc_words_w(MsbReader& r, std::size_t n, std::size_t w, std::byte* out, bool nonzero, const char* who) {
  if (w == 4) return bpc_words<4>(r, n, out, nonzero, who);
  if (w == 2) return bpc_words<2>(r, n, out, nonzero, who);
  bpc_words<1>(r, n, out, nonzero, who);
}

// Sets bits [a, a + len) of masks, len <= 32.
inline void set_bits(std::uint64_t* masks, std::size_t a, std::size_t len) {
  const std::uint64_t bits = (std::uint64_t{1} << len) - 1;
  const std::size_t wi = a / 64, off = a % 64;
  masks[wi] |= bits << off;
  if (off + len > 64) masks[wi + 1] |= bits >> (64 - off);
}

// Spreads the nnz words at the front of out to the positions the masks mark nonzero, zeros elsewhere
// (from the back: a word moves only up).
template <unsigned W>
void spread_nonzeros(const std::uint64_t* masks, std::size_t n, std::size_t nnz, std::byte* out) {
  std::size_t j = nnz;
  for (std::size_t wi = (n + 63) / 64; wi-- > 0;) {
    const std::size_t lo = wi * 64, cnt = std::min<std::size_t>(64, n - lo);
    const std::uint64_t m = masks[wi];
    const std::uint64_t all = cnt == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << cnt) - 1;
    if (m == all) {
      j -= cnt;
      if (j != lo) std::memmove(out + lo * W, out + j * W, cnt * W);
    } else if (m == 0) {
      std::memset(out + lo * W, 0, cnt * W);
    } else {
      for (std::size_t e = lo + cnt; e-- > lo;) {
        if (m >> (e - lo) & 1) {
          --j;
          std::memcpy(out + e * W, out + j * W, W);
        } else {
          std::memset(out + e * W, 0, W);
        }
      }
    }
  }
}

}  // namespace

std::size_t bpc_max_encoded_size(std::size_t bytes, std::size_t width) noexcept {
  const std::size_t n = width ? bytes / width : bytes;
  return ((n + 7) / 8 * 9 * 8 * width + 7) / 8 + 16;
}

std::size_t ebpc_max_encoded_size(std::size_t bytes, std::size_t width) noexcept {
  const std::size_t n = width ? bytes / width : bytes;
  return (5 * n + (n + 7) / 8 * 9 * 8 * width + 7) / 8 + 16;
}

namespace {
std::string ref_bpc_bits(std::span<const std::byte> in, std::size_t width) {
  std::vector<std::uint32_t> words(in.size() / width);
  for (std::size_t i = 0; i < words.size(); ++i) words[i] = load_word(in.data() + i * width, width);
  return ref_bpc(words, static_cast<unsigned>(8 * width));
}
std::string ref_ebpc_bits(std::span<const std::byte> in, std::size_t width) {
  const std::size_t n = in.size() / width;
  std::string s;
  std::vector<std::uint32_t> nz;
  std::size_t run = 0;
  auto flush = [&] {
    for (; run > 0;) {
      const std::size_t len = std::min<std::size_t>(run, 16);
      s += "0" + bits_of(len - 1, 4);
      run -= len;
    }
  };
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint32_t v = load_word(in.data() + i * width, width);
    if (v == 0) {
      ++run;
    } else {
      flush();
      s += '1';
      nz.push_back(v);
    }
  }
  flush();  // the run that ends the tensor is coded too
  return s + ref_bpc(nz, static_cast<unsigned>(8 * width));
}
}  // namespace

std::size_t bpc_encode_reference(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out) {
  check_encode_args(in, width, out, bpc_max_encoded_size(in.size(), width), "bpc encode");
  return pack_bits(ref_bpc_bits(in, width), out);
}

std::size_t ebpc_encode_reference(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out) {
  check_encode_args(in, width, out, ebpc_max_encoded_size(in.size(), width), "ebpc encode");
  return pack_bits(ref_ebpc_bits(in, width), out);
}

std::uint64_t bpc_bits_reference(std::span<const std::byte> in, std::size_t width) {
  detail::check_width(in.size(), width, "bpc size");
  return ref_bpc_bits(in, width).size();
}

std::uint64_t ebpc_bits_reference(std::span<const std::byte> in, std::size_t width) {
  detail::check_width(in.size(), width, "ebpc size");
  return ref_ebpc_bits(in, width).size();
}

std::size_t bpc_encode(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out) {
  check_encode_args(in, width, out, bpc_max_encoded_size(in.size(), width), "bpc encode");
  MsbWriter wr(out.data());
  bpc_stream_w(in.data(), in.size() / width, width, wr);
  return wr.finish();
}

std::size_t ebpc_encode(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out) {
  check_encode_args(in, width, out, ebpc_max_encoded_size(in.size(), width), "ebpc encode");
  MsbWriter wr(out.data());
  ebpc_stream_w(in.data(), in.size() / width, width, wr);
  return wr.finish();
}

std::uint64_t bpc_bits(std::span<const std::byte> in, std::size_t width) {
  detail::check_width(in.size(), width, "bpc size");
  BitCounter c;
  bpc_stream_w(in.data(), in.size() / width, width, c);
  return c.bits;
}

std::uint64_t ebpc_bits(std::span<const std::byte> in, std::size_t width) {
  detail::check_width(in.size(), width, "ebpc size");
  BitCounter c;
  ebpc_stream_w(in.data(), in.size() / width, width, c);
  return c.bits;
}

void bpc_decode(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out) {
  detail::check_width(out.size(), width, "bpc decode");
  MsbReader r(in.data(), in.data() + in.size());
  bpc_words_w(r, out.size() / width, width, out.data(), false, "bpc decode");
  check_end(r, in.size(), "bpc decode");
}

void ebpc_decode(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out) {
  const char* who = "ebpc decode";
  detail::check_width(out.size(), width, who);
  const std::size_t n = out.size() / width;
  MsbReader r(in.data(), in.data() + in.size());
  thread_local std::vector<std::uint64_t> masks;
  masks.assign((n + 63) / 64, 0);
  // Zero/nonzero stream.
  std::size_t i = 0, nnz = 0;
  bool short_run = false;  // the previous token was a zero run shorter than 16
  while (i < n) {
    if (r.cnt < 32) r.refill();
    const std::uint32_t u = r.peek(32);
    if (u >> 31) {  // a run of nonzeros
      auto ones = static_cast<std::size_t>(std::countl_one(u));
      if (ones > n - i) ones = n - i;
      if (r.past(ones)) fail_truncated(who, in.size(), i);
      r.skip(static_cast<unsigned>(ones));
      set_bits(masks.data(), i, ones);
      i += ones;
      nnz += ones;
      short_run = false;
    } else {
      const std::size_t len = 1 + (u >> 27 & 0xf);
      if (r.past(5)) fail_truncated(who, in.size(), i);
      if (short_run)
        codec_fail(fmt::format(
            "{}: zero-run token at element {} follows a run shorter than 16 (the encoder merges them)", who, i));
      if (len > n - i)
        codec_fail(fmt::format("{}: run of {} zeros at element {} passes the {} elements", who, len, i, n));
      r.skip(5);
      i += len;
      short_run = len < 16;
    }
  }
  // BPC of the nonzero words, into the front of out, then spread out from the back.
  bpc_words_w(r, nnz, width, out.data(), true, who);
  check_end(r, in.size(), who);
  if (width == 4) return spread_nonzeros<4>(masks.data(), n, nnz, out.data());
  if (width == 2) return spread_nonzeros<2>(masks.data(), n, nnz, out.data());
  spread_nonzeros<1>(masks.data(), n, nnz, out.data());
}

}  // namespace cdma::formats
