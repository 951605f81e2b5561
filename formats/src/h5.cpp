#include "h5.hpp"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

namespace cdma::formats::h5 {

namespace {
std::atomic<bool> close_failed{false};

// At exit: HDF5's own termination (closes what is still open), unless a close failed (see close_id).
void terminate_at_exit() {
  if (!close_failed.load()) H5close();
}
}  // namespace

void init() {
  static std::once_flag once;
  std::call_once(once, [] {
    // H5dont_atexit fails when the library was started already (by another user of it in this
    // process): it then terminates itself at exit, as before.
    const bool ours = H5dont_atexit() >= 0;
    H5open();
    if (ours) std::atexit(terminate_at_exit);
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  });
}

bool close_id(hid_t id) noexcept {
  if (id < 0) return true;
  if (H5Idec_ref(id) >= 0) return true;
  close_failed.store(true);
  H5Eclear2(H5E_DEFAULT);
  return false;
}

bool a_close_failed() noexcept { return close_failed.load(); }

namespace {
herr_t collect(unsigned n, const H5E_error2_t* e, void* data) {
  auto* msgs = static_cast<std::vector<std::string>*>(data);
  if (n < 8 && e->desc != nullptr && e->desc[0] != '\0') msgs->emplace_back(e->desc);
  return 0;
}
}  // namespace

std::string take_error_stack() {
  std::vector<std::string> msgs;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, collect, &msgs);
  H5Eclear2(H5E_DEFAULT);
  std::string out;
  // Innermost cause first; two levels are enough to be useful without noise.
  for (std::size_t i = 0; i < msgs.size() && i < 2; ++i) {
    if (!out.empty()) out += "; ";
    out += msgs[i];
  }
  return out;
}

void fail(const std::string& file, const std::string& object, const std::string& what) {
  std::string msg = file;
  if (!object.empty()) msg += ": " + object;
  msg += ": " + what;
  throw TraceError(file, object, msg);
}

hid_t float16_type() {
  static hid_t t = [] {
    init();
    hid_t id = H5Tcopy(H5T_IEEE_F32LE);
    H5Tset_fields(id, 15, 10, 5, 0, 10);
    H5Tset_size(id, 2);
    H5Tset_ebias(id, 15);
    H5Tlock(id);
    return id;
  }();
  return t;
}

Id string_type_vlen() {
  Id t(H5Tcopy(H5T_C_S1));
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  return t;
}

Id string_type_fixed(std::size_t size) {
  Id t(H5Tcopy(H5T_C_S1));
  H5Tset_size(t, size);
  H5Tset_strpad(t, H5T_STR_NULLPAD);
  return t;
}

bool has_attr(hid_t obj, const char* name) { return H5Aexists(obj, name) > 0; }

bool exists(hid_t loc, const char* name, const std::string& file, const std::string& where) {
  return check(H5Lexists(loc, name, H5P_DEFAULT), file, where, (std::string("cannot look up '") + name + "'").c_str()) >
         0;
}

TypeInfo type_info(hid_t type, const std::string& file, const std::string& where) {
  TypeInfo t;
  t.cls = check(H5Tget_class(type), file, where, "cannot read the element type's class");
  t.size = H5Tget_size(type);
  if (t.size == 0) check(-1, file, where, "cannot read the element type's size");
  if (t.cls == H5T_INTEGER) t.sign = check(H5Tget_sign(type), file, where, "cannot read the element type's sign");
  return t;
}

std::optional<haddr_t> data_offset(hid_t ds, hsize_t bytes) noexcept {
  std::optional<haddr_t> r;
  if (H5Dget_storage_size(ds) == bytes) {
    const haddr_t off = H5Dget_offset(ds);
    if (off != HADDR_UNDEF) r = off;
  }
  take_error_stack();
  return r;
}

void write_attr_string(hid_t obj, const char* name, const std::string& value, const std::string& file,
                       const std::string& where) {
  Id type = string_type_vlen();
  Id space(check(H5Screate(H5S_SCALAR), file, where, "cannot create dataspace"));
  if (has_attr(obj, name)) check(H5Adelete(obj, name), file, where, "cannot replace attribute");
  Id attr(check(H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT), file, where,
                (std::string("cannot create attribute '") + name + "'").c_str()));
  const char* p = value.c_str();
  check(H5Awrite(attr, type, &p), file, where, "cannot write string attribute");
}

void write_attr_int(hid_t obj, const char* name, std::int64_t value, hid_t file_type, const std::string& file,
                    const std::string& where) {
  if (has_attr(obj, name)) {
    Id attr(check(H5Aopen(obj, name, H5P_DEFAULT), file, where, "cannot open attribute"));
    check(H5Awrite(attr, H5T_NATIVE_INT64, &value), file, where, "cannot write integer attribute");
    return;
  }
  Id space(check(H5Screate(H5S_SCALAR), file, where, "cannot create dataspace"));
  Id attr(check(H5Acreate2(obj, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT), file, where,
                (std::string("cannot create attribute '") + name + "'").c_str()));
  check(H5Awrite(attr, H5T_NATIVE_INT64, &value), file, where, "cannot write integer attribute");
}

namespace {
std::string attr_where(const std::string& where, const char* name) {
  return where + (where == "/" ? "" : "/") + "@" + name;
}

Id open_scalar_attr(hid_t obj, const char* name, const std::string& file, const std::string& where) {
  std::string w = attr_where(where, name);
  // Open first and ask whether it exists only on failure: one attribute lookup instead of two.
  Id attr(H5Aopen(obj, name, H5P_DEFAULT));
  if (!attr.valid()) {
    std::string stack = take_error_stack();
    if (!has_attr(obj, name)) fail(file, where, std::string("missing required attribute '") + name + "'");
    fail(file, w, "cannot open attribute" + (stack.empty() ? std::string() : " (HDF5: " + stack + ")"));
  }
  Id space(check(H5Aget_space(attr), file, w, "cannot read attribute dataspace"));
  if (H5Sget_simple_extent_npoints(space) != 1) fail(file, w, "expected a single value");
  return attr;
}
}  // namespace

std::string read_attr_string(hid_t obj, const char* name, const std::string& file, const std::string& where) {
  std::string w = attr_where(where, name);
  Id attr = open_scalar_attr(obj, name, file, where);
  Id ftype(check(H5Aget_type(attr), file, w, "cannot read attribute type"));
  if (H5Tget_class(ftype) != H5T_STRING) fail(file, w, "expected a string attribute");
  if (H5Tis_variable_str(ftype) > 0) {
    Id mtype(H5Tcopy(H5T_C_S1));
    H5Tset_size(mtype, H5T_VARIABLE);
    H5Tset_cset(mtype, H5Tget_cset(ftype));
    char* p = nullptr;
    check(H5Aread(attr, mtype, &p), file, w, "cannot read string attribute");
    std::string out = p ? std::string(p) : std::string();
    if (p) H5free_memory(p);
    return out;
  }
  std::size_t n = H5Tget_size(ftype);
  if (n == 0 || n > (1u << 20)) fail(file, w, "implausible fixed string size");
  std::vector<char> buf(n + 1, '\0');
  Id mtype(H5Tcopy(ftype));
  check(H5Aread(attr, mtype, buf.data()), file, w, "cannot read string attribute");
  std::string out(buf.data(), strnlen(buf.data(), n));
  if (H5Tget_strpad(ftype) == H5T_STR_SPACEPAD) {
    while (!out.empty() && out.back() == ' ') out.pop_back();
  }
  return out;
}

std::int64_t read_attr_int(hid_t obj, const char* name, const std::string& file, const std::string& where) {
  std::string w = attr_where(where, name);
  Id attr = open_scalar_attr(obj, name, file, where);
  Id ftype(check(H5Aget_type(attr), file, w, "cannot read attribute type"));
  H5T_class_t cls = H5Tget_class(ftype);
  if (cls == H5T_INTEGER) {
    std::int64_t v = 0;
    check(H5Aread(attr, H5T_NATIVE_INT64, &v), file, w, "cannot read integer attribute");
    return v;
  }
  if (cls == H5T_ENUM) {  // h5py writes numpy bool as an int8-based enum
    Id base(H5Tget_super(ftype));
    std::size_t n = H5Tget_size(ftype);
    if (!base.valid() || H5Tget_class(base) != H5T_INTEGER || n > 8) fail(file, w, "expected an integer attribute");
    unsigned char raw[8] = {};
    check(H5Aread(attr, ftype, raw), file, w, "cannot read enum attribute");
    Id native(H5Tget_native_type(base, H5T_DIR_DEFAULT));
    check(H5Tconvert(native, H5T_NATIVE_INT64, 1, raw, nullptr, H5P_DEFAULT), file, w, "cannot convert enum attribute");
    std::int64_t v = 0;
    std::memcpy(&v, raw, sizeof v);
    return v;
  }
  fail(file, w, "expected an integer attribute");
}

namespace {
herr_t collect_attr_name(hid_t, const char* name, const H5A_info_t*, void* data) {
  static_cast<std::vector<std::string>*>(data)->emplace_back(name);
  return 0;
}
}  // namespace

std::vector<std::string> attribute_names(hid_t obj, const std::string& file, const std::string& where) {
  std::vector<std::string> names;
  hsize_t idx = 0;
  check(H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_NATIVE, &idx, collect_attr_name, &names), file, where,
        "cannot list attributes");
  return names;
}

std::optional<std::string> read_attr_string_opt(hid_t obj, const char* name, const std::string& file,
                                                const std::string& where) {
  if (!has_attr(obj, name)) return std::nullopt;
  return read_attr_string(obj, name, file, where);
}

std::optional<std::int64_t> read_attr_int_opt(hid_t obj, const char* name, const std::string& file,
                                              const std::string& where) {
  if (!has_attr(obj, name)) return std::nullopt;
  return read_attr_int(obj, name, file, where);
}

}  // namespace cdma::formats::h5
