// cdma._native.TraceReader / TraceWriter: formats::TraceReader and TraceWriter (the one HDF5 code
// of the project) for cdma.open() and cdma.torch.
#include "native.hpp"

#include <cdma/formats/trace.hpp>

#include <fmt/format.h>

#include <memory>
#include <optional>

namespace cdma::python {

namespace {

using formats::TensorMeta;
using formats::TraceReader;
using formats::TraceWriter;

py::object opt(const std::optional<std::string>& s) { return s ? py::object(py::str(*s)) : py::object(py::none()); }

py::dict attrs_dict(const formats::TraceAttrs& a) {
  py::dict d;
  d["producer"] = a.producer;
  d["source"] = a.source;
  d["created"] = a.created;
  d["complete"] = a.complete;
  d["format_version"] = a.format_version;
  d["model"] = opt(a.model);
  d["device"] = opt(a.device);
  d["framework"] = opt(a.framework);
  d["command"] = opt(a.command);
  d["dropped_tensors"] = a.dropped_tensors ? py::object(py::int_(*a.dropped_tensors)) : py::object(py::none());
  return d;
}

// numpy's name of a trace dtype. bfloat16 has no numpy type: its elements are the raw 16-bit
// patterns as uint16 (cdma.bfloat16_to_float32 widens them exactly).
const char* numpy_dtype(formats::DType t) {
  switch (t) {
    case formats::DType::f32:
      return "float32";
    case formats::DType::f16:
      return "float16";
    case formats::DType::bf16:
      return "uint16";
    case formats::DType::i8:
      return "int8";
    case formats::DType::u8:
      return "uint8";
  }
  return "uint8";
}

// The metadata of every tensor as columns (cdma.Trace.tensors() makes the DataFrame).
py::dict tensor_columns(const TraceReader& r) {
  const auto& ts = r.tensors();
  const auto n = static_cast<py::ssize_t>(ts.size());
  py::list name, layer, op, role, phase, layout, dtype, dims, offload, call;
  py::array_t<std::int64_t> iteration(n), elements(n), bytes(n);
  py::array_t<std::int32_t> layer_index(n);
  py::array_t<bool> offloaded(n);
  auto it = iteration.mutable_unchecked<1>();
  auto el = elements.mutable_unchecked<1>();
  auto by = bytes.mutable_unchecked<1>();
  auto li = layer_index.mutable_unchecked<1>();
  auto of = offloaded.mutable_unchecked<1>();
  for (py::ssize_t i = 0; i < n; ++i) {
    const TensorMeta& t = ts[static_cast<std::size_t>(i)];
    name.append(t.name);
    it(i) = t.iteration;
    layer.append(t.layer);
    li(i) = t.layer_index;
    op.append(t.op);
    role.append(t.role);
    phase.append(t.phase);
    layout.append(std::string(formats::to_string(t.layout)));
    dtype.append(std::string(formats::to_string(t.dtype)));
    offload.append(t.offload ? py::object(py::bool_(*t.offload)) : py::object(py::none()));
    of(i) = t.offloaded();
    py::tuple d(t.dims.size());
    for (std::size_t k = 0; k < t.dims.size(); ++k) d[k] = t.dims[k];
    dims.append(d);
    el(i) = t.elements();
    by(i) = t.bytes();
    call.append(t.call ? py::object(py::int_(*t.call)) : py::object(py::none()));
  }
  py::dict c;
  c["name"] = name;
  c["iteration"] = iteration;
  c["layer"] = layer;
  c["layer_index"] = layer_index;
  c["op"] = op;
  c["role"] = role;
  c["phase"] = phase;
  c["layout"] = layout;
  c["dtype"] = dtype;
  c["offload"] = offload;
  c["offloaded"] = offloaded;
  c["dims"] = dims;
  c["elements"] = elements;
  c["bytes"] = bytes;
  c["call"] = call;
  return c;
}

#define CDMA_PY_COL_INT_(type, name, init) {#name, formats::Table::Kind::integer},
#define CDMA_PY_COL_STR_(name, size) {#name, formats::Table::Kind::text},
#define CDMA_PY_CELL_INT_(type, name, init) cells.emplace_back(static_cast<std::int64_t>(row.name));
#define CDMA_PY_CELL_STR_(name, size) cells.emplace_back(row.name);

formats::Table timeline_table(const std::vector<formats::TimelineRow>& rows) {
  formats::Table t({CDMA_TRACE_TIMELINE_COLUMNS(CDMA_PY_COL_INT_, CDMA_PY_COL_STR_)});
  for (const auto& row : rows) {
    std::vector<formats::Table::Cell> cells;
    CDMA_TRACE_TIMELINE_COLUMNS(CDMA_PY_CELL_INT_, CDMA_PY_CELL_STR_)
    t.add_row(std::move(cells));
  }
  return t;
}

formats::Table stats_table(const std::vector<formats::StatsRow>& rows) {
  formats::Table t({CDMA_TRACE_STATS_COLUMNS(CDMA_PY_COL_INT_, CDMA_PY_COL_STR_)});
  for (const auto& row : rows) {
    std::vector<formats::Table::Cell> cells;
    CDMA_TRACE_STATS_COLUMNS(CDMA_PY_CELL_INT_, CDMA_PY_CELL_STR_)
    t.add_row(std::move(cells));
  }
  return t;
}

#undef CDMA_PY_COL_INT_
#undef CDMA_PY_COL_STR_
#undef CDMA_PY_CELL_INT_
#undef CDMA_PY_CELL_STR_

const TensorMeta& tensor_at(const TraceReader& r, py::ssize_t i) {
  const auto n = static_cast<py::ssize_t>(r.tensors().size());
  if (i < 0 || i >= n)
    throw py::index_error(fmt::format("{}: tensor index {} not in [0, {})", r.path().string(), i, n));
  return r.tensors()[static_cast<std::size_t>(i)];
}

// A tensor's elements as a new numpy array of its dtype, shaped by its dims (stored order).
py::array read_tensor(const TraceReader& r, py::ssize_t i) {
  const TensorMeta& t = tensor_at(r, i);
  std::vector<py::ssize_t> shape(t.dims.begin(), t.dims.end());
  py::array out(py::dtype(numpy_dtype(t.dtype)), shape);
  auto* data = static_cast<std::byte*>(out.mutable_data());
  const auto nbytes = static_cast<std::size_t>(out.nbytes());
  run_hdf5([&] { r.read_into(t, std::span<std::byte>(data, nbytes)); });
  return out;
}

// --- writer ---

template <class T>
T need(const py::dict& d, const char* key, const char* what) {
  if (!d.contains(key)) throw py::key_error(fmt::format("{}: no '{}'", what, key));
  try {
    return d[key].cast<T>();
  } catch (const py::cast_error&) {
    throw py::type_error(fmt::format("{}: '{}' has the wrong type", what, key));
  }
}

formats::TraceAttrs attrs_from(const py::dict& d) {
  formats::TraceAttrs a;
  a.producer = need<std::string>(d, "producer", "trace attributes");
  a.source = need<std::string>(d, "source", "trace attributes");
  a.created = option<std::string>(d, "created", "");
  auto o = [&](const char* k) -> std::optional<std::string> {
    if (!d.contains(k) || d[k].is_none()) return std::nullopt;
    return d[k].cast<std::string>();
  };
  a.model = o("model");
  a.device = o("device");
  a.framework = o("framework");
  a.command = o("command");
  return a;
}

TensorMeta meta_from(const py::dict& d) {
  const char* what = "append_tensor meta";
  TensorMeta m;
  m.iteration = need<std::int64_t>(d, "iteration", what);
  m.layer = need<std::string>(d, "layer", what);
  m.layer_index = need<std::int32_t>(d, "layer_index", what);
  m.op = need<std::string>(d, "op", what);
  m.role = option<std::string>(d, "role", "x");
  m.phase = option<std::string>(d, "phase", "forward");
  const auto layout = need<std::string>(d, "layout", what);
  const auto dtype = need<std::string>(d, "dtype", what);
  const auto l = formats::parse_layout(layout);
  const auto t = formats::parse_dtype(dtype);
  if (!l) throw formats::UsageError(fmt::format("{}: unknown layout '{}' (NCHW, NHWC, CHWN, NC)", what, layout));
  if (!t)
    throw formats::UsageError(
        fmt::format("{}: unknown dtype '{}' (float32, float16, bfloat16, int8, uint8)", what, dtype));
  m.layout = *l;
  m.dtype = *t;
  m.dims = need<std::vector<std::int64_t>>(d, "dims", what);
  if (d.contains("call") && !d["call"].is_none()) m.call = d["call"].cast<std::int64_t>();
  if (d.contains("offload") && !d["offload"].is_none()) m.offload = d["offload"].cast<bool>();
  return m;
}

struct Writer {
  std::unique_ptr<TraceWriter> w;
  Writer() = default;
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;
  // A writer dropped without close() closes as TraceWriter's destructor does, under the HDF5 lock
  // (waited for without the signal checks of run_hdf5: a destructor must not throw).
  ~Writer() {
    if (!w) return;
    py::gil_scoped_release release;
    const std::lock_guard<std::timed_mutex> lock(hdf5_mutex());
    w.reset();
  }
  TraceWriter& get() {
    if (!w) throw formats::UsageError("the trace writer is closed");
    return *w;
  }
};

}  // namespace

void bind_trace(py::module_& m) {
  py::class_<TraceReader>(m, "TraceReader")
      .def(py::init([](const std::string& path, bool isolate, bool skip_bad) {
             formats::ReaderOptions o;
             o.isolate = isolate;
             o.skip_bad_tensors = skip_bad;
             return run_hdf5([&] { return std::make_unique<TraceReader>(path, o); });
           }),
           py::arg("path"), py::arg("isolate") = true, py::arg("skip_bad_tensors") = false)
      .def_property_readonly("path", [](const TraceReader& r) { return r.path().string(); })
      .def("attrs", [](const TraceReader& r) { return attrs_dict(r.attrs()); })
      .def("root_attribute",
           [](const TraceReader& r, const std::string& name) {
             return opt(run_hdf5([&] { return r.root_attribute(name); }));
           })
      .def("tensor_count", [](const TraceReader& r) { return r.tensors().size(); })
      .def("tensor_columns", &tensor_columns)
      .def("read", &read_tensor, py::arg("index"))
      .def("has_timeline", [](const TraceReader& r) { return run_hdf5([&] { return r.has_timeline(); }); })
      .def("has_stats", [](const TraceReader& r) { return run_hdf5([&] { return r.has_stats(); }); })
      .def("timeline",
           [](const TraceReader& r) { return table_to_py(timeline_table(run_hdf5([&] { return r.timeline(); }))); })
      .def("stats", [](const TraceReader& r) { return table_to_py(stats_table(run_hdf5([&] { return r.stats(); }))); })
      .def("warnings", [](const TraceReader& r) { return r.warnings(); })
      .def("skipped", [](const TraceReader& r) {
        py::list l;
        for (const auto& s : r.skipped_tensors()) l.append(py::make_tuple(s.object, s.reason));
        return l;
      });

  py::class_<Writer>(m, "TraceWriter")
      .def(py::init([](const std::string& path, const py::dict& attrs, bool overwrite, int deflate, int flush_every) {
             formats::WriterOptions o;
             o.overwrite = overwrite;
             o.deflate_level = deflate;
             o.flush_every = flush_every;
             const formats::TraceAttrs a = attrs_from(attrs);
             auto w = std::make_unique<Writer>();
             w->w = run_hdf5([&] { return std::make_unique<TraceWriter>(path, a, o); });
             return w;
           }),
           py::arg("path"), py::arg("attrs"), py::arg("overwrite") = false, py::arg("deflate_level") = 0,
           py::arg("flush_every") = 1)
      .def(
          "append_tensor",
          [](Writer& self, const py::dict& meta, const py::buffer& data) {
            const TensorMeta tm = meta_from(meta);
            const py::buffer_info b = data.request();
            if (b.ndim > 0) {
              py::ssize_t stride = b.itemsize;
              for (py::ssize_t k = b.ndim - 1; k >= 0; --k) {
                if (b.shape[k] != 1 && b.strides[k] != stride)
                  throw formats::UsageError("append_tensor: the data is not C-contiguous");
                stride *= b.shape[k];
              }
            }
            const auto nbytes = static_cast<std::size_t>(b.size * b.itemsize);
            if (b.itemsize != 1 && static_cast<std::size_t>(b.itemsize) != formats::dtype_size(tm.dtype))
              throw formats::UsageError(fmt::format("append_tensor: {}-byte elements given for dtype {}", b.itemsize,
                                                    formats::to_string(tm.dtype)));
            if (tm.bytes() < 0 || nbytes != static_cast<std::size_t>(tm.bytes()))
              throw formats::UsageError(
                  fmt::format("append_tensor: {} bytes given, dims and dtype say {}", nbytes, tm.bytes()));
            const std::span<const std::byte> bytes(static_cast<const std::byte*>(b.ptr), nbytes);
            TraceWriter& w = self.get();
            return run_hdf5([&] { return w.append_tensor(tm, bytes); });
          },
          py::arg("meta"), py::arg("data"))
      .def(
          "append_stats",
          [](Writer& self, const py::dict& d) {
            formats::StatsRow row;
#define CDMA_PY_GET_INT_(type, name, init) row.name = option<type>(d, #name, init);
#define CDMA_PY_GET_STR_(name, size) row.name = option<std::string>(d, #name, "");
            CDMA_TRACE_STATS_COLUMNS(CDMA_PY_GET_INT_, CDMA_PY_GET_STR_)
            TraceWriter& w = self.get();
            run_hdf5([&] { w.append_stats(row); });
          },
          py::arg("row"))
      .def(
          "append_timeline",
          [](Writer& self, const py::dict& d) {
            formats::TimelineRow row;
            CDMA_TRACE_TIMELINE_COLUMNS(CDMA_PY_GET_INT_, CDMA_PY_GET_STR_)
#undef CDMA_PY_GET_INT_
#undef CDMA_PY_GET_STR_
            TraceWriter& w = self.get();
            run_hdf5([&] { w.append_timeline(row); });
          },
          py::arg("row"))
      .def("set_dropped_tensors",
           [](Writer& self, std::int64_t n) {
             TraceWriter& w = self.get();
             run_hdf5([&] { w.set_dropped_tensors(n); });
           })
      .def("set_attribute",
           [](Writer& self, const std::string& k, const std::string& v) {
             TraceWriter& w = self.get();
             run_hdf5([&] { w.set_attribute(k, v); });
           })
      .def("flush",
           [](Writer& self) {
             TraceWriter& w = self.get();
             run_hdf5([&] { w.flush(); });
           })
      .def_property_readonly("tensor_count", [](Writer& self) { return self.get().tensor_count(); })
      .def_property_readonly("closed", [](const Writer& self) { return !self.w; })
      .def(
          "close",
          [](Writer& self, bool complete) {
            if (!self.w) return;
            run_hdf5([&] {
              // Even when close() throws, the writer is gone: its destructor never throws.
              std::unique_ptr<TraceWriter> w = std::move(self.w);
              w->close(complete);
            });
          },
          py::arg("complete") = true);
}

}  // namespace cdma::python
