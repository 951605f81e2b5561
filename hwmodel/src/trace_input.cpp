// Networks from traces (/timeline + tensor metadata) and ratios from the analyzer's JSON.
#include <cdma/hwmodel/trace_input.hpp>

#include <cdma/analyze/pipeline.hpp>

#include <cdma/formats/codec.hpp>
#include <cdma/formats/error.hpp>
#include <cdma/formats/trace.hpp>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <optional>
#include <set>

namespace cdma::hwmodel {

namespace {

struct Chw {
  std::int64_t n = 1, c = 1, h = 1, w = 1;
};
Chw split(const formats::TensorMeta& t) {
  Chw s;
  const auto& d = t.dims;
  if (t.layout == formats::Layout::NC && d.size() == 2) return {d[0], d[1], 1, 1};
  if (d.size() != 4) return s;
  switch (t.layout) {
    case formats::Layout::NCHW:
      return {d[0], d[1], d[2], d[3]};
    case formats::Layout::NHWC:
      return {d[0], d[3], d[1], d[2]};
    case formats::Layout::CHWN:
      return {d[3], d[0], d[1], d[2]};
    default:
      return s;
  }
}

struct LayerAcc {
  std::string name, op;
  std::map<std::int64_t, double> fwd_ns, bwd_ns;  // iteration -> summed call time
  std::map<std::int64_t, std::int64_t> x_bytes;   // iteration -> bytes of offloaded tensors
  const formats::TensorMeta* x = nullptr;         // first forward x tensor (shape), offloaded or not
  const formats::TensorMeta* y = nullptr;         // first forward y tensor (shape)
};

double mean(const std::map<std::int64_t, double>& m) {
  if (m.empty()) return 0;
  double s = 0;
  for (const auto& [k, v] : m) s += v;
  return s / static_cast<double>(m.size());
}

// Roofline inputs of one layer from its tensor shapes (per batch).
void shape_work(Layer& l, const LayerAcc& a, int conv_kernel, std::int64_t batch) {
  if (!a.x) return;
  Chw x = split(*a.x);
  Chw y = a.y ? split(*a.y) : x;
  if (batch > 0) x.n = y.n = batch;
  const double eb = static_cast<double>(formats::dtype_size(a.x->dtype));
  const double xe = static_cast<double>(x.n * x.c * x.h * x.w), ye = static_cast<double>(y.n * y.c * y.h * y.w);
  double weights = 0;
  if (a.op == "conv") {
    l.flops = 2.0 * ye * static_cast<double>(x.c) * conv_kernel * conv_kernel;
    weights = static_cast<double>(y.c) * static_cast<double>(x.c) * conv_kernel * conv_kernel;
  } else if (a.op == "linear") {
    l.flops =
        2.0 * static_cast<double>(x.n) * static_cast<double>(x.c * x.h * x.w) * static_cast<double>(y.c * y.h * y.w);
    weights = static_cast<double>(x.c * x.h * x.w) * static_cast<double>(y.c * y.h * y.w);
  } else {
    l.flops = 5.0 * std::max(xe, ye);
  }
  l.dram_bytes = (xe + ye + weights) * eb;
  l.out_shape = {y.c, y.h, y.w};
}

}  // namespace

Network network_from_trace(const std::filesystem::path& trace, const TraceNetworkOptions& opts) {
  if (!(opts.compute_scale > 0)) throw ModelError(fmt::format("compute scale must be > 0, got {}", opts.compute_scale));
  if (opts.roofline && !opts.gpu) throw ModelError("roofline compute times need a GPU preset");
  formats::TraceReader reader(trace);
  std::map<int, LayerAcc> acc;
  bool timeline = reader.has_timeline();
  if (timeline) {
    for (const auto& r : reader.timeline()) {
      LayerAcc& a = acc[r.layer_index];
      if (a.name.empty()) a.name = r.layer;
      if (a.op.empty()) a.op = r.op;
      double ns = r.device_ns >= 0 ? static_cast<double>(r.device_ns) : static_cast<double>(r.end_ns - r.start_ns);
      if (ns < 0) ns = 0;
      (r.phase == 0 ? a.fwd_ns : a.bwd_ns)[r.iteration] += ns;
    }
  }
  bool stated = false;  // the producer wrote `offload` attributes
  for (const auto& t : reader.tensors()) {
    LayerAcc& a = acc[t.layer_index];
    if (a.name.empty()) a.name = t.layer;
    if (a.op.empty()) a.op = t.op;
    stated = stated || t.offload.has_value();
    if (t.offloaded()) a.x_bytes[t.iteration] += t.bytes();
    if (t.phase != "forward") continue;
    if (t.role == "x") {
      if (!a.x) a.x = &t;
    } else if (t.role == "y" && !a.y) {
      a.y = &t;
    }
  }
  // In-situ captures keep statistics instead of tensor bytes: U from their element counts, for
  // layers without tensor data.
  if (reader.has_stats()) {
    for (const auto& r : reader.stats()) {
      if (r.role != "x") continue;
      LayerAcc& a = acc[r.layer_index];
      if (a.x || !a.x_bytes.empty()) continue;
      if (a.name.empty()) a.name = r.layer;
      if (a.op.empty()) a.op = r.op;
      auto dt = formats::parse_dtype(r.dtype);
      a.x_bytes[r.iteration] += r.elements * static_cast<std::int64_t>(dt ? formats::dtype_size(*dt) : 4);
    }
  }
  if (acc.empty())
    throw ModelError(fmt::format("{}: the trace has no /timeline rows, no tensors and no /stats", trace.string()));
  if (!timeline && !opts.roofline)
    throw ModelError(
        fmt::format("{}: the trace has no /timeline, so it has no compute times; use roofline compute "
                    "times (--compute roofline)",
                    trace.string()));

  // The batch the replay models: the option, else the producer's "batch_size" attribute (cdma train
  // keeps only the first capture_batch images of each batch), else the captured tensors' N.
  std::int64_t batch = opts.batch;
  if (batch <= 0) {
    if (auto b = reader.root_attribute("batch_size")) {
      try {
        batch = std::stoll(*b);
      } catch (const std::exception&) {
        batch = 0;
      }
    }
  }
  if (batch < 0) batch = 0;
  Network net;
  net.source = trace.string();
  net.name = reader.attrs().model.value_or(trace.stem().string());
  for (const auto& [index, a] : acc) {
    Layer l;
    l.name = a.name.empty() ? fmt::format("layer{}", index) : a.name;
    l.op = a.op.empty() ? "other" : a.op;
    if (!a.x_bytes.empty()) {
      l.x_tensor = index;
      double s = 0;
      for (const auto& [it, b] : a.x_bytes) s += static_cast<double>(b);
      double per_iteration = s / static_cast<double>(a.x_bytes.size());
      const std::int64_t captured = a.x ? split(*a.x).n : 0;
      if (batch > 0 && captured > 0) per_iteration *= static_cast<double>(batch) / static_cast<double>(captured);
      l.x_bytes = static_cast<std::int64_t>(std::llround(per_iteration));
      net.batch = std::max<int>(net.batch, static_cast<int>(batch > 0 ? batch : captured));
    }
    shape_work(l, a, opts.conv_kernel, batch);
    if (opts.roofline) {
      const double fps = opts.gpu->peak_flops(opts.precision) * opts.gpu->compute_efficiency;
      const double bps = opts.gpu->dram_gbps * 1e9 * opts.gpu->dram_efficiency;
      l.fwd_ps = std::max(transfer_ps(l.flops, fps), transfer_ps(l.dram_bytes, bps));
      l.bwd_ps = static_cast<Ps>(std::llround(static_cast<double>(l.fwd_ps) * opts.bwd_factor));
    } else {
      const double f = mean(a.fwd_ns) * 1e3 * opts.compute_scale;
      const double b = a.bwd_ns.empty() ? 2.0 * f : mean(a.bwd_ns) * 1e3 * opts.compute_scale;
      l.fwd_ps = static_cast<Ps>(std::llround(f));
      l.bwd_ps = static_cast<Ps>(std::llround(b));
    }
    net.layers.push_back(std::move(l));
  }
  // The network input is never offloaded (docs/spec/HWMODEL.md). A producer that wrote `offload` attributes
  // left it out of its offload set already; otherwise it is the first layer's input.
  if (!stated)
    for (const auto& l : net.layers)
      if (l.x_tensor >= 0) {
        net.input_tensor = l.x_tensor;
        break;
      }
  return net;
}

namespace {
using nlohmann::json;

[[noreturn]] void bad(const std::filesystem::path& p, const std::string& what) {
  throw ModelError(fmt::format("{}: {}", p.string(), what));
}

// An integer field of a row (a byte or iteration count): a JSON integer 0 .. 2^62, `absent` when the
// row has none. A float (1e300), a negative or a larger number is refused: a cast to int64 printed
// 1e300 bytes as -9223372036854775808.
std::int64_t count_field(const json& row, const char* key, std::int64_t absent, const std::filesystem::path& path,
                         const std::string& where) {
  if (!row.contains(key)) return absent;
  const json& v = row[key];
  constexpr std::int64_t kMax = std::int64_t{1} << 62;
  if (v.is_number_unsigned() && v.get<std::uint64_t>() <= static_cast<std::uint64_t>(kMax))
    return static_cast<std::int64_t>(v.get<std::uint64_t>());
  if (v.is_number_integer() && !v.is_number_unsigned() && v.get<std::int64_t>() >= 0 && v.get<std::int64_t>() <= kMax)
    return v.get<std::int64_t>();
  bad(path, fmt::format("{}.{}: expected an integer 0 .. 2^62, got {}", where, key, v.dump()));
}

bool stored_row(const json& row, int trace_index) {
  return row.value("trace", 0) == trace_index && row.value("layout", "stored") == "stored" &&
         row.value("dtype", "stored") == "stored";
}

// A row's ratios per codec. null ratios (unknown: byte codecs on /stats rows) are left out, so the
// layer counts as unmeasured for that codec; anything else that is not a positive finite number is
// an error naming the file and the field.
std::map<std::string, double> codec_ratios(const json& row, const std::filesystem::path& path,
                                           const std::string& where) {
  std::map<std::string, double> out;
  if (!row.contains("codecs")) return out;
  if (!row["codecs"].is_object()) bad(path, where + ".codecs: expected an object");
  for (const auto& [name, c] : row["codecs"].items()) {
    const std::string field = where + ".codecs." + name + ".ratio";
    if (!c.is_object()) bad(path, where + ".codecs." + name + ": expected an object");
    if (!c.contains("ratio") || c["ratio"].is_null()) continue;
    if (!c["ratio"].is_number()) bad(path, field + ": expected a number or null, got " + c["ratio"].dump());
    const double r = c["ratio"].get<double>();
    if (!(r > 0) || !std::isfinite(r)) bad(path, fmt::format("{}: a ratio must be > 0 and finite, got {}", field, r));
    out[name] = r;
  }
  return out;
}
}  // namespace

namespace {
// The rows of one trace of an analysis document (schema cdma-analysis v1); `path` names the
// document's source in messages.
RatioTable ratio_table_from_json(const json& root, const std::filesystem::path& path, int trace_index) {
  if (!root.is_object() || root.value("schema", "") != "cdma-analysis")
    bad(path, "expected an object with \"schema\": \"cdma-analysis\" (output of cdma analyze --json)");
  if (!root.contains("schema_version") || !root["schema_version"].is_number_integer())
    bad(path, "missing integer \"schema_version\"");
  if (root["schema_version"].get<std::int64_t>() != 1)
    bad(path,
        fmt::format("schema_version {} is not the version this reader supports (1)", root["schema_version"].dump()));
  if (!root.contains("layer") || !root["layer"].is_array()) bad(path, "missing array \"layer\"");
  RatioTable t;
  t.path = path;
  for (std::size_t i = 0; i < root["layer"].size(); ++i) {
    const json& row = root["layer"][i];
    const std::string where = fmt::format("layer[{}]", i);
    if (!row.is_object()) bad(path, where + ": expected an object");
    if (!stored_row(row, trace_index) || row.value("role", "x") != "x") continue;
    LayerRatios r;
    r.layer = row.value("layer", "");
    r.layer_index = row.value("layer_index", -1);
    r.op = row.value("op", "");
    const std::int64_t bytes = count_field(row, "bytes", 0, path, where);
    const std::int64_t iters = std::max<std::int64_t>(1, count_field(row, "iterations", 1, path, where));
    r.bytes_per_iteration = bytes / iters;
    if (row.contains("density") && row["density"].is_number()) r.density = row["density"].get<double>();
    r.ratio = codec_ratios(row, path, where);
    t.layers.push_back(std::move(r));
  }
  if (root.contains("network") && root["network"].is_array())
    for (std::size_t i = 0; i < root["network"].size(); ++i) {
      const json& row = root["network"][i];
      if (row.is_object() && stored_row(row, trace_index)) {
        t.network = codec_ratios(row, path, fmt::format("network[{}]", i));
        if (row.contains("density") && row["density"].is_number()) t.network_density = row["density"].get<double>();
        break;
      }
    }
  // Whether the trace's producer stated its offload set (analysis JSON "traces"[i].offload_attribute;
  // absent in older documents): if not, the lowest layer's input is the network input.
  bool stated = false;
  if (root.contains("traces") && root["traces"].is_array())
    for (const auto& tr : root["traces"])
      if (tr.is_object() && tr.value("index", -1) == trace_index && tr.contains("offload_attribute") &&
          tr["offload_attribute"].is_boolean())
        stated = tr["offload_attribute"].get<bool>();
  if (!stated && !t.layers.empty()) {
    t.input_layer_index = t.layers.front().layer_index;
    for (const auto& r : t.layers) t.input_layer_index = std::min(t.input_layer_index, r.layer_index);
  }
  if (t.layers.empty() && t.network.empty())
    bad(path,
        fmt::format("no layer or network rows for trace {} (layout and dtype \"stored\", role \"x\")", trace_index));
  return t;
}
}  // namespace

RatioTable load_analysis_json(const std::filesystem::path& path, int trace_index) {
  std::ifstream in(path);
  if (!in) bad(path, "cannot open the analysis JSON");
  json root;
  try {
    root = json::parse(in);
  } catch (const json::exception& e) {
    bad(path, fmt::format("not valid JSON ({})", e.what()));
  }
  try {
    return ratio_table_from_json(root, path, trace_index);
  } catch (const json::exception& e) {  // a field of the wrong type
    bad(path, fmt::format("not a cdma-analysis document: {}", e.what()));
  }
}

RatioFill parse_fill(const std::string& s) {
  if (s == "none") return RatioFill::none;
  if (s == "average") return RatioFill::average;
  throw ModelError(fmt::format("unknown fill rule '{}' (expected none or average)", s));
}

const char* to_string(RatioFill f) { return f == RatioFill::none ? "none" : "average"; }

namespace {
// A layer whose tensor the replay offloads, and which is that tensor's first consumer (whose ratio
// map the replay uses; later consumers of a shared tensor move nothing of their own).
bool offloads(const Network& net, const Layer& l, std::set<int>& seen) {
  return l.x_tensor >= 0 && l.x_tensor != net.input_tensor && l.x_bytes > 0 && seen.insert(l.x_tensor).second;
}
// Layer names across naming conventions: Caffe's "fire2/squeeze1x1" is PyTorch's "fire2.squeeze1x1".
bool same_layer_name(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const char x = a[i] == '/' ? '.' : a[i], y = b[i] == '/' ? '.' : b[i];
    if (x != y) return false;
  }
  return true;
}
void note_unmeasured(ApplyRatiosReport& rep, const Layer& l) {
  ++rep.unmatched;
  rep.unmeasured.push_back(l.name);
  rep.unmeasured_bytes += l.x_bytes;
}
}  // namespace

ApplyRatiosReport apply_ratios(Network& net, const RatioTable& table, bool match_index, bool take_bytes,
                               RatioFill fill) {
  ApplyRatiosReport rep;
  std::map<std::string, const LayerRatios*> by_name;
  std::map<int, const LayerRatios*> by_index;
  for (const auto& r : table.layers) {
    by_name.emplace(r.layer, &r);
    by_index.emplace(r.layer_index, &r);
  }
  std::set<int> seen;
  for (Layer& l : net.layers) {
    if (!offloads(net, l, seen)) continue;
    const LayerRatios* row = nullptr;
    if (auto it = by_name.find(l.name); it != by_name.end()) {
      row = it->second;
      ++rep.matched_by_name;
    } else if (auto jt = by_index.find(l.x_tensor); match_index && jt != by_index.end()) {
      row = jt->second;
      ++rep.matched_by_index;
    }
    if (row) {
      for (const auto& [codec, r] : row->ratio) l.ratio[codec] = r;
      if (take_bytes && row->bytes_per_iteration > 0) l.x_bytes = row->bytes_per_iteration;
    } else {
      note_unmeasured(rep, l);
      l.ratio.clear();  // ratio 1 for every codec
      if (fill == RatioFill::average)
        for (const auto& [codec, r] : table.network) l.ratio[codec] = r;
    }
  }
  return rep;
}

RatioTable ratio_table_from_analysis(const analyze::Analysis& a, int trace_index) {
  if (trace_index < 0 || static_cast<std::size_t>(trace_index) >= a.traces.size())
    throw ModelError(
        fmt::format("the analysis has {} trace(s); trace index {} does not exist", a.traces.size(), trace_index));
  const analyze::TraceSummary& tr = a.traces[static_cast<std::size_t>(trace_index)];
  RatioTable t;
  t.path = tr.path;
  const auto stored = a.stored_variant();  // the only variant the replay uses
  auto ratios = [&](const analyze::Measures& m) {
    std::map<std::string, double> out;
    for (std::size_t c = 0; c < a.codec_names.size() && c < m.codecs.size(); ++c) {
      const auto& r = m.codecs[c].ratio;
      if (r && *r > 0 && std::isfinite(*r)) out[a.codec_names[c]] = *r;  // unknown ratios stay unmeasured
    }
    return out;
  };
  if (stored) {
    for (const auto& row : a.rows(analyze::Level::layer, stored)) {
      if (row.trace != trace_index || row.role.value_or("x") != "x") continue;
      LayerRatios r;
      r.layer = row.layer.value_or("");
      r.layer_index = row.layer_index.value_or(-1);
      r.op = row.op.value_or("");
      r.bytes_per_iteration = static_cast<std::int64_t>(row.m.bytes / std::max<std::uint64_t>(1, row.m.iterations));
      r.density = row.m.density();
      r.ratio = ratios(row.m);
      t.layers.push_back(std::move(r));
    }
    for (const auto& row : a.rows(analyze::Level::network, stored))
      if (row.trace == trace_index) {
        t.network = ratios(row.m);
        t.network_density = row.m.density();
        break;
      }
  }
  if (!tr.offload_attribute && !t.layers.empty()) {
    t.input_layer_index = t.layers.front().layer_index;
    for (const auto& r : t.layers) t.input_layer_index = std::min(t.input_layer_index, r.layer_index);
  }
  return t;
}

RatioTable measure_ratio_table(const std::filesystem::path& trace, const std::vector<std::string>& codecs) {
  // The analyzer measures (one implementation of docs/spec/CODECS.md's sizes, /stats rows included); this
  // only takes its typed layer rows.
  analyze::Options opts;
  opts.codecs = codecs;
  opts.filters.roles = std::vector<std::string>{"x"};
  RatioTable table = ratio_table_from_analysis(analyze::run_analysis({trace}, opts), 0);
  table.path = trace;
  if (table.layers.empty())
    throw ModelError(fmt::format("{}: no tensors of role \"x\" to measure ratios on", trace.string()));
  // Network ratio over what vDNN offloads: every layer but the network input's. A codec unknown for
  // any of those layers (byte codecs on /stats rows) has no network ratio.
  const int first = table.input_layer_index;
  table.network.clear();
  for (const auto& c : opts.codecs) {
    const std::string name = formats::make_codec(c)->name();
    double bytes = 0, packed = 0;
    bool known = true;
    for (const auto& r : table.layers) {
      if (r.layer_index == first) continue;
      auto it = r.ratio.find(name);
      if (it == r.ratio.end() || !(it->second > 0)) {
        known = false;
        break;
      }
      bytes += static_cast<double>(r.bytes_per_iteration);
      packed += static_cast<double>(r.bytes_per_iteration) / it->second;
    }
    if (known && packed > 0) table.network[name] = bytes / packed;
  }
  return table;
}

ApplyRatiosReport apply_ratios_to_zoo(Network& net, const RatioTable& table, RatioFill fill,
                                      std::map<std::string, double>* averages) {
  std::map<std::string, std::pair<double, double>> sums;  // codec -> (bytes, compressed bytes)
  for (const auto& r : table.layers) {
    if (r.layer_index == table.input_layer_index || r.op == "relu" || r.op == "bn" || r.bytes_per_iteration <= 0)
      continue;
    for (const auto& [codec, ratio] : r.ratio) {
      if (!(ratio > 0)) continue;
      auto& s = sums[codec];
      s.first += static_cast<double>(r.bytes_per_iteration);
      s.second += static_cast<double>(r.bytes_per_iteration) / ratio;
    }
  }
  std::map<std::string, double> avg;
  for (const auto& [codec, s] : sums)
    if (s.second > 0) avg[codec] = s.first / s.second;
  if (avg.empty()) avg = table.network;  // e.g. an analysis JSON without per-layer bytes
  if (averages) *averages = avg;
  ApplyRatiosReport rep;
  std::set<int> seen;
  for (auto& l : net.layers) {
    if (!offloads(net, l, seen)) continue;
    const LayerRatios* row = nullptr;
    for (const auto& r : table.layers)
      if (same_layer_name(r.layer, l.name) && r.op == l.op) row = &r;
    if (row) {
      ++rep.matched_by_name;
      for (const auto& [codec, r] : row->ratio) l.ratio[codec] = r;
    } else {
      note_unmeasured(rep, l);
      l.ratio.clear();
      if (fill == RatioFill::average)
        for (const auto& [codec, r] : avg) l.ratio[codec] = l.x_sparse ? r : 1.0;
    }
  }
  return rep;
}

}  // namespace cdma::hwmodel
