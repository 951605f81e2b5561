#include "native.hpp"

#include <cdma/analyze/tensor.hpp>
#include <cdma/formats/error.hpp>
#include <cdma/hwmodel/presets.hpp>
#include <cdma/version.hpp>

#include <chrono>
#include <mutex>

namespace cdma::python {

std::timed_mutex& hdf5_mutex() {
  static std::timed_mutex m;
  return m;
}

std::unique_lock<std::timed_mutex> lock_hdf5() {
  std::unique_lock<std::timed_mutex> lock(hdf5_mutex(), std::defer_lock);
  while (!lock.try_lock_for(std::chrono::milliseconds(100))) {
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
  }
  return lock;
}

py::list table_to_py(const formats::Table& t) {
  using K = formats::Table::Kind;
  py::list out;
  const auto n = static_cast<py::ssize_t>(t.rows.size());
  for (std::size_t c = 0; c < t.columns.size(); ++c) {
    const auto& col = t.columns[c];
    py::array_t<bool> missing(n);
    auto miss = missing.mutable_unchecked<1>();
    bool any_missing = false;
    for (py::ssize_t r = 0; r < n; ++r) {
      miss(r) = std::holds_alternative<std::monostate>(t.rows[static_cast<std::size_t>(r)][c]);
      any_missing = any_missing || miss(r);
    }
    py::object values;
    const char* kind = "text";
    switch (col.kind) {
      case K::integer: {
        kind = "integer";
        py::array_t<std::int64_t> a(n);
        auto v = a.mutable_unchecked<1>();
        for (py::ssize_t r = 0; r < n; ++r) {
          const auto* x = std::get_if<std::int64_t>(&t.rows[static_cast<std::size_t>(r)][c]);
          v(r) = x ? *x : 0;
        }
        values = a;
        break;
      }
      case K::real: {
        kind = "real";
        py::array_t<double> a(n);
        auto v = a.mutable_unchecked<1>();
        for (py::ssize_t r = 0; r < n; ++r) {
          const auto* x = std::get_if<double>(&t.rows[static_cast<std::size_t>(r)][c]);
          v(r) = x ? *x : std::numeric_limits<double>::quiet_NaN();
        }
        values = a;
        break;
      }
      case K::boolean: {
        kind = "boolean";
        py::array_t<bool> a(n);
        auto v = a.mutable_unchecked<1>();
        for (py::ssize_t r = 0; r < n; ++r) {
          const auto* x = std::get_if<bool>(&t.rows[static_cast<std::size_t>(r)][c]);
          v(r) = x ? *x : false;
        }
        values = a;
        break;
      }
      case K::text: {
        py::list l;
        for (py::ssize_t r = 0; r < n; ++r) {
          const auto* x = std::get_if<std::string>(&t.rows[static_cast<std::size_t>(r)][c]);
          l.append(x ? py::object(py::str(*x)) : py::object(py::none()));
        }
        values = l;
        break;
      }
    }
    out.append(py::make_tuple(col.name, kind, values, any_missing ? py::object(missing) : py::object(py::none())));
  }
  return out;
}

void bind_errors(py::module_& m) {
  // The exception classes live in cdma.errors (pure Python, with the TraceError's file and object
  // attributes); the message is the library's what(), the same sentence the CLI prints.
  py::register_exception_translator([](std::exception_ptr p) {
    auto raise = [](const char* cls, const py::tuple& args) {
      py::object type = py::module_::import("cdma.errors").attr(cls);
      PyErr_SetObject(type.ptr(), args.ptr());
    };
    try {
      if (p) std::rethrow_exception(p);
    } catch (const formats::TraceError& e) {
      raise("TraceError", py::make_tuple(e.what(), e.file(), e.object()));
    } catch (const formats::UsageError& e) {
      raise("UsageError", py::make_tuple(e.what()));
    } catch (const formats::CodecError& e) {
      raise("CodecError", py::make_tuple(e.what()));
    } catch (const analyze::VerifyError& e) {
      raise("VerifyError", py::make_tuple(e.what()));
    } catch (const hwmodel::ModelError& e) {
      raise("ModelError", py::make_tuple(e.what()));
    } catch (const formats::Error& e) {
      raise("Error", py::make_tuple(e.what()));
    }
  });
  m.attr("__version__") = cdma::kVersion;
}

}  // namespace cdma::python

PYBIND11_MODULE(_native, m) {
  m.doc() = "Native bindings of the cdma libraries (use the cdma package, not this module).";
  cdma::python::bind_errors(m);
  cdma::python::bind_trace(m);
  cdma::python::bind_codecs(m);
  cdma::python::bind_analysis(m);
  cdma::python::bind_replay(m);
}
