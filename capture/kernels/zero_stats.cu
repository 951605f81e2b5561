// The in-situ statistics kernel (see zero_stats.cuh). Grid-stride loop; per-thread counts are
// reduced within each warp with shuffles and added to the two global counters by lane 0.
#include "zero_stats.cuh"

extern "C" __global__ void __launch_bounds__(CDMA_ZERO_STATS_BLOCK) cdma_zero_stats(CdmaZeroStatsParams p) {
  unsigned long long nz = 0, runs = 0;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < p.elements; i += stride) {
    unsigned s = cdma_element_stats(p, i);
    nz += s & 1u;
    runs += (s >> 1) & 1u;
  }
  for (int off = 16; off > 0; off >>= 1) {
    nz += __shfl_down_sync(0xffffffffu, nz, off);
    runs += __shfl_down_sync(0xffffffffu, runs, off);
  }
  if ((threadIdx.x & 31) == 0) {
    if (nz) atomicAdd(&p.counters[0], nz);
    if (runs) atomicAdd(&p.counters[1], runs);
  }
}
