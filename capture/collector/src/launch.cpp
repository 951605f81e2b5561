#include <cdma/capture/collector.hpp>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>

namespace cdma::capture {

namespace {
volatile sig_atomic_t g_child = 0;
volatile sig_atomic_t g_interrupted = 0;
void forward_signal(int sig) {
  if (sig == SIGINT) g_interrupted = 1;
  if (g_child > 0) kill(static_cast<pid_t>(g_child), sig);
}
}  // namespace

std::filesystem::path default_preload_library() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  return exe.parent_path().parent_path() / "lib" / "libcdma_capture.so";
}

LaunchResult run_traced(const LaunchOptions& opts) {
  if (opts.argv.empty()) throw CaptureError("no command to run");
  // Prepare everything that allocates before fork.
  std::vector<std::string> env_kv;
  for (const auto& [k, v] : opts.env) env_kv.push_back(k + "=" + v);
  std::string preload = opts.preload.string();
  if (const char* old = std::getenv("LD_PRELOAD"); old && *old) preload += std::string(":") + old;
  env_kv.push_back("LD_PRELOAD=" + preload);
  std::vector<char*> argv;
  for (const auto& a : opts.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);

  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) throw CaptureError(std::string("pipe: ") + std::strerror(errno));
  // The forwarding handlers are installed before fork, so that no signal falls between the two.
  g_child = 0;
  g_interrupted = 0;
  struct sigaction sa {
  }, old_int{}, old_term{}, old_hup{};
  sa.sa_handler = forward_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  sigaction(SIGHUP, &sa, &old_hup);
  if (old_hup.sa_handler == SIG_IGN) sigaction(SIGHUP, &old_hup, nullptr);  // nohup: the command ignores it too
  auto restore = [&] {
    sigaction(SIGINT, &old_int, nullptr);
    sigaction(SIGTERM, &old_term, nullptr);
    sigaction(SIGHUP, &old_hup, nullptr);
  };
  pid_t pid = fork();
  if (pid < 0) {
    const int err = errno;
    restore();
    throw CaptureError(std::string("fork: ") + std::strerror(err));
  }
  if (pid == 0) {
    close(pipefd[0]);
    // SIGINT and SIGTERM are forwarded to the command, so it must not ignore them: a shell starts a
    // background job (`cdma capture ... &`) with SIGINT ignored, which the command would inherit.
    // SIGHUP keeps what it had (nohup).
    std::signal(SIGINT, SIG_DFL);
    std::signal(SIGTERM, SIG_DFL);
    for (auto& kv : env_kv) putenv(kv.data());
    execvp(argv[0], argv.data());
    int err = errno;
    (void)!write(pipefd[1], &err, sizeof(err));
    _exit(127);
  }
  g_child = pid;
  if (g_interrupted) kill(pid, SIGINT);  // arrived before the child's pid was known
  close(pipefd[1]);
  int exec_err = 0;
  ssize_t n = 0;
  while ((n = read(pipefd[0], &exec_err, sizeof(exec_err))) < 0 && errno == EINTR) {
  }
  close(pipefd[0]);

  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  g_child = 0;
  restore();
  if (n == static_cast<ssize_t>(sizeof(exec_err)))
    throw CaptureError("cannot run '" + opts.argv[0] + "': " + std::strerror(exec_err));

  LaunchResult r;
  r.interrupted = g_interrupted != 0;
  if (WIFEXITED(status)) {
    r.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    r.signal = WTERMSIG(status);
    r.exit_code = 128 + r.signal;
  }
  return r;
}

}  // namespace cdma::capture
