// Fake CUPTI (soname libcupti.so.13) for the capture tests: implements the activity-buffer
// protocol with the real record layouts (cupti_activity.h). "Kernels" are reported by the fake
// cuDNN through fakecupti_kernel(duration_ns); each gets a correlation id, an
// EXTERNAL_CORRELATION record for every pushed CUSTOM2 id and a CONCURRENT_KERNEL record.
// Records are delivered to the client when it calls cuptiActivityFlushAll.
#include <cupti.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <vector>

#define FAKE_EXPORT extern "C" __attribute__((visibility("default")))

namespace {
std::mutex g_mu;
CUpti_BuffersCallbackRequestFunc g_request = nullptr;
CUpti_BuffersCallbackCompleteFunc g_complete = nullptr;
bool g_enabled[64] = {};
uint8_t* g_buf = nullptr;
size_t g_size = 0, g_used = 0;
uint32_t g_corr = 0;
uint64_t g_clock = 1000000;
thread_local std::vector<uint64_t> t_ext[8];

size_t record_size(CUpti_ActivityKind k) {
  switch (k) {
    case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL:
      return sizeof(CUpti_ActivityKernel10);
    case CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION:
      return sizeof(CUpti_ActivityExternalCorrelation);
    default:
      return 0;
  }
}

void deliver_locked(std::vector<std::pair<uint8_t*, size_t>>& out) {
  if (g_buf) out.emplace_back(g_buf, g_used);
  g_buf = nullptr;
  g_size = g_used = 0;
}

void* append_locked(size_t n, std::vector<std::pair<uint8_t*, size_t>>& full) {
  if (g_buf && g_used + n > g_size) deliver_locked(full);
  if (!g_buf) {
    size_t max_records = 0;
    g_request(&g_buf, &g_size, &max_records);
    g_used = 0;
    if (!g_buf || g_size < n) return nullptr;
  }
  void* p = g_buf + g_used;
  std::memset(p, 0, n);
  g_used += n;
  return p;
}

void complete(std::vector<std::pair<uint8_t*, size_t>>& bufs) {
  for (auto& [b, n] : bufs) g_complete(nullptr, 0, b, n, n);
}
}  // namespace

FAKE_EXPORT void fakecupti_kernel(uint64_t duration_ns) {
  std::vector<std::pair<uint8_t*, size_t>> full;
  {
    std::lock_guard lk(g_mu);
    if (!g_request || !g_enabled[CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL]) return;
    uint32_t corr = ++g_corr;
    if (g_enabled[CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION]) {
      for (int kind = 0; kind < 8; ++kind) {
        if (t_ext[kind].empty()) continue;
        auto* r = static_cast<CUpti_ActivityExternalCorrelation*>(
            append_locked(sizeof(CUpti_ActivityExternalCorrelation), full));
        if (!r) return;
        r->kind = CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION;
        r->externalKind = static_cast<CUpti_ExternalCorrelationKind>(kind);
        r->externalId = t_ext[kind].back();
        r->correlationId = corr;
      }
    }
    auto* k = static_cast<CUpti_ActivityKernel10*>(append_locked(sizeof(CUpti_ActivityKernel10), full));
    if (!k) return;
    k->kind = CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL;
    k->start = g_clock;
    k->end = g_clock + duration_ns;
    g_clock += duration_ns + 100;
    k->deviceId = 0;
    k->correlationId = corr;
    k->name = "fake_kernel";
  }
  complete(full);
}

FAKE_EXPORT CUptiResult cuptiGetVersion(uint32_t* v) {
  *v = CUPTI_API_VERSION;
  return CUPTI_SUCCESS;
}
FAKE_EXPORT CUptiResult cuptiActivityRegisterCallbacks(CUpti_BuffersCallbackRequestFunc req,
                                                       CUpti_BuffersCallbackCompleteFunc done) {
  std::lock_guard lk(g_mu);
  g_request = req;
  g_complete = done;
  return CUPTI_SUCCESS;
}
FAKE_EXPORT CUptiResult cuptiActivityEnable(CUpti_ActivityKind k) {
  if (static_cast<int>(k) < 0 || static_cast<int>(k) >= 64) return CUPTI_ERROR_INVALID_KIND;
  std::lock_guard lk(g_mu);
  g_enabled[k] = true;
  return CUPTI_SUCCESS;
}
FAKE_EXPORT CUptiResult cuptiActivityDisable(CUpti_ActivityKind k) {
  std::lock_guard lk(g_mu);
  g_enabled[k] = false;
  return CUPTI_SUCCESS;
}
FAKE_EXPORT CUptiResult cuptiActivityFlushPeriod(uint32_t) { return CUPTI_SUCCESS; }
FAKE_EXPORT CUptiResult cuptiActivityFlushAll(uint32_t) {
  std::vector<std::pair<uint8_t*, size_t>> full;
  {
    std::lock_guard lk(g_mu);
    deliver_locked(full);
  }
  complete(full);
  return CUPTI_SUCCESS;
}
FAKE_EXPORT CUptiResult cuptiActivityGetNextRecord(uint8_t* buffer, size_t valid, CUpti_Activity** record) {
  uint8_t* p = buffer;
  if (*record) {
    size_t n = record_size((*record)->kind);
    if (n == 0) return CUPTI_ERROR_INVALID_KIND;
    p = reinterpret_cast<uint8_t*>(*record) + n;
  }
  if (p >= buffer + valid) return CUPTI_ERROR_MAX_LIMIT_REACHED;
  *record = reinterpret_cast<CUpti_Activity*>(p);
  return CUPTI_SUCCESS;
}
FAKE_EXPORT CUptiResult cuptiActivityGetNumDroppedRecords(CUcontext, uint32_t, size_t* n) {
  *n = 0;
  return CUPTI_SUCCESS;
}
FAKE_EXPORT CUptiResult cuptiActivityPushExternalCorrelationId(CUpti_ExternalCorrelationKind kind, uint64_t id) {
  if (kind < 0 || kind >= 8) return CUPTI_ERROR_INVALID_PARAMETER;
  t_ext[kind].push_back(id);
  return CUPTI_SUCCESS;
}
FAKE_EXPORT CUptiResult cuptiActivityPopExternalCorrelationId(CUpti_ExternalCorrelationKind kind, uint64_t* last) {
  if (kind < 0 || kind >= 8 || t_ext[kind].empty()) return CUPTI_ERROR_QUEUE_EMPTY;
  if (last) *last = t_ext[kind].back();
  t_ext[kind].pop_back();
  return CUPTI_SUCCESS;
}
