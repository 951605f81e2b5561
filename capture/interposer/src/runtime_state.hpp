// Internal to the interposer's runtime: its state and the functions its parts share.
//
//   runtime.cpp       the state, warnings, real-symbol lookup, the iteration marker
//   lifecycle.cpp     initialisation at the first call, finalisation at exit, fork and signals
//   spool_writer.cpp  the writer thread and the spool records it writes
//   device_res.cpp    per-context resources: side streams, events, the pinned ring, the in-situ kernel
//   operand.cpp       describing, copying (or measuring) and naming one operand of a call
//   call.cpp          call_begin / call_end: the policy around every intercepted call
#pragma once

#include "driver.hpp"
#include "iteration.hpp"
#include "ring.hpp"
#include "runtime.hpp"

#include <cdma/capture/config.hpp>
#include <cdma/capture/spool.hpp>

#include <pthread.h>
#include <time.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace cdma::capture {
namespace rt {

inline std::int64_t mono_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}
inline std::int64_t unix_ns() noexcept {
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

// The one state of the process (never destroyed: wrappers may run during exit).
State& S() noexcept;

extern thread_local int t_depth;          // Reentry depth of this thread
extern std::atomic<bool> g_forked_child;  // this process is a fork() child: pass everything through
extern std::atomic<int> g_signal_flush;   // 1: a signal handler asks the writer to drain; 2: drained
extern std::atomic<int> g_signal_done;

// Turns capture off with one warning (first caller only).
void disable(const char* why) noexcept;

// spool_writer.cpp. write_* run on the writer thread only, after init.
bool write_all(int fd, const void* p, std::size_t n) noexcept;
void write_record(State& st, std::uint16_t type, const void* a, std::size_t na, const void* b = nullptr,
                  std::size_t nb = 0, std::uint16_t flags = 0) noexcept;
spool::CountersRecord counters_record(State& st);
void writer_main();
void enqueue(Item&& it);
void enqueue_attr(const std::string& k, const std::string& v);

// device_res.cpp.
void release_slot(State& st, std::size_t off);
void return_event(CtxRes* c, CUevent ev);
CtxRes* ctx_res(State& st, CUcontext ctx);
CUevent get_event(State& st, CtxRes* c);
bool ensure_ring(State& st);
bool reserve_slot(State& st, std::size_t n, std::size_t& off);
bool insitu_ready(State& st, CtxRes* c);

}  // namespace rt

struct CallState {
  std::int64_t seq = 0;
  std::int64_t t0 = 0;
  LayerAssign layer;         // peeked before the call; reported to the tracker after it succeeded
  std::uint64_t anchor = 0;  // forward calls: the tracker's anchor key
  TensorDesc descs[CallSpec::kMaxOperands];
  bool described[CallSpec::kMaxOperands] = {};
  bool want[CallSpec::kMaxOperands] = {};
  CUstream stream = nullptr;
  rt::CtxRes* ctx = nullptr;
  CUevent done[CallSpec::kMaxOperands] = {};
  bool joined[CallSpec::kMaxOperands] = {};
  std::uint32_t flags = 0;
  bool device_ok = false;
};

namespace rt {

// device_res.cpp: the call's stream and context.
bool device_gate(State& st, CallSpec& cs, CallState& s);
bool pointer_ok(State& st, CallState& s, const void* p);
bool push_ctx(State& st, CallState& s);
void pop_ctx(State& st);

// operand.cpp.
bool describe(State& st, const OperandSpec& o, TensorDesc& d);
void capture_operand(State& st, CallSpec& cs, CallState& s, int i, bool inplace, std::vector<Item>* defer);
void name_item(CallSpec& cs, CallState& s, Item& it, const char* role);
bool overlaps(const CallSpec& cs, const CallState& s, int i);
void join(State& st, CallState& s, int i);

}  // namespace rt
}  // namespace cdma::capture
