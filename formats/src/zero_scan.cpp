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

// Accumulates the runs that cross word boundaries (at most one closes per word), one at a time:
// runs of up to 64 elements go to a histogram (cheap in the hot loop) and become token counts once
// at the end. The runs inside words are counted by detail::inner_runs_* (codec_internal.hpp).
struct BoundaryRuns {
  ZeroScan& s;
  std::uint64_t hist[65] = {};  // [0] counts "no run" (kept branch-free) and is ignored
  std::uint64_t open = 0;       // length of the zero run still open at the current position

  void close(std::uint64_t len) {
    if (len <= 64) [[likely]] {
      ++hist[len];
    } else {
      ++s.zero_runs;
      add_run_tokens(s, len, 1);
    }
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
    close(open + static_cast<unsigned>(std::countr_zero(m)));
    open = nb - 64 + static_cast<unsigned>(std::countl_zero(m));  // zeros above the highest nonzero
  }

  void finish(const detail::InnerRuns& inner) {
    close(open);
    open = 0;
    for (std::uint64_t len = 1; len <= 64; ++len) {
      s.zero_runs += hist[len];
      if (hist[len]) add_run_tokens(s, len, hist[len]);
    }
    s.zero_runs += inner.runs;
    for (int k = kZrleMinK; k <= kZrleMaxK; ++k) s.zrle_tokens[k] += k <= 5 ? inner.tokens[k] : inner.runs;
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
using InnerFn = void (*)(const std::uint64_t*, std::size_t, detail::InnerRuns&);

// Calls f(mask, valid_bits) for each 64-element nonzero mask of `data`, computed by `masks` kWords
// masks at a time (they stay in L1, and memory loads of the next chunk overlap the work on this
// one), then per_chunk(words, count). Inlined, with f, into a function per ISA below: the caller's
// target attribute decides which instructions the bit tricks in f use.
template <class F, class G>
[[gnu::always_inline]] inline void for_each_mask(std::span<const std::byte> data, std::size_t width, MaskFn masks,
                                                 F&& f, G&& per_chunk) {
  constexpr std::size_t kWords = 16;
  std::uint64_t words[kWords];
  const std::uint64_t n = data.size() / width;
  for (std::uint64_t done = 0; done < n;) {
    const std::size_t chunk = static_cast<std::size_t>(std::min<std::uint64_t>(n - done, kWords * 64));
    masks(data.data() + done * width, chunk, width, words);
    const std::size_t nw = (chunk + 63) / 64;
    for (std::size_t i = 0; i + 1 < nw; ++i) f(words[i], 64u);  // whole words; the last may be short
    f(words[nw - 1], chunk % 64 == 0 ? 64u : static_cast<unsigned>(chunk % 64));
    per_chunk(words, nw);
    done += chunk;
  }
}

[[gnu::always_inline]] inline ZeroScan scan_with(std::span<const std::byte> data, std::size_t width, MaskFn masks,
                                                 InnerFn inner_runs) {
  ZeroScan s;
  s.elements = data.size() / width;
  BoundaryRuns boundary{s};
  detail::InnerRuns inner;
  std::uint64_t any = 0, all = ~std::uint64_t{0};  // of the chunk's words: a chunk of all-zero or
                                                   // all-nonzero words has no inner runs
  for_each_mask(
      data, width, masks,
      [&](std::uint64_t m, unsigned nb) __attribute__((always_inline)) {
        boundary.word(m, nb);
        any |= m;
        all &= m;
      },
      [&](const std::uint64_t* words, std::size_t nw) {
        if (any != 0 && all != ~std::uint64_t{0}) inner_runs(words, nw, inner);
        any = 0, all = ~std::uint64_t{0};
      });
  boundary.finish(inner);
  return s;
}

[[gnu::always_inline]] inline std::uint64_t count_with(std::span<const std::byte> data, std::size_t width,
                                                       MaskFn masks) {
  std::uint64_t nnz = 0;
  for_each_mask(
      data, width, masks,
      [&](std::uint64_t m, unsigned)
          __attribute__((always_inline)) { nnz += static_cast<std::uint64_t>(std::popcount(m)); },
      [](const std::uint64_t*, std::size_t) {});
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
                  CDMA_TARGET_AVX512 { return scan_with(d, w, detail::nonzero_masks_avx512, detail::inner_runs_avx2); },
              [](std::span<const std::byte> d, std::size_t w)
                  CDMA_TARGET_AVX512 { return count_with(d, w, detail::nonzero_masks_avx512); }};
    case SimdLevel::avx2:
      return {[](std::span<const std::byte> d, std::size_t w)
                  CDMA_TARGET_AVX2 { return scan_with(d, w, detail::nonzero_masks_avx2, detail::inner_runs_avx2); },
              [](std::span<const std::byte> d, std::size_t w)
                  CDMA_TARGET_AVX2 { return count_with(d, w, detail::nonzero_masks_avx2); }};
    case SimdLevel::scalar:
      break;
  }
#else
  (void)level;
#endif
  return {[](std::span<const std::byte> d, std::size_t w) {
            return scan_with(d, w, detail::nonzero_masks_scalar, detail::inner_runs_scalar);
          },
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
