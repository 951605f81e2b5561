// Spool -> trace v1. Two passes over the spool: the first (tensor data skipped) checks every
// record, joins CUPTI correlation and kernel records into per-call GPU time and gathers attributes
// and counters; the second streams tensors, stats rows and timeline rows into the TraceWriter,
// which writes a temporary file renamed into place once closed (collector.hpp).
#include <cdma/capture/collector.hpp>
#include <cdma/capture/config.hpp>
#include <cdma/formats/output_file.hpp>
#include <cdma/formats/trace.hpp>

#include <unistd.h>
#include <algorithm>
#include <cstring>
#include <limits>
#include <set>
#include <type_traits>
#include <unordered_map>

namespace cdma::capture {

namespace fs = std::filesystem;
using formats::DType;
using formats::Layout;

namespace {

// The fixed part of a record that check_record() accepted.
template <class T>
T as(const SpoolRecord& r) {
  T t{};
  if (r.payload.size() < sizeof(T))  // unreachable after check_record; kept as a guard
    throw CaptureError("spool record at offset " + std::to_string(r.offset) + " is shorter than its type needs");
  std::memcpy(&t, r.payload.data(), sizeof(T));
  return t;
}

// An op or role name the interposer writes (config.hpp's lists, without "all").
template <std::size_t N, std::size_t M>
bool one_of(const char (&field)[N], const std::pair<std::string_view, std::uint32_t> (&names)[M]) {
  std::string_view v(field, spool::str_len(field));
  if (v == "all") return false;
  for (const auto& n : names)
    if (v == n.first) return true;
  return false;
}

template <std::size_t N>
std::string shown(const char (&field)[N]) {
  std::string v(field, spool::str_len(field)), out;
  for (unsigned char c : v) out += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
  return out;
}

std::string check_fixed(const SpoolRecord& r, std::size_t want, const char* what) {
  if (r.payload_bytes == want) return {};
  return std::string(what) + " record of " + std::to_string(r.payload_bytes) + " bytes, expected " +
         std::to_string(want);
}

std::string check_tensor(const SpoolRecord& r) {
  if (r.payload_bytes < sizeof(spool::TensorRecord) || r.payload.size() < sizeof(spool::TensorRecord))
    return "tensor record of " + std::to_string(r.payload_bytes) + " bytes, shorter than its fixed part";
  auto t = as<spool::TensorRecord>(r);
  const std::string of = " (tensor of call " + std::to_string(t.call) + ")";
  if (t.dtype > 4) return "unknown dtype code " + std::to_string(t.dtype) + of;
  if (t.layout > 3) return "unknown layout code " + std::to_string(t.layout) + of;
  const int rank = t.layout == 3 ? 2 : 4;
  if (t.ndims != rank) return "rank " + std::to_string(t.ndims) + ", its layout needs " + std::to_string(rank) + of;
  if (t.phase > 1) return "unknown phase code " + std::to_string(t.phase) + of;
  if (!one_of(t.op, kOpNames)) return "unknown op '" + shown(t.op) + "'" + of;
  if (!one_of(t.role, kRoleNames)) return "unknown role '" + shown(t.role) + "'" + of;
  if (spool::str_len(t.layer) == 0) return "empty layer name" + of;
  static constexpr std::uint64_t kSize[] = {4, 2, 2, 1, 1};
  std::uint64_t bytes = kSize[t.dtype];
  for (int k = 0; k < t.ndims; ++k) {
    if (t.dims[k] < 0) return "negative dimension" + of;
    const auto d = static_cast<std::uint64_t>(t.dims[k]);
    if (d != 0 && bytes > std::numeric_limits<std::uint64_t>::max() / d) return "dimensions overflow 64 bits" + of;
    bytes *= d;
  }
  if (t.data_bytes != bytes)
    return "data_bytes " + std::to_string(t.data_bytes) + ", dims need " + std::to_string(bytes) + of;
  if (r.payload_bytes - sizeof(t) != t.data_bytes)
    return "holds " + std::to_string(r.payload_bytes - sizeof(t)) + " data bytes, expected " + std::to_string(bytes) +
           of;
  return {};
}

std::string check_stats(const SpoolRecord& r) {
  if (auto e = check_fixed(r, sizeof(spool::StatsRecord), "stats"); !e.empty()) return e;
  auto s = as<spool::StatsRecord>(r);
  const std::string of = " (stats of call " + std::to_string(s.call) + ")";
  if (!one_of(s.op, kOpNames)) return "unknown op '" + shown(s.op) + "'" + of;
  if (!one_of(s.role, kRoleNames)) return "unknown role '" + shown(s.role) + "'" + of;
  if (s.elements < 0 || s.nonzeros < 0 || s.zero_runs < 0 || s.nonzeros > s.elements || s.zero_runs > s.elements)
    return "inconsistent counts (elements " + std::to_string(s.elements) + ", nonzeros " + std::to_string(s.nonzeros) +
           ", zero runs " + std::to_string(s.zero_runs) + ")" + of;
  return {};
}

template <std::size_t N>
std::string str(const char (&f)[N]) {
  return std::string(f, spool::str_len(f));
}

// A /timeline or /stats row from a spool record: every column of the row (trace.hpp's column
// lists, the one definition of each) that the record has under the same name, whose string fields
// must be as long as the column. Columns the spool does not have (device_ns) keep their initial
// value; spool fields the trace does not have (api, status, flags) are left behind.
#define CDMA_COPY_INT_(type, name, init) \
  if constexpr (requires { rec.name; }) row.name = static_cast<type>(rec.name);
#define CDMA_COPY_STR_(name, size)                                                                            \
  if constexpr (requires { rec.name; }) {                                                                     \
    static_assert(sizeof(rec.name) == (size), "spool field " #name " differs in size from its trace column"); \
    row.name = str(rec.name);                                                                                 \
  }
template <class Row, class Rec>
Row row_of(const Rec& rec) {
  Row row;
  if constexpr (std::is_same_v<Row, formats::TimelineRow>) {
    CDMA_TRACE_TIMELINE_COLUMNS(CDMA_COPY_INT_, CDMA_COPY_STR_)
  } else {
    CDMA_TRACE_STATS_COLUMNS(CDMA_COPY_INT_, CDMA_COPY_STR_)
  }
  return row;
}
#undef CDMA_COPY_INT_
#undef CDMA_COPY_STR_

DType dtype_of(std::uint8_t d, const fs::path& p) {
  switch (d) {
    case 0:
      return DType::f32;
    case 1:
      return DType::f16;
    case 2:
      return DType::bf16;
    case 3:
      return DType::i8;
    case 4:
      return DType::u8;
    default:
      throw CaptureError("spool " + p.string() + ": tensor with unknown dtype code " + std::to_string(d));
  }
}

Layout layout_of(std::uint8_t l, const fs::path& p) {
  switch (l) {
    case 0:
      return Layout::NCHW;
    case 1:
      return Layout::NHWC;
    case 2:
      return Layout::CHWN;
    case 3:
      return Layout::NC;
    default:
      throw CaptureError("spool " + p.string() + ": tensor with unknown layout code " + std::to_string(l));
  }
}

// The interposer's running totals: counts, never negative, and far below what sums of them (in
// the trace's attributes and dropped_tensors) could overflow.
std::string check_counters(const SpoolRecord& r) {
  if (auto e = check_fixed(r, sizeof(spool::CountersRecord), "counters"); !e.empty()) return e;
  const auto c = as<spool::CountersRecord>(r);
  constexpr std::int64_t kMaxCounter = std::int64_t{1} << 62;
  const std::pair<const char*, std::int64_t> fields[] = {{"calls", c.calls},
                                                         {"tensors", c.tensors},
                                                         {"stats", c.stats},
                                                         {"bytes", c.bytes},
                                                         {"dropped_tensors", c.dropped_tensors},
                                                         {"dropped_budget", c.dropped_budget},
                                                         {"dropped_ring", c.dropped_ring},
                                                         {"skipped_graph", c.skipped_graph},
                                                         {"skipped_unsafe", c.skipped_unsafe},
                                                         {"cupti_dropped", c.cupti_dropped},
                                                         {"iterations", c.iterations},
                                                         {"skipped_failed", c.skipped_failed}};
  for (const auto& [name, v] : fields)
    if (v < 0 || v > kMaxCounter)
      return std::string("counters record with ") + name + " = " + std::to_string(v) + " (a count: 0 .. 2^62)";
  return {};
}

}  // namespace

std::string check_record(const SpoolRecord& r) {
  switch (r.type) {
    case spool::RecordType::kAttr: {
      if (r.payload_bytes < sizeof(spool::AttrRecord) || r.payload.size() != r.payload_bytes)
        return "attribute record of " + std::to_string(r.payload_bytes) + " bytes";
      auto a = as<spool::AttrRecord>(r);
      if (std::uint64_t{a.key_bytes} + a.value_bytes + sizeof(a) != r.payload_bytes)
        return "attribute record whose key (" + std::to_string(a.key_bytes) + " bytes) and value (" +
               std::to_string(a.value_bytes) + " bytes) do not fill its " + std::to_string(r.payload_bytes) + " bytes";
      if (a.key_bytes == 0) return "attribute record with an empty key";
      return {};
    }
    case spool::RecordType::kTensor:
      return check_tensor(r);
    case spool::RecordType::kTimeline: {
      if (auto e = check_fixed(r, sizeof(spool::TimelineRecord), "timeline"); !e.empty()) return e;
      auto t = as<spool::TimelineRecord>(r);
      if (t.phase != 0 && t.phase != 1) return "timeline row with phase code " + std::to_string(t.phase);
      if (!one_of(t.op, kOpNames)) return "timeline row with unknown op '" + shown(t.op) + "'";
      return {};
    }
    case spool::RecordType::kStats:
      return check_stats(r);
    case spool::RecordType::kCorr:
      return check_fixed(r, sizeof(spool::CorrRecord), "CUPTI correlation");
    case spool::RecordType::kKernel:
      return check_fixed(r, sizeof(spool::KernelRecord), "CUPTI kernel");
    case spool::RecordType::kCounters:
    case spool::RecordType::kEnd:
      return check_counters(r);
  }
  return "unknown record type " + std::to_string(static_cast<int>(r.type));
}

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

namespace {

// Pass 2: streams the spool's data into the writer.
void write_data(const fs::path& spool_path, formats::TraceWriter& w, ConvertSummary& sum,
                const std::unordered_map<std::uint64_t, std::int64_t>& device_ns) {
  SpoolReader r(spool_path);
  const std::int64_t t0 = r.header().start_mono_ns;
  SpoolRecord rec;
  std::set<std::int64_t> iterations;
  while (r.next(rec, true)) {
    switch (rec.type) {
      case spool::RecordType::kTensor: {
        auto t = as<spool::TensorRecord>(rec);
        if (t.layer_index < 0) {  // a backward call matched to no forward layer: no trace index
          sum.unmatched_tensors++;
          break;
        }
        formats::TensorMeta m;
        m.iteration = t.iteration;
        m.layer = str(t.layer);
        m.layer_index = t.layer_index;
        m.op = str(t.op);
        m.role = str(t.role);
        m.phase = t.phase == 0 ? "forward" : "backward";
        m.dtype = dtype_of(t.dtype, spool_path);
        m.layout = layout_of(t.layout, spool_path);
        m.dims.assign(t.dims, t.dims + t.ndims);
        m.call = t.call;
        if (rec.flags & spool::kRecOffloadKnown) {
          m.offload = (rec.flags & spool::kRecOffload) != 0;
          (*m.offload ? sum.offloaded : sum.not_offloaded)++;
        } else {
          sum.offload_unknown++;  // older spool: the trace format's default rule applies
        }
        if (rec.payload.size() != sizeof(t) + t.data_bytes)  // the file changed since pass 1
          throw CaptureError("spool " + spool_path.string() + ": tensor record at offset " +
                             std::to_string(rec.offset) + " changed while being converted");
        w.append_tensor(m, std::span<const std::byte>(
                               reinterpret_cast<const std::byte*>(rec.payload.data()) + sizeof(t), t.data_bytes));
        sum.tensors++;
        iterations.insert(m.iteration);
        sum.tensor_bytes += static_cast<std::int64_t>(t.data_bytes);
        sum.ops[m.op]++;
        break;
      }
      case spool::RecordType::kStats: {
        auto s = as<spool::StatsRecord>(rec);
        if (s.layer_index < 0) {
          sum.unmatched_stats_rows++;
          break;
        }
        // /stats has no offload column and analysis counts its role-x rows as offloaded: a row of
        // an input the interposer knows is not offloaded (in-place call, backward phase) is left
        // out rather than written as if it were (docs/CAPTURE.md).
        if ((rec.flags & spool::kRecOffloadKnown) && !(rec.flags & spool::kRecOffload) && str(s.role) == "x") {
          sum.stats_not_offloaded++;
          break;
        }
        formats::StatsRow row = row_of<formats::StatsRow>(s);
        w.append_stats(row);
        sum.stats_rows++;
        sum.ops[row.op]++;
        break;
      }
      case spool::RecordType::kTimeline: {
        auto t = as<spool::TimelineRecord>(rec);
        if (t.layer_index < 0) {
          sum.unmatched_timeline_rows++;
          break;
        }
        formats::TimelineRow row = row_of<formats::TimelineRow>(t);
        row.start_ns -= t0;
        row.end_ns -= t0;
        auto it = device_ns.find(static_cast<std::uint64_t>(t.call));
        row.device_ns = it != device_ns.end() ? it->second : -1;
        if (row.device_ns >= 0) sum.timed_rows++;
        w.append_timeline(row);
        sum.timeline_rows++;
        break;
      }
      default:
        break;
    }
  }
  sum.tensor_iterations = static_cast<std::int64_t>(iterations.size());
}

}  // namespace

ConvertSummary convert_spool(const fs::path& spool_path, const fs::path& trace_path, const ConvertOptions& opts) {
  ConvertSummary sum;
  sum.spool = spool_path;
  sum.trace = trace_path;

  // Pass 1: every record checked; attributes, counters, CUPTI joins.
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
      if (auto why = check_record(rec); !why.empty())
        throw CaptureError("spool " + spool_path.string() + ": damaged record at offset " + std::to_string(rec.offset) +
                           ": " + why + "; no trace written (the spool is left as it is)");
      switch (rec.type) {
        case spool::RecordType::kAttr: {
          auto a = as<spool::AttrRecord>(rec);
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
        default:
          break;
      }
    }
    if (r.damaged())
      throw CaptureError("spool " + spool_path.string() + ": damaged " + r.damage() +
                         "; no trace written (the spool is left as it is)");
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
  if (!opts.overwrite && fs::exists(trace_path))
    throw CaptureError("trace " + trace_path.string() + " exists (not overwritten; --force replaces it)");
  formats::WriterOptions wo;
  wo.overwrite = true;  // the temporary file
  wo.deflate_level = opts.deflate_level;
  wo.flush_every = 64;  // the spool stays until the trace is renamed into place, so the file need not be crash-safe
  // Written beside the trace (a symlink's target) under a temporary name, renamed once closed; a
  // trace path that names a device or FIFO is refused (formats/output_file.hpp), never replaced.
  const fs::path final_path = formats::regular_output_path(trace_path);
  const fs::path tmp = formats::temporary_beside(final_path);
  try {
    formats::TraceWriter w(tmp, attrs, wo);
    write_data(spool_path, w, sum, device_ns);
    const std::int64_t unmatched = sum.unmatched_tensors + sum.unmatched_stats_rows + sum.unmatched_timeline_rows;
    if (unmatched)
      sum.warnings.push_back(
          "spool " + spool_path.string() + ": " + std::to_string(sum.unmatched_tensors) + " tensors, " +
          std::to_string(sum.unmatched_stats_rows) + " stats rows and " + std::to_string(sum.unmatched_timeline_rows) +
          " timeline rows of backward calls matched to no forward layer (layer_index -1) left out of the trace");
    // Left-out tensors and stats rows are lost tensors: dropped_tensors makes that loss visible.
    const std::int64_t lost = sum.unmatched_tensors + sum.unmatched_stats_rows;
    if (!have_counters && lost) w.set_dropped_tensors(lost);
    if (have_counters) {
      sum.dropped = counters.dropped_tensors;
      sum.iterations = counters.iterations;
      sum.calls = counters.calls;
      sum.skipped_graph = counters.skipped_graph;
      sum.skipped_unsafe = counters.skipped_unsafe;
      sum.skipped_failed = counters.skipped_failed;
      w.set_dropped_tensors(counters.dropped_tensors + lost);
      w.set_attribute(
          "capture_counters",
          "calls=" + std::to_string(counters.calls) + " dropped_budget=" + std::to_string(counters.dropped_budget) +
              " dropped_ring=" + std::to_string(counters.dropped_ring) + " skipped_graph_capture=" +
              std::to_string(counters.skipped_graph) + " skipped_unsafe=" + std::to_string(counters.skipped_unsafe) +
              " skipped_failed_calls=" + std::to_string(counters.skipped_failed) +
              " cupti_dropped=" + std::to_string(counters.cupti_dropped) +
              " stats_rows_not_offloaded=" + std::to_string(sum.stats_not_offloaded) +
              " unmatched_backward_tensors=" + std::to_string(sum.unmatched_tensors) +
              " unmatched_backward_stats_rows=" + std::to_string(sum.unmatched_stats_rows) +
              " unmatched_backward_timeline_rows=" + std::to_string(sum.unmatched_timeline_rows));
    }
    for (const char* k : {"capture_options", "cudnn_version"})
      if (sum.attrs.count(k)) w.set_attribute(k, sum.attrs[k]);
    w.set_attribute("capture_pid", std::to_string(sum.pid));
    w.set_attribute("capture_gpu_time", cupti_seen ? "cupti" : "unavailable");
    w.set_attribute("capture_offload", sum.offload_unknown
                                           ? "unknown (older spool): tensors carry no offload attribute"
                                           : "offload = 1: forward x not overwritten by its own call; 0: the rest");
    w.set_attribute("capture_end", sum.clean_end ? "clean"
                                   : sum.truncated
                                       ? "truncated: the process died while writing a record"
                                       : "abrupt: the process ended without finalising (killed or crashed)");
    for (const auto& [k, v] : opts.extra_attrs) w.set_attribute(k, v);
    w.close();
    formats::commit_output(tmp, final_path);
  } catch (...) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw;
  }
  return sum;
}

}  // namespace cdma::capture
