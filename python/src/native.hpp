// The native module cdma._native: bindings of the cdma libraries for the Python package. Shared
// helpers of the binding files; each bind_*() adds one part of the module.
#pragma once

#include <cdma/formats/table.hpp>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <mutex>
#include <string>
#include <utility>

namespace cdma::python {

namespace py = pybind11;

// HDF5 is serial (one thread at a time in the whole process): every call that opens, reads or
// writes a trace holds this lock. It is taken after the GIL is released, so a thread waiting for
// it never blocks Python, and it is never held while Python code runs (a callback, a destructor):
// Python code may open a trace itself, which would wait for the lock forever (cdma.analysis
// releases it around its progress callback).
std::timed_mutex& hdf5_mutex();

// Takes the HDF5 lock; call it with the GIL released. Waits in slices of 100 ms, checking for
// signals (with the GIL) between them, so that Ctrl-C while another thread holds the lock raises
// KeyboardInterrupt (py::error_already_set) instead of waiting on.
std::unique_lock<std::timed_mutex> lock_hdf5();

// Runs f() with the GIL released (other Python threads run meanwhile) and the HDF5 lock held.
template <class F>
auto run_hdf5(F&& f) {
  py::gil_scoped_release release;
  const auto lock = lock_hdf5();
  return std::forward<F>(f)();
}

// A formats::Table as the list the package's _frame.frame() turns into a DataFrame:
// [(name, kind, values, missing)], kind "integer" | "real" | "text" | "boolean", values a numpy
// array (int64, float64, bool; a list of str for text), missing a bool array (True = the cell is
// empty: nobody measured it or the producer did not write it) or None when no cell is empty.
py::list table_to_py(const formats::Table& t);

// A string-keyed value of a dict of options, or the default when absent or None; a value of the
// wrong type is a UsageError naming the key.
template <class T>
T option(const py::dict& d, const char* key, T dflt) {
  if (!d.contains(key) || d[key].is_none()) return dflt;
  try {
    return d[key].cast<T>();
  } catch (const py::cast_error&) {
    throw py::type_error(std::string("option '") + key + "' has the wrong type");
  }
}

void bind_errors(py::module_& m);
void bind_trace(py::module_& m);
void bind_codecs(py::module_& m);
void bind_analysis(py::module_& m);
void bind_replay(py::module_& m);

}  // namespace cdma::python
