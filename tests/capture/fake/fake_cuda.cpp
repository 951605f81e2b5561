// Fake CUDA driver (soname libcuda.so.1) for the capture tests: host memory stands in for device
// memory, every stream operation runs synchronously when it is enqueued, and one context on
// device 0 exists. Same symbol names and signatures as the real driver (compiled against cuda.h).
//
// Test hooks (extern "C", not in the real driver):
//   fakecuda_set_capturing(int)   make cuStreamIsCapturing report ACTIVE for every stream
//   fakecuda_log(const char*)     append a line to $FAKECUDA_LOG (the fake cuDNN logs its calls)
// With FAKECUDA_LOG set, stream-ordering operations are logged too (record/wait/copy).
#include "../../../capture/kernels/zero_stats.cuh"

#include <cuda.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#define FAKE_EXPORT extern "C" __attribute__((visibility("default")))

namespace {
struct FakeCtx {
  int device = 0;
};
struct FakeStream {
  int id;
};
struct FakeEvent {
  int id;
};
FakeCtx g_ctx;
std::mutex g_mu;
std::map<std::uintptr_t, std::size_t> g_allocs;  // device allocations: base -> size
std::atomic<int> g_capturing{0};
std::atomic<int> g_next_id{1};
thread_local int t_push_depth = 0;

void logf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void logf(const char* fmt, ...) {
  const char* path = std::getenv("FAKECUDA_LOG");
  if (!path) return;
  std::lock_guard lk(g_mu);
  FILE* f = std::fopen(path, "a");
  if (!f) return;
  va_list ap;
  va_start(ap, fmt);
  std::vfprintf(f, fmt, ap);
  va_end(ap);
  std::fputc('\n', f);
  std::fclose(f);
}
int sid(CUstream s) { return s ? reinterpret_cast<FakeStream*>(s)->id : 0; }
int eid(CUevent e) { return e ? reinterpret_cast<FakeEvent*>(e)->id : -1; }
}  // namespace

FAKE_EXPORT void fakecuda_set_capturing(int on) { g_capturing = on; }
FAKE_EXPORT void fakecuda_log(const char* line) { logf("%s", line); }

FAKE_EXPORT CUresult cuInit(unsigned int) { return CUDA_SUCCESS; }
FAKE_EXPORT CUresult cuDriverGetVersion(int* v) {
  *v = 13000;
  return CUDA_SUCCESS;
}
FAKE_EXPORT CUresult cuDeviceGetName(char* name, int len, CUdevice) {
  std::snprintf(name, static_cast<std::size_t>(len), "Fake GPU (host memory)");
  return CUDA_SUCCESS;
}
FAKE_EXPORT CUresult cuCtxGetCurrent(CUcontext* c) {
  *c = reinterpret_cast<CUcontext>(&g_ctx);
  return CUDA_SUCCESS;
}
FAKE_EXPORT CUresult cuCtxGetDevice(CUdevice* d) {
  *d = 0;
  return CUDA_SUCCESS;
}
FAKE_EXPORT CUresult cuCtxPushCurrent_v2(CUcontext c) {
  if (c != reinterpret_cast<CUcontext>(&g_ctx)) return CUDA_ERROR_INVALID_CONTEXT;
  ++t_push_depth;
  return CUDA_SUCCESS;
}
FAKE_EXPORT CUresult cuCtxPopCurrent_v2(CUcontext* c) {
  if (t_push_depth <= 0) return CUDA_ERROR_INVALID_CONTEXT;
  --t_push_depth;
  if (c) *c = reinterpret_cast<CUcontext>(&g_ctx);
  return CUDA_SUCCESS;
}
FAKE_EXPORT CUresult cuCtxGetStreamPriorityRange(int* lo, int* hi) {
  *lo = 0;
  *hi = -5;
  return CUDA_SUCCESS;
}
FAKE_EXPORT CUresult cuStreamGetCtx(CUstream, CUcontext* c) {
  *c = reinterpret_cast<CUcontext>(&g_ctx);
  return CUDA_SUCCESS;
}
FAKE_EXPORT CUresult cuStreamCreate(CUstream* s, unsigned int) {
  *s = reinterpret_cast<CUstream>(new FakeStream{g_next_id++});
  return CUDA_SUCCESS;
}
FAKE_EXPORT CUresult cuStreamCreateWithPriority(CUstream* s, unsigned int, int) {
  *s = reinterpret_cast<CUstream>(new FakeStream{g_next_id++});
  logf("stream-create %d", sid(*s));
  return CUDA_SUCCESS;
}
FAKE_EXPORT CUresult cuStreamIsCapturing(CUstream, CUstreamCaptureStatus* st) {
  *st = g_capturing ? CU_STREAM_CAPTURE_STATUS_ACTIVE : CU_STREAM_CAPTURE_STATUS_NONE;
  return CUDA_SUCCESS;
}
FAKE_EXPORT CUresult cuThreadExchangeStreamCaptureMode(CUstreamCaptureMode* m) {
  *m = CU_STREAM_CAPTURE_MODE_GLOBAL;
  return CUDA_SUCCESS;
}
FAKE_EXPORT CUresult cuEventCreate(CUevent* e, unsigned int) {
  *e = reinterpret_cast<CUevent>(new FakeEvent{g_next_id++});
  return CUDA_SUCCESS;
}
FAKE_EXPORT CUresult cuEventDestroy_v2(CUevent e) {
  delete reinterpret_cast<FakeEvent*>(e);
  return CUDA_SUCCESS;
}
FAKE_EXPORT CUresult cuEventRecord(CUevent e, CUstream s) {
  logf("record event=%d stream=%d", eid(e), sid(s));
  return CUDA_SUCCESS;
}
FAKE_EXPORT CUresult cuEventSynchronize(CUevent) { return CUDA_SUCCESS; }
FAKE_EXPORT CUresult cuStreamWaitEvent(CUstream s, CUevent e, unsigned int) {
  logf("wait stream=%d event=%d", sid(s), eid(e));
  return CUDA_SUCCESS;
}
FAKE_EXPORT CUresult cuMemAlloc_v2(CUdeviceptr* p, size_t n) {
  void* m = std::malloc(n ? n : 1);
  if (!m) return CUDA_ERROR_OUT_OF_MEMORY;
  std::lock_guard lk(g_mu);
  g_allocs[reinterpret_cast<std::uintptr_t>(m)] = n;
  *p = reinterpret_cast<CUdeviceptr>(m);
  return CUDA_SUCCESS;
}
FAKE_EXPORT CUresult cuMemFree_v2(CUdeviceptr p) {
  std::lock_guard lk(g_mu);
  g_allocs.erase(static_cast<std::uintptr_t>(p));
  std::free(reinterpret_cast<void*>(p));
  return CUDA_SUCCESS;
}
FAKE_EXPORT CUresult cuMemHostAlloc(void** p, size_t n, unsigned int) {
  if (const char* lim = std::getenv("FAKECUDA_HOSTALLOC_LIMIT"); lim && n > std::strtoull(lim, nullptr, 10))
    return CUDA_ERROR_OUT_OF_MEMORY;
  *p = std::aligned_alloc(64, (n + 63) / 64 * 64);
  return *p ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}
FAKE_EXPORT CUresult cuMemFreeHost(void* p) {
  std::free(p);
  return CUDA_SUCCESS;
}
FAKE_EXPORT CUresult cuPointerGetAttribute(void* data, CUpointer_attribute attr, CUdeviceptr p) {
  std::lock_guard lk(g_mu);
  auto it = g_allocs.upper_bound(static_cast<std::uintptr_t>(p));
  if (it == g_allocs.begin()) return CUDA_ERROR_INVALID_VALUE;
  --it;
  if (static_cast<std::uintptr_t>(p) >= it->first + it->second) return CUDA_ERROR_INVALID_VALUE;
  if (attr == CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL) {
    *static_cast<int*>(data) = 0;
    return CUDA_SUCCESS;
  }
  return CUDA_ERROR_NOT_SUPPORTED;
}
FAKE_EXPORT CUresult cuMemcpyDtoHAsync_v2(void* dst, CUdeviceptr src, size_t n, CUstream s) {
  logf("copy-dtoh bytes=%zu stream=%d", n, sid(s));
  std::memcpy(dst, reinterpret_cast<const void*>(src), n);
  return CUDA_SUCCESS;
}
FAKE_EXPORT CUresult cuMemcpyDtoH_v2(void* dst, CUdeviceptr src, size_t n) {
  std::memcpy(dst, reinterpret_cast<const void*>(src), n);
  return CUDA_SUCCESS;
}
FAKE_EXPORT CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void* src, size_t n) {
  std::memcpy(reinterpret_cast<void*>(dst), src, n);
  return CUDA_SUCCESS;
}
FAKE_EXPORT CUresult cuMemsetD8Async(CUdeviceptr p, unsigned char v, size_t n, CUstream) {
  std::memset(reinterpret_cast<void*>(p), v, n);
  return CUDA_SUCCESS;
}

// Modules: any image loads; the function "cdma_zero_stats" runs the kernel's element logic on the
// CPU (zero_stats.cuh), so the in-situ path is exercised end to end.
namespace {
int g_module_tag, g_function_tag;
}
FAKE_EXPORT CUresult cuModuleLoadData(CUmodule* m, const void* image) {
  if (!image) return CUDA_ERROR_INVALID_IMAGE;
  *m = reinterpret_cast<CUmodule>(&g_module_tag);
  return CUDA_SUCCESS;
}
FAKE_EXPORT CUresult cuModuleGetFunction(CUfunction* f, CUmodule, const char* name) {
  if (std::strcmp(name, CDMA_ZERO_STATS_KERNEL) != 0) return CUDA_ERROR_NOT_FOUND;
  *f = reinterpret_cast<CUfunction>(&g_function_tag);
  return CUDA_SUCCESS;
}
FAKE_EXPORT CUresult cuLaunchKernel(CUfunction f, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                                    CUstream s, void** params, void**) {
  if (f != reinterpret_cast<CUfunction>(&g_function_tag) || !params) return CUDA_ERROR_INVALID_VALUE;
  const auto& p = *static_cast<const CdmaZeroStatsParams*>(params[0]);
  logf("launch cdma_zero_stats elements=%lld stream=%d", static_cast<long long>(p.elements), sid(s));
  for (int64_t i = 0; i < p.elements; ++i) {
    unsigned st = cdma_element_stats(p, i);
    p.counters[0] += st & 1u;
    p.counters[1] += (st >> 1) & 1u;
  }
  return CUDA_SUCCESS;
}
