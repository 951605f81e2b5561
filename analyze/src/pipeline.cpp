// run_analysis: plan (plan.cpp), start the worker pool (pool.cpp), run the reader loop
// (reader.cpp), then assemble the results in capture order.
#include "run_internal.hpp"

#include <algorithm>

namespace cdma::analyze {

namespace {
using namespace detail;

unsigned thread_count(const Options& opts) {
  if (opts.threads > kMaxThreads)
    throw formats::Error("threads " + std::to_string(opts.threads) + " is more than " + std::to_string(kMaxThreads) +
                         " (0 = one per core)");
  return opts.threads ? opts.threads : std::clamp(std::thread::hardware_concurrency(), 1u, kMaxThreads);
}

// Tensors that were skipped or never reached (interrupted) leave the results; per trace, its
// tensors in capture order, then its /stats rows.
void assemble(Analysis& out, const Plan& plan, std::vector<std::pair<std::size_t, Skipped>>& worker_skips,
              ReadResult& read) {
  std::sort(worker_skips.begin(), worker_skips.end(), [](auto& a, auto& b) { return a.first < b.first; });
  for (auto& [slot, s] : worker_skips) {
    read.dropped[slot] = true;
    auto& trace = out.traces[static_cast<std::size_t>(out.tensors[slot].info.trace)];
    trace.skipped.push_back(std::move(s));
    --trace.tensors;
  }
  std::vector<TensorResult> kept;
  kept.reserve(out.tensors.size());
  for (std::size_t t = 0; t + 1 < plan.first_slot.size(); ++t) {
    for (std::size_t i = plan.first_slot[t]; i < plan.first_slot[t + 1]; ++i) {
      if (read.dropped[i] || out.tensors[i].variants.empty()) continue;  // skipped, or not reached
      kept.push_back(std::move(out.tensors[i]));
    }
    for (auto& r : read.stats_results[t]) kept.push_back(std::move(r));
  }
  out.tensors = std::move(kept);
}
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
  const unsigned threads = thread_count(opts);
  out.stats.threads = threads;

  Plan plan = plan_run(paths, opts, an, out);
  std::atomic<std::uint64_t> unmap_ns{0};  // outlives every Mapping (held by the reader and the jobs)
  WorkerPool pool(an, opts, out.tensors, threads);
  Reporter report(hooks, plan.prog, pool);
  ReadResult read = read_all(paths, opts, an, hooks, plan, pool, report, unmap_ns, out);
  pool.close();
  if (pool.error()) std::rethrow_exception(pool.error());
  if (read.error) std::rethrow_exception(read.error);
  out.interrupted = hooks.stop && hooks.stop->load(std::memory_order_relaxed);

  assemble(out, plan, pool.worker_skips(), read);
  out.stats.codec_s = pool.codec_s() + static_cast<double>(read.ws.codec_ns) * 1e-9;
  out.stats.read_s = read.read_s + pool.fault_s() + static_cast<double>(unmap_ns.load()) * 1e-9;
  out.stats.cpu_s = cpu_seconds(CLOCK_PROCESS_CPUTIME_ID) - cpu_start;
  out.stats.wall_s = seconds(Clock::now() - t_start);
  report(true);
  return out;
}

}  // namespace cdma::analyze
