#include "runtime.hpp"

#include "driver.hpp"
#include "iteration.hpp"
#include "ring.hpp"

#include <cdma/capture/config.hpp>
#include <cdma/capture/spool.hpp>

#include "../../kernels/zero_stats.cuh"

#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#ifndef CDMA_CAPTURE_VERSION
#define CDMA_CAPTURE_VERSION "0.0.0"
#endif

extern "C" {
// Embedded fatbin of capture/kernels/zero_stats.cu (absent when built without nvcc).
extern const unsigned char cdma_zero_stats_fatbin[] __attribute__((weak));
extern const unsigned long cdma_zero_stats_fatbin_size __attribute__((weak));
}

namespace cdma::capture {

namespace {

std::int64_t mono_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}
std::int64_t unix_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return std::int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

struct CtxRes {
  CUcontext ctx = nullptr;
  CUdevice device = -1;
  CUstream side = nullptr;
  std::mutex mu;  // guards events only
  std::vector<CUevent> events;
  bool insitu_tried = false;
  CUfunction stats_fn = nullptr;
  CUdeviceptr counters = 0;
};

struct Item {
  enum Kind : std::uint8_t { kRaw, kTensor, kStats } kind = kRaw;
  std::uint16_t type = 0;
  std::uint16_t rflags = 0;  // spool::RecordFlags of a tensor or stats record
  const char* role = "x";    // of a tensor or stats record (a string literal of the wrapper)
  bool discard = false;      // the call failed: wait for the copy, free its slot, write nothing
  std::vector<unsigned char> raw;
  std::size_t ring_off = 0;
  CUevent ev = nullptr;
  CtxRes* ctx = nullptr;
  spool::TensorRecord trec{};
  spool::StatsRecord srec{};
  StoragePlan plan;
};

struct Counters {
  std::atomic<std::int64_t> calls{0}, tensors{0}, stats{0}, bytes{0}, dropped{0}, dropped_budget{0}, dropped_ring{0},
      skipped_graph{0}, skipped_unsafe{0}, cupti_dropped{0}, skipped_failed{0};
};

struct State {
  std::once_flag once;
  std::atomic<bool> active{false};
  Config cfg;
  Driver drv;
  bool data_ok = false;  // driver found, pinned ring usable
  bool ring_tried = false;
  std::string spool_path;
  int fd = -1;
  std::atomic<bool> write_failed{false};
  // Writer.
  std::thread writer;
  pthread_t writer_tid{};
  std::mutex qmu;
  std::condition_variable qcv;
  std::deque<Item> q;
  bool stop = false;
  // Ring.
  std::mutex ring_mu;
  std::condition_variable ring_cv;
  Ring ring;
  unsigned char* ring_base = nullptr;
  // Contexts.
  std::mutex ctx_mu;
  std::vector<std::unique_ptr<CtxRes>> ctxs;
  bool device_named = false;
  // Iterations.
  std::mutex iter_mu;
  IterationTracker tracker{IterationMode::kAuto, 0};
  std::atomic<std::int64_t> next_call{0};
  std::atomic<std::int64_t> budget_used{0};
  Counters n;
  BackendShadow shadow;
  // Real getters.
  decltype(&::cudnnGetStream) GetStream = nullptr;
  decltype(&::cudnnGetTensorNdDescriptor) GetTensorNd = nullptr;
  bool finalized = false;
  std::mutex fin_mu;
};

State& S() noexcept {
  static State* s = new State;  // never destroyed: wrappers may run during exit
  return *s;
}

thread_local int t_depth = 0;
std::atomic<bool> g_forked_child{false};
std::atomic<int> g_signal_flush{0};  // 1: a signal handler asks the writer to drain
std::atomic<int> g_signal_done{0};

void disable(const char* why) noexcept {
  if (S().active.exchange(false)) warn_once("disabled", "capture disabled: %s", why);
}

// ---------------------------------------------------------------------------------------------
// Spool writing (writer thread only, after init).

bool write_all(int fd, const void* p, std::size_t n) noexcept {
  const auto* c = static_cast<const unsigned char*>(p);
  while (n > 0) {
    ssize_t w = ::write(fd, c, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    c += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

void write_record(State& st, std::uint16_t type, const void* a, std::size_t na, const void* b = nullptr,
                  std::size_t nb = 0, std::uint16_t flags = 0) noexcept {
  if (st.write_failed.load()) return;
  spool::RecordHeader h{spool::kRecordMagic, type, flags, na + nb};
  // Header and fixed part in one write; bulk data in a second (readers drop a truncated record).
  unsigned char buf[sizeof(h) + 512];
  bool ok;
  if (na <= 512) {
    std::memcpy(buf, &h, sizeof(h));
    std::memcpy(buf + sizeof(h), a, na);
    ok = write_all(st.fd, buf, sizeof(h) + na);
  } else {
    ok = write_all(st.fd, &h, sizeof(h)) && write_all(st.fd, a, na);
  }
  if (ok && nb) ok = write_all(st.fd, b, nb);
  if (!ok) {
    st.write_failed = true;
    warn_once("write", "cannot write the spool %s: %s; capture stops", st.spool_path.c_str(), std::strerror(errno));
    st.active = false;
  }
}

spool::CountersRecord counters_record(State& st) {
  spool::CountersRecord c{};
  c.calls = st.n.calls;
  c.tensors = st.n.tensors;
  c.stats = st.n.stats;
  c.bytes = st.n.bytes;
  c.dropped_tensors = st.n.dropped;
  c.dropped_budget = st.n.dropped_budget;
  c.dropped_ring = st.n.dropped_ring;
  c.skipped_graph = st.n.skipped_graph;
  c.skipped_unsafe = st.n.skipped_unsafe;
  c.cupti_dropped = st.n.cupti_dropped;
  c.skipped_failed = st.n.skipped_failed;
  {
    std::lock_guard lk(st.iter_mu);
    c.iterations = st.tracker.iterations_seen();
  }
  return c;
}

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

void process(State& st, Item& it, std::vector<unsigned char>& scratch) {
  if (it.kind == Item::kRaw) {
    write_record(st, it.type, it.raw.data(), it.raw.size());
    return;
  }
  CUresult r = st.drv.EventSynchronize(it.ev);  // also for a discarded item: its slot is in use until then
  const unsigned char* src = st.ring_base + it.ring_off;
  if (it.discard) {
    // counted by call_end
  } else if (r != CUDA_SUCCESS) {
    st.n.dropped++;
  } else if (it.kind == Item::kTensor) {
    const unsigned char* data = src;
    std::size_t bytes = it.trec.data_bytes;
    if (!it.plan.packed) {
      scratch.resize(bytes);
      pack_tensor(it.plan, src, scratch.data());
      data = scratch.data();
    }
    write_record(st, static_cast<std::uint16_t>(spool::RecordType::kTensor), &it.trec, sizeof(it.trec), data, bytes,
                 it.rflags);
    st.n.tensors++;
    st.n.bytes += static_cast<std::int64_t>(bytes);
  } else {
    unsigned long long c[2];
    std::memcpy(c, src, sizeof(c));
    it.srec.nonzeros = static_cast<std::int64_t>(c[0]);
    it.srec.zero_runs = static_cast<std::int64_t>(c[1]);
    write_record(st, static_cast<std::uint16_t>(spool::RecordType::kStats), &it.srec, sizeof(it.srec), nullptr, 0,
                 it.rflags);
    st.n.stats++;
  }
  return_event(it.ctx, it.ev);
  release_slot(st, it.ring_off);
}

void writer_main() {
  State& st = S();
  st.writer_tid = pthread_self();
  if (st.drv.ok && st.drv.ThreadExchangeStreamCaptureMode) {
    CUstreamCaptureMode m = CU_STREAM_CAPTURE_MODE_RELAXED;
    st.drv.ThreadExchangeStreamCaptureMode(&m);
  }
  std::vector<unsigned char> scratch;
  std::int64_t last_counters = mono_ns();
  for (;;) {
    std::deque<Item> batch;
    bool stopping;
    {
      std::unique_lock lk(st.qmu);
      st.qcv.wait_for(lk, std::chrono::milliseconds(50),
                      [&] { return st.stop || !st.q.empty() || g_signal_flush.load(); });
      batch.swap(st.q);
      stopping = st.stop;
    }
    for (auto& it : batch) process(st, it, scratch);
    std::int64_t now = mono_ns();
    if (!batch.empty() && now - last_counters > 200000000) {
      auto c = counters_record(st);
      write_record(st, static_cast<std::uint16_t>(spool::RecordType::kCounters), &c, sizeof(c));
      last_counters = now;
    }
    if (g_signal_flush.load() == 1) {
      std::lock_guard lk(st.qmu);
      for (auto& it : st.q) process(st, it, scratch);
      st.q.clear();
      auto c = counters_record(st);
      write_record(st, static_cast<std::uint16_t>(spool::RecordType::kCounters), &c, sizeof(c));
      g_signal_done = 1;
      g_signal_flush = 2;
    }
    if (stopping) {
      std::lock_guard lk(st.qmu);
      if (st.q.empty()) break;
    }
  }
}

void enqueue(Item&& it) {
  State& st = S();
  {
    std::lock_guard lk(st.qmu);
    st.q.push_back(std::move(it));
  }
  st.qcv.notify_one();
}

void enqueue_attr(const std::string& k, const std::string& v) {
  Item it;
  it.type = static_cast<std::uint16_t>(spool::RecordType::kAttr);
  spool::AttrRecord a{static_cast<std::uint32_t>(k.size()), static_cast<std::uint32_t>(v.size())};
  it.raw.resize(sizeof(a) + k.size() + v.size());
  std::memcpy(it.raw.data(), &a, sizeof(a));
  std::memcpy(it.raw.data() + sizeof(a), k.data(), k.size());
  std::memcpy(it.raw.data() + sizeof(a) + k.size(), v.data(), v.size());
  enqueue(std::move(it));
}

// ---------------------------------------------------------------------------------------------
// Lifecycle.

void finalize() noexcept {
  State& st = S();
  std::lock_guard lk(st.fin_mu);
  if (st.finalized || g_forked_child.load() || st.fd < 0) return;
  st.finalized = true;
  bool was_active = st.active.exchange(false);
  (void)was_active;
  try {
    cupti_flush(true);
    {
      std::lock_guard ql(st.qmu);
      st.stop = true;
    }
    st.qcv.notify_all();
    if (st.writer.joinable()) st.writer.join();
    auto c = counters_record(st);
    write_record(st, static_cast<std::uint16_t>(spool::RecordType::kEnd), &c, sizeof(c));
    ::close(st.fd);
    st.fd = -1;
  } catch (...) {
  }
}

struct sigaction g_old_term, g_old_int;

void on_fatal_signal(int sig) {
  // Ask the writer to drain what is queued (it checks the flag every 50 ms), wait up to 2 s,
  // then die of the same signal with the default action.
  State& st = S();
  if (!g_forked_child.load() && st.fd >= 0 && !pthread_equal(pthread_self(), st.writer_tid)) {
    int expected = 0;
    if (g_signal_flush.compare_exchange_strong(expected, 1)) {
      for (int i = 0; i < 200 && g_signal_done.load() == 0; ++i) {
        timespec ts{0, 10000000};
        nanosleep(&ts, nullptr);
      }
    }
  }
  signal(sig, SIG_DFL);
  raise(sig);
}

void install_signal_handlers() {
  for (int sig : {SIGTERM, SIGINT}) {
    struct sigaction cur {};
    if (sigaction(sig, nullptr, &cur) != 0) continue;
    if (!(cur.sa_flags & SA_SIGINFO) && cur.sa_handler == SIG_DFL) {
      struct sigaction sa {};
      sa.sa_handler = on_fatal_signal;
      sigemptyset(&sa.sa_mask);
      sa.sa_flags = SA_RESTART;
      sigaction(sig, &sa, sig == SIGTERM ? &g_old_term : &g_old_int);
    }
  }
}

std::string read_cmdline() {
  std::string s;
  int fd = ::open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return s;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof(buf))) > 0) s.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  while (!s.empty() && s.back() == '\0') s.pop_back();
  for (auto& c : s)
    if (c == '\0') c = ' ';
  return s;
}

std::string describe_config(const Config& c) {
  char buf[512];
  std::snprintf(buf, sizeof(buf),
                "mode=%s ops=0x%x roles=0x%x phases=0x%x every=%lld skip=%lld first=%lld budget=%lld ring=%lld "
                "iteration=%s cupti=%s copy=%s",
                c.mode == Mode::kFull     ? "full"
                : c.mode == Mode::kInsitu ? "insitu"
                                          : "timeline",
                c.ops, c.roles, c.phases, static_cast<long long>(c.every), static_cast<long long>(c.skip),
                static_cast<long long>(c.first), static_cast<long long>(c.budget), static_cast<long long>(c.ring),
                c.iteration == IterationMode::kAuto     ? "auto"
                : c.iteration == IterationMode::kMarker ? "marker"
                                                        : "calls",
                c.cupti == CuptiMode::kAuto ? "auto"
                : c.cupti == CuptiMode::kOn ? "on"
                                            : "off",
                c.inline_copy ? "inline" : "fork");
  return buf;
}

void init() noexcept {
  State& st = S();
  if (g_forked_child.load()) return;
  if (const char* off = std::getenv("CDMA_CAPTURE_DISABLE"); off && *off && std::strcmp(off, "0") != 0) return;
  try {
    std::string err = config_from_env(st.cfg);
    if (!err.empty()) {
      warn_once("config", "capture disabled: %s", err.c_str());
      return;
    }
    st.tracker = IterationTracker(st.cfg.iteration, st.cfg.iteration_calls);
    st.GetStream = real_fn<decltype(&::cudnnGetStream)>("cudnnGetStream");
    st.GetTensorNd = real_fn<decltype(&::cudnnGetTensorNdDescriptor)>("cudnnGetTensorNdDescriptor");
    const char* why = "";
    if (st.cfg.mode != Mode::kTimeline) {
      if (load_driver(st.drv, why))
        st.data_ok = true;
      else
        warn_once("driver", "no tensor data will be captured: %s", why);
    } else {
      load_driver(st.drv, why);  // optional: device name
    }
    // One spool per process: cdma-<pid>.spool, or -<pid>-<k> if that exists (pid reuse).
    ::mkdir(st.cfg.dir.c_str(), 0777);
    const long pid = static_cast<long>(::getpid());
    for (int k = 0; k < 100 && st.fd < 0; ++k) {
      st.spool_path = st.cfg.dir + "/cdma-" + std::to_string(pid) + (k ? "-" + std::to_string(k) : "") + ".spool";
      st.fd = ::open(st.spool_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
      if (st.fd < 0 && errno != EEXIST) break;
    }
    if (st.fd < 0) {
      warn_once("spool", "capture disabled: cannot create a spool in %s: %s", st.cfg.dir.c_str(), std::strerror(errno));
      return;
    }
    spool::FileHeader h{};
    std::memcpy(h.magic, spool::kMagic, sizeof(h.magic));
    h.version = spool::kVersion;
    h.header_bytes = sizeof(h);
    h.pid = pid;
    h.start_unix_ns = unix_ns();
    h.start_mono_ns = mono_ns();
    if (!write_all(st.fd, &h, sizeof(h))) {
      warn_once("spool", "capture disabled: cannot write %s", st.spool_path.c_str());
      ::close(st.fd);
      st.fd = -1;
      return;
    }
    enqueue_attr("producer", std::string("cdma-capture ") + CDMA_CAPTURE_VERSION);
    enqueue_attr("command", read_cmdline());
    enqueue_attr("capture_options", describe_config(st.cfg));
    if (auto ver = real_fn<decltype(&::cudnnGetVersion)>("cudnnGetVersion")) {
      t_depth++;
      enqueue_attr("cudnn_version", std::to_string(ver()));
      t_depth--;
    }
    st.writer = std::thread(writer_main);
    pthread_atfork(nullptr, nullptr, [] {
      g_forked_child = true;
      S().active = false;
    });
    std::atexit(finalize);
    install_signal_handlers();
    st.active = true;
    if (st.cfg.cupti != CuptiMode::kOff) cupti_setup();
    if (st.cfg.verbose) std::fprintf(stderr, "cdma-capture: spooling to %s\n", st.spool_path.c_str());
  } catch (...) {
    warn_once("init", "capture disabled: initialisation failed");
    st.active = false;
  }
}

// ---------------------------------------------------------------------------------------------
// Device side.

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

}  // namespace

// ---------------------------------------------------------------------------------------------
// Public pieces.

void warn_once(const char* key, const char* fmt, ...) noexcept {
  static std::mutex mu;
  static std::set<std::string>* seen = new std::set<std::string>;
  {
    std::lock_guard lk(mu);
    if (!seen->insert(key).second) return;
  }
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  std::fprintf(stderr, "cdma-capture[%ld]: %s\n", static_cast<long>(::getpid()), buf);
}

void* resolve_real(const char* name) noexcept {
  static void* handle = [] {
    void* h = dlopen("libcudnn.so.9", RTLD_NOW | RTLD_NOLOAD);
    return h;
  }();
  void* f = handle ? dlsym(handle, name) : nullptr;
  if (!f) f = dlsym(RTLD_NEXT, name);
  if (!f) warn_once(name, "the real %s was not found (is libcudnn.so.9 loaded?)", name);
  return f;
}

Reentry::Reentry() noexcept : depth_(++t_depth) {}
Reentry::~Reentry() { --t_depth; }

void CallSpec::link(const char* link_op, const void* ptr) {
  if (ptr && nlinks < 6) links[nlinks++] = IterationTracker::link_key(link_op, ptr);
}

bool capture_active() noexcept {
  State& st = S();
  if (g_forked_child.load()) return false;
  std::call_once(st.once, init);
  return st.active.load(std::memory_order_relaxed);
}

BackendShadow& backend_shadow() noexcept { return S().shadow; }

void enqueue_raw_record(std::uint16_t type, const void* payload, std::size_t bytes) noexcept {
  State& st = S();
  if (st.fd < 0 || st.stop) return;
  try {
    Item it;
    it.type = type;
    it.raw.assign(static_cast<const unsigned char*>(payload), static_cast<const unsigned char*>(payload) + bytes);
    enqueue(std::move(it));
  } catch (...) {
  }
}

void note_cupti_dropped(std::int64_t n) noexcept { S().n.cupti_dropped += n; }

struct CallState {
  std::int64_t seq = 0;
  std::int64_t t0 = 0;
  LayerAssign layer;         // peeked before the call; reported to the tracker after it succeeded
  std::uint64_t anchor = 0;  // forward calls: the tracker's anchor key
  TensorDesc descs[CallSpec::kMaxOperands];
  bool described[CallSpec::kMaxOperands] = {};
  bool want[CallSpec::kMaxOperands] = {};
  CUstream stream = nullptr;
  CtxRes* ctx = nullptr;
  CUevent done[CallSpec::kMaxOperands] = {};
  bool joined[CallSpec::kMaxOperands] = {};
  std::uint32_t flags = 0;
  bool device_ok = false;
};

namespace {

thread_local CallState t_call;
// Inputs copied before the call, enqueued by call_end once the status is known (then they get the
// names the tracker confirmed), or discarded if the call failed. Kept apart from CallState so that
// its buffer is reused from call to call.
thread_local std::vector<Item> t_pending;

std::uint32_t role_bit(const char* r) {
  if (std::strcmp(r, "x") == 0) return kRoleX;
  if (std::strcmp(r, "y") == 0) return kRoleY;
  if (std::strcmp(r, "dy") == 0) return kRoleDy;
  if (std::strcmp(r, "dx") == 0) return kRoleDx;
  return 0;
}
std::uint32_t op_bit(const char* op) {
  for (const auto& [n, b] : kOpNames)
    if (n == op) return b;
  return kOpOther;
}

bool describe(State& st, const OperandSpec& o, TensorDesc& d) {
  if (o.desc) {
    d = *o.desc;
    return d.nd > 0;
  }
  if (!o.legacy || !st.GetTensorNd) return false;
  int dims[spool::kMaxDims], strides[spool::kMaxDims], nd = 0;
  cudnnDataType_t dt{};
  if (st.GetTensorNd(o.legacy, spool::kMaxDims, &dt, &nd, dims, strides) != CUDNN_STATUS_SUCCESS) return false;
  if (nd <= 0 || nd > spool::kMaxDims) return false;
  d.cudnn_dtype = static_cast<int>(dt);
  d.nd = nd;
  for (int i = 0; i < nd; ++i) {
    d.dims[i] = dims[i];
    d.strides[i] = strides[i];
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

void fill_names(CallSpec& cs, CallState& s, const char* role, spool::TensorRecord& r) {
  r.call = s.seq;
  r.iteration = s.layer.iteration;
  r.layer_index = s.layer.layer_index;
  r.phase = static_cast<std::uint8_t>(cs.phase);
  spool::put_str(r.op, cs.op);
  spool::put_str(r.role, role);
  spool::put_str(r.layer, s.layer.layer.c_str());
}

// The record flags of operand i: what the trace's `offload` attribute will say (TRACE_FORMAT.md).
// Forward-phase inputs of role x are offloaded unless an output of the same call overwrites them.
std::uint16_t record_flags(const CallSpec& cs, int i, bool inplace) {
  const OperandSpec& o = cs.operands[i];
  bool offload = cs.phase == 0 && !o.output && !inplace && std::strcmp(o.role, "x") == 0;
  return static_cast<std::uint16_t>(spool::kRecOffloadKnown | (offload ? spool::kRecOffload : 0) |
                                    (inplace ? spool::kRecInPlace : 0));
}

void name_item(CallSpec& cs, CallState& s, Item& it, const char* role);

// Copies (or, in-situ, measures) operand i. Called with the context pushed. The item goes to
// `defer` when given (inputs, before the call), else straight to the writer (outputs).
void capture_operand(State& st, CallSpec& cs, CallState& s, int i, bool inplace, std::vector<Item>* defer) {
  const OperandSpec& o = cs.operands[i];
  StoragePlan plan = plan_storage(s.descs[i]);
  if (!plan.ok || !pointer_ok(st, s, o.ptr)) {
    st.n.skipped_unsafe++;
    s.flags |= spool::kTlUnsafe;
    return;
  }
  CtxRes* c = s.ctx;
  const bool insitu = st.cfg.mode == Mode::kInsitu;
  if (insitu && !insitu_ready(st, c)) return;
  std::size_t bytes = insitu ? 16 : static_cast<std::size_t>(plan.extent_bytes);
  if (!insitu) {
    std::int64_t stored = plan.elements * dtype_size(plan.dtype);
    std::int64_t before = st.budget_used.fetch_add(stored);
    if (before + stored > st.cfg.budget) {
      st.budget_used.fetch_sub(stored);
      st.n.dropped++;
      st.n.dropped_budget++;
      return;
    }
  }
  std::size_t off = 0;
  if (!reserve_slot(st, bytes, off)) {
    if (!insitu) st.budget_used.fetch_sub(plan.elements * dtype_size(plan.dtype));
    st.n.dropped++;
    st.n.dropped_ring++;
    return;
  }
  CUevent done = get_event(st, c);
  CUevent in = (insitu || !st.cfg.inline_copy) ? get_event(st, c) : nullptr;
  bool ok = done != nullptr && (in != nullptr || (!insitu && st.cfg.inline_copy));
  CUstream copy_stream = s.stream;
  if (ok && in) {
    ok = st.drv.EventRecord(in, s.stream) == CUDA_SUCCESS && st.drv.StreamWaitEvent(c->side, in, 0) == CUDA_SUCCESS;
    copy_stream = c->side;
  }
  if (ok && insitu) {
    CdmaZeroStatsParams p{};
    p.base = static_cast<const unsigned char*>(o.ptr);
    const int offd = 4 - plan.ndims;
    for (int k = 0; k < 4; ++k) {
      p.dims[k] = k < offd ? 1 : plan.dims[k - offd];
      p.strides[k] = k < offd ? 0 : plan.src_strides[k - offd];
    }
    p.elements = plan.elements;
    p.elem_bytes = dtype_size(plan.dtype);
    p.counters = reinterpret_cast<unsigned long long*>(c->counters);
    void* args[] = {&p};
    std::int64_t blocks = (plan.elements + CDMA_ZERO_STATS_BLOCK - 1) / CDMA_ZERO_STATS_BLOCK;
    unsigned grid = static_cast<unsigned>(std::min<std::int64_t>(std::max<std::int64_t>(blocks, 1), 1024));
    ok = st.drv.MemsetD8Async(c->counters, 0, 16, copy_stream) == CUDA_SUCCESS &&
         st.drv.LaunchKernel(c->stats_fn, grid, 1, 1, CDMA_ZERO_STATS_BLOCK, 1, 1, 0, copy_stream, args, nullptr) ==
             CUDA_SUCCESS &&
         st.drv.MemcpyDtoHAsync(st.ring_base + off, c->counters, 16, copy_stream) == CUDA_SUCCESS;
  } else if (ok) {
    ok = st.drv.MemcpyDtoHAsync(st.ring_base + off, reinterpret_cast<CUdeviceptr>(o.ptr), bytes, copy_stream) ==
         CUDA_SUCCESS;
  }
  if (ok) ok = st.drv.EventRecord(done, copy_stream) == CUDA_SUCCESS;
  return_event(c, in);  // the wait is enqueued; the event may be recorded again
  if (!ok) {
    return_event(c, done);
    release_slot(st, off);
    if (!insitu) st.budget_used.fetch_sub(plan.elements * dtype_size(plan.dtype));
    st.n.dropped++;
    return;
  }
  s.done[i] = copy_stream == s.stream ? nullptr : done;  // inline copies need no join
  s.joined[i] = false;
  s.flags |= spool::kTlDataCaptured;
  Item it;
  it.ring_off = off;
  it.ev = done;
  it.ctx = c;
  it.plan = plan;
  it.rflags = record_flags(cs, i, inplace);
  it.role = o.role;
  if (insitu) {
    it.kind = Item::kStats;
    auto& r = it.srec;
    spool::put_str(r.dtype, dtype_name(plan.dtype));
    r.elements = plan.elements;
  } else {
    it.kind = Item::kTensor;
    it.trec.dtype = static_cast<std::uint8_t>(plan.dtype);
    it.trec.layout = static_cast<std::uint8_t>(plan.layout);
    it.trec.ndims = static_cast<std::uint8_t>(plan.ndims);
    for (int k = 0; k < plan.ndims; ++k) it.trec.dims[k] = plan.dims[k];
    it.trec.data_bytes = static_cast<std::uint64_t>(plan.elements * dtype_size(plan.dtype));
  }
  name_item(cs, s, it, o.role);
  if (defer)
    defer->push_back(std::move(it));
  else
    enqueue(std::move(it));
}

// Iteration, layer and call of a tensor or stats record, from the call's current assignment.
void name_item(CallSpec& cs, CallState& s, Item& it, const char* role) {
  if (it.kind == Item::kStats) {
    auto& r = it.srec;
    r.call = s.seq;
    r.iteration = s.layer.iteration;
    r.layer_index = s.layer.layer_index;
    r.phase = static_cast<std::uint8_t>(cs.phase);
    spool::put_str(r.layer, s.layer.layer.c_str());
    spool::put_str(r.op, cs.op);
    spool::put_str(r.role, role);
  } else {
    fill_names(cs, s, role, it.trec);
  }
}

bool overlaps(const CallSpec& cs, const CallState& s, int i) {
  StoragePlan pi = plan_storage(s.descs[i]);
  auto a0 = reinterpret_cast<std::uintptr_t>(cs.operands[i].ptr);
  auto a1 = a0 + static_cast<std::uintptr_t>(pi.extent_bytes);
  for (int j = 0; j < cs.n; ++j) {
    if (!cs.operands[j].output || !cs.operands[j].ptr) continue;
    auto b0 = reinterpret_cast<std::uintptr_t>(cs.operands[j].ptr);
    std::uintptr_t b1 = b0 + 1;
    if (s.described[j]) {
      StoragePlan pj = plan_storage(s.descs[j]);
      if (pj.ok) b1 = b0 + static_cast<std::uintptr_t>(pj.extent_bytes);
    }
    if (a0 < b1 && b0 < a1) return true;
  }
  return false;
}

void join(State& st, CallState& s, int i) {
  if (s.done[i] && !s.joined[i]) st.drv.StreamWaitEvent(s.stream, s.done[i], 0);
  s.joined[i] = true;
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

}  // namespace

CallState* call_begin(CallSpec& cs) noexcept {
  State& st = S();
  CallState& s = t_call;
  try {
    s = CallState{};
    s.seq = st.next_call.fetch_add(1);
    st.n.calls++;
    s.t0 = mono_ns();
    s.flags = cs.flags;
    t_pending.clear();
    for (int i = 0; i < cs.n; ++i) s.described[i] = describe(st, cs.operands[i], s.descs[i]);
    {
      // Only peek: the call counts for iteration detection once it has succeeded (call_end).
      std::lock_guard lk(st.iter_mu);
      if (cs.phase == 0) {
        const TensorDesc& x = s.descs[0];
        s.anchor = IterationTracker::anchor_key(cs.op, cs.weight, x.dims, s.described[0] ? x.nd : 0);
        s.layer = st.tracker.peek_forward(cs.op, s.anchor);
      } else {
        s.layer = st.tracker.peek_backward(cs.op, cs.links, cs.nlinks);
      }
    }
    const Config& c = st.cfg;
    bool sampled = c.mode != Mode::kTimeline && st.data_ok && iteration_sampled(c, s.layer.iteration) &&
                   (c.ops & op_bit(cs.op)) && (c.phases & (cs.phase == 0 ? kPhaseForward : kPhaseBackward));
    bool any = false;
    for (int i = 0; i < cs.n; ++i) {
      s.want[i] = sampled && s.described[i] && (c.roles & role_bit(cs.operands[i].role)) && cs.operands[i].ptr;
      any = any || s.want[i];
    }
    if (any && (s.device_ok = device_gate(st, cs, s))) {
      if (push_ctx(st, s) && (ensure_ring(st) || (pop_ctx(st), false))) {
        for (int i = 0; i < cs.n; ++i) {
          if (!s.want[i] || cs.operands[i].output) continue;
          const bool inplace = overlaps(cs, s, i);
          capture_operand(st, cs, s, i, inplace, &t_pending);
          if (inplace) join(st, s, i);  // the copy must finish before the call overwrites the input
        }
        pop_ctx(st);
      } else {
        s.device_ok = false;
        s.flags |= spool::kTlUnsafe;
      }
    }
    if (!s.device_ok && any) {
      if (s.flags & spool::kTlGraphCapture)
        st.n.skipped_graph++;
      else
        st.n.skipped_unsafe++;
    }
  } catch (...) {
    disable("internal error before a call");
  }
  cupti_push(static_cast<std::uint64_t>(s.seq));
  return &s;
}

void call_end(CallSpec& cs, CallState* sp, int status) noexcept {
  cupti_pop();
  State& st = S();
  CallState& s = *sp;
  try {
    std::int64_t t1 = mono_ns();
    if (status != 0) s.flags |= spool::kTlFailed;
    bool keep = status == 0;
    if (keep) {
      std::lock_guard lk(st.iter_mu);
      s.layer = cs.phase == 0 ? st.tracker.on_forward(cs.op, s.anchor, cs.links, cs.nlinks)
                              : st.tracker.on_backward(cs.op, cs.links, cs.nlinks);
      // Another thread's call between peek and report can change the answer; the reported one
      // names the tensors, and decides the sampling again.
      keep = iteration_sampled(st.cfg, s.layer.iteration);
    }
    // Inputs copied before the call: written with the confirmed names, or (failed call) dropped.
    for (auto& it : t_pending) {
      if (keep) {
        name_item(cs, s, it, it.role);
      } else {
        it.discard = true;
        if (it.kind == Item::kTensor) st.budget_used.fetch_sub(static_cast<std::int64_t>(it.trec.data_bytes));
        if (status != 0) st.n.skipped_failed++;  // else: the reported iteration is not sampled
      }
      enqueue(std::move(it));
    }
    t_pending.clear();
    if (s.device_ok && st.active.load()) {
      if (push_ctx(st, s)) {
        if (keep)
          for (int i = 0; i < cs.n; ++i)
            if (s.want[i] && cs.operands[i].output) capture_operand(st, cs, s, i, false, nullptr);
        for (int i = 0; i < cs.n; ++i) join(st, s, i);
        pop_ctx(st);
      }
    }
    spool::TimelineRecord r{};
    r.call = s.seq;
    r.iteration = s.layer.iteration;
    r.layer_index = s.layer.layer_index;
    r.phase = static_cast<std::int8_t>(cs.phase);
    spool::put_str(r.op, cs.op);
    spool::put_str(r.layer, s.layer.layer.c_str());
    spool::put_str(r.api, cs.api);
    r.start_ns = s.t0;
    r.end_ns = t1;
    r.status = status;
    r.flags = s.flags;
    enqueue_raw_record(static_cast<std::uint16_t>(spool::RecordType::kTimeline), &r, sizeof(r));
  } catch (...) {
    disable("internal error after a call");
  }
}

}  // namespace cdma::capture

// Explicit iteration marker for IterationMode::kMarker: programs (or a Python one-liner through
// ctypes) call it at the start of each training iteration. Harmless when capture is off.
extern "C" __attribute__((visibility("default"))) void cdma_capture_mark_iteration(void) {
  using namespace cdma::capture;
  if (!capture_active()) return;
  State& st = S();
  std::lock_guard lk(st.iter_mu);
  st.tracker.mark();
}
