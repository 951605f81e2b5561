#include <cdma/analyze/pipeline.hpp>
#include <cdma/formats/trace.hpp>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <system_error>
#include <thread>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace cdma::analyze {

namespace {
using Clock = std::chrono::steady_clock;

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

double cpu_seconds(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

TensorInfo info_of(int trace, const formats::TensorMeta& m) {
  TensorInfo i;
  i.trace = trace;
  i.name = m.name;
  i.iteration = m.iteration;
  i.layer = m.layer;
  i.layer_index = m.layer_index;
  i.op = m.op;
  i.role = m.role;
  i.phase = m.phase;
  i.offload = m.offloaded();
  i.dims = m.dims;
  i.stored_dtype = std::string(formats::to_string(m.dtype));
  i.stored_layout = std::string(formats::to_string(m.layout));
  return i;
}

TensorInfo info_of(int trace, std::size_t row, const formats::StatsRow& s) {
  TensorInfo i;
  i.trace = trace;
  i.name = "stats/" + std::to_string(row);
  i.from_stats = true;
  i.iteration = s.iteration;
  i.layer = s.layer;
  i.layer_index = s.layer_index;
  i.op = s.op;
  i.role = s.role;
  i.offload = s.role == "x";
  i.stored_dtype = s.dtype;
  return i;
}

// A read-only mapping of a whole trace file, shared by the jobs that point into it.
class Mapping {
 public:
  // `unmap_ns` (owned by the run, outliving the mapping) receives the CPU time munmap takes.
  static std::shared_ptr<const Mapping> open(const std::filesystem::path& p, std::atomic<std::uint64_t>* unmap_ns) {
    const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return nullptr;
    struct stat st {};
    std::shared_ptr<Mapping> m;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
      void* a = mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ, MAP_SHARED, fd, 0);
      if (a != MAP_FAILED) m = std::shared_ptr<Mapping>(new Mapping(a, static_cast<std::size_t>(st.st_size), unmap_ns));
    }
    ::close(fd);
    return m;
  }
  ~Mapping() {
    const double t0 = cpu_seconds(CLOCK_THREAD_CPUTIME_ID);
    munmap(addr_, size_);
    unmap_ns_->fetch_add(static_cast<std::uint64_t>((cpu_seconds(CLOCK_THREAD_CPUTIME_ID) - t0) * 1e9));
  }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  // The bytes [offset, offset + n), or an empty span when they are not all in the file.
  std::span<const std::byte> bytes(std::uint64_t offset, std::uint64_t n) const {
    if (offset > size_ || n > size_ - offset) return {};
    return {static_cast<const std::byte*>(addr_) + offset, static_cast<std::size_t>(n)};
  }

 private:
  Mapping(void* a, std::size_t n, std::atomic<std::uint64_t>* u) : addr_(a), size_(n), unmap_ns_(u) {}
  void* addr_;
  std::size_t size_;
  std::atomic<std::uint64_t>* unmap_ns_;
};

// Faults the pages of a mapped tensor in (so that the codecs' time does not include it), in the
// worker's thread. Touching one byte per page lets each fault map a whole fault-around window
// (64 KiB by default); on this kernel that costs about a third of MADV_POPULATE_READ.
void prefault(std::span<const std::byte> d) {
  const auto page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  std::uint8_t acc = 0;
  const auto* p = reinterpret_cast<const volatile std::uint8_t*>(d.data());
  for (std::size_t i = 0; i < d.size(); i += page) acc = static_cast<std::uint8_t>(acc ^ p[i]);
  if (!d.empty()) acc = static_cast<std::uint8_t>(acc ^ p[d.size() - 1]);
  asm volatile("" : : "r"(acc));
}

// Drops the page-table entries of the pages that lie wholly inside a mapped tensor once it is
// analysed, so that this cost is paid by the workers in parallel rather than by one final munmap.
// The page cache keeps the data; a later access would simply fault it in again.
void release_pages(std::span<const std::byte> d) {
  const auto page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
  const auto begin = (reinterpret_cast<std::uintptr_t>(d.data()) + page - 1) & ~(page - 1);
  const auto end = (reinterpret_cast<std::uintptr_t>(d.data()) + d.size()) & ~(page - 1);
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

// A tensor read (or mapped) and waiting for a worker.
struct Job {
  std::size_t slot;
  std::size_t buffer;  // a slot of Shared::buffers; also held by mapped jobs, to bound the work in flight
  std::shared_ptr<const Mapping> map;
  std::span<const std::byte> mapped;
  std::string where;
  formats::TensorMeta meta;  // a copy: the reader may be closed before the job is done
  bool windowed = false;     // mapped and bigger than max_block_bytes: analysed window by window
};

// The reader/worker rendezvous: a queue of jobs and a free list of buffers; at most
// buffers.size() tensors are in memory at once.
struct Shared {
  std::mutex mu;
  std::condition_variable cv_jobs, cv_free;
  std::deque<Job> jobs;
  std::vector<std::size_t> free_buffers;
  std::vector<std::vector<std::byte>> buffers;
  bool closed = false;
  bool abort = false;
  std::exception_ptr error;
  std::uint64_t bytes_done = 0, tensors_done = 0;
  std::vector<std::pair<std::size_t, Skipped>> worker_skips;  // slot, what
};

std::string object_of(const formats::TensorMeta& m) { return "/tensors/" + m.name; }
}  // namespace

Analysis run_analysis(const std::vector<std::filesystem::path>& paths, Options opts, const RunHooks& hooks) {
  const auto t_start = Clock::now();
  const double cpu_start = cpu_seconds(CLOCK_PROCESS_CPUTIME_ID);
  opts.validate();
  Analysis out;
  out.options = opts;
  const TensorAnalyzer an(opts);
  out.variants = an.variants();
  out.codec_names = an.codec_names();
  if (opts.threads > kMaxThreads)
    throw formats::Error("threads " + std::to_string(opts.threads) + " is more than " + std::to_string(kMaxThreads) +
                         " (0 = one per core)");
  unsigned threads = opts.threads ? opts.threads : std::clamp(std::thread::hardware_concurrency(), 1u, kMaxThreads);
  out.stats.threads = threads;

  // Open every trace and list its work (metadata only), so that the totals are known up front.
  std::vector<std::unique_ptr<formats::TraceReader>> readers(paths.size());
  std::vector<std::vector<const formats::TensorMeta*>> todo(paths.size());
  std::vector<std::vector<formats::StatsRow>> stats(paths.size());
  Progress prog;
  // Byte totals of everything analysed must stay far from 2^64 (group sums, ratios): at most 2^62.
  std::uint64_t stats_bytes = 0;  // elements of /stats rows (x their width <= 4: checked per row too)
  auto add_checked = [](std::uint64_t& total, std::uint64_t v) {
    constexpr std::uint64_t kMax = std::uint64_t{1} << 62;
    if (v > kMax || total > kMax - v)
      throw formats::Error("the traces describe more than 2^62 bytes of tensors in total; analyse fewer at once");
    total += v;
  };
  for (std::size_t t = 0; t < paths.size(); ++t) {
    TraceSummary ts;
    ts.index = static_cast<int>(t);
    ts.path = paths[t].string();
    try {
      formats::ReaderOptions ro;
      ro.skip_bad_tensors = opts.keep_going;  // -k leaves out a bad tensor, not the whole file
      readers[t] = std::make_unique<formats::TraceReader>(paths[t], ro);
      const auto& r = *readers[t];
      ts.opened = true;
      for (const auto& k : r.skipped_tensors()) ts.skipped.push_back({k.object, k.reason});
      ts.model = r.attrs().model;
      ts.source = r.attrs().source;
      ts.complete = r.attrs().complete;
      ts.warnings = r.warnings();
      ts.offload_attribute = std::any_of(r.tensors().begin(), r.tensors().end(),
                                         [](const formats::TensorMeta& m) { return m.offload.has_value(); });
      for (const auto& m : r.tensors()) {
        if (!opts.filters.pass(m.iteration, m.layer, m.op, m.role, m.offloaded())) {
          ++ts.filtered_out;
          if (opts.filters.offloaded_only && !m.offloaded()) ++ts.not_offloaded;
          continue;
        }
        // Limits are checked here, before any work: a tensor the analyzer cannot window.
        if (an.needs_windows(m)) {
          if (auto why = an.why_not_windowed(m)) {
            formats::TraceError e(ts.path, object_of(m), ts.path + ": " + object_of(m) + ": " + *why);
            if (!opts.keep_going) throw e;
            ts.skipped.push_back({object_of(m), e.what()});
            continue;
          }
        }
        todo[t].push_back(&m);
        add_checked(prog.bytes_total, static_cast<std::uint64_t>(m.bytes()));
        ++prog.tensors_total;
      }
      if (r.has_stats()) stats[t] = r.stats();
      for (const auto& row : stats[t]) {
        if (row.elements > 0) add_checked(stats_bytes, static_cast<std::uint64_t>(row.elements));
      }
    } catch (const formats::Error& e) {
      if (!opts.keep_going) throw;
      readers[t].reset();
      ts.opened = false;
      ts.skipped.push_back({"/", e.what()});
    }
    out.traces.push_back(std::move(ts));
  }

  // Result slots in final order: per trace, its tensors then its /stats rows.
  for (std::size_t t = 0; t < paths.size(); ++t) {
    for (const auto* m : todo[t]) out.tensors.push_back({info_of(static_cast<int>(t), *m), {}});
  }
  std::vector<std::size_t> first_slot(paths.size() + 1, 0);
  {
    std::size_t s = 0;
    for (std::size_t t = 0; t < paths.size(); ++t) {
      first_slot[t] = s;
      s += todo[t].size();
    }
    first_slot[paths.size()] = s;
  }
  std::vector<bool> dropped(out.tensors.size(), false);
  std::vector<std::vector<TensorResult>> stats_results(paths.size());  // workers write out.tensors

  Shared sh;
  const std::size_t nbuf = 2 * static_cast<std::size_t>(threads);
  sh.buffers.resize(nbuf);
  for (std::size_t i = 0; i < nbuf; ++i) sh.free_buffers.push_back(i);
  std::vector<Workspace> spaces(threads);
  std::vector<double> fault_s(threads, 0.0);
  std::atomic<std::uint64_t> unmap_ns{0};

  auto worker = [&](unsigned id) {
    Workspace& ws = spaces[id];
    for (;;) {
      Job job;
      {
        std::unique_lock lk(sh.mu);
        sh.cv_jobs.wait(lk, [&] { return !sh.jobs.empty() || sh.closed; });
        if (sh.jobs.empty()) return;
        job = std::move(sh.jobs.front());
        sh.jobs.pop_front();
      }
      std::span<const std::byte> buf = sh.buffers[job.buffer];
      if (job.map && !job.windowed) {
        const double t0 = cpu_seconds(CLOCK_THREAD_CPUTIME_ID);
        prefault(job.mapped);
        fault_s[id] += cpu_seconds(CLOCK_THREAD_CPUTIME_ID) - t0;
        buf = job.mapped;
      }
      std::optional<Skipped> skip;
      try {
        if (job.windowed) {
          // A big mapped tensor: one window at a time, its pages dropped once analysed, so that
          // memory stays bounded by the window whatever the tensor's size.
          buf = job.mapped;
          TensorStream ts(an, job.meta, ws, job.where);
          const std::uint64_t win = an.window_elements(job.meta) * formats::dtype_size(job.meta.dtype);
          for (std::uint64_t off = 0; off < job.mapped.size(); off += win) {
            const auto piece = job.mapped.subspan(off, std::min<std::uint64_t>(win, job.mapped.size() - off));
            double t0 = cpu_seconds(CLOCK_THREAD_CPUTIME_ID);
            prefault(piece);
            fault_s[id] += cpu_seconds(CLOCK_THREAD_CPUTIME_ID) - t0;
            ts.feed(piece);
            t0 = cpu_seconds(CLOCK_THREAD_CPUTIME_ID);
            release_pages(piece);
            fault_s[id] += cpu_seconds(CLOCK_THREAD_CPUTIME_ID) - t0;
          }
          out.tensors[job.slot].variants = ts.finish();
        } else {
          out.tensors[job.slot].variants = an.analyze(buf, job.meta, ws, job.where);
        }
      } catch (const VerifyError&) {
        std::lock_guard lk(sh.mu);
        if (!sh.error) sh.error = std::current_exception();
        sh.abort = true;
      } catch (const formats::Error& e) {
        if (opts.keep_going) {
          skip = Skipped{object_of(job.meta), e.what()};
        } else {
          std::lock_guard lk(sh.mu);
          if (!sh.error) sh.error = std::current_exception();
          sh.abort = true;
        }
      } catch (...) {
        std::lock_guard lk(sh.mu);
        if (!sh.error) sh.error = std::current_exception();
        sh.abort = true;
      }
      if (job.map && !job.windowed) {
        const double t0 = cpu_seconds(CLOCK_THREAD_CPUTIME_ID);
        release_pages(job.mapped);
        fault_s[id] += cpu_seconds(CLOCK_THREAD_CPUTIME_ID) - t0;
      }
      {
        std::lock_guard lk(sh.mu);
        if (skip) sh.worker_skips.emplace_back(job.slot, std::move(*skip));
        sh.bytes_done += buf.size();
        ++sh.tensors_done;
        sh.free_buffers.push_back(job.buffer);
      }
      job.map.reset();
      sh.cv_free.notify_one();
    }
  };

  std::vector<std::thread> pool;
  pool.reserve(threads);
  try {
    for (unsigned i = 0; i < threads; ++i) pool.emplace_back(worker, i);
  } catch (const std::system_error& e) {
    {
      std::lock_guard lk(sh.mu);
      sh.closed = true;
    }
    sh.cv_jobs.notify_all();
    for (auto& th : pool) th.join();
    throw formats::Error("cannot start " + std::to_string(threads) + " worker threads (" + e.what() +
                         "); use fewer (-j)");
  }

  auto last_report = Clock::now();
  auto report = [&](bool force) {
    if (!hooks.on_progress) return;
    auto now = Clock::now();
    if (!force && now - last_report < std::chrono::milliseconds(100)) return;
    last_report = now;
    Progress p = prog;
    {
      std::lock_guard lk(sh.mu);
      p.bytes_done = sh.bytes_done;
      p.tensors_done = sh.tensors_done;
    }
    hooks.on_progress(p);
  };
  auto stopped = [&] { return hooks.stop && hooks.stop->load(std::memory_order_relaxed); };

  // The reader: this thread, the only one that touches HDF5.
  std::exception_ptr reader_error;
  Workspace reader_ws;  // for big tensors analysed in this thread
  double read_time = 0;
  // Anything unexpected here must still let the workers finish and be joined.
  try {
    for (std::size_t t = 0; t < paths.size() && !reader_error; ++t) {
      if (!readers[t]) continue;
      const auto& r = *readers[t];
      std::shared_ptr<const Mapping> map = opts.zero_copy ? Mapping::open(paths[t], &unmap_ns) : nullptr;
      for (std::size_t j = 0; j < todo[t].size(); ++j) {
        if (stopped()) break;
        const formats::TensorMeta& m = *todo[t][j];
        std::size_t b = 0;
        {
          std::unique_lock lk(sh.mu);
          while (sh.free_buffers.empty() && !sh.abort) {
            sh.cv_free.wait_for(lk, std::chrono::milliseconds(100));
            lk.unlock();
            report(false);
            lk.lock();
          }
          if (sh.abort) break;
          b = sh.free_buffers.back();
          sh.free_buffers.pop_back();
        }
        const std::size_t slot = first_slot[t] + j;
        auto& buf = sh.buffers[b];
        bool ok = true;
        std::span<const std::byte> mapped;
        try {
          if (map) {
            if (auto off = r.raw_offset(m)) mapped = map->bytes(*off, static_cast<std::uint64_t>(m.bytes()));
          }
        } catch (const formats::Error&) {
          mapped = {};  // read() below reports the problem
        }
        const bool big = an.needs_windows(m);
        if (!mapped.empty()) {
          {
            std::lock_guard lk(sh.mu);
            sh.jobs.push_back(Job{slot, b, map, mapped, paths[t].string() + ": " + object_of(m), m, big});
          }
          sh.cv_jobs.notify_one();
          ++out.traces[t].tensors;
          ++out.stats.mapped_tensors;
          out.stats.bytes += static_cast<std::uint64_t>(m.bytes());
          report(false);
          continue;
        }
        try {
          if (big) {
            // A big tensor that cannot be mapped: read and analysed here, window by window (HDF5
            // is serial, so this thread is the one that may read it); the workers go on meanwhile.
            const std::string where = paths[t].string() + ": " + object_of(m);
            TensorStream ts(an, m, reader_ws, where);
            const std::size_t w = formats::dtype_size(m.dtype);
            const std::uint64_t win = an.window_elements(m), total = static_cast<std::uint64_t>(m.elements());
            for (std::uint64_t first = 0; first < total && !stopped(); first += win) {
              buf.resize(static_cast<std::size_t>(std::min(win, total - first) * w));
              const double t0 = cpu_seconds(CLOCK_THREAD_CPUTIME_ID);
              r.read_elements(m, first, buf);
              read_time += cpu_seconds(CLOCK_THREAD_CPUTIME_ID) - t0;
              ts.feed(buf);
              report(false);
            }
            if (stopped()) {
              ok = false;
            } else {
              out.tensors[slot].variants = ts.finish();
              ++out.traces[t].tensors;
              out.stats.bytes += static_cast<std::uint64_t>(m.bytes());
            }
            std::lock_guard lk(sh.mu);
            sh.free_buffers.push_back(b);
            sh.bytes_done += static_cast<std::uint64_t>(m.bytes());
            ++sh.tensors_done;
            if (!ok) dropped[slot] = true;
            continue;
          }
          buf.resize(static_cast<std::size_t>(m.bytes()));
          const double t0 = cpu_seconds(CLOCK_THREAD_CPUTIME_ID);
          r.read_into(m, buf);
          read_time += cpu_seconds(CLOCK_THREAD_CPUTIME_ID) - t0;
        } catch (const VerifyError&) {
          reader_error = std::current_exception();
          ok = false;
        } catch (const formats::Error& e) {
          if (!opts.keep_going) {
            reader_error = std::current_exception();
          } else {
            out.traces[t].skipped.push_back({object_of(m), e.what()});
          }
          ok = false;
        } catch (const std::bad_alloc&) {
          formats::TraceError e(paths[t].string(), object_of(m),
                                paths[t].string() + ": " + object_of(m) + ": cannot hold its " +
                                    std::to_string(m.bytes()) + " bytes in memory");
          if (!opts.keep_going) {
            reader_error = std::make_exception_ptr(e);
          } else {
            out.traces[t].skipped.push_back({object_of(m), e.what()});
          }
          ok = false;
        }
        if (!ok) {
          dropped[slot] = true;
          std::lock_guard lk(sh.mu);
          sh.free_buffers.push_back(b);
          sh.bytes_done += static_cast<std::uint64_t>(m.bytes());
          ++sh.tensors_done;
          if (reader_error) break;
          continue;
        }
        {
          std::lock_guard lk(sh.mu);
          sh.jobs.push_back(Job{slot, b, nullptr, {}, paths[t].string() + ": " + object_of(m), m});
        }
        sh.cv_jobs.notify_one();
        ++out.traces[t].tensors;
        out.stats.bytes += static_cast<std::uint64_t>(m.bytes());
        report(false);
      }
      if (stopped() || sh.abort) break;
      // /stats rows: cheap, analysed here.
      for (std::size_t i = 0; i < stats[t].size() && !reader_error; ++i) {
        const auto& row = stats[t][i];
        if (!opts.filters.pass(row.iteration, row.layer, row.op, row.role, row.role == "x")) {
          ++out.traces[t].filtered_out;
          if (opts.filters.offloaded_only && row.role != "x") ++out.traces[t].not_offloaded;
          continue;
        }
        try {
          stats_results[t].push_back({info_of(static_cast<int>(t), i, row), an.analyze_stats(row)});
          ++out.traces[t].stats_rows;
        } catch (const formats::Error& e) {
          std::string obj = "/stats[" + std::to_string(i) + "]";
          if (!opts.keep_going) {
            reader_error = std::make_exception_ptr(
                formats::TraceError(paths[t].string(), obj, paths[t].string() + ": " + e.what()));
          } else {
            out.traces[t].skipped.push_back({obj, e.what()});
          }
        }
      }
      readers[t].reset();  // release the file as soon as it is done
    }
  } catch (...) {
    reader_error = std::current_exception();
  }
  {
    std::lock_guard lk(sh.mu);
    sh.closed = true;
  }
  sh.cv_jobs.notify_all();
  for (auto& th : pool) th.join();
  if (sh.error) std::rethrow_exception(sh.error);
  if (reader_error) std::rethrow_exception(reader_error);
  out.interrupted = stopped();

  // Tensors that were skipped or never reached (interrupted) leave the results.
  std::sort(sh.worker_skips.begin(), sh.worker_skips.end(), [](auto& a, auto& b) { return a.first < b.first; });
  for (auto& [slot, s] : sh.worker_skips) {
    dropped[slot] = true;
    out.traces[static_cast<std::size_t>(out.tensors[slot].info.trace)].skipped.push_back(std::move(s));
    --out.traces[static_cast<std::size_t>(out.tensors[slot].info.trace)].tensors;
  }
  std::vector<TensorResult> kept;
  kept.reserve(out.tensors.size());
  for (std::size_t t = 0; t < paths.size(); ++t) {
    for (std::size_t i = first_slot[t]; i < first_slot[t + 1]; ++i) {
      if (dropped[i] || out.tensors[i].variants.empty()) continue;  // skipped, or not reached
      kept.push_back(std::move(out.tensors[i]));
    }
    for (auto& r : stats_results[t]) kept.push_back(std::move(r));
  }
  out.tensors = std::move(kept);

  for (const auto& ws : spaces) out.stats.codec_s += static_cast<double>(ws.codec_ns) * 1e-9;
  out.stats.codec_s += static_cast<double>(reader_ws.codec_ns) * 1e-9;
  out.stats.read_s = read_time;
  for (double f : fault_s) out.stats.read_s += f;
  out.stats.read_s += static_cast<double>(unmap_ns.load()) * 1e-9;
  out.stats.cpu_s = cpu_seconds(CLOCK_PROCESS_CPUTIME_ID) - cpu_start;
  out.stats.wall_s = seconds(Clock::now() - t_start);
  report(true);
  return out;
}

}  // namespace cdma::analyze
