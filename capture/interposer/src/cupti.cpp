// Per-call GPU time through the CUPTI Activity API (CAPTURE_NOTES.md §5): the interposer pushes
// its call number as external correlation id (kind CUSTOM2; Kineto owns CUSTOM0/1) around every
// real cuDNN call. CUPTI then emits EXTERNAL_CORRELATION records mapping that id to the
// correlation ids of the API calls made inside, and kernel/memset records carrying those
// correlation ids. Both go to the spool as they arrive; the collector joins them.
//
// CUPTI is taken from the process when already loaded (PyTorch's Kineto loads it), else loaded
// only with CDMA_CAPTURE_CUPTI=on. Only fields of the kernel record's stable prefix are read,
// so CUPTI 12 and 13 both work.
#include "runtime.hpp"

#include <cdma/capture/config.hpp>
#include <cdma/capture/spool.hpp>

#include <cupti.h>
#include <dlfcn.h>

#include <type_traits>

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace cdma::capture {

namespace {

struct Cupti {
  decltype(&::cuptiGetVersion) GetVersion = nullptr;
  decltype(&::cuptiActivityRegisterCallbacks) RegisterCallbacks = nullptr;
  decltype(&::cuptiActivityEnable) Enable = nullptr;
  decltype(&::cuptiActivityFlushAll) FlushAll = nullptr;
  decltype(&::cuptiActivityGetNextRecord) GetNextRecord = nullptr;
  decltype(&::cuptiActivityGetNumDroppedRecords) GetNumDropped = nullptr;
  decltype(&::cuptiActivityPushExternalCorrelationId) Push = nullptr;
  decltype(&::cuptiActivityPopExternalCorrelationId) Pop = nullptr;
  decltype(&::cuptiActivityFlushPeriod) FlushPeriod = nullptr;
};

Cupti g;
std::atomic<bool> g_on{false};
constexpr std::size_t kBufferBytes = 8u << 20;

void CUPTIAPI on_request(uint8_t** buffer, size_t* size, size_t* max_records) {
  *buffer = static_cast<uint8_t*>(std::aligned_alloc(8, kBufferBytes));
  *size = *buffer ? kBufferBytes : 0;
  *max_records = 0;
}

void CUPTIAPI on_complete(CUcontext ctx, uint32_t stream_id, uint8_t* buffer, size_t, size_t valid) {
  CUpti_Activity* rec = nullptr;
  while (g.GetNextRecord(buffer, valid, &rec) == CUPTI_SUCCESS) {
    switch (rec->kind) {
      case CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION: {
        auto* r = reinterpret_cast<CUpti_ActivityExternalCorrelation*>(rec);
        if (r->externalKind != CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM2) break;
        spool::CorrRecord c{r->correlationId, r->externalId};
        enqueue_raw_record(static_cast<std::uint16_t>(spool::RecordType::kCorr), &c, sizeof(c));
        break;
      }
      case CUPTI_ACTIVITY_KIND_KERNEL:
      case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL: {
        auto* r = reinterpret_cast<CUpti_ActivityKernel10*>(rec);
        spool::KernelRecord k{r->correlationId, r->start, r->end, r->deviceId, 0};
        enqueue_raw_record(static_cast<std::uint16_t>(spool::RecordType::kKernel), &k, sizeof(k));
        break;
      }
      case CUPTI_ACTIVITY_KIND_MEMSET: {
        auto* r = reinterpret_cast<CUpti_ActivityMemset4*>(rec);
        spool::KernelRecord k{r->correlationId, r->start, r->end, r->deviceId, 1};
        enqueue_raw_record(static_cast<std::uint16_t>(spool::RecordType::kKernel), &k, sizeof(k));
        break;
      }
      default:
        break;
    }
  }
  size_t dropped = 0;
  if (g.GetNumDropped && g.GetNumDropped(ctx, stream_id, &dropped) == CUPTI_SUCCESS && dropped)
    note_cupti_dropped(static_cast<std::int64_t>(dropped));
  std::free(buffer);
}

}  // namespace

void cupti_setup() noexcept {
  Config cfg;
  config_from_env(cfg);
  void* h = dlopen("libcupti.so.13", RTLD_NOW | RTLD_NOLOAD);
  if (!h) h = dlopen("libcupti.so.12", RTLD_NOW | RTLD_NOLOAD);
  if (!h && cfg.cupti == CuptiMode::kOn) {
    h = dlopen(cfg.cupti_path.empty() ? "libcupti.so.13" : cfg.cupti_path.c_str(), RTLD_NOW);
    if (!h) {
      warn_once("cupti", "CUPTI not found (%s); no GPU times", dlerror());
      return;
    }
  }
  if (!h) {
    warn_once("cupti", "CUPTI is not loaded in this process (CDMA_CAPTURE_CUPTI=on loads it); no GPU times");
    return;
  }
  bool all = true;
  auto get = [&](auto& fn, const char* name) {
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(h, name));
    if (!fn) all = false;
  };
  get(g.GetVersion, "cuptiGetVersion");
  get(g.RegisterCallbacks, "cuptiActivityRegisterCallbacks");
  get(g.Enable, "cuptiActivityEnable");
  get(g.FlushAll, "cuptiActivityFlushAll");
  get(g.GetNextRecord, "cuptiActivityGetNextRecord");
  get(g.Push, "cuptiActivityPushExternalCorrelationId");
  get(g.Pop, "cuptiActivityPopExternalCorrelationId");
  g.GetNumDropped = reinterpret_cast<decltype(g.GetNumDropped)>(dlsym(h, "cuptiActivityGetNumDroppedRecords"));
  g.FlushPeriod = reinterpret_cast<decltype(g.FlushPeriod)>(dlsym(h, "cuptiActivityFlushPeriod"));
  if (!all) {
    warn_once("cupti", "CUPTI lacks an entry point the capture needs; no GPU times");
    return;
  }
  uint32_t version = 0;
  g.GetVersion(&version);
  if (g.RegisterCallbacks(on_request, on_complete) != CUPTI_SUCCESS) {
    warn_once("cupti", "cuptiActivityRegisterCallbacks failed; no GPU times");
    return;
  }
  const CUpti_ActivityKind kinds[] = {CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION, CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL,
                                      CUPTI_ACTIVITY_KIND_MEMSET, CUPTI_ACTIVITY_KIND_DRIVER,
                                      CUPTI_ACTIVITY_KIND_RUNTIME};
  for (auto k : kinds) {
    if (g.Enable(k) != CUPTI_SUCCESS) {
      warn_once("cupti", "cuptiActivityEnable(%d) failed (another profiler active, or no GPU); no GPU times",
                static_cast<int>(k));
      return;
    }
  }
  if (g.FlushPeriod) g.FlushPeriod(200);
  g_on = true;
}

void cupti_push(std::uint64_t call) noexcept {
  if (g_on.load(std::memory_order_relaxed)) g.Push(CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM2, call);
}

void cupti_pop() noexcept {
  if (g_on.load(std::memory_order_relaxed)) {
    uint64_t last = 0;
    g.Pop(CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM2, &last);
  }
}

void cupti_flush(bool forced) noexcept {
  if (g_on.load()) g.FlushAll(forced ? CUPTI_ACTIVITY_FLAG_FLUSH_FORCED : 0);
}

}  // namespace cdma::capture
