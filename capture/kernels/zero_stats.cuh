// In-situ statistics of one tensor: nonzero elements and zero runs (maximal runs of elements
// whose bits are all zero, docs/spec/CODECS.md), counted in the tensor's stored order without copying it.
//
// Shared by the CUDA kernel (zero_stats.cu, compiled with nvcc into a fatbin embedded in
// libcdma_capture.so) and by host code (the fake CUDA driver of the tests runs the same element
// logic on the CPU), so both evaluate exactly the same definition.
#pragma once

#include <stdint.h>

#if defined(__CUDACC__)
#define CDMA_HD __host__ __device__
#else
#define CDMA_HD
#endif

// Kernel parameters, passed by value. Element i of the stored order is at
//   base + (i0 * strides[0] + i1 * strides[1] + i2 * strides[2] + i3 * strides[3]) * elem_bytes
// where (i0, i1, i2, i3) is i decomposed over dims (row-major, dims[3] fastest).
struct CdmaZeroStatsParams {
  const unsigned char* base;
  int64_t dims[4];
  int64_t strides[4];  // elements
  int64_t elements;
  int32_t elem_bytes;  // 1, 2 or 4
  int32_t pad;
  unsigned long long* counters;  // [0] nonzeros, [1] zero runs (device memory, zeroed first)
};

CDMA_HD inline const unsigned char* cdma_element_ptr(const CdmaZeroStatsParams& p, int64_t i) {
  int64_t i3 = i % p.dims[3];
  int64_t r = i / p.dims[3];
  int64_t i2 = r % p.dims[2];
  r /= p.dims[2];
  int64_t i1 = r % p.dims[1];
  int64_t i0 = r / p.dims[1];
  int64_t off = i0 * p.strides[0] + i1 * p.strides[1] + i2 * p.strides[2] + i3 * p.strides[3];
  return p.base + off * p.elem_bytes;
}

CDMA_HD inline bool cdma_is_zero(const unsigned char* e, int32_t w) {
  if (w == 4) return *reinterpret_cast<const uint32_t*>(e) == 0u;
  if (w == 2) return *reinterpret_cast<const uint16_t*>(e) == 0u;
  return *e == 0u;
}

// Contribution of element i: bit 0 = nonzero, bit 1 = starts a zero run.
CDMA_HD inline unsigned cdma_element_stats(const CdmaZeroStatsParams& p, int64_t i) {
  bool z = cdma_is_zero(cdma_element_ptr(p, i), p.elem_bytes);
  if (!z) return 1u;
  if (i == 0) return 2u;
  return cdma_is_zero(cdma_element_ptr(p, i - 1), p.elem_bytes) ? 0u : 2u;
}

#define CDMA_ZERO_STATS_KERNEL "cdma_zero_stats"
#define CDMA_ZERO_STATS_BLOCK 256
