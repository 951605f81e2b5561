// What the interposer knows about one tensor argument, independent of how it learnt it (legacy
// descriptor getters or the backend shadow), and how it is stored in a trace.
#pragma once

#include <cdma/capture/spool.hpp>

#include <cstdint>

namespace cdma::capture {

// cudnnDataType_t values the trace can hold (the others are recorded as metadata only).
bool dtype_from_cudnn(int cudnn_dtype, spool::DType& out) noexcept;
int dtype_size(spool::DType t) noexcept;
const char* dtype_name(spool::DType t) noexcept;

struct TensorDesc {
  int cudnn_dtype = -1;
  int nd = 0;
  std::int64_t dims[spool::kMaxDims] = {};
  std::int64_t strides[spool::kMaxDims] = {};  // in elements
};

// How a tensor is stored in the trace: layout, dims in that layout, and the strides (elements)
// to read it from the source buffer in stored order. `extent_bytes` is the byte range the tensor
// spans in device memory ((sum (d_i - 1) * s_i + 1) * element size); `packed` is true when the
// stored order reads that range sequentially, so the copy needs no gather.
struct StoragePlan {
  bool ok = false;
  spool::DType dtype = spool::DType::f32;
  spool::Layout layout = spool::Layout::NCHW;
  int ndims = 0;
  std::int64_t dims[4] = {};
  std::int64_t src_strides[4] = {};
  std::int64_t elements = 0;
  std::int64_t extent_bytes = 0;
  bool packed = false;
  const char* why = "";  // when !ok: why the tensor cannot be stored
};

// Plans storage for a descriptor: rank 2 -> NC; rank 3 -> NCHW with W = 1; rank 4 -> the layout
// whose order the strides follow (NCHW, NHWC or CHWN; anything else gathers into NCHW); rank 5
// -> NCHW with D and H merged when they are contiguous. Never throws.
StoragePlan plan_storage(const TensorDesc& d) noexcept;

// Copies a tensor from its source bytes (the extent, starting at element 0) into `dst` in the
// plan's stored order (product(dims) * element size bytes).
void pack_tensor(const StoragePlan& p, const unsigned char* src, unsigned char* dst) noexcept;

}  // namespace cdma::capture
