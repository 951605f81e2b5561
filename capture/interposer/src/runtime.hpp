// The interposer's runtime: lazy initialisation, capture policy, device-to-host copies, the spool
// writer thread, and the generic wrapper `run_call` every intercepted function goes through.
//
// Rules (docs/CAPTURE.md): the real call always runs with the caller's arguments and its status
// is returned unchanged; nothing here throws across the C ABI; an internal error disables capture
// with one warning on stderr; no constructor work; no lock is held while calling cuDNN or CUDA.
#pragma once

#include "shadow.hpp"
#include "tensor_desc.hpp"

#include <cudnn.h>

#include <cstdint>

namespace cdma::capture {

// Resolves a real cuDNN function from the libcudnn.so.9 the host loaded (dlopen RTLD_NOLOAD +
// dlsym, then RTLD_NEXT). Returns nullptr and warns once when not found.
void* resolve_real(const char* name) noexcept;

template <class F>
F real_fn(const char* name) noexcept {
  return reinterpret_cast<F>(resolve_real(name));
}

// Status returned when the real function cannot be found (what the cuDNN 9 shim returns when a
// sub-library is missing).
inline constexpr cudnnStatus_t kNoRealFunction = static_cast<cudnnStatus_t>(3009);

struct OperandSpec {
  const char* role = "x";  // x, y, dy, dx (others are never captured)
  const void* ptr = nullptr;
  cudnnTensorDescriptor_t legacy = nullptr;  // described through the real getters
  const TensorDesc* desc = nullptr;          // or given (backend shadow)
  bool output = false;                       // written by the call
};

struct CallSpec {
  const char* api = "";
  const char* op = "other";
  int phase = 0;  // 0 forward, 1 backward
  cudnnHandle_t handle = nullptr;
  const void* weight = nullptr;  // anchor of iteration detection (forward calls)
  static constexpr int kMaxOperands = 12;
  OperandSpec operands[kMaxOperands];
  int n = 0;
  std::uint64_t links[6] = {};
  int nlinks = 0;
  std::uint32_t flags = 0;  // spool::TimelineFlags set by the wrapper

  void add(const char* role, const void* ptr, cudnnTensorDescriptor_t d, bool output) {
    if (n < kMaxOperands) operands[n++] = OperandSpec{role, ptr, d, nullptr, output};
  }
  void add(const char* role, const void* ptr, const TensorDesc* d, bool output) {
    if (n < kMaxOperands) operands[n++] = OperandSpec{role, ptr, nullptr, d, output};
  }
  void link(const char* link_op, const void* ptr);
};

struct CallState;  // per-call scratch (runtime_state.hpp)

// Reentrancy guard: the interposer's own cuDNN calls (getters) and nested cuDNN calls are passed
// straight through.
struct Reentry {
  Reentry() noexcept;
  ~Reentry();
  bool nested() const noexcept { return depth_ > 1; }

 private:
  int depth_;
};

bool capture_active() noexcept;                                  // initialises on first use; false when disabled
CallState* call_begin(CallSpec& cs) noexcept;                    // before the real call
void call_end(CallSpec& cs, CallState* s, int status) noexcept;  // after it

BackendShadow& backend_shadow() noexcept;

template <class F>
cudnnStatus_t run_call(CallSpec& cs, F&& real) {
  Reentry g;
  if (g.nested() || !capture_active()) return real();
  CallState* s = call_begin(cs);
  cudnnStatus_t st = real();
  call_end(cs, s, static_cast<int>(st));
  return st;
}

// CUPTI (cupti.cpp): external correlation around real calls; no-ops when CUPTI is off.
void cupti_setup() noexcept;
void cupti_push(std::uint64_t call) noexcept;
void cupti_pop() noexcept;
void cupti_flush(bool forced) noexcept;

// Writer queue access for CUPTI records (spool_writer.cpp).
void enqueue_raw_record(std::uint16_t type, const void* payload, std::size_t bytes) noexcept;
void note_cupti_dropped(std::int64_t n) noexcept;
void warn_once(const char* key, const char* fmt, ...) noexcept;

}  // namespace cdma::capture
