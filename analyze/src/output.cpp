#include <cdma/analyze/output.hpp>
#include <cdma/formats/error.hpp>
#include <cdma/version.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>

#include <cdma/formats/text.hpp>

namespace cdma::analyze {

namespace {
using nlohmann::json;
using nlohmann::ordered_json;

ordered_json measures_json(const Measures& m, const std::vector<std::string>& codecs) {
  ordered_json j;
  j["tensors"] = m.tensors;
  j["iterations"] = m.iterations;
  j["elements"] = m.elements;
  j["bytes"] = m.bytes;
  j["nonzeros"] = m.nonzeros;
  j["zero_runs"] = m.zero_runs;
  j["density"] = m.density();
  ordered_json c = ordered_json::object();
  for (std::size_t i = 0; i < codecs.size(); ++i) {
    const CodecTotal& t = m.codecs[i];
    ordered_json e;
    e["bytes"] = t.bytes ? ordered_json(*t.bytes) : ordered_json(nullptr);
    e["ratio"] = t.ratio ? ordered_json(*t.ratio) : ordered_json(nullptr);
    e["mean_ratio"] = t.mean_ratio ? ordered_json(*t.mean_ratio) : ordered_json(nullptr);
    if (!t.exact) e["exact"] = false;
    c[codecs[i]] = std::move(e);
  }
  j["codecs"] = std::move(c);
  return j;
}

void add_variant(ordered_json& j, const Analysis& a, std::size_t v) {
  j["layout"] = a.variants[v].layout;
  j["dtype"] = a.variants[v].dtype;
}

ordered_json filters_json(const Filters& f) {
  ordered_json j;
  j["tensors"] = f.offloaded_only ? "offloaded" : "all";
  if (f.iterations) {
    ordered_json r = ordered_json::array();
    for (const auto& x : *f.iterations) r.push_back({x.first, x.last});
    j["iterations"] = r;
  } else {
    j["iterations"] = nullptr;
  }
  auto list = [](const std::optional<std::vector<std::string>>& l) {
    return l ? ordered_json(*l) : ordered_json(nullptr);
  };
  j["layers"] = list(f.layers);
  j["ops"] = list(f.ops);
  j["roles"] = list(f.roles);
  return j;
}

ordered_json row_json(const Analysis& a, const GroupRow& r, Level level) {
  ordered_json j;
  j["trace"] = r.trace;
  if (level == Level::tensor) {
    const TensorInfo& i = r.tensor->info;
    const VariantMeasures& vm = r.tensor->variants[r.variant];
    j["name"] = i.name;
    j["iteration"] = i.iteration;
    j["layer"] = i.layer;
    j["layer_index"] = i.layer_index;
    j["op"] = i.op;
    j["role"] = i.role;
    if (!i.phase.empty()) j["phase"] = i.phase;
    j["offload"] = i.offload;
    j["dims"] = i.from_stats ? ordered_json(nullptr) : ordered_json(i.dims);
    j["stored_dtype"] = i.stored_dtype;
    j["stored_layout"] = i.from_stats ? ordered_json(nullptr) : ordered_json(i.stored_layout);
    j["from_stats"] = i.from_stats;
    add_variant(j, a, r.variant);
    j["actual_layout"] = vm.actual_layout;
    j["actual_dtype"] = vm.actual_dtype;
  } else {
    if (r.layer) {
      j["layer"] = *r.layer;
      j["layer_index"] = *r.layer_index;
      j["op"] = *r.op;
      j["role"] = *r.role;
      j["dims"] = r.dims;
    }
    if (r.iteration) j["iteration"] = *r.iteration;
    add_variant(j, a, r.variant);
  }
  j.update(measures_json(r.m, a.codec_names));
  return j;
}

std::string ratio_text(const CodecTotal& c) {
  if (!c.ratio) return "-";
  return fmt::format("{}{:.2f}x", c.exact ? "" : "<=", *c.ratio);
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char ch : s) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return q + "\"";
}

template <class T>
std::string opt_text(const std::optional<T>& v) {
  if (!v) return "";
  if constexpr (std::is_floating_point_v<T>) {
    return fmt::format("{:.6g}", *v);
  } else {
    return fmt::format("{}", *v);
  }
}
}  // namespace

namespace {
// Text that every writer accepts: the reader hands out clean text, but paths come from the command
// line and may hold any bytes.
std::string clean(const std::string& s) { return formats::clean_text(s); }

// Compact dump() of a value that never throws on a string that is not UTF-8 (it cannot hold one:
// see clean()).
std::string compact(const ordered_json& j) { return j.dump(-1, ' ', false, ordered_json::error_handler_t::replace); }

// Appends `j` as nlohmann's dump(indent) writes it (same bytes), its nested lines indented as if
// it sat `depth` levels deep in a larger document. Written here rather than by dump(indent):
// nlohmann 3.11.2 grows its buffer of indent spaces (512) by doubling it once per level, so that
// an indent above 512 wrote bytes from past the buffer's end (heap memory) into the output.
void pretty(const ordered_json& j, int indent, int depth, std::string& out) {
  const bool object = j.is_object();
  if (!object && !j.is_array()) {
    out += compact(j);
    return;
  }
  if (j.empty()) {
    out += object ? "{}" : "[]";
    return;
  }
  out += object ? '{' : '[';
  const std::size_t inner = static_cast<std::size_t>(indent) * static_cast<std::size_t>(depth + 1);
  bool first = true;
  for (auto it = j.begin(); it != j.end(); ++it) {
    out += first ? "\n" : ",\n";
    first = false;
    out.append(inner, ' ');
    if (object) {
      out += compact(ordered_json(it.key()));
      out += ": ";
    }
    pretty(*it, indent, depth + 1, out);
  }
  out += '\n';
  out.append(static_cast<std::size_t>(indent) * static_cast<std::size_t>(depth), ' ');
  out += object ? '}' : ']';
}

// The value as dump(indent) writes it (compact for indent < 0), indented as at `depth`.
std::string dump_at(const ordered_json& j, int indent, int depth) {
  if (indent < 0) return compact(j);
  std::string out;
  pretty(j, indent, depth, out);
  return out;
}
}  // namespace

void write_json(std::ostream& os, const Analysis& a, int indent) {
  if (indent < -1 || indent > kMaxJsonIndent)
    throw formats::UsageError("JSON indent must be -1 (compact) or 0 .. " + std::to_string(kMaxJsonIndent) + ", got " +
                              std::to_string(indent));
  // Written row by row (the document of 100,000 tensors would otherwise be built in memory whole),
  // with exactly the bytes nlohmann's dump(indent) gives for the whole document.
  ordered_json j;
  j["schema"] = kSchemaName;
  j["schema_version"] = kSchemaVersion;
  j["producer"] = std::string("cdma-analyze ") + cdma::kVersion;
  ordered_json o;
  o["codecs"] = a.codec_names;
  o["chunk_bytes"] = a.options.chunk_bytes;
  o["layouts"] = a.options.layouts;
  o["dtypes"] = a.options.dtypes;
  o["filters"] = filters_json(a.options.filters);
  o["max_block_bytes"] = a.options.max_block_bytes;
  j["options"] = std::move(o);
  ordered_json traces = ordered_json::array();
  for (const auto& t : a.traces) {
    ordered_json tj;
    tj["index"] = t.index;
    tj["path"] = clean(t.path);
    tj["model"] = t.model ? ordered_json(*t.model) : ordered_json(nullptr);
    tj["source"] = t.source;
    tj["complete"] = t.complete;
    tj["tensors"] = t.tensors;
    tj["stats_rows"] = t.stats_rows;
    tj["filtered_out"] = t.filtered_out;
    tj["not_offloaded"] = t.not_offloaded;
    tj["offload_attribute"] = t.offload_attribute;
    ordered_json sk = ordered_json::array();
    for (const auto& s : t.skipped) sk.push_back({{"object", clean(s.object)}, {"reason", clean(s.reason)}});
    tj["skipped"] = std::move(sk);
    ordered_json wj = ordered_json::array();
    for (const auto& w : t.warnings) wj.push_back(clean(w));
    tj["warnings"] = std::move(wj);
    traces.push_back(std::move(tj));
  }
  j["traces"] = std::move(traces);
  const bool pretty = indent >= 0;
  const std::string nl = pretty ? "\n" : "", colon = pretty ? ": " : ":";
  const std::string pad1(pretty ? static_cast<std::size_t>(indent) : 0, ' ');
  const std::string pad2(pretty ? static_cast<std::size_t>(2 * indent) : 0, ' ');
  std::string head = dump_at(j, indent, 0);
  head.resize(head.size() - (pretty ? 2 : 1));  // drop the closing "\n}" (or "}")
  os << head;
  for (Level level : {Level::tensor, Level::layer, Level::iteration, Level::layer_iteration, Level::network}) {
    os << ',' << nl << pad1 << '"' << to_string(level) << '"' << colon;
    const auto rows = a.rows(level);
    if (rows.empty()) {
      os << "[]";
      continue;
    }
    os << '[';
    for (std::size_t i = 0; i < rows.size(); ++i)
      os << (i ? "," : "") << nl << pad2 << dump_at(row_json(a, rows[i], level), indent, 2);
    os << nl << pad1 << ']';
  }
  os << nl << "}\n";
}

namespace {
const TraceSummary* trace_of(const Analysis& a, int index) {
  for (const auto& t : a.traces)
    if (t.index == index) return &t;
  return nullptr;
}
}  // namespace

formats::Table long_table(const Analysis& a, Level level) {
  using K = formats::Table::Kind;
  using Cell = formats::Table::Cell;
  const bool tensor = level == Level::tensor;
  const bool by_layer = tensor || level == Level::layer || level == Level::layer_iteration;
  const bool by_iter = tensor || level == Level::iteration || level == Level::layer_iteration;
  std::vector<formats::Table::Column> cols{{"trace", K::integer}, {"path", K::text}, {"model", K::text}};
  if (tensor) cols.insert(cols.end(), {{"name", K::text}, {"phase", K::text}, {"offload", K::boolean}});
  if (by_layer)
    cols.insert(
        cols.end(),
        {{"layer_index", K::integer}, {"layer", K::text}, {"op", K::text}, {"role", K::text}, {"dims", K::text}});
  if (by_iter) cols.push_back({"iteration", K::integer});
  cols.insert(cols.end(), {{"layout", K::text}, {"dtype", K::text}});
  if (tensor) cols.insert(cols.end(), {{"actual_layout", K::text}, {"actual_dtype", K::text}});
  cols.insert(cols.end(), {{"tensors", K::integer},
                           {"iterations", K::integer},
                           {"elements", K::integer},
                           {"bytes", K::integer},
                           {"nonzeros", K::integer},
                           {"zero_runs", K::integer},
                           {"density", K::real},
                           {"codec", K::text},
                           {"compressed_bytes", K::integer},
                           {"ratio", K::real},
                           {"mean_ratio", K::real},
                           {"exact", K::boolean}});
  formats::Table t(std::move(cols));
  auto i64 = [](auto v) { return Cell(static_cast<std::int64_t>(v)); };
  for (const auto& r : a.rows(level)) {
    std::vector<Cell> base{i64(r.trace)};
    const TraceSummary* ts = trace_of(a, r.trace);
    base.push_back(ts ? Cell(clean(ts->path)) : Cell());
    base.push_back(ts && ts->model ? Cell(*ts->model) : Cell());
    if (tensor) {
      const TensorInfo& info = r.tensor->info;
      base.insert(base.end(), {Cell(info.name), info.phase.empty() ? Cell() : Cell(info.phase), Cell(info.offload)});
    }
    if (by_layer) {
      // /stats rows have no dims: the cell is empty rather than "".
      base.insert(base.end(), {i64(*r.layer_index), Cell(*r.layer), Cell(*r.op), Cell(*r.role),
                               r.dims.empty() ? Cell() : Cell(formats::dims_text(r.dims))});
    }
    if (by_iter) base.push_back(i64(*r.iteration));
    base.insert(base.end(), {Cell(a.variants[r.variant].layout), Cell(a.variants[r.variant].dtype)});
    if (tensor)
      base.insert(base.end(), {Cell(r.tensor->variants[r.variant].actual_layout),
                               Cell(r.tensor->variants[r.variant].actual_dtype)});
    const Measures& m = r.m;
    for (auto v : {m.tensors, m.iterations, m.elements, m.bytes, m.nonzeros, m.zero_runs}) base.push_back(i64(v));
    base.push_back(Cell(m.density()));
    for (std::size_t c = 0; c < a.codec_names.size() && c < m.codecs.size(); ++c) {
      const CodecTotal& ct = m.codecs[c];
      std::vector<Cell> row = base;
      row.push_back(Cell(a.codec_names[c]));
      row.push_back(ct.bytes ? i64(*ct.bytes) : Cell());
      row.push_back(ct.ratio ? Cell(*ct.ratio) : Cell());
      row.push_back(ct.mean_ratio ? Cell(*ct.mean_ratio) : Cell());
      row.push_back(Cell(ct.exact));
      t.add_row(std::move(row));
    }
  }
  return t;
}

void write_csv(std::ostream& os, const Analysis& a, Level level) {
  std::vector<std::string> head{"trace", "path", "model"};
  const bool tensor = level == Level::tensor;
  const bool by_layer = tensor || level == Level::layer || level == Level::layer_iteration;
  const bool by_iter = tensor || level == Level::iteration || level == Level::layer_iteration;
  if (tensor) head.push_back("name");
  if (by_layer) head.insert(head.end(), {"layer_index", "layer", "op", "role", "shape"});
  if (by_iter) head.push_back("iteration");
  head.insert(head.end(), {"layout", "dtype"});
  if (tensor) head.insert(head.end(), {"actual_layout", "actual_dtype"});
  head.insert(head.end(), {"tensors", "iterations", "elements", "bytes", "nonzeros", "zero_runs", "density"});
  for (const auto& c : a.codec_names) {
    head.push_back(c + "_bytes");
    head.push_back(c + "_ratio");
    if (!tensor) head.push_back(c + "_mean_ratio");
  }
  for (std::size_t i = 0; i < head.size(); ++i) os << (i ? "," : "") << head[i];
  os << '\n';
  for (const auto& r : a.rows(level)) {
    std::vector<std::string> f{std::to_string(r.trace)};
    const TraceSummary* ts = trace_of(a, r.trace);
    f.push_back(ts ? csv_field(clean(ts->path)) : "");
    f.push_back(ts && ts->model ? csv_field(*ts->model) : "");
    if (tensor) f.push_back(csv_field(r.tensor->info.name));
    if (by_layer) {
      f.push_back(std::to_string(*r.layer_index));
      f.push_back(csv_field(*r.layer));
      f.push_back(csv_field(*r.op));
      f.push_back(csv_field(*r.role));
      f.push_back(formats::dims_text(r.dims));
    }
    if (by_iter) f.push_back(std::to_string(*r.iteration));
    f.push_back(a.variants[r.variant].layout);
    f.push_back(a.variants[r.variant].dtype);
    if (tensor) {
      f.push_back(r.tensor->variants[r.variant].actual_layout);
      f.push_back(r.tensor->variants[r.variant].actual_dtype);
    }
    const Measures& m = r.m;
    for (auto v : {m.tensors, m.iterations, m.elements, m.bytes, m.nonzeros, m.zero_runs})
      f.push_back(std::to_string(v));
    f.push_back(fmt::format("{:.6g}", m.density()));
    for (const auto& c : m.codecs) {
      f.push_back(opt_text(c.bytes));
      f.push_back(opt_text(c.ratio));
      if (!tensor) f.push_back(opt_text(c.mean_ratio));
    }
    for (std::size_t i = 0; i < f.size(); ++i) os << (i ? "," : "") << f[i];
    os << '\n';
  }
}

namespace {
struct Table {
  std::vector<std::string> head;
  std::vector<bool> right;  // right-aligned column
  std::vector<std::vector<std::string>> rows;
  void print(std::ostream& os) const {
    std::vector<std::size_t> w(head.size(), 0);
    for (std::size_t c = 0; c < head.size(); ++c) w[c] = head[c].size();
    for (const auto& r : rows)
      for (std::size_t c = 0; c < r.size(); ++c) w[c] = std::max(w[c], r[c].size());
    auto line = [&](const std::vector<std::string>& r) {
      std::string s;
      for (std::size_t c = 0; c < r.size(); ++c) {
        if (c) s += "  ";
        s += right[c] ? fmt::format("{:>{}}", r[c], w[c]) : fmt::format("{:<{}}", r[c], w[c]);
      }
      while (!s.empty() && s.back() == ' ') s.pop_back();
      os << s << '\n';
    };
    line(head);
    for (const auto& r : rows) line(r);
  }
};

}  // namespace

void write_table(std::ostream& os, const Analysis& a, Level level) {
  const bool multi_variant = a.variants.size() > 1;
  bool inexact = false, unknown = false, flattened = false;
  for (const auto& t : a.traces) {
    os << fmt::format("trace {}: {}", t.index, t.path);
    if (t.opened) {
      os << fmt::format(" (model {}, source {}, {} {}tensors{}{}{})", t.model.value_or("?"), t.source, t.tensors,
                        a.options.filters.offloaded_only ? "offloaded " : "",
                        t.stats_rows ? fmt::format(", {} /stats rows", t.stats_rows) : "",
                        t.not_offloaded
                            ? fmt::format("; {} recorded but not offloaded left out (--all-tensors)", t.not_offloaded)
                            : "",
                        t.complete ? "" : ", INCOMPLETE");
    }
    os << '\n';
  }
  os << '\n';
  const auto all = a.rows(level);
  const auto net = a.rows(Level::network);
  for (const auto& t : a.traces) {
    if (!t.opened) continue;
    Table tb;
    const bool tensor = level == Level::tensor;
    const bool by_layer = tensor || level == Level::layer || level == Level::layer_iteration;
    const bool by_iter = tensor || level == Level::iteration || level == Level::layer_iteration;
    auto col = [&](const std::string& h, bool r) {
      tb.head.push_back(h);
      tb.right.push_back(r);
    };
    if (tensor) col("tensor", false);
    if (by_layer) {
      col("layer", false);
      col("op", false);
      col("role", false);
      col("shape", false);
    }
    if (by_iter) col("iter", true);
    if (level == Level::network) col("network", false);
    if (multi_variant) {
      col("layout", false);
      col("dtype", false);
    }
    if (!tensor) col("tensors", true);
    col("size", true);
    col("density", true);
    for (const auto& c : a.codec_names) col(c, true);
    auto cells = [&](const GroupRow& r, std::vector<std::string>& row) {
      if (multi_variant) {
        std::string lay = a.variants[r.variant].layout, dt = a.variants[r.variant].dtype;
        if (r.tensor) {
          const auto& vm = r.tensor->variants[r.variant];
          if (lay != "stored" && vm.actual_layout == "NC") {
            lay += "*";
            flattened = true;
          }
          if (dt != "stored") dt = vm.actual_dtype;
        }
        row.push_back(lay);
        row.push_back(dt);
      }
      if (!tensor) row.push_back(std::to_string(r.m.tensors));
      row.push_back(formats::human_bytes(static_cast<double>(r.m.bytes)));
      row.push_back(fmt::format("{:.1f}%", 100.0 * r.m.density()));
      for (const auto& c : r.m.codecs) {
        row.push_back(ratio_text(c));
        inexact |= !c.exact;
        unknown |= !c.ratio.has_value();
      }
    };
    for (const auto& r : all) {
      if (r.trace != t.index) continue;
      std::vector<std::string> row;
      if (tensor) row.push_back(r.tensor->info.name);
      if (by_layer) {
        row.push_back(*r.layer);
        row.push_back(*r.op);
        row.push_back(*r.role);
        row.push_back(r.dims.empty() ? "-" : formats::dims_text(r.dims));
      }
      if (by_iter) row.push_back(std::to_string(*r.iteration));
      if (level == Level::network) row.push_back(t.model.value_or("network"));
      cells(r, row);
      tb.rows.push_back(std::move(row));
    }
    if (level != Level::network) {
      for (const auto& r : net) {
        if (r.trace != t.index) continue;
        std::vector<std::string> row;
        for (std::size_t i = 0; i < tb.head.size(); ++i) {
          if (tb.head[i] == "layout" || tb.head[i] == "dtype" || tb.head[i] == "tensors" || tb.head[i] == "size") break;
          row.push_back(i == 0 ? "network" : "");
        }
        cells(r, row);
        tb.rows.push_back(std::move(row));
      }
    }
    if (a.traces.size() > 1) os << fmt::format("trace {}\n", t.index);
    tb.print(os);
    os << '\n';
  }
  os << "ratios: uncompressed / compressed bytes, byte-weighted over each row's tensors (docs/spec/CODECS.md)\n";
  if (inexact) os << "<= : ZRLE from /stats rows (run lengths unknown): an upper bound of the ratio\n";
  if (unknown) os << "-  : unknown (byte codecs on /stats rows)\n";
  if (flattened) os << "*  : 2-D tensor analysed in its stored NC layout\n";
}

}  // namespace cdma::analyze
