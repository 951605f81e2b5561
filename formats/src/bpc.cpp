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

// planes[t] = plane of bit t of the deltas (lane bits as above), t = 0 .. ww-1, for a block of m >= 2
// words; planes past ww are left alone.
void block_planes(const std::uint32_t* v, unsigned m, unsigned ww, std::uint8_t* planes) {
  const unsigned k = m - 1;
  const std::uint32_t mask = ww == 32 ? 0xffffffffu : (1u << ww) - 1;
  std::uint64_t x[4] = {0, 0, 0, 0};
  for (unsigned i = 1; i < m; ++i) {
    const std::uint32_t d = (v[i] - v[i - 1]) & mask;
    const unsigned s = 8 * (k - i);
    x[0] |= std::uint64_t{d & 0xff} << s;
    x[1] |= std::uint64_t{d >> 8 & 0xff} << s;
    x[2] |= std::uint64_t{d >> 16 & 0xff} << s;
    x[3] |= std::uint64_t{d >> 24} << s;
  }
  for (unsigned b = 0; b < ww / 8; ++b) detail::store64(reinterpret_cast<std::byte*>(planes + 8 * b), transpose8(x[b]));
}

template <class Sink>
inline void flush_run(Sink& s, unsigned run, unsigned rb) {
  if (run == 1) s.put(1, 3);                                          // 001
  if (run >= 2) s.put((std::uint64_t{1} << rb) | (run - 2), 2 + rb);  // 01 + (run - 2)
}

// One block of m words (1 <= m <= 8).
template <class Sink>
void encode_block(const std::uint32_t* v, unsigned m, unsigned ww, Sink& s) {
  s.put(v[0], ww);
  if (m == 1) return;
  const unsigned k = m - 1, full = (1u << k) - 1, rb = run_bits(ww);
  std::uint8_t planes[32];
  block_planes(v, m, ww, planes);
  const auto& tab = tables().sym[k];
  unsigned run = 0;
  for (unsigned t = ww; t-- > 0;) {  // plane j = ww - 1 - t, most significant first
    const unsigned p = planes[t];
    const unsigned x = p ^ (t ? planes[t - 1] : 0u);
    if (x == 0) {
      ++run;
      continue;
    }
    if (run) flush_run(s, run, rb), run = 0;
    Sym sym = tab[x];
    if (p == 0 && x != full) sym = {1, 5};  // 00001: the plane itself is zero
    s.put(sym.code, sym.len);
  }
  if (run) flush_run(s, run, rb);
}

// BPC of a word sequence fed one word at a time.
template <class Sink>
struct BlockFeeder {
  Sink& s;
  unsigned ww;
  std::uint32_t buf[8];
  unsigned m = 0;
  void add(std::uint32_t v) {
    buf[m++] = v;
    if (m == 8) encode_block(buf, 8, ww, s), m = 0;
  }
  void finish() {
    if (m) encode_block(buf, m, ww, s), m = 0;
  }
};

template <class Sink>
void bpc_stream(const std::byte* in, std::size_t n, std::size_t w, Sink& s) {
  const auto ww = static_cast<unsigned>(8 * w);
  std::uint32_t buf[8];
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (unsigned j = 0; j < 8; ++j) buf[j] = load_word(in + (i + j) * w, w);
    encode_block(buf, 8, ww, s);
  }
  if (i < n) {
    const auto m = static_cast<unsigned>(n - i);
    for (unsigned j = 0; j < m; ++j) buf[j] = load_word(in + (i + j) * w, w);
    encode_block(buf, m, ww, s);
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

template <class Sink>
void ebpc_stream(const std::byte* in, std::size_t n, std::size_t w, Sink& s) {
  const auto& masks = nonzero_masks_of(in, n, w);
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
  BlockFeeder<Sink> f{s, static_cast<unsigned>(8 * w), {}, 0};
  for (std::size_t wi = 0; wi < masks.size(); ++wi) {
    std::uint64_t m = masks[wi];
    const std::byte* base = in + wi * 64 * w;
    while (m) {
      const auto j = static_cast<unsigned>(std::countr_zero(m));
      f.add(load_word(base + j * w, w));
      m &= m - 1;
    }
  }
  f.finish();
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

enum class Kind : std::uint8_t { zero, ones, pzero, pair, single, literal };

// Decodes one block of m words into v[0..m); `first` is the block's first word index (messages).
void decode_block(MsbReader& r, unsigned m, unsigned ww, std::uint32_t* v, std::size_t first, const char* who) {
  r.refill();
  v[0] = ww == 32 ? r.get(32) : r.get(ww);
  if (m == 1) return;
  const unsigned k = m - 1, full = (1u << k) - 1, ib = index_bits(m), rb = run_bits(ww), D = ww;
  std::uint8_t x[32], kind[32];
  bool prev_zero = false;
  for (unsigned j = 0; j < D;) {
    if (r.cnt < 16) r.refill();
    const std::uint32_t u = r.peek(8);
    if (u & 0x80) {  // 1 + X
      x[j] = static_cast<std::uint8_t>(u >> (7 - k) & full);
      kind[j++] = static_cast<std::uint8_t>(Kind::literal);
      r.skip(1 + k);
      prev_zero = false;
    } else if (u & 0x60) {  // 01 + (run - 2) or 001
      const unsigned run = (u & 0x40) ? 2 + (u >> (6 - rb) & ((1u << rb) - 1)) : 1;
      if (prev_zero)
        codec_fail(fmt::format("{}: block at word {}: a zero-plane token follows another one (the encoder merges runs)",
                               who, first));
      if (run > D - j)
        codec_fail(fmt::format("{}: block at word {}: a run of {} zero planes at plane {} passes the {} planes", who,
                               first, run, j, D));
      r.skip((u & 0x40) ? 2 + rb : 3);
      for (unsigned e = j + run; j < e; ++j) x[j] = 0, kind[j] = static_cast<std::uint8_t>(Kind::zero);
      prev_zero = true;
    } else {
      const unsigned c = u >> 3;  // 0000c
      prev_zero = false;
      if (c < 2) {
        x[j] = c == 0 ? static_cast<std::uint8_t>(full) : 0;  // 00001: X follows from the plane below
        kind[j++] = static_cast<std::uint8_t>(c == 0 ? Kind::ones : Kind::pzero);
        r.skip(5);
        continue;
      }
      const unsigned idx = u >> (3 - ib) & ((1u << ib) - 1);
      const unsigned ones = c == 2 ? 2 : 1;
      if (idx + ones > k)
        codec_fail(fmt::format("{}: block at word {}: index {} out of range for {}-bit planes", who, first, idx, k));
      x[j] = static_cast<std::uint8_t>((ones == 2 ? 3u : 1u) << (k - ones - idx));
      kind[j++] = static_cast<std::uint8_t>(ones == 2 ? Kind::pair : Kind::single);
      r.skip(5 + ib);
    }
  }
  if (r.past(0))
    codec_fail(fmt::format("{}: stream of {} bytes is truncated (block at word {})", who, r.total_bits / 8, first));
  // Planes from the least significant up, checking each symbol is the one the encoder chooses.
  std::uint8_t planes[32];
  unsigned below = 0;  // P_{j+1}
  const auto& tab = tables().sym[k];
  for (unsigned t = 0; t < D; ++t) {
    const unsigned j = D - 1 - t;
    const auto kd = static_cast<Kind>(kind[j]);
    unsigned p;
    if (kd == Kind::pzero) {
      if (below == 0 || below == full)
        codec_fail(
            fmt::format("{}: block at word {}: plane {} coded as zero where the encoder codes its XOR", who, first, j));
      p = 0;
    } else {
      const unsigned xj = x[j];
      p = xj ^ below;
      if (kd != Kind::zero && kd != Kind::ones) {
        if (p == 0) codec_fail(fmt::format("{}: block at word {}: plane {} is zero but not coded so", who, first, j));
        const Sym& s = tab[xj];
        const bool literal = s.len == 1 + k && (s.code >> k) == 1;
        if (xj == full || (kd == Kind::literal) != literal)
          codec_fail(
              fmt::format("{}: block at word {}: plane {} is not coded with the encoder's symbol", who, first, j));
      }
    }
    planes[t] = static_cast<std::uint8_t>(p);
    below = p;
  }
  // Deltas from the planes (the inverse transpose), then the prefix sum.
  std::uint32_t d[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (unsigned b = 0; b < ww / 8; ++b) {
    const std::uint64_t y = transpose8(detail::load64(reinterpret_cast<const std::byte*>(planes + 8 * b)));
    for (unsigned i = 1; i <= k; ++i) d[i] |= static_cast<std::uint32_t>(y >> (8 * (k - i)) & 0xff) << (8 * b);
  }
  const std::uint32_t mask = ww == 32 ? 0xffffffffu : (1u << ww) - 1;
  for (unsigned i = 1; i <= k; ++i) v[i] = (v[i - 1] + d[i]) & mask;
}

// Decodes n words of BPC from r into out (w bytes each). With `nonzero`, a decoded 0 is an error.
void bpc_words(MsbReader& r, std::size_t n, std::size_t w, std::byte* out, bool nonzero, const char* who) {
  const auto ww = static_cast<unsigned>(8 * w);
  std::uint32_t v[8];
  for (std::size_t i = 0; i < n; i += 8) {
    const auto m = static_cast<unsigned>(std::min<std::size_t>(8, n - i));
    decode_block(r, m, ww, v, i, who);
    for (unsigned j = 0; j < m; ++j) {
      if (nonzero && v[j] == 0) codec_fail(fmt::format("{}: nonzero word {} of the BPC part decodes to 0", who, i + j));
      std::memcpy(out + (i + j) * w, &v[j], w);  // little-endian host
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

std::size_t bpc_encode_reference(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out) {
  check_encode_args(in, width, out, bpc_max_encoded_size(in.size(), width), "bpc encode");
  std::vector<std::uint32_t> words(in.size() / width);
  for (std::size_t i = 0; i < words.size(); ++i) words[i] = load_word(in.data() + i * width, width);
  return pack_bits(ref_bpc(words, static_cast<unsigned>(8 * width)), out);
}

std::size_t ebpc_encode_reference(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out) {
  check_encode_args(in, width, out, ebpc_max_encoded_size(in.size(), width), "ebpc encode");
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
  s += ref_bpc(nz, static_cast<unsigned>(8 * width));
  return pack_bits(s, out);
}

std::size_t bpc_encode(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out) {
  check_encode_args(in, width, out, bpc_max_encoded_size(in.size(), width), "bpc encode");
  MsbWriter wr(out.data());
  bpc_stream(in.data(), in.size() / width, width, wr);
  return wr.finish();
}

std::size_t ebpc_encode(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out) {
  check_encode_args(in, width, out, ebpc_max_encoded_size(in.size(), width), "ebpc encode");
  MsbWriter wr(out.data());
  ebpc_stream(in.data(), in.size() / width, width, wr);
  return wr.finish();
}

std::uint64_t bpc_bits(std::span<const std::byte> in, std::size_t width) {
  detail::check_width(in.size(), width, "bpc size");
  BitCounter c;
  bpc_stream(in.data(), in.size() / width, width, c);
  return c.bits;
}

std::uint64_t ebpc_bits(std::span<const std::byte> in, std::size_t width) {
  detail::check_width(in.size(), width, "ebpc size");
  BitCounter c;
  ebpc_stream(in.data(), in.size() / width, width, c);
  return c.bits;
}

void bpc_decode(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out) {
  detail::check_width(out.size(), width, "bpc decode");
  MsbReader r(in.data(), in.data() + in.size());
  bpc_words(r, out.size() / width, width, out.data(), false, "bpc decode");
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
      for (std::size_t e = i + ones; i < e; ++i) masks[i / 64] |= std::uint64_t{1} << (i % 64);
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
  bpc_words(r, nnz, width, out.data(), true, who);
  check_end(r, in.size(), who);
  std::size_t j = nnz;
  for (std::size_t e = n; e-- > 0;) {
    if (masks[e / 64] >> (e % 64) & 1) {
      --j;
      if (j != e) std::memcpy(out.data() + e * width, out.data() + j * width, width);
    } else {
      std::memset(out.data() + e * width, 0, width);
    }
  }
}

}  // namespace cdma::formats
