// A trace that shrinks under its mapping (rewritten in place, truncated) makes any access to the
// pages past its new end raise SIGBUS, which would kill the process without a word. Checking the
// size before reading cannot close the race (the file may shrink a microsecond later), and
// MADV_POPULATE_READ only reports the pages missing at the time of the call. So the mappings of a
// run are guarded: a SIGBUS handler (installed once, chained to the one it replaced) looks the
// faulting address up in a table of guarded ranges; when it lies in one, it maps a zero page in
// place of the lost one (mmap with MAP_FIXED: a system call, safe in a handler) and marks the
// mapping, and the access goes on with zeros. The worker checks the mark once the tensor is done
// and throws the error that ReadMode::pread gives for a short read, so that the zeros are never
// taken for data. Any other SIGBUS goes to the previous handler (or the default action).
//
// Why not siglongjmp out of the handler: it would skip the destructors of the codec and analysis
// frames it jumps over (undefined behaviour in C++), and the codecs are not written to be
// abandoned halfway.
#include "run_internal.hpp"

#include <array>
#include <atomic>
#include <csignal>
#include <cstdint>
#include <mutex>

#include <sys/mman.h>
#include <unistd.h>

namespace cdma::analyze::detail {

namespace {

struct Slot {
  std::atomic<bool> claimed{false};  // owned by a Guard
  std::atomic<bool> active{false};   // begin/end/hit are set; the handler may use them
  std::uintptr_t begin = 0, end = 0;
  std::atomic<bool>* hit = nullptr;
};

// Enough for every mapping a run holds at once (one per trace being read, and the jobs in flight);
// a mapping that finds no free slot is not guarded and Mapping::open falls back to pread.
constexpr std::size_t kSlots = 256;
std::array<Slot, kSlots> g_slots;
struct sigaction g_previous {};
std::uintptr_t g_page = 4096;  // set before the handler is installed (sysconf is not async-signal-safe)

void on_sigbus(int sig, siginfo_t* si, void* ctx) {
  const auto addr = reinterpret_cast<std::uintptr_t>(si->si_addr);
  for (auto& s : g_slots) {
    if (!s.active.load(std::memory_order_acquire) || addr < s.begin || addr >= s.end) continue;
    void* at = reinterpret_cast<void*>(addr & ~(g_page - 1));
    if (mmap(at, g_page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED) break;
    s.hit->store(true, std::memory_order_release);
    return;  // the access is retried and now reads zeros
  }
  // Not ours: as if this handler were not there.
  if (g_previous.sa_flags & SA_SIGINFO) {
    if (g_previous.sa_sigaction) g_previous.sa_sigaction(sig, si, ctx);
    return;
  }
  if (g_previous.sa_handler == SIG_DFL || g_previous.sa_handler == SIG_IGN) {
    // The default action (the faulting access is retried and the signal comes again, now fatal).
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(SIGBUS, &dfl, nullptr);
    return;
  }
  g_previous.sa_handler(sig);
}

bool install_handler() {
  static std::once_flag once;
  static bool ok = false;
  std::call_once(once, [] {
    g_page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
    struct sigaction sa {};
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    ok = sigaction(SIGBUS, &sa, &g_previous) == 0;
  });
  return ok;
}

}  // namespace

BusGuard::BusGuard(const void* begin, std::size_t size) {
  if (!install_handler()) return;
  for (std::size_t i = 0; i < kSlots; ++i) {
    bool expected = false;
    if (!g_slots[i].claimed.compare_exchange_strong(expected, true, std::memory_order_acq_rel)) continue;
    auto& s = g_slots[i];
    s.begin = reinterpret_cast<std::uintptr_t>(begin);
    s.end = s.begin + size;
    s.hit = &hit_;
    s.active.store(true, std::memory_order_release);
    slot_ = static_cast<int>(i);
    return;
  }
}

BusGuard::~BusGuard() {
  if (slot_ < 0) return;
  auto& s = g_slots[static_cast<std::size_t>(slot_)];
  s.active.store(false, std::memory_order_release);
  s.hit = nullptr;
  s.claimed.store(false, std::memory_order_release);
}

}  // namespace cdma::analyze::detail
