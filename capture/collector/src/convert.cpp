// Spool -> trace v1. Two passes over the spool: the first (tensor data skipped) joins CUPTI
// correlation and kernel records into per-call GPU time and gathers attributes and counters;
// the second streams tensors, stats rows and timeline rows into the TraceWriter.
#include <cdma/capture/collector.hpp>
#include <cdma/formats/trace.hpp>

#include <algorithm>
#include <cstring>
#include <unordered_map>

namespace cdma::capture {

namespace fs = std::filesystem;
using formats::DType;
using formats::Layout;

namespace {

template <class T>
T as(const SpoolRecord& r) {
  T t{};
  if (r.payload.size() < sizeof(T))
    throw CaptureError("spool record of type " + std::to_string(static_cast<int>(r.type)) + " is shorter than expected");
  std::memcpy(&t, r.payload.data(), sizeof(T));
  return t;
}

template <std::size_t N>
std::string str(const char (&f)[N]) {
  return std::string(f, spool::str_len(f));
}

DType dtype_of(std::uint8_t d, const fs::path& p) {
  switch (d) {
    case 0: return DType::f32;
    case 1: return DType::f16;
    case 2: return DType::bf16;
    case 3: return DType::i8;
    case 4: return DType::u8;
    default: throw CaptureError("spool " + p.string() + ": tensor with unknown dtype code " + std::to_string(d));
  }
}

Layout layout_of(std::uint8_t l, const fs::path& p) {
  switch (l) {
    case 0: return Layout::NCHW;
    case 1: return Layout::NHWC;
    case 2: return Layout::CHWN;
    case 3: return Layout::NC;
    default: throw CaptureError("spool " + p.string() + ": tensor with unknown layout code " + std::to_string(l));
  }
}

}  // namespace

std::vector<fs::path> find_spools(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    auto name = e.path().filename().string();
    if (e.is_regular_file() && name.rfind("cdma-", 0) == 0 && e.path().extension() == ".spool") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

ConvertSummary convert_spool(const fs::path& spool_path, const fs::path& trace_path, const ConvertOptions& opts) {
  ConvertSummary sum;
  sum.spool = spool_path;
  sum.trace = trace_path;

  // Pass 1: attributes, counters, CUPTI joins.
  std::unordered_map<std::uint64_t, std::uint64_t> corr_to_call;
  std::vector<spool::KernelRecord> kernels;
  spool::CountersRecord counters{};
  bool have_counters = false;
  bool cupti_seen = false;
  {
    SpoolReader r(spool_path);
    sum.pid = r.header().pid;
    SpoolRecord rec;
    while (r.next(rec, false)) {
      switch (rec.type) {
        case spool::RecordType::kAttr: {
          auto a = as<spool::AttrRecord>(rec);
          if (sizeof(a) + a.key_bytes + a.value_bytes > rec.payload.size()) break;
          const char* p = reinterpret_cast<const char*>(rec.payload.data()) + sizeof(a);
          sum.attrs[std::string(p, a.key_bytes)] = std::string(p + a.key_bytes, a.value_bytes);
          break;
        }
        case spool::RecordType::kCorr: {
          auto c = as<spool::CorrRecord>(rec);
          corr_to_call[c.correlation_id] = c.call;
          cupti_seen = true;
          break;
        }
        case spool::RecordType::kKernel:
          kernels.push_back(as<spool::KernelRecord>(rec));
          cupti_seen = true;
          break;
        case spool::RecordType::kCounters:
          counters = as<spool::CountersRecord>(rec);
          have_counters = true;
          break;
        case spool::RecordType::kEnd:
          counters = as<spool::CountersRecord>(rec);
          have_counters = true;
          sum.clean_end = true;
          break;
        default: break;
      }
    }
    sum.truncated = r.truncated();
  }
  std::unordered_map<std::uint64_t, std::int64_t> device_ns;
  for (const auto& k : kernels) {
    auto it = corr_to_call.find(k.correlation_id);
    if (it == corr_to_call.end() || k.end_ns < k.start_ns) continue;
    device_ns[it->second] += static_cast<std::int64_t>(k.end_ns - k.start_ns);
  }

  formats::TraceAttrs attrs;
  attrs.producer = sum.attrs.count("producer") ? sum.attrs["producer"] : "cdma-capture";
  attrs.source = "cudnn";
  if (!opts.model.empty()) attrs.model = opts.model;
  if (!opts.framework.empty()) attrs.framework = opts.framework;
  if (sum.attrs.count("device")) attrs.device = sum.attrs["device"];
  attrs.command = opts.command.empty() ? sum.attrs["command"] : opts.command;
  formats::WriterOptions wo;
  wo.overwrite = opts.overwrite;
  wo.deflate_level = opts.deflate_level;
  wo.flush_every = 64;  // the spool stays until the trace is closed, so the trace need not be crash-safe
  formats::TraceWriter w(trace_path, attrs, wo);

  // Pass 2: data.
  SpoolReader r(spool_path);
  const std::int64_t t0 = r.header().start_mono_ns;
  SpoolRecord rec;
  while (r.next(rec, true)) {
    switch (rec.type) {
      case spool::RecordType::kTensor: {
        auto t = as<spool::TensorRecord>(rec);
        formats::TensorMeta m;
        m.iteration = t.iteration;
        m.layer = str(t.layer);
        m.layer_index = t.layer_index;
        m.op = str(t.op);
        m.role = str(t.role);
        m.phase = t.phase == 0 ? "forward" : "backward";
        m.dtype = dtype_of(t.dtype, spool_path);
        m.layout = layout_of(t.layout, spool_path);
        if (t.ndims != formats::layout_rank(m.layout))
          throw CaptureError("spool " + spool_path.string() + ": tensor of call " + std::to_string(t.call) +
                             " has rank " + std::to_string(t.ndims) + ", its layout needs " +
                             std::to_string(formats::layout_rank(m.layout)));
        m.dims.assign(t.dims, t.dims + t.ndims);
        m.call = t.call;
        if (rec.payload.size() != sizeof(t) + t.data_bytes || static_cast<std::int64_t>(t.data_bytes) != m.bytes())
          throw CaptureError("spool " + spool_path.string() + ": tensor of call " + std::to_string(t.call) +
                             " holds " + std::to_string(rec.payload.size() - sizeof(t)) + " bytes, expected " +
                             std::to_string(m.bytes()));
        w.append_tensor(m, std::span<const std::byte>(reinterpret_cast<const std::byte*>(rec.payload.data()) + sizeof(t),
                                                      t.data_bytes));
        sum.tensors++;
        sum.tensor_bytes += static_cast<std::int64_t>(t.data_bytes);
        sum.ops[m.op]++;
        break;
      }
      case spool::RecordType::kStats: {
        auto s = as<spool::StatsRecord>(rec);
        formats::StatsRow row;
        row.iteration = s.iteration;
        row.call = s.call;
        row.layer_index = s.layer_index;
        row.layer = str(s.layer);
        row.op = str(s.op);
        row.role = str(s.role);
        row.dtype = str(s.dtype);
        row.elements = s.elements;
        row.nonzeros = s.nonzeros;
        row.zero_runs = s.zero_runs;
        w.append_stats(row);
        sum.stats_rows++;
        sum.ops[row.op]++;
        break;
      }
      case spool::RecordType::kTimeline: {
        auto t = as<spool::TimelineRecord>(rec);
        formats::TimelineRow row;
        row.iteration = t.iteration;
        row.call = t.call;
        row.layer_index = t.layer_index;
        row.phase = t.phase;
        row.op = str(t.op);
        row.layer = str(t.layer);
        row.start_ns = t.start_ns - t0;
        row.end_ns = t.end_ns - t0;
        auto it = device_ns.find(static_cast<std::uint64_t>(t.call));
        row.device_ns = it != device_ns.end() ? it->second : -1;
        if (row.device_ns >= 0) sum.timed_rows++;
        w.append_timeline(row);
        sum.timeline_rows++;
        break;
      }
      default: break;
    }
  }
  if (have_counters) {
    sum.dropped = counters.dropped_tensors;
    sum.iterations = counters.iterations;
    sum.calls = counters.calls;
    sum.skipped_graph = counters.skipped_graph;
    sum.skipped_unsafe = counters.skipped_unsafe;
    w.set_dropped_tensors(counters.dropped_tensors);
    w.set_attribute("capture_counters",
                    "calls=" + std::to_string(counters.calls) + " dropped_budget=" +
                        std::to_string(counters.dropped_budget) + " dropped_ring=" +
                        std::to_string(counters.dropped_ring) + " skipped_graph_capture=" +
                        std::to_string(counters.skipped_graph) + " skipped_unsafe=" +
                        std::to_string(counters.skipped_unsafe) + " cupti_dropped=" +
                        std::to_string(counters.cupti_dropped));
  }
  for (const char* k : {"capture_options", "cudnn_version"})
    if (sum.attrs.count(k)) w.set_attribute(k, sum.attrs[k]);
  w.set_attribute("capture_pid", std::to_string(sum.pid));
  w.set_attribute("capture_gpu_time", cupti_seen ? "cupti" : "unavailable");
  w.set_attribute("capture_end", sum.clean_end ? "clean"
                                 : sum.truncated ? "truncated: the process died while writing a record"
                                                 : "abrupt: the process ended without finalising (killed or crashed)");
  for (const auto& [k, v] : opts.extra_attrs) w.set_attribute(k, v);
  w.close();
  return sum;
}

}  // namespace cdma::capture
