// Instruction-set levels of the codec fast paths and their run-time dispatch.
//
// Every fast path (ZVC, ZRLE, zero scan) has a scalar reference beside it; the dispatcher picks the
// best level the CPU supports (checked once with __builtin_cpu_supports). The environment variable
// CDMA_SIMD=scalar|avx2|avx512 lowers the level (never raises it past what the CPU supports), for
// benchmarks and for reproducing a problem on the scalar path.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace cdma::formats {

// avx512 means AVX-512 F+BW+VL+VBMI2 (vpcompress{b,w,d}); avx2 means AVX2+BMI2.
enum class SimdLevel : unsigned char { scalar = 0, avx2 = 1, avx512 = 2 };

// Best level this CPU supports (ignores CDMA_SIMD).
SimdLevel cpu_simd_level() noexcept;

// Level the dispatching functions use: min(cpu_simd_level(), CDMA_SIMD if set). Computed once.
SimdLevel active_simd_level() noexcept;

// min(requested, cpu_simd_level()): a level that is safe to run here.
SimdLevel clamp_simd_level(SimdLevel requested) noexcept;

// The CPU's model name ("model name" of /proc/cpuinfo, clean text), or "unknown CPU": named beside
// every measured number (benchmarks, cdma bench) and in traces' `device` attribute.
std::string cpu_model_name();

// "scalar", "avx2", "avx512".
std::string_view to_string(SimdLevel l) noexcept;
std::optional<SimdLevel> parse_simd_level(std::string_view s) noexcept;

}  // namespace cdma::formats
