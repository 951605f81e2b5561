// Life cycle: initialisation at the first intercepted call (configuration, driver, spool file and
// header, writer thread), finalisation at exit (drain, end marker), fork children, and the
// SIGTERM/SIGINT handlers that drain the writer before the process dies.
#include "runtime_state.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#ifndef CDMA_CAPTURE_VERSION
#define CDMA_CAPTURE_VERSION "0.0.0"
#endif

namespace cdma::capture {

using namespace rt;

namespace {

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

}  // namespace

bool capture_active() noexcept {
  State& st = S();
  if (g_forked_child.load()) return false;
  std::call_once(st.once, init);
  return st.active.load(std::memory_order_relaxed);
}

}  // namespace cdma::capture
