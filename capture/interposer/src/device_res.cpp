// Device-side resources: per-context side streams, event pools and in-situ kernels, the pinned
// staging ring, and the stream/context checks of a call.
#include "runtime_state.hpp"

#include "../../kernels/zero_stats.cuh"

#include <algorithm>
#include <chrono>

extern "C" {
// Embedded fatbin of capture/kernels/zero_stats.cu (absent when built without nvcc).
extern const unsigned char cdma_zero_stats_fatbin[] __attribute__((weak));
extern const unsigned long cdma_zero_stats_fatbin_size __attribute__((weak));
}

namespace cdma::capture::rt {

void release_slot(State& st, std::size_t off) {
  {
    std::lock_guard lk(st.ring_mu);
    st.ring.release(off);
  }
  st.ring_cv.notify_all();
}

void return_event(CtxRes* c, CUevent ev) {
  if (!c || !ev) return;
  std::lock_guard lk(c->mu);
  c->events.push_back(ev);
}

CtxRes* ctx_res(State& st, CUcontext ctx) {
  {
    std::lock_guard lk(st.ctx_mu);
    for (auto& c : st.ctxs)
      if (c->ctx == ctx) return c.get();
  }
  auto c = std::make_unique<CtxRes>();
  c->ctx = ctx;
  if (st.drv.CtxGetDevice(&c->device) != CUDA_SUCCESS) return nullptr;
  int lo = 0, hi = 0;
  if (st.drv.CtxGetStreamPriorityRange) st.drv.CtxGetStreamPriorityRange(&lo, &hi);
  if (st.drv.StreamCreateWithPriority(&c->side, CU_STREAM_NON_BLOCKING, lo) != CUDA_SUCCESS) return nullptr;
  if (!st.device_named && st.drv.DeviceGetName) {
    char name[256] = {};
    if (st.drv.DeviceGetName(name, sizeof(name) - 1, c->device) == CUDA_SUCCESS) enqueue_attr("device", name);
    st.device_named = true;
  }
  std::lock_guard lk(st.ctx_mu);
  st.ctxs.push_back(std::move(c));
  return st.ctxs.back().get();
}

CUevent get_event(State& st, CtxRes* c) {
  {
    std::lock_guard lk(c->mu);
    if (!c->events.empty()) {
      CUevent e = c->events.back();
      c->events.pop_back();
      return e;
    }
  }
  CUevent e = nullptr;
  if (st.drv.EventCreate(&e, CU_EVENT_DISABLE_TIMING) != CUDA_SUCCESS) return nullptr;
  return e;
}

bool ensure_ring(State& st) {
  std::lock_guard lk(st.ring_mu);
  if (st.ring_base) return true;
  if (st.ring_tried) return false;
  st.ring_tried = true;
  std::size_t cap = static_cast<std::size_t>(st.cfg.mode == Mode::kInsitu ? std::min<std::int64_t>(st.cfg.ring, 1 << 20)
                                                                          : st.cfg.ring);
  void* p = nullptr;
  if (st.drv.MemHostAlloc(&p, cap, CU_MEMHOSTALLOC_PORTABLE) != CUDA_SUCCESS || !p) {
    warn_once("ring", "cannot allocate %zu bytes of pinned memory; no tensor data will be captured", cap);
    return false;
  }
  st.ring_base = static_cast<unsigned char*>(p);
  st.ring.reset(cap);
  return true;
}

bool reserve_slot(State& st, std::size_t n, std::size_t& off) {
  std::unique_lock lk(st.ring_mu);
  if (n > st.ring.capacity()) return false;
  if (st.ring.reserve(n, off)) return true;
  if (st.cfg.ring_wait_ms <= 0) return false;
  return st.ring_cv.wait_for(lk, std::chrono::milliseconds(st.cfg.ring_wait_ms),
                             [&] { return st.ring.reserve(n, off); });
}

bool insitu_ready(State& st, CtxRes* c) {
  if (c->insitu_tried) return c->stats_fn != nullptr;
  c->insitu_tried = true;
  if (!&cdma_zero_stats_fatbin || !st.drv.ModuleLoadData || !st.drv.ModuleGetFunction || !st.drv.LaunchKernel ||
      !st.drv.MemAlloc || !st.drv.MemsetD8Async) {
    warn_once("insitu", "in-situ statistics unavailable (no embedded kernel or driver entry points)");
    return false;
  }
  CUmodule mod = nullptr;
  CUresult r = st.drv.ModuleLoadData(&mod, cdma_zero_stats_fatbin);
  if (r == CUDA_SUCCESS) r = st.drv.ModuleGetFunction(&c->stats_fn, mod, CDMA_ZERO_STATS_KERNEL);
  if (r == CUDA_SUCCESS) r = st.drv.MemAlloc(&c->counters, 16);
  if (r != CUDA_SUCCESS) {
    c->stats_fn = nullptr;
    warn_once("insitu", "in-situ statistics unavailable: loading the kernel failed (CUDA error %d)",
              static_cast<int>(r));
    return false;
  }
  return true;
}

// Sets up the stream/context for data capture. Called with the context pushed.
bool device_gate(State& st, CallSpec& cs, CallState& s) {
  CUstream stream = nullptr;
  if (!st.GetStream || st.GetStream(cs.handle, reinterpret_cast<cudaStream_t*>(&stream)) != CUDNN_STATUS_SUCCESS)
    return false;
  s.stream = stream;
  CUstreamCaptureStatus cap = CU_STREAM_CAPTURE_STATUS_NONE;
  if (st.drv.StreamIsCapturing(stream, &cap) != CUDA_SUCCESS) {
    s.flags |= spool::kTlUnsafe;
    return false;
  }
  if (cap != CU_STREAM_CAPTURE_STATUS_NONE) {
    s.flags |= spool::kTlGraphCapture;
    return false;
  }
  return true;
}

bool pointer_ok(State& st, CallState& s, const void* p) {
  if (!p || !s.ctx) return false;
  int ordinal = -1;
  if (st.drv.PointerGetAttribute(&ordinal, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, reinterpret_cast<CUdeviceptr>(p)) !=
      CUDA_SUCCESS)
    return false;
  return ordinal == s.ctx->device;
}

bool push_ctx(State& st, CallState& s) {
  CUcontext ctx = nullptr;
  if (s.stream && reinterpret_cast<std::uintptr_t>(s.stream) > 2) {
    if (st.drv.StreamGetCtx(s.stream, &ctx) != CUDA_SUCCESS) ctx = nullptr;
  }
  if (!ctx && st.drv.CtxGetCurrent(&ctx) != CUDA_SUCCESS) ctx = nullptr;
  if (!ctx) return false;
  if (st.drv.CtxPushCurrent(ctx) != CUDA_SUCCESS) return false;
  s.ctx = ctx_res(st, ctx);
  if (!s.ctx) {
    CUcontext dummy;
    st.drv.CtxPopCurrent(&dummy);
    return false;
  }
  return true;
}

void pop_ctx(State& st) {
  CUcontext dummy;
  st.drv.CtxPopCurrent(&dummy);
}

}  // namespace cdma::capture::rt
