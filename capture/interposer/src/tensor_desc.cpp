#include "tensor_desc.hpp"

#include <algorithm>
#include <cstring>

namespace cdma::capture {

bool dtype_from_cudnn(int t, spool::DType& out) noexcept {
  // cudnnDataType_t: FLOAT 0, HALF 2, INT8 3, UINT8 6, BFLOAT16 9 (cudnn_graph.h).
  switch (t) {
    case 0:
      out = spool::DType::f32;
      return true;
    case 2:
      out = spool::DType::f16;
      return true;
    case 3:
      out = spool::DType::i8;
      return true;
    case 6:
      out = spool::DType::u8;
      return true;
    case 9:
      out = spool::DType::bf16;
      return true;
    default:
      return false;
  }
}

int dtype_size(spool::DType t) noexcept {
  switch (t) {
    case spool::DType::f32:
      return 4;
    case spool::DType::f16:
    case spool::DType::bf16:
      return 2;
    case spool::DType::i8:
    case spool::DType::u8:
      return 1;
  }
  return 0;
}

const char* dtype_name(spool::DType t) noexcept {
  switch (t) {
    case spool::DType::f32:
      return "float32";
    case spool::DType::f16:
      return "float16";
    case spool::DType::bf16:
      return "bfloat16";
    case spool::DType::i8:
      return "int8";
    case spool::DType::u8:
      return "uint8";
  }
  return "?";
}

namespace {
StoragePlan fail(const char* why) {
  StoragePlan p;
  p.why = why;
  return p;
}
}  // namespace

StoragePlan plan_storage(const TensorDesc& d) noexcept {
  StoragePlan p;
  if (!dtype_from_cudnn(d.cudnn_dtype, p.dtype)) return fail("unsupported data type");
  if (d.nd < 2 || d.nd > 5) return fail("unsupported rank");
  std::int64_t dims[5], strides[5];
  for (int i = 0; i < d.nd; ++i) {
    if (d.dims[i] <= 0 || d.strides[i] < 0) return fail("non-positive dimension or negative stride");
    dims[i] = d.dims[i];
    strides[i] = d.strides[i];
  }
  int nd = d.nd;
  if (nd == 5) {  // N C D H W: merge D and H when H steps evenly into D
    if (strides[2] != strides[3] * dims[3] && dims[2] != 1 && dims[3] != 1)
      return fail("5-D tensor whose D and H cannot be merged");
    std::int64_t s = dims[3] == 1 ? strides[2] : strides[3];
    dims[2] *= dims[3];
    strides[2] = s;
    dims[3] = dims[4];
    strides[3] = strides[4];
    nd = 4;
  } else if (nd == 3) {
    dims[3] = 1;
    strides[3] = 1;
    nd = 4;
  }
  const int esz = dtype_size(p.dtype);
  std::int64_t extent = 1, elements = 1;
  for (int i = 0; i < nd; ++i) {
    extent += (dims[i] - 1) * strides[i];
    elements *= dims[i];
  }
  p.extent_bytes = extent * esz;
  p.elements = elements;
  if (nd == 2) {
    p.layout = spool::Layout::NC;
    p.ndims = 2;
    p.dims[0] = dims[0];
    p.dims[1] = dims[1];
    p.src_strides[0] = strides[0];
    p.src_strides[1] = strides[1];
  } else {
    // Order the dims by decreasing stride (size-1 dims never decide); pick the matching layout.
    static const int kOrders[3][4] = {{0, 1, 2, 3}, {0, 2, 3, 1}, {1, 2, 3, 0}};
    static const spool::Layout kLayouts[3] = {spool::Layout::NCHW, spool::Layout::NHWC, spool::Layout::CHWN};
    int chosen = 0;
    for (int o = 0; o < 3; ++o) {
      bool fits = true;
      std::int64_t expect = 1;
      for (int k = 3; k >= 0; --k) {
        int dim = kOrders[o][k];
        if (dims[dim] != 1 && strides[dim] != expect) fits = false;
        expect *= dims[dim];
      }
      if (fits) {
        chosen = o;
        break;
      }
    }
    p.layout = kLayouts[chosen];
    p.ndims = 4;
    for (int k = 0; k < 4; ++k) {
      p.dims[k] = dims[kOrders[chosen][k]];
      p.src_strides[k] = strides[kOrders[chosen][k]];
    }
  }
  // Packed when the stored order, read with its own strides, is exactly the dense sequence.
  std::int64_t expect = 1;
  p.packed = true;
  for (int k = p.ndims - 1; k >= 0; --k) {
    if (p.dims[k] != 1 && p.src_strides[k] != expect) p.packed = false;
    expect *= p.dims[k];
  }
  if (p.packed) p.extent_bytes = elements * esz;
  p.ok = true;
  return p;
}

void pack_tensor(const StoragePlan& p, const unsigned char* src, unsigned char* dst) noexcept {
  const std::size_t esz = static_cast<std::size_t>(dtype_size(p.dtype));
  if (p.packed) {
    std::memcpy(dst, src, static_cast<std::size_t>(p.elements) * esz);
    return;
  }
  std::int64_t d[4] = {1, 1, 1, 1}, s[4] = {0, 0, 0, 0};
  const int off = 4 - p.ndims;
  for (int k = 0; k < p.ndims; ++k) {
    d[off + k] = p.dims[k];
    s[off + k] = p.src_strides[k];
  }
  for (std::int64_t a = 0; a < d[0]; ++a)
    for (std::int64_t b = 0; b < d[1]; ++b)
      for (std::int64_t c = 0; c < d[2]; ++c) {
        const unsigned char* row = src + (a * s[0] + b * s[1] + c * s[2]) * static_cast<std::int64_t>(esz);
        if (s[3] == 1) {
          std::memcpy(dst, row, static_cast<std::size_t>(d[3]) * esz);
          dst += static_cast<std::size_t>(d[3]) * esz;
        } else {
          for (std::int64_t e = 0; e < d[3]; ++e) {
            std::memcpy(dst, row + e * s[3] * static_cast<std::int64_t>(esz), esz);
            dst += esz;
          }
        }
      }
}

}  // namespace cdma::capture
