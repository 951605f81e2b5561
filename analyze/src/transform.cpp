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
