// Internals of run_analysis (pipeline.cpp), in four parts that each fit in one file:
//   plan.cpp    opens the traces and lists the work (which tensors, which /stats rows, result slots);
//   pool.cpp    the worker threads and their bounded queue of tensors in flight;
//   reader.cpp  the reader loop, the only thread that touches HDF5;
//   pipeline.cpp  run_analysis itself: the three above in order, then assembly of the results.
#pragma once

#include <cdma/analyze/pipeline.hpp>
#include <cdma/formats/trace.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <deque>
#include <exception>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace cdma::analyze::detail {

using Clock = std::chrono::steady_clock;

inline double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

inline double cpu_seconds(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

inline std::string object_of(const formats::TensorMeta& m) { return "/tensors/" + m.name; }

TensorInfo info_of(int trace, const formats::TensorMeta& m);
TensorInfo info_of(int trace, std::size_t row, const formats::StatsRow& s);

// Guards a mapped range against SIGBUS (bus_guard.cpp says how and why): an access to a page
// that the file no longer has reads zeros and sets hit() instead of killing the process.
// guarded() is false when no guard could be set up (then the range must not be mapped).
class BusGuard {
 public:
  BusGuard(const void* begin, std::size_t size);
  ~BusGuard();
  BusGuard(const BusGuard&) = delete;
  BusGuard& operator=(const BusGuard&) = delete;
  bool guarded() const noexcept { return slot_ >= 0; }
  bool hit() const noexcept { return hit_.load(std::memory_order_acquire); }

 private:
  std::atomic<bool> hit_{false};
  int slot_ = -1;
};

// A trace file opened for the workers, shared by the jobs that read from it: mapped read-only
// (direct()), or kept open for pread() (ReadMode::pread, and where the mapping cannot be guarded).
class Mapping {
 public:
  // Null when the file cannot be opened or mapped (the caller then reads through HDF5).
  // `unmap_ns` (owned by the run, outliving the mapping) receives the CPU time munmap takes.
  static std::shared_ptr<const Mapping> open(const std::filesystem::path& p, std::atomic<std::uint64_t>* unmap_ns,
                                             bool use_pread);
  ~Mapping();
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  bool direct() const noexcept { return addr_ != nullptr; }
  bool contains(std::uint64_t offset, std::uint64_t n) const noexcept { return offset <= size_ && n <= size_ - offset; }
  // The bytes [offset, offset + n), or an empty span when they are not all in the file (or the
  // file is not mapped).
  std::span<const std::byte> bytes(std::uint64_t offset, std::uint64_t n) const {
    if (!addr_ || !contains(offset, n)) return {};
    return {static_cast<const std::byte*>(addr_) + offset, static_cast<std::size_t>(n)};
  }
  // pread()s dst.size() bytes at `offset`; throws formats::Error naming `where` on a failed or
  // short read (the file shrank).
  void read(std::uint64_t offset, std::span<std::byte> dst, const std::string& where) const;
  // The whole mapped file (empty for a pread handle).
  std::span<const std::byte> all() const noexcept { return bytes(0, size_); }
  // Throws the error of a short pread (formats::Error naming `where`) when the file shrank under
  // the mapping: some bytes read from it since it was mapped were zeros standing in for lost pages.
  // A job calls it once it is done with the bytes.
  void check_whole(const std::string& where) const;

 private:
  Mapping(void* a, int fd, std::size_t n, std::atomic<std::uint64_t>* u) : addr_(a), fd_(fd), size_(n), unmap_ns_(u) {}
  void* addr_;
  int fd_;
  std::size_t size_;
  std::atomic<std::uint64_t>* unmap_ns_;
  std::unique_ptr<BusGuard> guard_;  // of a mapping; released before the range is unmapped
};

// Faults the pages of a mapped span in / drops their page-table entries (pool.cpp says why).
void prefault(std::span<const std::byte> d);
void release_pages(std::span<const std::byte> d, std::span<const std::byte> mapping);

// The work of a run, listed from metadata before any tensor is read (plan.cpp).
struct Plan {
  std::vector<std::unique_ptr<formats::TraceReader>> readers;  // null: the trace could not be opened
  std::vector<std::vector<const formats::TensorMeta*>> todo;   // per trace, the tensors to analyse
  std::vector<std::vector<formats::StatsRow>> stats;           // per trace, its /stats rows
  std::vector<std::size_t> first_slot;  // per trace, its first slot in Analysis::tensors; [n] = total
  Progress prog;                        // the totals (of this part's range, once set_range() ran)
  // The slots this run analyses (run_part: one part's range); the others are left alone.
  std::size_t lo = 0, hi = static_cast<std::size_t>(-1);

  // The position in run order of trace t's slot s, and of trace t's /stats rows (after its
  // tensors, before the next trace's): tensors and /stats rows of all traces, one number each.
  std::uint64_t order_of_slot(std::size_t t, std::size_t s) const { return 1 + s + t; }
  std::uint64_t order_of_stats(std::size_t t) const { return 1 + first_slot[t + 1] + t; }
  // The trace that holds slot s.
  std::size_t trace_of_slot(std::size_t s) const;
};

// Opens every trace of `paths` and lists its work; fills out.traces and one slot of out.tensors
// per tensor to analyse (info only). Throws as run_analysis does for a file it cannot open.
Plan plan_run(const std::vector<std::filesystem::path>& paths, const Options& opts, const TensorAnalyzer& an,
              Analysis& out);

// A tensor read (or mapped) and waiting for a worker.
struct Job {
  std::size_t slot;
  std::size_t buffer;  // a slot of WorkerPool's buffers; also held by mapped jobs, to bound the work in flight
  std::shared_ptr<const Mapping> map;
  std::span<const std::byte> mapped;
  std::string where;
  formats::TensorMeta meta;       // a copy: the reader may be closed before the job is done
  bool windowed = false;          // mapped and bigger than max_block_bytes: analysed window by window
  std::uint64_t file_offset = 0;  // where the tensor's bytes start in the file (pread jobs: map && !map->direct())
};

// The worker threads and the reader/worker rendezvous: a queue of jobs and a free list of
// 2 x threads buffers, so that at most that many tensors are in memory at once (pool.cpp).
class WorkerPool {
 public:
  // Starts `threads` workers that write their results into `results[job.slot]`. Throws
  // formats::Error when the threads cannot be started.
  WorkerPool(const TensorAnalyzer& an, const Options& opts, std::vector<TensorResult>& results, unsigned threads);
  ~WorkerPool() { close(); }
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // A free buffer's index, waiting for one (calling `waiting` every 100 ms meanwhile); nullopt
  // once a worker has failed.
  std::optional<std::size_t> take_buffer(const std::function<void()>& waiting);
  std::vector<std::byte>& buffer(std::size_t b) { return buffers_[b]; }
  // Queues a job for the workers (they give its buffer back).
  void submit(Job job);
  // Gives back a buffer the reader took but did not submit, counting `bytes` and one tensor as done.
  void give_back(std::size_t b, std::uint64_t bytes);
  bool aborted();
  // Bytes and tensors done so far.
  std::pair<std::uint64_t, std::uint64_t> done();
  // Lets the workers finish the queue and joins them (idempotent).
  void close();

  // After close(): the first error a worker met, the tensors it skipped (slot, what; -k), its
  // codec and page-fault times.
  std::exception_ptr error() const { return error_; }
  std::size_t error_slot() const { return error_slot_; }  // the slot of error()'s job
  std::vector<std::pair<std::size_t, Skipped>>& worker_skips() { return worker_skips_; }
  double codec_s() const;
  double fault_s() const;

 private:
  void work(unsigned id);
  void analyze(Job& job, Workspace& ws, double& fault);
  void read_and_analyze(Job& job, Workspace& ws, double& io);
  void fail(std::exception_ptr e, std::size_t slot);

  const TensorAnalyzer& an_;
  const Options& opts_;
  std::vector<TensorResult>& results_;
  std::mutex mu_;
  std::condition_variable cv_jobs_, cv_free_;
  std::deque<Job> jobs_;
  std::vector<std::size_t> free_buffers_;
  std::vector<std::vector<std::byte>> buffers_;
  bool closed_ = false;
  bool abort_ = false;
  std::exception_ptr error_;
  std::size_t error_slot_ = 0;
  std::uint64_t bytes_done_ = 0, tensors_done_ = 0;
  std::vector<std::pair<std::size_t, Skipped>> worker_skips_;
  std::vector<Workspace> spaces_;
  std::vector<double> fault_s_;
  std::vector<std::thread> threads_;
};

// Calls RunHooks::on_progress at most every 100 ms (or when forced) with the pool's counts.
class Reporter {
 public:
  Reporter(const RunHooks& hooks, const Progress& totals, WorkerPool& pool)
      : hooks_(hooks), totals_(totals), pool_(pool) {}
  void operator()(bool force);

 private:
  const RunHooks& hooks_;
  const Progress& totals_;
  WorkerPool& pool_;
  Clock::time_point last_ = Clock::now();
};

// What the reader loop leaves for the assembly (reader.cpp).
struct SlotSkipped {
  std::size_t slot;
  Skipped skip;
};

struct ReadResult {
  std::exception_ptr error;                              // the first error that stops the run
  std::uint64_t error_order = 0;                         // its position (Plan::order_of_slot / _stats)
  std::vector<bool> dropped;                             // per slot: skipped or not finished (interrupted)
  std::vector<std::vector<TensorResult>> stats_results;  // per trace, its analysed /stats rows
  std::vector<std::vector<SlotSkipped>> read_skips;      // per trace, tensors the reader skipped (-k)
  std::vector<std::vector<Skipped>> stats_skips;         // per trace, /stats rows skipped (-k)
  Workspace ws;                                          // for big tensors analysed in the reader's thread
  double read_s = 0;                                     // CPU time in TraceReader::read_into / read_elements
};

// The reader: reads (or maps) every planned tensor in order and hands it to the pool; analyses
// big unmappable tensors and /stats rows itself; only the slots of [plan.lo, plan.hi), but every
// trace's /stats rows. Counts into out.traces and out.stats; skips go to the ReadResult. Errors are
// returned in ReadResult::error, never thrown, so that the workers can still be joined.
ReadResult read_all(const std::vector<std::filesystem::path>& paths, const Options& opts, const TensorAnalyzer& an,
                    const RunHooks& hooks, Plan& plan, WorkerPool& pool, Reporter& report,
                    std::atomic<std::uint64_t>& unmap_ns, Analysis& out);

}  // namespace cdma::analyze::detail
