// cdma._native.run_analysis / Analysis: analyze::run_analysis (the pipeline of `cdma analyze`) and
// its outputs: the tidy table of a level (analyze::long_table), the JSON and the wide CSV.
#include "native.hpp"

#include <cdma/analyze/output.hpp>
#include <cdma/analyze/pipeline.hpp>
#include <cdma/formats/byte_size.hpp>
#include <cdma/formats/text.hpp>

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <sstream>

namespace cdma::python {

namespace {

analyze::Level level_of(const std::string& s) {
  const auto l = analyze::parse_level(s);
  if (!l) throw formats::UsageError("unknown level '" + s + "' (tensor, layer, iteration, layer_iteration, network)");
  return *l;
}

std::optional<std::vector<std::string>> list_option(const py::dict& d, const char* key) {
  if (!d.contains(key) || d[key].is_none()) return std::nullopt;
  return option<std::vector<std::string>>(d, key, {});
}

analyze::Options options_from(const py::dict& d) {
  analyze::Options o;
  if (auto c = list_option(d, "codecs")) o.codecs = *c;
  if (d.contains("chunk") && !d["chunk"].is_none()) {
    if (py::isinstance<py::str>(d["chunk"])) {
      const auto text = d["chunk"].cast<std::string>();
      std::string why;
      const auto v = formats::parse_byte_size(text, &why);
      if (!v) throw formats::UsageError(formats::byte_size_error("chunk", text, why));
      o.chunk_bytes = static_cast<std::size_t>(*v);
    } else {
      const auto v = d["chunk"].cast<std::int64_t>();
      if (v < 0) throw formats::UsageError(fmt::format("chunk: {} is negative", v));
      o.chunk_bytes = static_cast<std::size_t>(v);
    }
  }
  if (auto l = list_option(d, "layouts")) o.layouts = *l;
  if (auto l = list_option(d, "dtypes")) o.dtypes = *l;
  o.filters.offloaded_only = !option<bool>(d, "all_tensors", false);
  if (d.contains("iterations") && !d["iterations"].is_none())
    o.filters.iterations = analyze::parse_iteration_ranges(d["iterations"].cast<std::string>());
  o.filters.layers = list_option(d, "layers");
  o.filters.ops = list_option(d, "ops");
  o.filters.roles = list_option(d, "roles");
  o.verify = option<bool>(d, "verify", false);
  o.keep_going = option<bool>(d, "keep_going", false);
  o.threads = option<unsigned>(d, "threads", 0);
  const auto read = option<std::string>(d, "read", "mmap");
  const auto mode = analyze::parse_read_mode(read);
  if (!mode) throw py::value_error("read must be 'mmap', 'pread' or 'hdf5', not '" + read + "'");
  o.read = *mode;
  return o;
}

py::list traces_list(const analyze::Analysis& a) {
  py::list l;
  for (const auto& t : a.traces) {
    py::dict d;
    d["index"] = t.index;
    d["path"] = formats::clean_text(t.path);
    d["model"] = t.model ? py::object(py::str(*t.model)) : py::object(py::none());
    d["source"] = t.source;
    d["complete"] = t.complete;
    d["tensors"] = t.tensors;
    d["stats_rows"] = t.stats_rows;
    d["filtered_out"] = t.filtered_out;
    d["not_offloaded"] = t.not_offloaded;
    d["offload_attribute"] = t.offload_attribute;
    py::list sk;
    for (const auto& s : t.skipped) sk.append(py::make_tuple(s.object, s.reason));
    d["skipped"] = sk;
    d["warnings"] = t.warnings;
    l.append(d);
  }
  return l;
}

std::shared_ptr<analyze::Analysis> run(const std::vector<std::string>& paths, const py::dict& opts,
                                       const py::object& progress) {
  const analyze::Options o = options_from(opts);
  const std::vector<std::filesystem::path> ps(paths.begin(), paths.end());
  std::atomic<bool> stop{false};
  bool interrupted_by_python = false;
  analyze::RunHooks hooks;
  hooks.stop = &stop;
  std::unique_lock<std::timed_mutex>* hdf5 = nullptr;  // the HDF5 lock the run holds
  // About 10 times a second on this thread, between two HDF5 calls of the run: let Python see
  // Ctrl-C and call the progress callback. The HDF5 lock is released meanwhile, because the
  // callback may open a trace (or wait for a thread that does): held, it would deadlock.
  hooks.on_progress = [&](const analyze::Progress& p) {
    if (interrupted_by_python) return;
    hdf5->unlock();
    {
      py::gil_scoped_acquire gil;
      if (!progress.is_none()) {
        try {
          progress(p.bytes_done, p.bytes_total, p.tensors_done, p.tensors_total);
        } catch (py::error_already_set& e) {
          e.restore();
          interrupted_by_python = true;
          stop = true;
        }
      }
      if (!interrupted_by_python && PyErr_CheckSignals() != 0) {
        interrupted_by_python = true;
        stop = true;
      }
    }
    // Back to the run (GIL released first: the lock is never waited for with the GIL held). The run
    // needs the lock to go on or to stop, so this waits until it is free; a Ctrl-C meanwhile stops
    // the run as soon as it has it.
    while (!hdf5->try_lock_for(std::chrono::milliseconds(100))) {
      if (interrupted_by_python) continue;
      py::gil_scoped_acquire gil;
      if (PyErr_CheckSignals() != 0) {
        interrupted_by_python = true;
        stop = true;
      }
    }
  };
  std::shared_ptr<analyze::Analysis> a;
  {
    py::gil_scoped_release release;
    auto lock = lock_hdf5();
    hdf5 = &lock;
    a = std::make_shared<analyze::Analysis>(analyze::run_analysis(ps, o, hooks));
  }
  if (interrupted_by_python) throw py::error_already_set();
  return a;
}

}  // namespace

void bind_analysis(py::module_& m) {
  py::class_<analyze::Analysis, std::shared_ptr<analyze::Analysis>>(m, "Analysis")
      .def("table", [](const analyze::Analysis& a,
                       const std::string& level) { return table_to_py(analyze::long_table(a, level_of(level))); })
      .def(
          "json",
          [](const analyze::Analysis& a, int indent) {
            std::ostringstream os;
            analyze::write_json(os, a, indent);
            return os.str();
          },
          py::arg("indent") = 1)
      .def("csv",
           [](const analyze::Analysis& a, const std::string& level) {
             std::ostringstream os;
             analyze::write_csv(os, a, level_of(level));
             return os.str();
           })
      .def("traces", &traces_list)
      .def("nothing_selected", [](const analyze::Analysis& a) { return analyze::nothing_selected(a); })
      .def_property_readonly("codecs", [](const analyze::Analysis& a) { return a.codec_names; })
      .def_property_readonly("variants",
                             [](const analyze::Analysis& a) {
                               py::list l;
                               for (const auto& v : a.variants) l.append(py::make_tuple(v.layout, v.dtype));
                               return l;
                             })
      .def_property_readonly("interrupted", [](const analyze::Analysis& a) { return a.interrupted; });
  m.def("run_analysis", &run, py::arg("paths"), py::arg("options"), py::arg("progress") = py::none());
}

}  // namespace cdma::python
