// The one checked layer over the HDF5 C API (internal to cdma::formats).
//
// Every HDF5 call whose failure matters goes through check(), which turns a negative return
// into a TraceError naming the file and object and carrying HDF5's own innermost message.
// HDF5's automatic error printing is switched off once, so the library never writes to stderr.
#pragma once

#include <cdma/formats/error.hpp>

#include <hdf5.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace cdma::formats::h5 {

// Switches off HDF5's automatic error printing (idempotent, thread-safe), and takes over the
// library's termination at exit (see close_id).
void init();

// Drops one reference to an HDF5 id (closing the object on the last one); false when HDF5 failed
// to (its error stack is then cleared). Why this matters: when the close of a file (or of a dataset
// with cached chunks) fails, because its last metadata cannot be written (disk full, file size
// limit), HDF5 1.10 frees the object but keeps its id, and its termination at process exit would
// close that id again and crash (SIGSEGV in H5F__close_cb). After such a failure the library is
// therefore not terminated at exit: init() registers the termination itself (H5dont_atexit +
// atexit) and skips it once a close has failed. The files are then left as their last successful
// flush wrote them.
bool close_id(hid_t id) noexcept;

// Whether a close_id() has failed in this process (the library is then not terminated at exit).
bool a_close_failed() noexcept;

// The current HDF5 error stack as one sentence (innermost cause first), then clears it.
std::string take_error_stack();

[[noreturn]] void fail(const std::string& file, const std::string& object, const std::string& what);

template <typename T>
T check(T ret, const std::string& file, const std::string& object, const char* what) {
  if (ret < 0) {
    std::string stack = take_error_stack();
    fail(file, object, stack.empty() ? std::string(what) : std::string(what) + " (HDF5: " + stack + ")");
  }
  return ret;
}

// Owning hid_t; closes with H5Idec_ref (works for files, groups, datasets, types, spaces, plists).
class Id {
 public:
  Id() = default;
  explicit Id(hid_t id) : id_(id) {}
  ~Id() { reset(); }
  Id(const Id&) = delete;
  Id& operator=(const Id&) = delete;
  Id(Id&& o) noexcept : id_(std::exchange(o.id_, H5I_INVALID_HID)) {}
  Id& operator=(Id&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = std::exchange(o.id_, H5I_INVALID_HID);
    }
    return *this;
  }
  hid_t get() const noexcept { return id_; }
  operator hid_t() const noexcept { return id_; }  // NOLINT: ergonomic with the C API
  bool valid() const noexcept { return id_ >= 0; }
  // Gives up ownership without closing.
  hid_t release() noexcept { return std::exchange(id_, H5I_INVALID_HID); }
  void reset() noexcept {
    if (id_ >= 0) close_id(id_);
    id_ = H5I_INVALID_HID;
  }

 private:
  hid_t id_ = H5I_INVALID_HID;
};

// Whether `name` is a link in `loc` (HDF5's H5Lexists); throws when HDF5 cannot tell.
bool exists(hid_t loc, const char* name, const std::string& file, const std::string& where);

// Class, size and sign of a datatype; throws when HDF5 cannot read them.
struct TypeInfo {
  H5T_class_t cls = H5T_NO_CLASS;
  std::size_t size = 0;
  H5T_sign_t sign = H5T_SGN_ERROR;  // H5T_SGN_ERROR for a type that is not an integer
};
TypeInfo type_info(hid_t type, const std::string& file, const std::string& where);

// File offset of a dataset's data when it is stored in one allocated piece of `bytes` bytes; empty
// otherwise, or when HDF5 cannot say (then its error stack is cleared). Never throws: callers use
// it only to find a faster path than reading.
std::optional<haddr_t> data_offset(hid_t ds, hsize_t bytes) noexcept;

// File/memory types used by the trace format.
hid_t float16_type();  // IEEE half, little-endian (as h5py/numpy write it); owned by this module
Id string_type_vlen();
Id string_type_fixed(std::size_t size);

// Attribute helpers. `where` is the object's path for messages.
bool has_attr(hid_t obj, const char* name);
void write_attr_string(hid_t obj, const char* name, const std::string& value, const std::string& file,
                       const std::string& where);
void write_attr_int(hid_t obj, const char* name, std::int64_t value, hid_t file_type, const std::string& file,
                    const std::string& where);
// Reads a scalar string attribute stored as variable- or fixed-length string.
std::string read_attr_string(hid_t obj, const char* name, const std::string& file, const std::string& where);
// Reads a scalar integer (or integer-based enum, as h5py writes bool) attribute as int64.
std::int64_t read_attr_int(hid_t obj, const char* name, const std::string& file, const std::string& where);
// Names of every attribute of obj (one pass over its object header).
std::vector<std::string> attribute_names(hid_t obj, const std::string& file, const std::string& where);
std::optional<std::string> read_attr_string_opt(hid_t obj, const char* name, const std::string& file,
                                                const std::string& where);
std::optional<std::int64_t> read_attr_int_opt(hid_t obj, const char* name, const std::string& file,
                                              const std::string& where);

}  // namespace cdma::formats::h5
