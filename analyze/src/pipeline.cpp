// run_part: plan (plan.cpp), narrow the plan to the part's range, start the worker pool
// (pool.cpp), run the reader loop (reader.cpp), then assemble the part's results; run_analysis is
// the one-part run, merged (parts.cpp).
#include "run_internal.hpp"

#include <cdma/analyze/parts.hpp>

#include <sys/stat.h>

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

void set_error(Part& part, std::exception_ptr e, std::uint64_t order) {
  PartError pe;
  pe.order = order;
  pe.local = e;
  try {
    std::rethrow_exception(e);
  } catch (const VerifyError& v) {
    pe.verify = true;
    pe.message = v.what();
  } catch (const std::exception& x) {
    pe.message = x.what();
  } catch (...) {
    pe.message = "unknown error";
  }
  part.error = std::move(pe);
}

// FNV-1a over what every part must plan alike: the traces, their tensors' sizes, their /stats rows.
class Digest {
 public:
  void add(std::uint64_t v) {
    for (int i = 0; i < 8; ++i) h_ = (h_ ^ ((v >> (8 * i)) & 0xff)) * 0x100000001b3ULL;
  }
  void add(std::string_view s) {
    add(s.size());
    for (char c : s) h_ = (h_ ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
  }
  std::uint64_t value() const { return h_; }

 private:
  std::uint64_t h_ = 0xcbf29ce484222325ULL;
};

// What identifies the file behind a path (its path as given, size and modification time, in ns),
// so that processes that see different files under one plan are told apart; zeros when it cannot
// be read (the part's own error says why).
void add_file(Digest& d, const std::filesystem::path& p) {
  d.add(p.string());
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) {
    d.add(std::uint64_t{0});
    return;
  }
  d.add(static_cast<std::uint64_t>(st.st_size));
  d.add(static_cast<std::uint64_t>(st.st_mtim.tv_sec) * 1000000000ULL + static_cast<std::uint64_t>(st.st_mtim.tv_nsec));
}

// A planned tensor's metadata, all of what the analysis groups and reports by.
void add_meta(Digest& d, const formats::TensorMeta& m) {
  d.add(m.name);
  d.add(static_cast<std::uint64_t>(m.iteration));
  d.add(m.layer);
  d.add(static_cast<std::uint64_t>(m.layer_index));
  d.add(m.op);
  d.add(m.role);
  d.add(m.phase);
  d.add(formats::to_string(m.layout));
  d.add(formats::to_string(m.dtype));
  d.add(m.dims.size());
  for (auto x : m.dims) d.add(static_cast<std::uint64_t>(x));
  d.add(m.offload ? (*m.offload ? 2u : 1u) : 0u);
  d.add(m.call ? static_cast<std::uint64_t>(*m.call) + 1 : 0u);
}

// Narrows the plan to part `index` of `count`: its range, the progress totals of that range, and
// the plan's digest: over each trace's path, size and modification time, its /stats row count and
// its planned tensors' metadata (every part must see the same files, not only the same sizes).
void set_range(const std::vector<std::filesystem::path>& paths, Plan& plan, Part& part) {
  std::vector<std::uint64_t> bytes;
  bytes.reserve(plan.first_slot.back());
  Digest d;
  d.add(plan.todo.size());
  for (std::size_t t = 0; t < plan.todo.size(); ++t) {
    d.add(plan.readers[t] ? plan.todo[t].size() + 1 : 0);
    if (t < paths.size()) add_file(d, paths[t]);
    d.add(plan.stats[t].size());
    for (const auto* m : plan.todo[t]) {
      bytes.push_back(static_cast<std::uint64_t>(m->bytes()));
      d.add(bytes.back());
      add_meta(d, *m);
    }
  }
  const auto cuts = split_by_bytes(bytes, static_cast<std::size_t>(part.count));
  plan.lo = cuts[static_cast<std::size_t>(part.index)];
  plan.hi = cuts[static_cast<std::size_t>(part.index) + 1];
  plan.prog.bytes_total = 0;
  for (std::size_t s = plan.lo; s < plan.hi; ++s) plan.prog.bytes_total += bytes[s];
  plan.prog.tensors_total = plan.hi - plan.lo;
  part.first_slot = plan.lo;
  part.last_slot = plan.hi;
  part.planned = bytes.size();
  part.plan_digest = d.value();
}

// The part's results: per trace its summary and skips by kind (merge_parts restores the whole
// run's order); tensors that were skipped or never reached (interrupted) leave the results.
void assemble(Part& part, Analysis& out, const Plan& plan, std::vector<std::pair<std::size_t, Skipped>>& worker_skips,
              ReadResult& read) {
  part.traces.resize(out.traces.size());
  for (std::size_t t = 0; t < out.traces.size(); ++t) {
    auto& pt = part.traces[t];
    pt.summary = std::move(out.traces[t]);
    pt.plan_skips = std::move(pt.summary.skipped);
    pt.summary.skipped.clear();
    for (auto& k : read.read_skips[t]) pt.read_skips.push_back({k.slot, std::move(k.skip)});
    pt.stats_skips = std::move(read.stats_skips[t]);
    pt.stats = std::move(read.stats_results[t]);
  }
  std::sort(worker_skips.begin(), worker_skips.end(), [](auto& a, auto& b) { return a.first < b.first; });
  for (auto& [slot, s] : worker_skips) {
    read.dropped[slot] = true;
    auto& pt = part.traces[plan.trace_of_slot(slot)];
    pt.worker_skips.push_back({slot, std::move(s)});
    --pt.summary.tensors;
  }
  for (std::size_t i = plan.lo; i < plan.hi; ++i) {
    if (read.dropped[i] || out.tensors[i].variants.empty()) continue;  // skipped, or not reached
    part.tensors.push_back(std::move(out.tensors[i]));
  }
}

void run_part_here(const std::vector<std::filesystem::path>& paths, Options opts, const RunHooks& hooks, Part& part) {
  const auto t_start = Clock::now();
  const double cpu_start = cpu_seconds(CLOCK_PROCESS_CPUTIME_ID);
  if (part.count < 1 || part.index < 0 || part.index >= part.count)
    throw formats::Error("part " + std::to_string(part.index) + " of " + std::to_string(part.count) +
                         " does not exist");
  opts.validate();
  Analysis out;
  const TensorAnalyzer an(opts);
  part.variants = an.variants();
  part.codec_names = an.codec_names();
  const unsigned threads = thread_count(opts);
  part.stats.threads = threads;

  Plan plan = plan_run(paths, opts, an, out);
  set_range(paths, plan, part);
  std::atomic<std::uint64_t> unmap_ns{0};  // outlives every Mapping (held by the reader and the jobs)
  WorkerPool pool(an, opts, out.tensors, threads);
  Reporter report(hooks, plan.prog, pool);
  ReadResult read = read_all(paths, opts, an, hooks, plan, pool, report, unmap_ns, out);
  pool.close();
  if (pool.error()) {
    const std::size_t slot = pool.error_slot();
    return set_error(part, pool.error(), plan.order_of_slot(plan.trace_of_slot(slot), slot));
  }
  if (read.error) return set_error(part, read.error, read.error_order);
  part.interrupted = hooks.stop && hooks.stop->load(std::memory_order_relaxed);

  assemble(part, out, plan, pool.worker_skips(), read);
  part.stats.bytes = out.stats.bytes;
  part.stats.mapped_tensors = out.stats.mapped_tensors;
  part.stats.codec_s = pool.codec_s() + static_cast<double>(read.ws.codec_ns) * 1e-9;
  part.stats.read_s = read.read_s + pool.fault_s() + static_cast<double>(unmap_ns.load()) * 1e-9;
  part.stats.cpu_s = cpu_seconds(CLOCK_PROCESS_CPUTIME_ID) - cpu_start;
  part.stats.wall_s = seconds(Clock::now() - t_start);
  report(true);
}
}  // namespace

std::size_t detail::Plan::trace_of_slot(std::size_t s) const {
  // first_slot is non-decreasing; the trace is the last one whose first slot is <= s (and that
  // holds tensors: empty traces share their first slot with the next one).
  const auto it = std::upper_bound(first_slot.begin(), first_slot.end() - 1, s);
  return static_cast<std::size_t>(it - first_slot.begin()) - 1;
}

Part run_part(const std::vector<std::filesystem::path>& paths, Options opts, const RunHooks& hooks, int index,
              int count) {
  Part part;
  part.index = index;
  part.count = count;
  try {
    run_part_here(paths, std::move(opts), hooks, part);
  } catch (...) {
    set_error(part, std::current_exception(), 0);  // before any tensor: options, opening, planning
  }
  return part;
}

Analysis run_analysis(const std::vector<std::filesystem::path>& paths, Options opts, const RunHooks& hooks) {
  std::vector<Part> parts;
  parts.push_back(run_part(paths, opts, hooks, 0, 1));
  return merge_parts(std::move(parts), std::move(opts));
}

std::optional<std::string> nothing_selected(const Analysis& a) {
  std::int64_t analysed = 0, left_out = 0;
  for (const auto& t : a.traces) {
    analysed += t.tensors + t.stats_rows;
    left_out += t.filtered_out;
    if (!t.skipped.empty()) return std::nullopt;
  }
  if (analysed != 0 || left_out == 0 || a.interrupted) return std::nullopt;
  return "no tensor or /stats row passes the filters (" + std::to_string(left_out) +
         " left out); the offload set is the default: --all-tensors (all_tensors=True) takes every recorded tensor";
}

}  // namespace cdma::analyze
