#include <cdma/analyze/transform.hpp>
#include <cdma/formats/error.hpp>

#include <array>
#include <cstring>

namespace cdma::analyze {

using formats::DType;
using formats::Layout;

std::uint16_t f32_to_f16(std::uint32_t x) noexcept {
  const std::uint32_t sign = (x >> 16) & 0x8000u;
  const std::uint32_t exp = (x >> 23) & 0xFFu;
  std::uint32_t mant = x & 0x7FFFFFu;
  if (exp == 0xFF) {  // infinity or NaN (NaN made quiet, top payload bits kept)
    return static_cast<std::uint16_t>(mant ? (sign | 0x7E00u | (mant >> 13)) : (sign | 0x7C00u));
  }
  const int e = static_cast<int>(exp) - 127 + 15;
  if (e >= 31) return static_cast<std::uint16_t>(sign | 0x7C00u);
  if (e <= 0) {
    if (e < -10) return static_cast<std::uint16_t>(sign);  // below half the smallest subnormal
    mant |= 0x800000u;
    const int shift = 14 - e;  // 14..24
    std::uint32_t h = mant >> shift;
    const std::uint32_t rem = mant & ((1u << shift) - 1u);
    const std::uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1u))) ++h;  // may become the smallest normal: still right
    return static_cast<std::uint16_t>(sign | h);
  }
  std::uint32_t h = (static_cast<std::uint32_t>(e) << 10) | (mant >> 13);
  const std::uint32_t rem = mant & 0x1FFFu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // a carry into the exponent is right, up to inf
  return static_cast<std::uint16_t>(sign | h);
}

std::uint16_t f32_to_bf16(std::uint32_t x) noexcept {
  if ((x & 0x7F800000u) == 0x7F800000u && (x & 0x7FFFFFu)) {
    return static_cast<std::uint16_t>((x >> 16) | 0x0040u);  // quiet NaN
  }
  const std::uint32_t rounded = x + 0x7FFFu + ((x >> 16) & 1u);
  return static_cast<std::uint16_t>(rounded >> 16);
}

std::uint32_t f16_to_f32(std::uint16_t h) noexcept {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1Fu;
  std::uint32_t mant = h & 0x3FFu;
  if (exp == 0) {
    if (mant == 0) return sign;
    std::uint32_t e = 127 - 15 + 1;
    while (!(mant & 0x400u)) {
      mant <<= 1;
      --e;
    }
    return sign | (e << 23) | ((mant & 0x3FFu) << 13);
  }
  if (exp == 31) return sign | 0x7F800000u | (mant << 13);
  return sign | ((exp + 112u) << 23) | (mant << 13);
}

std::uint32_t bf16_to_f32(std::uint16_t b) noexcept { return static_cast<std::uint32_t>(b) << 16; }

namespace {
// fp32 -> an 8-bit float of M mantissa bits and exponent bias `bias`, round to nearest even, with
// magnitudes above `max_code` (the largest finite magnitude's code) saturated to it.
template <int M, int Bias>
std::uint32_t f32_to_fp8_magnitude(std::uint32_t abs, std::uint32_t max_code) noexcept {
  const int exp = static_cast<int>(abs >> 23);
  const std::uint32_t mant = abs & 0x7FFFFFu;
  if (exp == 0) return 0;          // fp32 zero or subnormal: far below half the smallest fp8 subnormal
  const int e = exp - 127 + Bias;  // biased fp8 exponent
  constexpr int kDrop = 23 - M;    // fp32 mantissa bits that do not fit
  std::uint32_t q = 0, rem = 0, half = 0;
  if (e >= 1) {
    if (e > static_cast<int>(max_code >> M)) return max_code;  // above the largest binade: saturate
    q = (static_cast<std::uint32_t>(e) << M) | (mant >> kDrop);
    rem = mant & ((1u << kDrop) - 1u);
    half = 1u << (kDrop - 1);
  } else {
    const int shift = kDrop + 1 - e;  // the implicit bit lands at 2^(1-e) below the subnormal step
    if (shift > 24) return 0;         // below half the smallest subnormal (never exactly half)
    const std::uint32_t full = mant | 0x800000u;
    q = full >> shift;
    rem = full & ((1u << shift) - 1u);
    half = 1u << (shift - 1);
  }
  if (rem > half || (rem == half && (q & 1u))) ++q;  // a carry into the exponent is right
  return q > max_code ? max_code : q;
}
}  // namespace

std::uint8_t f32_to_fp8_e4m3(std::uint32_t x) noexcept {
  const std::uint32_t sign = (x >> 24) & 0x80u;
  const std::uint32_t abs = x & 0x7FFFFFFFu;
  if (abs > 0x7F800000u) return static_cast<std::uint8_t>(sign | 0x7Fu);   // the only NaN
  if (abs == 0x7F800000u) return static_cast<std::uint8_t>(sign | 0x7Eu);  // no infinity: saturate
  return static_cast<std::uint8_t>(sign | f32_to_fp8_magnitude<3, 7>(abs, 0x7Eu));
}

std::uint8_t f32_to_fp8_e5m2(std::uint32_t x) noexcept {
  const std::uint32_t sign = (x >> 24) & 0x80u;
  const std::uint32_t abs = x & 0x7FFFFFFFu;
  if (abs > 0x7F800000u) return static_cast<std::uint8_t>(sign | 0x7Eu | ((abs >> 21) & 1u));  // quiet NaN
  if (abs == 0x7F800000u) return static_cast<std::uint8_t>(sign | 0x7Bu);  // saturate, as finite overflow
  return static_cast<std::uint8_t>(sign | f32_to_fp8_magnitude<2, 15>(abs, 0x7Bu));
}

namespace {
template <int M, int Bias>
std::uint32_t fp8_finite_to_f32(std::uint8_t b) noexcept {
  const std::uint32_t sign = static_cast<std::uint32_t>(b & 0x80u) << 24;
  const int e = (b & 0x7F) >> M;
  std::uint32_t m = b & ((1u << M) - 1u);
  if (e == 0) {
    if (m == 0) return sign;
    int ex = 127 - Bias + 1;  // subnormal: m * 2^(1 - Bias - M), normalised
    while (!(m & (1u << M))) {
      m <<= 1;
      --ex;
    }
    return sign | (static_cast<std::uint32_t>(ex) << 23) | ((m & ((1u << M) - 1u)) << (23 - M));
  }
  return sign | (static_cast<std::uint32_t>(e - Bias + 127) << 23) | (m << (23 - M));
}
}  // namespace

std::uint32_t fp8_e4m3_to_f32(std::uint8_t b) noexcept {
  if ((b & 0x7Fu) == 0x7Fu) return (static_cast<std::uint32_t>(b & 0x80u) << 24) | 0x7FC00000u;
  return fp8_finite_to_f32<3, 7>(b);
}

std::uint32_t fp8_e5m2_to_f32(std::uint8_t b) noexcept {
  if ((b & 0x7Cu) == 0x7Cu) {  // exponent 31: infinity or NaN
    const std::uint32_t sign = static_cast<std::uint32_t>(b & 0x80u) << 24;
    const std::uint32_t m = b & 3u;
    return m ? (sign | 0x7FC00000u | (m << 21)) : (sign | 0x7F800000u);
  }
  return fp8_finite_to_f32<2, 15>(b);
}

namespace {
std::uint32_t load32(const std::byte* p) {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
std::uint16_t load16(const std::byte* p) {
  std::uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
std::uint32_t widen(const std::byte* p, DType from) {
  switch (from) {
    case DType::f32:
      return load32(p);
    case DType::f16:
      return f16_to_f32(load16(p));
    case DType::bf16:
      return bf16_to_f32(load16(p));
    default:
      return 0;
  }
}
}  // namespace

bool convert_dtype(std::span<const std::byte> in, DType from, DType to, std::vector<std::byte>& out) {
  const bool from_float = from == DType::f32 || from == DType::f16 || from == DType::bf16;
  if (!from_float || (to != DType::f16 && to != DType::bf16)) return false;
  const std::size_t w = formats::dtype_size(from);
  const std::size_t n = in.size() / w;
  out.resize(n * 2);
  const std::byte* src = in.data();
  std::byte* dst = out.data();
  if (from == to) {
    std::memcpy(dst, src, n * 2);
    return true;
  }
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint32_t f = widen(src + i * w, from);
    const std::uint16_t h = to == DType::f16 ? f32_to_f16(f) : f32_to_bf16(f);
    std::memcpy(dst + i * 2, &h, 2);
  }
  return true;
}

std::optional<VariantDtype> parse_variant_dtype(std::string_view s) noexcept {
  if (s == "float16") return VariantDtype::f16;
  if (s == "bfloat16") return VariantDtype::bf16;
  if (s == "fp8-e4m3") return VariantDtype::fp8_e4m3;
  if (s == "fp8-e5m2") return VariantDtype::fp8_e5m2;
  return std::nullopt;
}

std::size_t variant_width(VariantDtype t) noexcept {
  return t == VariantDtype::fp8_e4m3 || t == VariantDtype::fp8_e5m2 ? 1 : 2;
}

bool convert_variant(std::span<const std::byte> in, DType from, VariantDtype to, std::vector<std::byte>& out) {
  if (to == VariantDtype::f16 || to == VariantDtype::bf16) {
    const DType t = to == VariantDtype::f16 ? DType::f16 : DType::bf16;
    return t != from && convert_dtype(in, from, t, out);
  }
  if (from != DType::f32 && from != DType::f16 && from != DType::bf16) return false;
  const std::size_t w = formats::dtype_size(from);
  const std::size_t n = in.size() / w;
  out.resize(n);
  const std::byte* src = in.data();
  auto* dst = reinterpret_cast<std::uint8_t*>(out.data());
  if (to == VariantDtype::fp8_e4m3) {
    for (std::size_t i = 0; i < n; ++i) dst[i] = f32_to_fp8_e4m3(widen(src + i * w, from));
  } else {
    for (std::size_t i = 0; i < n; ++i) dst[i] = f32_to_fp8_e5m2(widen(src + i * w, from));
  }
  return true;
}

namespace {
// Axis letters of a 4-D layout in memory order (outermost first): N=0, C=1, H=2, W=3.
std::array<int, 4> axes_of(Layout l) {
  switch (l) {
    case Layout::NCHW:
      return {0, 1, 2, 3};
    case Layout::NHWC:
      return {0, 2, 3, 1};
    case Layout::CHWN:
      return {1, 2, 3, 0};
    case Layout::NC:
      break;
  }
  throw formats::Error("permute_layout: NC is not a 4-D layout");
}

template <std::size_t W>
void permute_impl(const std::byte* src, std::byte* dst, const std::array<std::int64_t, 4>& size,
                  const std::array<std::int64_t, 4>& stride) {
  // size/stride indexed by output position (outermost first); stride in elements of the source.
  std::size_t o = 0;
  for (std::int64_t a = 0; a < size[0]; ++a)
    for (std::int64_t b = 0; b < size[1]; ++b)
      for (std::int64_t c = 0; c < size[2]; ++c) {
        const std::byte* s = src + (a * stride[0] + b * stride[1] + c * stride[2]) * static_cast<std::int64_t>(W);
        const std::int64_t step = stride[3] * static_cast<std::int64_t>(W);
        for (std::int64_t d = 0; d < size[3]; ++d, o += W) std::memcpy(dst + o, s + d * step, W);
      }
}
}  // namespace

void permute_layout(std::span<const std::byte> in, std::span<const std::int64_t> dims, Layout from, Layout to,
                    std::size_t width, std::vector<std::byte>& out) {
  if (dims.size() != 4) throw formats::Error("permute_layout: expected 4 dimensions");
  const auto fa = axes_of(from);
  const auto ta = axes_of(to);
  std::array<std::int64_t, 4> axis_size{}, axis_stride{};
  std::int64_t s = 1;
  for (int i = 3; i >= 0; --i) {
    axis_size[fa[i]] = dims[i];
    axis_stride[fa[i]] = s;
    s *= dims[i];
  }
  if (static_cast<std::size_t>(s) * width != in.size())
    throw formats::Error("permute_layout: data size does not match the dimensions");
  out.resize(in.size());
  std::array<std::int64_t, 4> size{}, stride{};
  for (int i = 0; i < 4; ++i) {
    size[i] = axis_size[ta[i]];
    stride[i] = axis_stride[ta[i]];
  }
  if (s == 0) return;
  switch (width) {
    case 1:
      permute_impl<1>(in.data(), out.data(), size, stride);
      break;
    case 2:
      permute_impl<2>(in.data(), out.data(), size, stride);
      break;
    case 4:
      permute_impl<4>(in.data(), out.data(), size, stride);
      break;
    default:
      throw formats::Error("permute_layout: element width must be 1, 2 or 4");
  }
}

}  // namespace cdma::analyze
