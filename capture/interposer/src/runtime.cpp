// The interposer's state, warnings, real-symbol lookup and the iteration marker. The rest of the
// runtime is split by concern (runtime_state.hpp lists the files).
#include "runtime_state.hpp"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <set>

namespace cdma::capture {

namespace rt {

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

}  // namespace rt

using namespace rt;

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

BackendShadow& backend_shadow() noexcept { return S().shadow; }

void note_cupti_dropped(std::int64_t n) noexcept { S().n.cupti_dropped += n; }

}  // namespace cdma::capture

// Explicit iteration marker for IterationMode::kMarker: programs (or a Python one-liner through
// ctypes) call it at the start of each training iteration. Harmless when capture is off.
extern "C" __attribute__((visibility("default"))) void cdma_capture_mark_iteration(void) {
  using namespace cdma::capture::rt;
  if (!cdma::capture::capture_active()) return;
  State& st = S();
  std::lock_guard lk(st.iter_mu);
  st.tracker.mark();
}
