// Deterministic synthetic activations: xoshiro256** seeded by splitmix64, Bernoulli zeros or a
// two-state Markov chain along W, exponential (post-ReLU-like) nonzero values.
#include <cdma/formats/error.hpp>
#include <cdma/formats/synth.hpp>

#include <fmt/format.h>
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <numeric>

namespace cdma::formats {

namespace {

class Rng {
 public:
  explicit Rng(std::uint64_t seed) {
    for (auto& w : s_) {  // splitmix64
      seed += 0x9e3779b97f4a7c15ULL;
      std::uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      w = z ^ (z >> 31);
    }
  }
  std::uint64_t next() {  // xoshiro256**
    const std::uint64_t r = std::rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = std::rotl(s_[3], 45);
    return r;
  }
  std::uint64_t below(std::uint64_t n) { return n ? next() % n : 0; }  // bias irrelevant here

 private:
  std::uint64_t s_[4];
};

// Bernoulli threshold on 53-bit draws: p = 1 is always, p = 0 never.
std::uint64_t threshold(double p) { return static_cast<std::uint64_t>(std::clamp(p, 0.0, 1.0) * 9007199254740992.0); }
bool draw(Rng& r, std::uint64_t thr) { return (r.next() >> 11) < thr; }

struct Shape {
  std::uint64_t n, c, plane;
};

Shape shape_of(const SynthSpec& spec) {
  for (auto d : spec.dims)
    if (d < 0) throw Error(fmt::format("synth: dimension {} is negative", d));
  const auto u = [&](std::size_t i) { return static_cast<std::uint64_t>(spec.dims[i]); };
  Shape sh{};
  switch (spec.dims.size()) {
    case 1:
      sh = {1, 1, u(0)};
      break;
    case 2:
      sh = {u(0), u(1), 1};
      break;
    case 4:
      sh = {u(0), u(1), u(2) * u(3)};
      if (u(2) != 0 && sh.plane / u(2) != u(3)) sh.plane = ~std::uint64_t{0};  // overflowed: caught below
      break;
    default:
      throw Error(fmt::format("synth: dims must have rank 4 (NCHW), 2 (NC) or 1, got rank {}", spec.dims.size()));
  }
  // Elements x bytes per element must fit in 63 bits (a trace's byte count is an int64).
  std::uint64_t b = dtype_size(spec.dtype);
  for (std::uint64_t f : {sh.n, sh.c, sh.plane})
    if (__builtin_mul_overflow(b, f, &b) || b > static_cast<std::uint64_t>(INT64_MAX))
      throw Error("synth: dimensions hold more than 2^63 - 1 bytes");
  return sh;
}

// One nonzero value, little-endian, `w` bytes, never all-zero bits.
void put_value(Rng& r, const SynthSpec& spec, std::byte* out) {
  const double u = (static_cast<double>(r.next() >> 11) + 0.5) * 0x1p-53;  // (0, 1)
  const float v = static_cast<float>(-std::log(u) * spec.scale);
  switch (spec.dtype) {
    case DType::f32: {
      std::uint32_t b = std::bit_cast<std::uint32_t>(v);
      if ((b & 0x7fffffffu) == 0) b = 1;
      std::memcpy(out, &b, 4);
      break;
    }
    case DType::f16:
    case DType::bf16: {
      std::uint16_t b = spec.dtype == DType::f16 ? f32_to_f16_bits(v) : f32_to_bf16_bits(v);
      if ((b & 0x7fffu) == 0) b = 1;  // underflow: smallest positive subnormal
      std::memcpy(out, &b, 2);
      break;
    }
    case DType::i8: {
      const double q = std::min(126.0, std::floor(static_cast<double>(v) / spec.scale * 20.0));
      out[0] = static_cast<std::byte>(1 + static_cast<int>(q));
      break;
    }
    case DType::u8: {
      const double q = std::min(254.0, std::floor(static_cast<double>(v) / spec.scale * 40.0));
      out[0] = static_cast<std::byte>(1 + static_cast<int>(q));
      break;
    }
  }
}

}  // namespace

std::string_view to_string(Clustering c) noexcept {
  switch (c) {
    case Clustering::uniform:
      return "uniform";
    case Clustering::channels:
      return "channels";
    case Clustering::spatial:
      return "spatial";
    case Clustering::mixed:
      return "mixed";
  }
  return "?";
}

std::optional<Clustering> parse_clustering(std::string_view s) noexcept {
  for (auto c : {Clustering::uniform, Clustering::channels, Clustering::spatial, Clustering::mixed})
    if (to_string(c) == s) return c;
  return std::nullopt;
}

std::uint64_t synth_elements(const SynthSpec& spec) {
  const Shape s = shape_of(spec);
  return s.n * s.c * s.plane;
}

std::uint64_t synth_bytes(const SynthSpec& spec) { return synth_elements(spec) * dtype_size(spec.dtype); }

std::vector<std::byte> synth_activations(const SynthSpec& spec) {
  std::vector<std::byte> out(synth_bytes(spec));
  synth_activations_into(spec, out);
  return out;
}

void validate(const SynthSpec& spec) {
  (void)shape_of(spec);
  if (!(spec.density >= 0.0 && spec.density <= 1.0))
    throw Error(fmt::format("synth: density must be in 0..1, got {}", spec.density));
  if (!(spec.dead_share >= 0.0 && spec.dead_share <= 1.0))
    throw Error(fmt::format("synth: dead_share must be in 0..1, got {}", spec.dead_share));
  if (!(spec.mean_zero_run >= 1.0))
    throw Error(fmt::format("synth: mean_zero_run must be >= 1, got {}", spec.mean_zero_run));
  if (!(spec.scale > 0.0 && std::isfinite(spec.scale)))
    throw Error(fmt::format("synth: scale must be positive, got {}", spec.scale));
}

void synth_activations_into(const SynthSpec& spec, std::span<std::byte> out) {
  validate(spec);
  const Shape sh = shape_of(spec);
  const std::size_t w = dtype_size(spec.dtype);
  if (out.size() != sh.n * sh.c * sh.plane * w)
    throw Error(fmt::format("synth: output holds {} bytes, the spec needs {}", out.size(), sh.n * sh.c * sh.plane * w));
  Rng rng(spec.seed);
  const double d = spec.density;

  // Dead channels: the same channels are zero for every n.
  std::vector<char> dead(sh.c, 0);
  double live_density = d;
  const bool with_dead = spec.clustering == Clustering::channels || spec.clustering == Clustering::mixed;
  if (with_dead && sh.c > 0 && d < 1.0) {
    auto n_dead = static_cast<std::uint64_t>(std::llround(spec.dead_share * (1.0 - d) * static_cast<double>(sh.c)));
    if (d > 0.0) n_dead = std::min(n_dead, sh.c - 1);
    std::vector<std::uint64_t> order(sh.c);
    std::iota(order.begin(), order.end(), 0);
    for (std::uint64_t i = sh.c; i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
    for (std::uint64_t i = 0; i < n_dead; ++i) dead[order[i]] = 1;
    live_density = std::min(1.0, d * static_cast<double>(sh.c) / static_cast<double>(sh.c - n_dead));
  }
  const bool runs = spec.clustering == Clustering::spatial || spec.clustering == Clustering::mixed;
  // Two-state chain with stationary density live_density and mean zero run mean_zero_run
  // (or longer, when the density is too low for runs that short).
  double to_nz = 1.0 / spec.mean_zero_run;
  double to_zero = live_density > 0.0 ? to_nz * (1.0 - live_density) / live_density : 1.0;
  if (to_zero > 1.0) {
    to_zero = 1.0;
    to_nz = live_density / (1.0 - live_density);
  }
  const std::uint64_t thr_live = threshold(live_density), thr_to_nz = threshold(to_nz),
                      thr_to_zero = threshold(to_zero);

  std::byte* o = out.data();
  for (std::uint64_t n = 0; n < sh.n; ++n) {
    for (std::uint64_t c = 0; c < sh.c; ++c) {
      if (dead[c] || live_density <= 0.0) {
        std::memset(o, 0, sh.plane * w);
        o += sh.plane * w;
        continue;
      }
      bool nz = draw(rng, thr_live);  // chain starts in its stationary distribution
      for (std::uint64_t i = 0; i < sh.plane; ++i, o += w) {
        if (runs) {
          if (i > 0) nz = nz ? !draw(rng, thr_to_zero) : draw(rng, thr_to_nz);
        } else if (i > 0) {
          nz = draw(rng, thr_live);
        }
        if (nz)
          put_value(rng, spec, o);
        else
          std::memset(o, 0, w);
      }
    }
  }
}

std::uint16_t f32_to_f16_bits(float f) noexcept {
  std::uint32_t x = std::bit_cast<std::uint32_t>(f);
  const std::uint32_t sign = x & 0x80000000u;
  x ^= sign;
  std::uint32_t o;
  if (x >= 0x47800000u) {  // >= 2^16 (overflow after rounding handled below), inf or NaN
    o = x > 0x7f800000u ? 0x7e00u : 0x7c00u;
  } else if (x < 0x38800000u) {  // below the smallest normal half: align to the subnormal grid
    // Adding 0.5 (2^-1) puts the half's subnormal quantum (2^-24) at the float's last mantissa
    // bit, so the float addition itself rounds to nearest even.
    const float t = std::bit_cast<float>(x) + 0.5f;
    o = std::bit_cast<std::uint32_t>(t) - 0x3f000000u;
  } else {
    const std::uint32_t odd = (x >> 13) & 1u;
    x += 0xc8000fffu + odd;  // rebias exponent (-112 << 23) and round to nearest even
    o = x >> 13;
    if (o > 0x7c00u) o = 0x7c00u;
  }
  return static_cast<std::uint16_t>(o | (sign >> 16));
}

std::uint16_t f32_to_bf16_bits(float f) noexcept {
  const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((x >> 16) | 0x40u);
  return static_cast<std::uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

}  // namespace cdma::formats
