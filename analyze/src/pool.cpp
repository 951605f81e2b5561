// The worker pool of an analysis run: threads that take tensors off a bounded queue and run the
// analyzer on them, and the file mappings whose pages they fault in.
#include "run_internal.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>
#include <tuple>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace cdma::analyze::detail {

std::shared_ptr<const Mapping> Mapping::open(const std::filesystem::path& p, std::atomic<std::uint64_t>* unmap_ns,
                                             bool use_pread) {
  const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return nullptr;
  struct stat st {};
  std::shared_ptr<Mapping> m;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
    const auto size = static_cast<std::size_t>(st.st_size);
    if (use_pread) {
      posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);  // a hint for the disk; the page cache is read as is
      return std::shared_ptr<Mapping>(new Mapping(nullptr, fd, size, unmap_ns));
    }
    void* a = mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
    if (a != MAP_FAILED) {
      auto guard = std::make_unique<BusGuard>(a, size);
      if (!guard->guarded()) {  // unguarded, a file that shrinks would kill the process: pread instead
        munmap(a, size);
        return std::shared_ptr<Mapping>(new Mapping(nullptr, fd, size, unmap_ns));
      }
      m = std::shared_ptr<Mapping>(new Mapping(a, -1, size, unmap_ns));
      m->guard_ = std::move(guard);
    }
  }
  ::close(fd);
  return m;
}

void Mapping::check_whole(const std::string& where) const {
  if (!guard_ || !guard_->hit()) return;
  throw formats::Error(where + ": the file shrank while it was read (it was " + std::to_string(size_) +
                       " bytes when mapped; the pages past its new end read as a bus error): did it change during "
                       "the run?");
}

Mapping::~Mapping() {
  if (fd_ >= 0) ::close(fd_);
  guard_.reset();  // before the range is unmapped: a new mapping there must not find this guard
  if (!addr_) return;
  const double t0 = cpu_seconds(CLOCK_THREAD_CPUTIME_ID);
  munmap(addr_, size_);
  unmap_ns_->fetch_add(static_cast<std::uint64_t>((cpu_seconds(CLOCK_THREAD_CPUTIME_ID) - t0) * 1e9));
}

void Mapping::read(std::uint64_t offset, std::span<std::byte> dst, const std::string& where) const {
  std::size_t done = 0;
  while (done < dst.size()) {
    const ssize_t r = ::pread(fd_, dst.data() + done, dst.size() - done, static_cast<off_t>(offset + done));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0)
      throw formats::Error(where + ": cannot read " + std::to_string(dst.size()) + " bytes at file offset " +
                           std::to_string(offset) + ": " + std::strerror(errno));
    if (r == 0)
      throw formats::Error(where + ": the file ends " + std::to_string(dst.size() - done) +
                           " bytes short of the tensor's data (at file offset " + std::to_string(offset + done) +
                           "; did it change during the run?)");
    done += static_cast<std::size_t>(r);
  }
}

// Faults the pages of a mapped tensor in (so that the codecs' time does not include it), in the
// worker's thread. MADV_POPULATE_READ (Linux 5.14+) maps them without touching the data, and maps
// a page-cache folio of 2 MiB with one page-table entry where the kernel can (large files are
// mapped 2 MiB-aligned); measured at half the CPU time of touching one byte per page, which stays
// the fallback (each such fault maps a fault-around window, 64 KiB by default).
void prefault(std::span<const std::byte> d) {
  if (d.empty()) return;
  const auto page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
  const auto begin = reinterpret_cast<std::uintptr_t>(d.data()) & ~(page - 1);
  const auto end = reinterpret_cast<std::uintptr_t>(d.data()) + d.size();
#ifdef MADV_POPULATE_READ
  if (madvise(reinterpret_cast<void*>(begin), end - begin, MADV_POPULATE_READ) == 0) return;
#endif
  std::uint8_t acc = 0;
  const auto* p = reinterpret_cast<const volatile std::uint8_t*>(d.data());
  for (std::size_t i = 0; i < d.size(); i += page) acc = static_cast<std::uint8_t>(acc ^ p[i]);
  acc = static_cast<std::uint8_t>(acc ^ p[d.size() - 1]);
  asm volatile("" : : "r"(acc));
}

// Drops the page-table entries of a mapped tensor once it is analysed, so that this cost is paid
// by the workers in parallel rather than by one final munmap, and the mapped memory stays bounded.
// The page cache keeps the data; a later access simply faults it in again. The range is rounded
// out to 2 MiB (within the mapping): the kernel maps a 2 MiB page-cache folio with one entry, and
// dropping part of one would first split it into 512 (measured: 0.024 -> 0.019 s of CPU per GB on
// the 1.13 GB benchmark trace). A neighbouring tensor's pages in that range, if another worker is
// on it, fault in again (at most one 2 MiB entry at each end).
void release_pages(std::span<const std::byte> d, std::span<const std::byte> mapping) {
  constexpr std::uintptr_t kHuge = std::uintptr_t{2} << 20;
  const auto page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
  const auto map_begin = reinterpret_cast<std::uintptr_t>(mapping.data());
  const auto map_end = (map_begin + mapping.size() + page - 1) & ~(page - 1);
  const auto begin = std::max(reinterpret_cast<std::uintptr_t>(d.data()) & ~(kHuge - 1), map_begin);
  const auto end =
      std::min((reinterpret_cast<std::uintptr_t>(d.data()) + d.size() + kHuge - 1) & ~(kHuge - 1), map_end);
  if (!d.empty() && end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

namespace {
// Runs f, adding the CPU time it takes in this thread to `acc`.
template <class F>
void timed(double& acc, F&& f) {
  const double t0 = cpu_seconds(CLOCK_THREAD_CPUTIME_ID);
  f();
  acc += cpu_seconds(CLOCK_THREAD_CPUTIME_ID) - t0;
}
}  // namespace

WorkerPool::WorkerPool(const TensorAnalyzer& an, const Options& opts, std::vector<TensorResult>& results,
                       unsigned threads)
    : an_(an), opts_(opts), results_(results), spaces_(threads), fault_s_(threads, 0.0) {
  const std::size_t nbuf = 2 * static_cast<std::size_t>(threads);
  buffers_.resize(nbuf);
  for (std::size_t i = 0; i < nbuf; ++i) free_buffers_.push_back(i);
  threads_.reserve(threads);
  try {
    for (unsigned i = 0; i < threads; ++i) threads_.emplace_back(&WorkerPool::work, this, i);
  } catch (const std::system_error& e) {
    close();
    throw formats::Error("cannot start " + std::to_string(threads) + " worker threads (" + e.what() +
                         "); use fewer (-j)");
  }
}

void WorkerPool::close() {
  {
    std::lock_guard lk(mu_);
    closed_ = true;
  }
  cv_jobs_.notify_all();
  for (auto& th : threads_)
    if (th.joinable()) th.join();
}

std::optional<std::size_t> WorkerPool::take_buffer(const std::function<void()>& waiting) {
  std::unique_lock lk(mu_);
  while (free_buffers_.empty() && !abort_) {
    cv_free_.wait_for(lk, std::chrono::milliseconds(100));
    lk.unlock();
    waiting();
    lk.lock();
  }
  if (abort_) return std::nullopt;
  const std::size_t b = free_buffers_.back();
  free_buffers_.pop_back();
  return b;
}

void WorkerPool::submit(Job job) {
  {
    std::lock_guard lk(mu_);
    jobs_.push_back(std::move(job));
  }
  cv_jobs_.notify_one();
}

void WorkerPool::give_back(std::size_t b, std::uint64_t bytes) {
  std::lock_guard lk(mu_);
  free_buffers_.push_back(b);
  bytes_done_ += bytes;
  ++tensors_done_;
}

bool WorkerPool::aborted() {
  std::lock_guard lk(mu_);
  return abort_;
}

std::pair<std::uint64_t, std::uint64_t> WorkerPool::done() {
  std::lock_guard lk(mu_);
  return {bytes_done_, tensors_done_};
}

double WorkerPool::codec_s() const {
  double s = 0;
  for (const auto& ws : spaces_) s += static_cast<double>(ws.codec_ns) * 1e-9;
  return s;
}

double WorkerPool::fault_s() const {
  double s = 0;
  for (double f : fault_s_) s += f;
  return s;
}

void WorkerPool::fail(std::exception_ptr e, std::size_t slot) {
  std::lock_guard lk(mu_);
  if (!error_) {
    error_ = std::move(e);
    error_slot_ = slot;
  }
  abort_ = true;
}

// One job's analysis, errors included: a round-trip mismatch always stops the run; a bad tensor
// is skipped under -k.
void WorkerPool::analyze(Job& job, Workspace& ws, double& fault) {
  try {
    if (job.map && !job.map->direct()) {
      read_and_analyze(job, ws, fault);
    } else if (job.windowed) {
      // A big mapped tensor: one window at a time, its pages dropped once analysed, so that
      // memory stays bounded by the window whatever the tensor's size.
      TensorStream ts(an_, job.meta, ws, job.where);
      const std::uint64_t win = an_.window_elements(job.meta) * formats::dtype_size(job.meta.dtype);
      for (std::uint64_t off = 0; off < job.mapped.size(); off += win) {
        const auto piece = job.mapped.subspan(off, std::min<std::uint64_t>(win, job.mapped.size() - off));
        timed(fault, [&] { prefault(piece); });
        ts.feed(piece);
        timed(fault, [&] { release_pages(piece, job.map->all()); });
      }
      results_[job.slot].variants = ts.finish();
    } else {
      const std::span<const std::byte> buf = job.map ? job.mapped : std::span<const std::byte>(buffers_[job.buffer]);
      results_[job.slot].variants = an_.analyze(buf, job.meta, ws, job.where);
    }
    if (job.map) job.map->check_whole(job.where);  // zeros that stood in for lost pages are no result
  } catch (const VerifyError&) {
    fail(std::current_exception(), job.slot);
  } catch (const formats::Error& e) {
    if (!opts_.keep_going) {
      fail(std::current_exception(), job.slot);
      return;
    }
    std::lock_guard lk(mu_);
    worker_skips_.emplace_back(job.slot, Skipped{object_of(job.meta), e.what()});
  } catch (...) {
    fail(std::current_exception(), job.slot);
  }
}

// A pread job: the tensor's bytes read from the file into the worker's reused buffer. With only
// zero-scan codecs (and no layout permutation) in cache-sized pieces fed to a TensorStream; a
// big tensor in windows; otherwise whole (byte codecs compress blocks of the whole tensor).
void WorkerPool::read_and_analyze(Job& job, Workspace& ws, double& io) {
  constexpr std::uint64_t kPiece = 256 << 10;  // fits the L2 of the x86 cores of the last decade
  const std::uint64_t total = static_cast<std::uint64_t>(job.meta.bytes());
  const std::size_t w = formats::dtype_size(job.meta.dtype);
  const bool stream = job.windowed || (an_.counts_only() && !an_.why_not_windowed(job.meta));
  if (!stream) {
    ws.io.resize(static_cast<std::size_t>(total));
    timed(io, [&] { job.map->read(job.file_offset, ws.io, job.where); });
    results_[job.slot].variants = an_.analyze(ws.io, job.meta, ws, job.where);
    return;
  }
  const std::uint64_t piece =
      an_.counts_only() ? kPiece / w * w : an_.window_elements(job.meta) * w;  // byte codecs: whole windows
  ws.io.resize(static_cast<std::size_t>(std::min(piece, total)));
  TensorStream ts(an_, job.meta, ws, job.where);
  for (std::uint64_t off = 0; off < total; off += piece) {
    const std::span<std::byte> buf(ws.io.data(), static_cast<std::size_t>(std::min(piece, total - off)));
    timed(io, [&] { job.map->read(job.file_offset + off, buf, job.where); });
    ts.feed(buf);
  }
  results_[job.slot].variants = ts.finish();
}

void WorkerPool::work(unsigned id) {
  Workspace& ws = spaces_[id];
  for (;;) {
    Job job;
    {
      std::unique_lock lk(mu_);
      cv_jobs_.wait(lk, [&] { return !jobs_.empty() || closed_; });
      if (jobs_.empty()) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    const bool whole_map = job.map && job.map->direct() && !job.windowed;
    if (whole_map) timed(fault_s_[id], [&] { prefault(job.mapped); });
    analyze(job, ws, fault_s_[id]);
    if (whole_map) timed(fault_s_[id], [&] { release_pages(job.mapped, job.map->all()); });
    const std::size_t bytes = job.map ? static_cast<std::size_t>(job.meta.bytes()) : buffers_[job.buffer].size();
    {
      std::lock_guard lk(mu_);
      bytes_done_ += bytes;
      ++tensors_done_;
      free_buffers_.push_back(job.buffer);
    }
    job.map.reset();
    cv_free_.notify_one();
  }
}

void Reporter::operator()(bool force) {
  if (!hooks_.on_progress) return;
  auto now = Clock::now();
  if (!force && now - last_ < std::chrono::milliseconds(100)) return;
  last_ = now;
  Progress p = totals_;
  std::tie(p.bytes_done, p.tensors_done) = pool_.done();
  hooks_.on_progress(p);
}

}  // namespace cdma::analyze::detail
