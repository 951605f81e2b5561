// Zero scan: element-by-element reference, and a fast path that works on 64-element nonzero
// bitmasks (computed by the SIMD kernels) and walks zero runs with bit tricks.
#include <cdma/formats/zero_scan.hpp>

#include "codec_internal.hpp"

#include <fmt/format.h>
#include <bit>

namespace cdma::formats {

namespace {

void add_run_tokens(ZeroScan& s, std::uint64_t len, std::uint64_t times) {
  for (int k = kZrleMinK; k <= kZrleMaxK; ++k) s.zrle_tokens[k] += times * ((len + (std::uint64_t{1} << k) - 1) >> k);
}

// Accumulates runs; runs of up to 64 elements go to a histogram (cheap in the hot loop) and are
// turned into token counts once at the end.
struct RunAccumulator {
  ZeroScan& s;
  std::uint64_t hist[65] = {};
  std::uint64_t open = 0;  // length of the zero run still open at the current position

  void close(std::uint64_t len) {
    ++s.zero_runs;
    if (len <= 64)
      ++hist[len];
    else
      add_run_tokens(s, len, 1);
  }

  // Consumes one word of `nb` valid bits (bits >= nb are 0 and ignored). Always inlined, so that
  // popcount/tzcnt/lzcnt become single instructions in the per-ISA scans below (the baseline
  // x86-64 build would call libgcc's __popcountdi2).
  [[gnu::always_inline]] void word(std::uint64_t m, unsigned nb) {
    if (m == 0) {
      open += nb;
      return;
    }
    s.nonzeros += static_cast<std::uint64_t>(std::popcount(m));
    const unsigned lo = static_cast<unsigned>(std::countr_zero(m));
    const unsigned hi = 63u - static_cast<unsigned>(std::countl_zero(m));  // highest nonzero bit
    open += lo;
    if (open) close(open);
    // Zero runs strictly inside [lo, hi] are complete.
    std::uint64_t inner = ~m & (hi == 63 ? ~std::uint64_t{0} : (std::uint64_t{1} << (hi + 1)) - 1);
    inner &= ~((std::uint64_t{1} << lo) - 1);
    while (inner) {
      const std::uint64_t low = inner & (~inner + 1);
      const std::uint64_t t = inner + low;  // nonzero: a set bit of m lies above every inner run
      close(static_cast<std::uint64_t>(std::countr_zero(t) - std::countr_zero(inner)));
      inner &= t;
    }
    open = nb - 1 - hi;
  }

  void finish() {
    if (open) close(open);
    open = 0;
    for (std::uint64_t len = 1; len <= 64; ++len)
      if (hist[len]) add_run_tokens(s, len, hist[len]);
  }
};

}  // namespace

ZeroScan zero_scan_reference(std::span<const std::byte> data, std::size_t width) {
  detail::check_width(data.size(), width, "zero_scan");
  ZeroScan s;
  s.elements = data.size() / width;
  std::uint64_t run = 0;
  for (std::uint64_t i = 0; i < s.elements; ++i) {
    bool zero = true;
    for (std::size_t b = 0; b < width; ++b)
      if (data[i * width + b] != std::byte{0}) zero = false;
    if (zero) {
      ++run;
    } else {
      ++s.nonzeros;
      if (run) {
        ++s.zero_runs;
        add_run_tokens(s, run, 1);
      }
      run = 0;
    }
  }
  if (run) {
    ++s.zero_runs;
    add_run_tokens(s, run, 1);
  }
  return s;
}

namespace {

using MaskFn = void (*)(const std::byte*, std::size_t, std::size_t, std::uint64_t*);

// Calls f(mask, valid_bits) for each 64-element nonzero mask of `data`, computed by `masks` 4096
// elements at a time (the masks stay in L1). Inlined, with f, into a function per ISA below: the
// caller's target attribute decides which instructions the bit tricks in f use.
template <class F>
[[gnu::always_inline]] inline void for_each_mask(std::span<const std::byte> data, std::size_t width, MaskFn masks,
                                                 F&& f) {
  constexpr std::size_t kWords = 64;
  std::uint64_t words[kWords];
  const std::uint64_t n = data.size() / width;
  for (std::uint64_t done = 0; done < n;) {
    const std::size_t chunk = static_cast<std::size_t>(std::min<std::uint64_t>(n - done, kWords * 64));
    masks(data.data() + done * width, chunk, width, words);
    const std::size_t nw = (chunk + 63) / 64;
    for (std::size_t i = 0; i < nw; ++i)
      f(words[i], i + 1 < nw || chunk % 64 == 0 ? 64u : static_cast<unsigned>(chunk % 64));
    done += chunk;
  }
}

[[gnu::always_inline]] inline ZeroScan scan_with(std::span<const std::byte> data, std::size_t width, MaskFn masks) {
  ZeroScan s;
  s.elements = data.size() / width;
  RunAccumulator acc{s};
  for_each_mask(
      data, width, masks, [&](std::uint64_t m, unsigned nb) __attribute__((always_inline)) { acc.word(m, nb); });
  acc.finish();
  return s;
}

[[gnu::always_inline]] inline std::uint64_t count_with(std::span<const std::byte> data, std::size_t width,
                                                       MaskFn masks) {
  std::uint64_t nnz = 0;
  for_each_mask(
      data, width, masks, [&](std::uint64_t m, unsigned) __attribute__((always_inline)) {
        nnz += static_cast<std::uint64_t>(std::popcount(m));
      });
  return nnz;
}

// One entry per ISA (each an inlined copy of the loops above compiled for it).
struct ScanFns {
  ZeroScan (*scan)(std::span<const std::byte>, std::size_t);
  std::uint64_t (*count)(std::span<const std::byte>, std::size_t);
};

ScanFns scan_fns(SimdLevel level) {
#if CDMA_X86
  switch (clamp_simd_level(level)) {
    case SimdLevel::avx512:
      return {[](std::span<const std::byte> d, std::size_t w)
                  CDMA_TARGET_AVX512 { return scan_with(d, w, detail::nonzero_masks_avx512); },
              [](std::span<const std::byte> d, std::size_t w)
                  CDMA_TARGET_AVX512 { return count_with(d, w, detail::nonzero_masks_avx512); }};
    case SimdLevel::avx2:
      return {[](std::span<const std::byte> d, std::size_t w)
                  CDMA_TARGET_AVX2 { return scan_with(d, w, detail::nonzero_masks_avx2); },
              [](std::span<const std::byte> d, std::size_t w)
                  CDMA_TARGET_AVX2 { return count_with(d, w, detail::nonzero_masks_avx2); }};
    case SimdLevel::scalar:
      break;
  }
#else
  (void)level;
#endif
  return {[](std::span<const std::byte> d, std::size_t w) { return scan_with(d, w, detail::nonzero_masks_scalar); },
          [](std::span<const std::byte> d, std::size_t w) { return count_with(d, w, detail::nonzero_masks_scalar); }};
}

}  // namespace

ZeroScan zero_scan(std::span<const std::byte> data, std::size_t width, SimdLevel level) {
  detail::check_width(data.size(), width, "zero_scan");
  return scan_fns(level).scan(data, width);
}

ZeroScan zero_scan(std::span<const std::byte> data, std::size_t width) {
  return zero_scan(data, width, active_simd_level());
}

std::uint64_t count_nonzeros(std::span<const std::byte> data, std::size_t width) {
  detail::check_width(data.size(), width, "count_nonzeros");
  return scan_fns(active_simd_level()).count(data, width);
}

std::uint64_t zrle_size(const ZeroScan& scan, std::size_t width, int k) {
  if (k < kZrleMinK || k > kZrleMaxK)
    throw CodecError(fmt::format("zrle: run field width k must be in 1..16, got {}", k));
  const std::uint64_t bits = scan.nonzeros * (1 + 8 * static_cast<std::uint64_t>(width)) +
                             scan.zrle_tokens[static_cast<std::size_t>(k)] * (1 + static_cast<std::uint64_t>(k));
  return (bits + 7) / 8;
}

}  // namespace cdma::formats
