// Codec microbenchmarks: encode and decode of every codec on clustered synthetic activations
// (fp32 and fp16, 64 MiB each: larger than the last-level cache) at densities 0..100 %, and bf16 at
// 50 % and 100 % for ZVC, zstd-1, BPC, EBPC and expzstd, with
// two baselines measured in the same binary on the same bytes: memcpy (read + write, what a copy
// engine does) and a streaming read (the physical limit of any scan: the zero scan cannot beat it).
//
// Throughput is counted over uncompressed bytes (SetBytesProcessed); counters: ratio
// (uncompressed / compressed), density, compressed bytes. Every output is checked once outside
// the timed loop. Environment: CDMA_BENCH_MIB (tensor size, default 64), CDMA_SIMD (fast-path
// level, default the best the CPU has). Benchmark names: <dtype>/d<density>/<codec>/<op>.
//
// <dtype>/d<density>/paired/<codec>-<op> (ZVC, BPC, EBPC, expzstd encode and decode, the zero scan) time the operation,
// memcpy and the streaming read in every iteration, in rotating order, and report the ratios of
// their summed times (counters vs_memcpy, vs_read): on a shared host, whose memory bandwidth
// drifts over seconds, these are the side-by-side ratios least moved by the drift.
#include <cdma/formats/codec.hpp>
#include <cdma/formats/simd.hpp>
#include <cdma/formats/synth.hpp>
#include <cdma/formats/zero_scan.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <functional>

#include <immintrin.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>

using namespace cdma::formats;

namespace {

// Page-aligned, pre-faulted buffer (first-touch page faults must not be timed).
struct Buffer {
  std::unique_ptr<std::byte, decltype(&std::free)> p{nullptr, &std::free};
  std::size_t size = 0;
  void resize(std::size_t n) {
    if (n <= size) return;
    p.reset(static_cast<std::byte*>(std::aligned_alloc(4096, (n + 4095) / 4096 * 4096)));
    if (!p) throw std::bad_alloc();
    std::memset(p.get(), 0x11, n);
    size = n;
  }
  std::span<std::byte> span(std::size_t n) const { return {p.get(), n}; }
};

std::size_t tensor_mib() {
  const char* e = std::getenv("CDMA_BENCH_MIB");
  const long v = e ? std::strtol(e, nullptr, 10) : 64;
  return v > 0 ? static_cast<std::size_t>(v) : 64;
}

// The tensor under test; regenerated only when dtype or density changes (benchmarks are
// registered grouped by tensor).
struct Tensor {
  DType dtype{};
  int density_pct = -1;
  Buffer data;
  std::size_t bytes = 0;
  double density = 0;
};
Tensor g_tensor;
Buffer g_enc, g_dec;

const Tensor& tensor(DType t, int pct) {
  if (g_tensor.dtype == t && g_tensor.density_pct == pct) return g_tensor;
  SynthSpec s;
  const std::size_t w = dtype_size(t);
  const std::int64_t elements = static_cast<std::int64_t>(tensor_mib() * (1u << 20) / w);
  // Activation-like NCHW: 64 channels of 64 x 64, batch filling the size.
  s.dims = {elements / (64 * 64 * 64), 64, 64, 64};
  if (s.dims[0] == 0) s.dims = {1, 1, 1, elements};
  s.dtype = t;
  s.density = pct / 100.0;
  s.clustering = Clustering::mixed;  // dead channels + spatial zero runs
  s.seed = 2018;
  g_tensor.bytes = synth_bytes(s);
  g_tensor.data.resize(g_tensor.bytes);
  synth_activations_into(s, g_tensor.data.span(g_tensor.bytes));
  g_tensor.dtype = t;
  g_tensor.density_pct = pct;
  g_tensor.density = zero_scan(g_tensor.data.span(g_tensor.bytes), w).density();
  return g_tensor;
}

std::string dtype_name(DType t) { return t == DType::f32 ? "fp32" : t == DType::bf16 ? "bf16" : "fp16"; }

void set_counters(benchmark::State& st, const Tensor& t, std::size_t compressed) {
  st.SetBytesProcessed(static_cast<std::int64_t>(st.iterations() * t.bytes));
  st.counters["ratio"] = compressed ? static_cast<double>(t.bytes) / static_cast<double>(compressed) : 0.0;
  st.counters["density"] = t.density;
  st.counters["compressed_bytes"] = static_cast<double>(compressed);
}

void bm_memcpy(benchmark::State& st, DType dt, int pct) {
  const Tensor& t = tensor(dt, pct);
  g_dec.resize(t.bytes);
  for (auto _ : st) {
    std::memcpy(g_dec.p.get(), t.data.p.get(), t.bytes);
    benchmark::ClobberMemory();
  }
  if (std::memcmp(g_dec.p.get(), t.data.p.get(), t.bytes) != 0) st.SkipWithError("memcpy differs");
  set_counters(st, t, t.bytes);
}

// A streaming read of the tensor: 32-byte loads OR-ed into four accumulators (AVX2 when the CPU has
// it, chosen at run time; 8-byte loads otherwise). Memory-bound on any core of this decade.
__attribute__((target("avx2"))) std::uint64_t read_avx2(const std::byte* p, std::size_t n) {
  __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
  std::size_t i = 0;
  for (; i + 128 <= n; i += 128) {
    a = _mm256_or_si256(a, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i)));
    b = _mm256_or_si256(b, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
    c = _mm256_or_si256(c, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
    d = _mm256_or_si256(d, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
  }
  const __m256i r = _mm256_or_si256(_mm256_or_si256(a, b), _mm256_or_si256(c, d));
  std::uint64_t out = static_cast<std::uint64_t>(_mm256_extract_epi64(r, 0) | _mm256_extract_epi64(r, 1) |
                                                 _mm256_extract_epi64(r, 2) | _mm256_extract_epi64(r, 3));
  for (; i < n; ++i) out |= static_cast<std::uint64_t>(p[i]);
  return out;
}

std::uint64_t read_scalar(const std::byte* p, std::size_t n) {
  std::uint64_t a = 0, b = 0, c = 0, d = 0;
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    std::uint64_t w[4];
    std::memcpy(w, p + i, 32);
    a |= w[0], b |= w[1], c |= w[2], d |= w[3];
  }
  for (; i < n; ++i) a |= static_cast<std::uint64_t>(p[i]);
  return a | b | c | d;
}

void bm_read(benchmark::State& st, DType dt, int pct) {
  const Tensor& t = tensor(dt, pct);
  const bool avx2 = active_simd_level() >= SimdLevel::avx2;
  for (auto _ : st) {
    std::uint64_t v = avx2 ? read_avx2(t.data.p.get(), t.bytes) : read_scalar(t.data.p.get(), t.bytes);
    benchmark::DoNotOptimize(v);
  }
  set_counters(st, t, t.bytes);
}

void bm_encode(benchmark::State& st, DType dt, int pct, const std::string& spec) {
  const Tensor& t = tensor(dt, pct);
  const auto codec = make_codec(spec);
  const std::size_t w = dtype_size(dt);
  const std::size_t cap = codec->max_encoded_size(t.bytes, w);
  g_enc.resize(cap);
  std::size_t size = 0;
  for (auto _ : st) {
    size = codec->encode(t.data.span(t.bytes), w, g_enc.span(cap));
    benchmark::DoNotOptimize(size);
    benchmark::ClobberMemory();
  }
  if (size != codec->compressed_size(t.data.span(t.bytes), w))
    st.SkipWithError("encoded size differs from compressed_size()");
  set_counters(st, t, size);
}

void bm_decode(benchmark::State& st, DType dt, int pct, const std::string& spec) {
  const Tensor& t = tensor(dt, pct);
  const auto codec = make_codec(spec);
  const std::size_t w = dtype_size(dt);
  const std::size_t cap = codec->max_encoded_size(t.bytes, w);
  g_enc.resize(cap);
  g_dec.resize(t.bytes);
  const std::size_t size = codec->encode(t.data.span(t.bytes), w, g_enc.span(cap));
  std::memset(g_dec.p.get(), 0x5a, t.bytes);  // so that the check below sees what the decoder wrote
  for (auto _ : st) {
    codec->decode(g_enc.span(size), w, g_dec.span(t.bytes));
    benchmark::ClobberMemory();
  }
  if (std::memcmp(g_dec.p.get(), t.data.p.get(), t.bytes) != 0) st.SkipWithError("decode differs");
  set_counters(st, t, size);
}

// The analyzer's hot loop: every ZVC and ZRLE-k size from one pass.
void bm_scan(benchmark::State& st, DType dt, int pct) {
  const Tensor& t = tensor(dt, pct);
  const std::size_t w = dtype_size(dt);
  ZeroScan s;
  for (auto _ : st) {
    s = zero_scan(t.data.span(t.bytes), w);
    benchmark::DoNotOptimize(s);
  }
  set_counters(st, t, zrle_size(s, w, 4));
}

// The nonzero count alone (what ZVC sizing needs): the mask computation without the run statistics.
void bm_count(benchmark::State& st, DType dt, int pct) {
  const Tensor& t = tensor(dt, pct);
  const std::size_t w = dtype_size(dt);
  std::uint64_t nnz = 0;
  for (auto _ : st) {
    nnz = count_nonzeros(t.data.span(t.bytes), w);
    benchmark::DoNotOptimize(nnz);
  }
  if (nnz != zero_scan_reference(t.data.span(t.bytes), w).nonzeros) st.SkipWithError("nonzero count differs");
  set_counters(st, t, zvc_size(t.bytes / w, nnz, w));
}

// The operation, memcpy and the streaming read of the same tensor in every iteration (the order
// rotating, so that none always follows the same one); the iteration time is the operation's.
void bm_paired(benchmark::State& st, DType dt, int pct, const std::string& what) {
  const Tensor& t = tensor(dt, pct);
  const std::size_t w = dtype_size(dt);
  const std::string cname = what.substr(0, what.rfind('-')), opname = what.substr(what.rfind('-') + 1);
  const auto codec = make_codec(cname == "zero_scan" ? "zvc" : cname);
  const std::size_t cap = codec->max_encoded_size(t.bytes, w);
  g_enc.resize(cap);
  g_dec.resize(t.bytes);
  const std::size_t size = codec->encode(t.data.span(t.bytes), w, g_enc.span(cap));
  std::memset(g_dec.p.get(), 0x5a, t.bytes);  // so that the checks below see what the operation wrote
  ZeroScan scan;
  std::size_t encoded = 0;
  std::function<void()> op;
  if (opname == "encode")
    op = [&] { encoded = codec->encode(t.data.span(t.bytes), w, g_enc.span(cap)); };
  else if (opname == "decode")
    op = [&] { codec->decode(g_enc.span(size), w, g_dec.span(t.bytes)); };
  else
    op = [&] { scan = zero_scan(t.data.span(t.bytes), w); };
  Buffer copy;  // memcpy's destination: not g_dec, which the decoder's result is checked in
  copy.resize(t.bytes);
  const bool avx2 = active_simd_level() >= SimdLevel::avx2;
  using Clock = std::chrono::steady_clock;
  double t_op = 0, t_copy = 0, t_read = 0;
  std::uint64_t i = 0;
  for (auto _ : st) {
    for (int j = 0; j < 3; ++j) {
      const int which = static_cast<int>((i + static_cast<std::uint64_t>(j)) % 3);
      const auto a = Clock::now();
      if (which == 0) {
        op();
      } else if (which == 1) {
        std::memcpy(copy.p.get(), t.data.p.get(), t.bytes);
      } else {
        std::uint64_t v = avx2 ? read_avx2(t.data.p.get(), t.bytes) : read_scalar(t.data.p.get(), t.bytes);
        benchmark::DoNotOptimize(v);
      }
      benchmark::ClobberMemory();
      const double s = std::chrono::duration<double>(Clock::now() - a).count();
      (which == 0 ? t_op : which == 1 ? t_copy : t_read) += s;
      if (which == 0) st.SetIterationTime(s);
    }
    ++i;
  }
  if (opname == "encode") {  // the last encoding decodes to the input
    codec->decode(g_enc.span(encoded), w, g_dec.span(t.bytes));
    if (encoded != size || std::memcmp(g_dec.p.get(), t.data.p.get(), t.bytes) != 0)
      st.SkipWithError("encoded stream differs");
  }
  if (opname == "decode" && std::memcmp(g_dec.p.get(), t.data.p.get(), t.bytes) != 0)
    st.SkipWithError("decode differs");
  if (what == "zero_scan-scan" && scan != zero_scan_reference(t.data.span(t.bytes), w))
    st.SkipWithError("zero scan differs from the reference");
  if (std::memcmp(copy.p.get(), t.data.p.get(), t.bytes) != 0) st.SkipWithError("memcpy differs");
  set_counters(st, t, what == "zero_scan-scan" ? zrle_size(scan, w, 4) : size);
  st.counters["vs_memcpy"] = t_op > 0 ? t_copy / t_op : 0.0;
  st.counters["vs_read"] = t_op > 0 ? t_read / t_op : 0.0;
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::AddCustomContext("cdma_simd", std::string(to_string(active_simd_level())));
  benchmark::AddCustomContext("cdma_cpu_model", cpu_model_name());
  benchmark::AddCustomContext("cdma_tensor_mib", std::to_string(tensor_mib()));
  const char* codecs[] = {"zvc", "zrle-4", "zlib-6", "zstd-1", "lz4", "bpc", "ebpc", "expzstd"};
  const char* bf16_codecs[] = {"zvc", "zstd-1", "bpc", "ebpc", "expzstd"};
  const char* paired[] = {"zvc-encode",  "zvc-decode",  "zero_scan-scan", "bpc-encode",    "bpc-decode",
                          "ebpc-encode", "ebpc-decode", "expzstd-encode", "expzstd-decode"};
  for (DType dt : {DType::f32, DType::f16, DType::bf16}) {
    const bool bf16 = dt == DType::bf16;  // bf16: 50 % and dense, the codecs that look at words, and zstd-1
    for (int pct : {0, 10, 30, 50, 70, 90, 100}) {
      if (bf16 && pct != 50 && pct != 100) continue;
      const std::string base = dtype_name(dt) + "/d" + std::to_string(pct) + "/";
      benchmark::RegisterBenchmark((base + "memcpy/copy").c_str(), bm_memcpy, dt, pct)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
      benchmark::RegisterBenchmark((base + "read/stream").c_str(), bm_read, dt, pct)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
      benchmark::RegisterBenchmark((base + "zero_scan/scan").c_str(), bm_scan, dt, pct)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
      benchmark::RegisterBenchmark((base + "zero_scan/count").c_str(), bm_count, dt, pct)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
      for (const char* what : paired)
        benchmark::RegisterBenchmark((base + "paired/" + what).c_str(), bm_paired, dt, pct, std::string(what))
            ->Unit(benchmark::kMillisecond)
            ->UseManualTime();
      for (const char* c : codecs) {
        if (bf16 && std::find(std::begin(bf16_codecs), std::end(bf16_codecs), std::string(c)) == std::end(bf16_codecs))
          continue;
        benchmark::RegisterBenchmark((base + c + "/encode").c_str(), bm_encode, dt, pct, std::string(c))
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
        benchmark::RegisterBenchmark((base + c + "/decode").c_str(), bm_decode, dt, pct, std::string(c))
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
      }
    }
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
