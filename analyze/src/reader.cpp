// The reader loop of an analysis run: this thread, the only one that touches HDF5, reads (or maps)
// the planned tensors in order and hands them to the worker pool.
#include "run_internal.hpp"

#include <algorithm>
#include <new>

namespace cdma::analyze::detail {

namespace {

class Reader {
 public:
  Reader(const std::vector<std::filesystem::path>& paths, const Options& opts, const TensorAnalyzer& an,
         const RunHooks& hooks, Plan& plan, WorkerPool& pool, Reporter& report, std::atomic<std::uint64_t>& unmap_ns,
         Analysis& out)
      : paths_(paths),
        opts_(opts),
        an_(an),
        hooks_(hooks),
        plan_(plan),
        pool_(pool),
        report_(report),
        unmap_ns_(unmap_ns),
        out_(out) {
    res_.dropped.assign(out.tensors.size(), false);
    res_.stats_results.resize(paths.size());
    res_.read_skips.resize(paths.size());
    res_.stats_skips.resize(paths.size());
  }

  ReadResult run() {
    // Anything unexpected here must still let the workers finish and be joined.
    try {
      for (std::size_t t = 0; t < paths_.size() && !res_.error; ++t) {
        if (!plan_.readers[t]) continue;
        if (!read_trace(t)) break;
      }
    } catch (...) {
      res_.error = std::current_exception();
      res_.error_order = pos_;
    }
    return std::move(res_);
  }

 private:
  bool stopped() const { return hooks_.stop && hooks_.stop->load(std::memory_order_relaxed); }
  std::string where(std::size_t t, const formats::TensorMeta& m) const {
    return paths_[t].string() + ": " + object_of(m);
  }

  // Trace t's tensors (those of the run's range), then its /stats rows. False when the run stops
  // here.
  bool read_trace(std::size_t t) {
    const std::size_t first = plan_.first_slot[t], n = plan_.todo[t].size();
    const std::size_t j0 = std::clamp(plan_.lo, first, first + n) - first;
    const std::size_t j1 = std::clamp(plan_.hi, first, first + n) - first;
    std::shared_ptr<const Mapping> map = opts_.read != ReadMode::hdf5 && j0 < j1
                                             ? Mapping::open(paths_[t], &unmap_ns_, opts_.read == ReadMode::pread)
                                             : nullptr;
    if (map && hooks_.on_opened) hooks_.on_opened(paths_[t]);
    for (std::size_t j = j0; j < j1; ++j) {
      if (stopped() || !read_tensor(t, j, map)) break;
    }
    if (stopped() || pool_.aborted()) return false;
    read_stats(t);
    plan_.readers[t].reset();  // release the file as soon as it is done
    return true;
  }

  // Tensor j of trace t: mapped, read or (big and unmappable) analysed here. False when the run
  // stops (a worker failed, or an error without -k).
  bool read_tensor(std::size_t t, std::size_t j, const std::shared_ptr<const Mapping>& map) {
    const formats::TensorMeta& m = *plan_.todo[t][j];
    const auto b = pool_.take_buffer([&] { report_(false); });
    if (!b) return false;
    const std::size_t slot = plan_.first_slot[t] + j;
    pos_ = plan_.order_of_slot(t, slot);
    std::span<const std::byte> mapped;
    std::optional<std::uint64_t> off;
    try {
      if (map) {
        off = plan_.readers[t]->raw_offset(m);
        if (off) mapped = map->bytes(*off, static_cast<std::uint64_t>(m.bytes()));
      }
    } catch (const formats::Error&) {
      off.reset();
      mapped = {};  // read() below reports the problem
    }
    const bool big = an_.needs_windows(m);
    const bool by_pread =
        map && !map->direct() && off && m.bytes() > 0 && map->contains(*off, static_cast<std::uint64_t>(m.bytes()));
    if (!mapped.empty() || by_pread) {
      pool_.submit(Job{slot, *b, map, mapped, where(t, m), m, big, by_pread ? *off : 0});
      ++out_.stats.mapped_tensors;
      submitted(t, m);
      return true;
    }
    bool ok = true;
    try {
      if (big) return read_big(t, m, slot, *b);
      auto& buf = pool_.buffer(*b);
      buf.resize(static_cast<std::size_t>(m.bytes()));
      const double t0 = cpu_seconds(CLOCK_THREAD_CPUTIME_ID);
      plan_.readers[t]->read_into(m, buf);
      res_.read_s += cpu_seconds(CLOCK_THREAD_CPUTIME_ID) - t0;
    } catch (const VerifyError&) {
      res_.error = std::current_exception();
      res_.error_order = pos_;
      ok = false;
    } catch (const formats::Error& e) {
      skip_or_stop(t, slot, m, std::current_exception(), e.what());
      ok = false;
    } catch (const std::bad_alloc&) {
      formats::TraceError e(paths_[t].string(), object_of(m),
                            where(t, m) + ": cannot hold its " + std::to_string(m.bytes()) + " bytes in memory");
      skip_or_stop(t, slot, m, std::make_exception_ptr(e), e.what());
      ok = false;
    }
    if (!ok) {
      res_.dropped[slot] = true;
      pool_.give_back(*b, static_cast<std::uint64_t>(m.bytes()));
      return !res_.error;
    }
    pool_.submit(Job{slot, *b, nullptr, {}, where(t, m), m});
    submitted(t, m);
    return true;
  }

  void submitted(std::size_t t, const formats::TensorMeta& m) {
    ++out_.traces[t].tensors;
    out_.stats.bytes += static_cast<std::uint64_t>(m.bytes());
    report_(false);
  }

  void skip_or_stop(std::size_t t, std::size_t slot, const formats::TensorMeta& m, std::exception_ptr e,
                    const char* what) {
    if (!opts_.keep_going) {
      res_.error = std::move(e);
      res_.error_order = pos_;
    } else {
      res_.read_skips[t].push_back({slot, {object_of(m), what}});
    }
  }

  // A big tensor that cannot be mapped: read and analysed here, window by window (HDF5 is
  // serial, so this thread is the one that may read it); the workers go on meanwhile. Errors
  // propagate to read_tensor, which gives buffer `b` back.
  bool read_big(std::size_t t, const formats::TensorMeta& m, std::size_t slot, std::size_t b) {
    auto& buf = pool_.buffer(b);
    TensorStream ts(an_, m, res_.ws, where(t, m));
    const std::size_t w = formats::dtype_size(m.dtype);
    const std::uint64_t win = an_.window_elements(m), total = static_cast<std::uint64_t>(m.elements());
    for (std::uint64_t first = 0; first < total && !stopped(); first += win) {
      buf.resize(static_cast<std::size_t>(std::min(win, total - first) * w));
      const double t0 = cpu_seconds(CLOCK_THREAD_CPUTIME_ID);
      plan_.readers[t]->read_elements(m, first, buf);
      res_.read_s += cpu_seconds(CLOCK_THREAD_CPUTIME_ID) - t0;
      ts.feed(buf);
      report_(false);
    }
    if (stopped()) {
      res_.dropped[slot] = true;
    } else {
      out_.tensors[slot].variants = ts.finish();
      ++out_.traces[t].tensors;
      out_.stats.bytes += static_cast<std::uint64_t>(m.bytes());
    }
    pool_.give_back(b, static_cast<std::uint64_t>(m.bytes()));
    return true;
  }

  // /stats rows: cheap, analysed here.
  void read_stats(std::size_t t) {
    const auto& rows = plan_.stats[t];
    auto& ts = out_.traces[t];
    pos_ = plan_.order_of_stats(t);
    for (std::size_t i = 0; i < rows.size() && !res_.error; ++i) {
      const auto& row = rows[i];
      if (!opts_.filters.pass(row.iteration, row.layer, row.op, row.role, row.role == "x")) {
        ++ts.filtered_out;
        if (opts_.filters.offloaded_only && row.role != "x") ++ts.not_offloaded;
        continue;
      }
      try {
        res_.stats_results[t].push_back({info_of(static_cast<int>(t), i, row), an_.analyze_stats(row)});
        ++ts.stats_rows;
      } catch (const formats::Error& e) {
        std::string obj = "/stats[" + std::to_string(i) + "]";
        if (!opts_.keep_going) {
          res_.error = std::make_exception_ptr(
              formats::TraceError(paths_[t].string(), obj, paths_[t].string() + ": " + e.what()));
          res_.error_order = pos_;
        } else {
          res_.stats_skips[t].push_back({obj, e.what()});
        }
      }
    }
  }

  const std::vector<std::filesystem::path>& paths_;
  const Options& opts_;
  const TensorAnalyzer& an_;
  const RunHooks& hooks_;
  Plan& plan_;
  WorkerPool& pool_;
  Reporter& report_;
  std::atomic<std::uint64_t>& unmap_ns_;
  Analysis& out_;
  ReadResult res_;
  std::uint64_t pos_ = 0;  // the run-order position of the tensor or /stats rows being read
};

}  // namespace

ReadResult read_all(const std::vector<std::filesystem::path>& paths, const Options& opts, const TensorAnalyzer& an,
                    const RunHooks& hooks, Plan& plan, WorkerPool& pool, Reporter& report,
                    std::atomic<std::uint64_t>& unmap_ns, Analysis& out) {
  return Reader(paths, opts, an, hooks, plan, pool, report, unmap_ns, out).run();
}

}  // namespace cdma::analyze::detail
