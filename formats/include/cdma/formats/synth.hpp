// Deterministic synthetic activations (shape, dtype, density, zero clustering, seed -> bytes),
// shared by tests, fuzzers, benchmarks and `cdma synth`.
//
// The same spec gives the same bytes on every machine and run (own PRNG, no std distributions).
// Nonzero values look like post-ReLU activations: positive, with varied mantissas (an exponential
// distribution of mean `scale`), so that byte codecs see realistic data.
#pragma once

#include <cdma/formats/dtype.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace cdma::formats {

// Where the zeros go.
enum class Clustering : unsigned char {
  uniform,   // every element independently zero with probability 1 - density
  channels,  // whole channels dead (zero for every n), the rest i.i.d. at the density left
  spatial,   // zeros in runs along the W axis (two-state Markov chain, mean run `mean_zero_run`)
  mixed,     // dead channels plus spatial runs in the live channels
};

std::string_view to_string(Clustering c) noexcept;
// "uniform", "channels", "spatial", "mixed".
std::optional<Clustering> parse_clustering(std::string_view s) noexcept;

struct SynthSpec {
  // NCHW (rank 4), NC (rank 2, H = W = 1) or flat (rank 1: one row of W elements).
  std::vector<std::int64_t> dims{1, 1, 1, 1};
  DType dtype = DType::f32;
  double density = 0.5;  // target fraction of nonzero elements, 0..1
  Clustering clustering = Clustering::uniform;
  // channels / mixed: fraction of all zeros that come from dead channels (0..1).
  double dead_share = 0.3;
  // spatial / mixed: mean length of a zero run along W, in elements (>= 1).
  double mean_zero_run = 8.0;
  double scale = 1.0;  // mean of the nonzero values (floating dtypes)
  std::uint64_t seed = 1;
};

// Throws Error naming the field when the spec is invalid: rank not 1, 2 or 4, a negative dim, more
// than 2^63 - 1 bytes, density or dead_share outside 0..1, mean_zero_run < 1, scale not positive.
void validate(const SynthSpec& spec);

// Number of elements / bytes the spec describes. Throws Error when dims are invalid.
std::uint64_t synth_elements(const SynthSpec& spec);
std::uint64_t synth_bytes(const SynthSpec& spec);

// Generates the tensor, little-endian, in NCHW order. Throws Error when the spec is invalid
// (rank not 1, 2 or 4, negative dims, density outside 0..1, out of the wrong size).
std::vector<std::byte> synth_activations(const SynthSpec& spec);
void synth_activations_into(const SynthSpec& spec, std::span<std::byte> out);

// Round-to-nearest-even conversions used by the generator (exposed for tests and the analyzer).
std::uint16_t f32_to_f16_bits(float f) noexcept;
std::uint16_t f32_to_bf16_bits(float f) noexcept;

}  // namespace cdma::formats
