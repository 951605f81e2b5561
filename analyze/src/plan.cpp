// Planning a run: every trace opened and its work listed from metadata only, so that the totals
// (and any tensor the analyzer cannot window) are known before the first byte is read.
#include "run_internal.hpp"

#include <algorithm>

namespace cdma::analyze::detail {

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

namespace {

// Byte totals of everything analysed must stay far from 2^64 (group sums, ratios): at most 2^62.
void add_checked(std::uint64_t& total, std::uint64_t v) {
  constexpr std::uint64_t kMax = std::uint64_t{1} << 62;
  if (v > kMax || total > kMax - v)
    throw formats::Error("the traces describe more than 2^62 bytes of tensors in total; analyse fewer at once");
  total += v;
}

// Lists the tensors of the open trace `t` that pass the filters, into plan.todo[t].
void list_tensors(std::size_t t, const Options& opts, const TensorAnalyzer& an, Plan& plan, TraceSummary& ts) {
  for (const auto& m : plan.readers[t]->tensors()) {
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
    plan.todo[t].push_back(&m);
    add_checked(plan.prog.bytes_total, static_cast<std::uint64_t>(m.bytes()));
    ++plan.prog.tensors_total;
  }
}

// Opens trace `t` and lists its work. `stats_bytes` sums the elements of /stats rows (x their
// width <= 4: checked per row too).
TraceSummary plan_trace(std::size_t t, const std::filesystem::path& path, const Options& opts, const TensorAnalyzer& an,
                        Plan& plan, std::uint64_t& stats_bytes) {
  TraceSummary ts;
  ts.index = static_cast<int>(t);
  ts.path = path.string();
  try {
    formats::ReaderOptions ro;
    ro.skip_bad_tensors = opts.keep_going;  // -k leaves out a bad tensor, not the whole file
    plan.readers[t] = std::make_unique<formats::TraceReader>(path, ro);
    const auto& r = *plan.readers[t];
    ts.opened = true;
    for (const auto& k : r.skipped_tensors()) ts.skipped.push_back({k.object, k.reason});
    ts.model = r.attrs().model;
    ts.source = r.attrs().source;
    ts.complete = r.attrs().complete;
    ts.warnings = r.warnings();
    ts.offload_attribute = std::any_of(r.tensors().begin(), r.tensors().end(),
                                       [](const formats::TensorMeta& m) { return m.offload.has_value(); });
    list_tensors(t, opts, an, plan, ts);
    if (r.has_stats()) plan.stats[t] = r.stats_unchecked();  // checked row by row (-k skips a bad one)
    for (const auto& row : plan.stats[t]) {
      if (row.elements > 0) add_checked(stats_bytes, static_cast<std::uint64_t>(row.elements));
    }
  } catch (const formats::Error& e) {
    if (!opts.keep_going) throw;
    plan.readers[t].reset();
    ts.opened = false;
    ts.skipped.push_back({"/", e.what()});
  }
  return ts;
}

}  // namespace

Plan plan_run(const std::vector<std::filesystem::path>& paths, const Options& opts, const TensorAnalyzer& an,
              Analysis& out) {
  Plan plan;
  plan.readers.resize(paths.size());
  plan.todo.resize(paths.size());
  plan.stats.resize(paths.size());
  std::uint64_t stats_bytes = 0;
  for (std::size_t t = 0; t < paths.size(); ++t)
    out.traces.push_back(plan_trace(t, paths[t], opts, an, plan, stats_bytes));

  // Result slots in final order: per trace, its tensors (its /stats rows are appended at assembly).
  plan.first_slot.assign(paths.size() + 1, 0);
  std::size_t s = 0;
  for (std::size_t t = 0; t < paths.size(); ++t) {
    plan.first_slot[t] = s;
    s += plan.todo[t].size();
    for (const auto* m : plan.todo[t]) out.tensors.push_back({info_of(static_cast<int>(t), *m), {}});
  }
  plan.first_slot[paths.size()] = s;
  return plan;
}

}  // namespace cdma::analyze::detail
