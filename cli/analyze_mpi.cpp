// `cdma analyze` under MPI: the ranks share one run by tensor (analyze::run_part), rank 0 gathers
// and merges. Plain point-to-point messages: every rank sends its encoded part to rank 0, which
// answers with the exit code, so that no rank exits before the outputs are written and all exit
// with the same code. A rank that dies ends the job through the launcher (mpirun, srun), which
// kills the others: no rank waits forever for a dead one.
#include "analyze_mpi.hpp"

#include "verbs.hpp"

#include <cdma/analyze/parts.hpp>
#include <cdma/formats/error.hpp>

#include <fmt/core.h>
#include <mpi.h>

#include <pthread.h>
#include <sched.h>
#include <algorithm>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <optional>

namespace cdma::cli {

namespace {

constexpr int kTagSize = 1, kTagData = 2;
constexpr std::size_t kMaxMessage = std::size_t{1} << 30;  // MPI counts are int: send big parts in pieces

// Open MPI's MPI_Init installs handlers of crash signals that print a backtrace. A child this rank
// forks (the trace reader's isolated HDF5 probe, formats/src/trace_reader.cpp, which may crash on
// a damaged file by design: its parent reports "the HDF5 library crashed") must not inherit them,
// or every damaged file prints MPI backtraces. The child gets back the dispositions the process had
// before MPI_Init, for the signals whose handler is still MPI's.
constexpr int kCrashSignals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
constexpr std::size_t kNumCrashSignals = sizeof kCrashSignals / sizeof kCrashSignals[0];
struct sigaction g_before_mpi[kNumCrashSignals], g_of_mpi[kNumCrashSignals];

extern "C" void restore_crash_signals_in_child() {  // async-signal-safe: sigaction only
  for (std::size_t i = 0; i < kNumCrashSignals; ++i) {
    struct sigaction cur {};
    if (sigaction(kCrashSignals[i], nullptr, &cur) == 0 && cur.sa_handler == g_of_mpi[i].sa_handler)
      sigaction(kCrashSignals[i], &g_before_mpi[i], nullptr);
  }
}

// MPI_Init_thread for its lifetime (the analysis threads never call MPI: FUNNELED is enough).
class MpiSession {
 public:
  MpiSession() {
    for (std::size_t i = 0; i < kNumCrashSignals; ++i) sigaction(kCrashSignals[i], nullptr, &g_before_mpi[i]);
    int provided = 0;
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
    bool changed = false;
    for (std::size_t i = 0; i < kNumCrashSignals; ++i) {
      sigaction(kCrashSignals[i], nullptr, &g_of_mpi[i]);
      changed = changed || g_of_mpi[i].sa_handler != g_before_mpi[i].sa_handler;
    }
    static bool registered = false;
    if (changed && !registered) registered = pthread_atfork(nullptr, nullptr, restore_crash_signals_in_child) == 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  ~MpiSession() { MPI_Finalize(); }
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
  int rank() const { return rank_; }
  int size() const { return size_; }

 private:
  int rank_ = 0, size_ = 1;
};

void send_bytes(const std::string& bytes, int to) {
  std::uint64_t n = bytes.size();
  MPI_Send(&n, 1, MPI_UINT64_T, to, kTagSize, MPI_COMM_WORLD);
  for (std::size_t off = 0; off < bytes.size(); off += kMaxMessage) {
    const auto piece = static_cast<int>(std::min(kMaxMessage, bytes.size() - off));
    MPI_Send(bytes.data() + off, piece, MPI_BYTE, to, kTagData, MPI_COMM_WORLD);
  }
}

std::string recv_bytes(int from) {
  std::uint64_t n = 0;
  MPI_Recv(&n, 1, MPI_UINT64_T, from, kTagSize, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  std::string bytes(static_cast<std::size_t>(n), '\0');
  for (std::size_t off = 0; off < bytes.size(); off += kMaxMessage) {
    const auto piece = static_cast<int>(std::min(kMaxMessage, bytes.size() - off));
    MPI_Recv(bytes.data() + off, piece, MPI_BYTE, from, kTagData, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  }
  return bytes;
}

// The cores this rank may run on (mpirun binds ranks to cores by default): `-j 0` means these,
// not every core of the node, which the other ranks share.
unsigned bound_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 0;
  return static_cast<unsigned>(std::max(1, CPU_COUNT(&set)));
}

// One --timing line per rank, so that imbalance shows.
void print_rank_timing(const analyze::Part& p) {
  const auto& s = p.stats;
  fmt::print(stderr,
             "timing: rank={} tensors=[{},{}) bytes={} wall_s={:.4f} gbps={:.4f} threads={} cpu_s={:.4f} "
             "codec_cpu_s={:.4f} read_cpu_s={:.4f}\n",
             p.index, p.first_slot, p.last_slot, s.bytes, s.wall_s,
             s.wall_s > 0 ? static_cast<double>(s.bytes) * 1e-9 / s.wall_s : 0.0, s.threads, s.cpu_s, s.codec_s,
             s.read_s);
}

// Rank 0: the other ranks' parts, the merge, the outputs. Returns the exit code.
int finish_on_rank0(analyze::Part mine, int size, const analyze::Options& opts, const AnalyzeOutputs& out) {
  std::vector<analyze::Part> parts;
  parts.push_back(std::move(mine));
  std::optional<std::string> bad;  // a part that could not be decoded (every message is still received)
  for (int r = 1; r < size; ++r) {
    const std::string bytes = recv_bytes(r);
    try {
      parts.push_back(analyze::decode_part(bytes));
    } catch (const formats::Error& e) {
      if (!bad) bad = "rank " + std::to_string(r) + ": " + e.what();
    }
  }
  if (bad) {
    fmt::print(stderr, "cdma analyze: error: {}\n", *bad);
    return kExitFailure;
  }
  std::vector<analyze::Part> timing;  // the per-rank numbers, before the merge takes the parts
  if (out.timing)
    for (const auto& p : parts) {
      analyze::Part t;
      t.index = p.index;
      t.first_slot = p.first_slot;
      t.last_slot = p.last_slot;
      t.stats = p.stats;
      timing.push_back(std::move(t));
    }
  analyze::Analysis result;
  try {
    result = analyze::merge_parts(std::move(parts), opts);
  } catch (const std::exception& e) {  // anything: the other ranks wait for the exit code below
    fmt::print(stderr, "cdma analyze: error: {}\n", e.what());
    return kExitFailure;
  }
  if (result.interrupted) {
    fmt::print(stderr, "cdma analyze: interrupted; no output written\n");
    return kExitInterrupted;
  }
  if (out.timing) {
    print_timing(result.stats);
    for (const auto& t : timing) print_rank_timing(t);
  }
  return write_results(result, out);
}

}  // namespace

int run_analyze_mpi(const std::vector<std::string>& paths, analyze::Options opts, const AnalyzeOutputs& out) {
  const MpiSession mpi;
  if (opts.threads == 0) opts.threads = bound_cores();
  analyze::RunHooks hooks;
  hooks.stop = &analyze_stop_flag();
  const bool progress = out.show_progress && mpi.rank() == 0;
  if (progress) hooks.on_progress = [](const analyze::Progress& p) { draw_progress(p, false); };
  analyze::Part part;
  {
    const StopOnSigint sigint;
    part = analyze::run_part({paths.begin(), paths.end()}, opts, hooks, mpi.rank(), mpi.size());
  }
  if (progress) {
    if (part.error)
      fmt::print(stderr, "\n");
    else
      draw_progress({}, true);
  }
  int rc = kExitOk;
  if (mpi.rank() == 0) {
    rc = finish_on_rank0(std::move(part), mpi.size(), opts, out);
    // Flushed before the other ranks hear the code: nothing of rank 0 is lost if the launcher
    // ends the job as soon as one rank exits non-zero.
    std::fflush(stdout);
    std::fflush(stderr);
  } else {
    send_bytes(analyze::encode_part(part), 0);
  }
  MPI_Bcast(&rc, 1, MPI_INT, 0, MPI_COMM_WORLD);
  return rc;
}

}  // namespace cdma::cli
