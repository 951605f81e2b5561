// A shared library linked like libcdma_capture.so (static libstdc++/libgcc, cdma_glibc_floor's
// wraps and shims), for Capture.GlibcShimsWork: exceptions unwind through the _dl_find_object
// shim, condition variables time out through the pthread_cond_clockwait shim, threads start
// through the pinned pthread_create, std::random_device("arc4random") reaches the arc4random shim.
// The shim's _dl_find_object answer is compared with glibc's own (looked up with dlsym, so that
// no versioned reference to it is linked in).
#include <dlfcn.h>
#include <link.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>

extern "C" int __wrap__dl_find_object(void* pc, struct dl_find_object* out);

namespace {

[[gnu::noinline]] int thrower(int depth) {
  if (depth == 0) throw std::runtime_error("deep");
  return thrower(depth - 1) + 1;
}

[[gnu::noinline]] int catcher() {
  try {
    return thrower(5);
  } catch (const std::runtime_error& e) {
    return std::string(e.what()) == "deep" ? 42 : -1;
  }
}

}  // namespace

// Returns 0 when every check passed; otherwise writes what failed into msg.
extern "C" __attribute__((visibility("default"))) int cdma_glibc_compat_probe(char* msg, int n) {
  auto fail = [&](const std::string& s) {
    std::snprintf(msg, static_cast<std::size_t>(n), "%s", s.c_str());
    return 1;
  };
  // 1. _dl_find_object shim: same object bounds and eh_frame as glibc's (when glibc has one).
  dl_find_object mine{}, theirs{};
  void* pc = reinterpret_cast<void*>(&catcher);
  if (__wrap__dl_find_object(pc, &mine) != 0 || !mine.dlfo_eh_frame)
    return fail("the _dl_find_object shim found no eh_frame for its own code");
  if (mine.dlfo_map_start > pc || mine.dlfo_map_end <= pc) return fail("the shim's object bounds miss the pc");
  using FindFn = int (*)(void*, dl_find_object*);
  if (auto real = reinterpret_cast<FindFn>(dlsym(RTLD_DEFAULT, "_dl_find_object"))) {
    if (real(pc, &theirs) != 0) return fail("glibc's _dl_find_object failed");
    if (theirs.dlfo_eh_frame != mine.dlfo_eh_frame || theirs.dlfo_map_start != mine.dlfo_map_start ||
        theirs.dlfo_map_end != mine.dlfo_map_end)
      return fail("the shim's _dl_find_object answer differs from glibc's");
  }
  if (__wrap__dl_find_object(reinterpret_cast<void*>(std::uintptr_t{16}), &theirs) == 0)  // page 0: never mapped
    return fail("the shim found an object at an unmapped address");
  // 2. Exceptions unwind (libgcc_eh's _Unwind_Find_FDE goes through the shim).
  if (catcher() != 42) return fail("an exception was not caught");
  // 3. A timed wait on the steady clock times out after about its timeout.
  std::mutex mu;
  std::condition_variable cv;
  std::unique_lock lk(mu);
  auto t0 = std::chrono::steady_clock::now();
  bool woke = cv.wait_for(lk, std::chrono::milliseconds(30), [] { return false; });
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (woke || ms < 29 || ms > 5000)
    return fail("condition_variable::wait_for(30 ms) took " + std::to_string(ms) + " ms");
  lk.unlock();
  // 4. A thread runs and joins, and wakes a waiter before its deadline.
  bool done = false;
  std::thread t([&] {
    std::lock_guard g(mu);
    done = true;
    cv.notify_all();
  });
  {
    std::unique_lock l2(mu);
    if (!cv.wait_for(l2, std::chrono::seconds(20), [&] { return done; })) return fail("the thread did not run");
  }
  t.join();
  // 5. arc4random through std::random_device.
  try {
    std::random_device rd("arc4random");
    unsigned a = rd(), b = rd(), c = rd();
    if (a == b && b == c) return fail("arc4random returned the same value three times");
  } catch (const std::exception& e) {
    return fail(std::string("std::random_device(\"arc4random\"): ") + e.what());
  }
  msg[0] = '\0';
  return 0;
}
