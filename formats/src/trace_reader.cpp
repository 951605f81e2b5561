// TraceReader: opens any producer's trace v1, validates it, lists tensors without their bytes.
#include "h5.hpp"
#include "trace_records.hpp"

#include <cdma/formats/trace.hpp>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <map>
#include <unordered_map>

#include <cdma/formats/text.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace cdma::formats {

hid_t memory_type_for(DType t) {
  switch (t) {
    case DType::f32:
      return H5T_NATIVE_FLOAT;
    case DType::f16:
      return h5::float16_type();
    case DType::bf16:
      return H5T_NATIVE_UINT16;
    case DType::i8:
      return H5T_NATIVE_INT8;
    case DType::u8:
      return H5T_NATIVE_UINT8;
  }
  return H5T_NATIVE_UINT8;
}

namespace {

// Which dtypes an HDF5 element type can hold, judged by class, size and sign.
bool type_agrees(const h5::TypeInfo& t, DType d) {
  const H5T_class_t cls = t.cls;
  const std::size_t size = t.size;
  switch (d) {
    case DType::f32:
      return cls == H5T_FLOAT && size == 4;
    case DType::f16:
      return cls == H5T_FLOAT && size == 2;
    case DType::bf16:
      return cls == H5T_INTEGER && size == 2 && t.sign == H5T_SGN_NONE;
    case DType::i8:
      return cls == H5T_INTEGER && size == 1 && t.sign == H5T_SGN_2;
    case DType::u8:
      return cls == H5T_INTEGER && size == 1 && t.sign == H5T_SGN_NONE;
  }
  return false;
}

std::string describe_type(const h5::TypeInfo& t) {
  const H5T_class_t cls = t.cls;
  std::string c = cls == H5T_FLOAT      ? "float"
                  : cls == H5T_INTEGER  ? (t.sign == H5T_SGN_NONE ? "unsigned integer" : "integer")
                  : cls == H5T_STRING   ? "string"
                  : cls == H5T_COMPOUND ? "compound"
                                        : "non-numeric";
  return std::to_string(t.size * 8) + "-bit " + c;
}

// A member of /tensors and where its object header is (HADDR_UNDEF for a soft or external link).
struct Member {
  std::string name;
  haddr_t addr;
};

herr_t collect_member(hid_t, const char* name, const H5L_info_t* info, void* data) {
  static_cast<std::vector<Member>*>(data)->push_back(
      {name, info->type == H5L_TYPE_HARD ? info->u.address : HADDR_UNDEF});
  return 0;
}

}  // namespace

namespace {
// A tensor that is not whole: what a producer leaves when it stops while writing one. In a file
// with complete = 0 such a tensor is left out with a warning; anywhere else it is an error.
class IncompleteTensor : public TraceError {
 public:
  using TraceError::TraceError;
};

[[noreturn]] void fail_incomplete(const std::string& file, const std::string& object, const std::string& what) {
  throw IncompleteTensor(file, object, file + ": " + object + ": " + what);
}

constexpr const char* kRequiredTensorAttrs[] = {"iteration", "layer", "layer_index", "op",
                                                "role",      "phase", "layout",      "dtype"};
constexpr std::size_t kWarningsPerKind = 5;
}  // namespace

struct TraceReader::Impl {
  std::filesystem::path path;
  std::string file;
  h5::Id fid;
  TraceAttrs attrs;
  std::vector<TensorMeta> tensors;
  // Parallel to tensors: the file offset of the bytes when they can be used in place (raw_offset).
  std::vector<std::optional<std::uint64_t>> raw;
  std::unordered_map<std::string, std::size_t> index;  // tensor name -> position in tensors
  std::uint64_t userblock = 0;
  std::vector<std::string> warnings;
  std::map<std::string, std::size_t> warning_counts;  // kind -> findings (the first few are listed)
  std::vector<SkippedTensor> skipped;

  void warn(const std::string& kind, std::string msg) {
    if (warning_counts[kind]++ < kWarningsPerKind) warnings.push_back(std::move(msg));
  }
  void summarise_warnings() {
    for (const auto& [kind, n] : warning_counts)
      if (n > kWarningsPerKind)
        warnings.push_back(file + ": " + std::to_string(n - kWarningsPerKind) + " more " + kind + " not listed");
  }

  // A string attribute as clean text: escaped, with a warning, when it is not.
  std::string text(hid_t obj, const char* name, const std::string& where) {
    std::string raw_text = h5::read_attr_string(obj, name, file, where);
    if (is_clean_text(raw_text)) return raw_text;
    std::string clean = clean_text(raw_text);
    warn("attributes that are not valid UTF-8 text",
         file + ": " + where + (where == "/" ? "@" : "/@") + name +
             " is not valid UTF-8 text (or holds control characters); read as '" + clean + "'");
    return clean;
  }
  std::optional<std::string> text_opt(hid_t obj, const char* name, const std::string& where) {
    if (!h5::has_attr(obj, name)) return std::nullopt;
    return text(obj, name, where);
  }

  TensorMeta read_meta(const std::string& name, haddr_t addr, std::optional<std::uint64_t>& raw_out) {
    const std::string obj = "/tensors/" + name;
    // Opened by the address the group listing gave: no name lookup in a group of (maybe) 100,000
    // members, which is what makes listing a big trace cost time linear in its size.
    if (addr == HADDR_UNDEF) h5::fail(file, obj, "is a soft or external link; expected a dataset");
    h5::Id ds(H5Oopen_by_addr(fid, addr));
    if (!ds.valid()) {
      std::string stack = h5::take_error_stack();
      fail_incomplete(file, obj, "cannot open dataset" + (stack.empty() ? std::string() : " (HDF5: " + stack + ")"));
    }
    if (h5::check(H5Iget_type(ds), file, obj, "cannot read the object type") != H5I_DATASET)
      h5::fail(file, obj, "expected a dataset (one per captured tensor)");
    const std::vector<std::string> have = h5::attribute_names(ds, file, obj);
    auto has = [&](const char* a) { return std::find(have.begin(), have.end(), a) != have.end(); };
    for (const char* a : kRequiredTensorAttrs)
      if (!has(a)) fail_incomplete(file, obj, std::string("missing required attribute '") + a + "'");

    TensorMeta m;
    m.name = name;
    m.iteration = h5::read_attr_int(ds, "iteration", file, obj);
    m.layer = text(ds, "layer", obj);
    std::int64_t li = h5::read_attr_int(ds, "layer_index", file, obj);
    if (li < 0 || li > INT32_MAX) h5::fail(file, obj, "layer_index " + std::to_string(li) + " out of range");
    m.layer_index = static_cast<std::int32_t>(li);
    m.op = text(ds, "op", obj);
    m.role = text(ds, "role", obj);
    m.phase = text(ds, "phase", obj);
    std::string layout = text(ds, "layout", obj);
    auto l = parse_layout(layout);
    if (!l) h5::fail(file, obj, "layout '" + layout + "' is not one of NCHW, NHWC, CHWN, NC");
    m.layout = *l;
    std::string dtype = text(ds, "dtype", obj);
    auto d = parse_dtype(dtype);
    if (!d) h5::fail(file, obj, "dtype '" + dtype + "' is not one of float32, float16, bfloat16, int8, uint8");
    m.dtype = *d;
    if (has("call")) m.call = h5::read_attr_int(ds, "call", file, obj);
    if (has("offload")) {
      const std::int64_t off = h5::read_attr_int(ds, "offload", file, obj);
      if (off != 0 && off != 1)
        h5::fail(file, obj, "attribute 'offload' is " + std::to_string(off) + ", expected 0 or 1");
      m.offload = off == 1;
    }

    h5::Id ftype(h5::check(H5Dget_type(ds), file, obj, "cannot read element type"));
    const h5::TypeInfo tinfo = h5::type_info(ftype, file, obj);
    if (!type_agrees(tinfo, m.dtype))
      h5::fail(file, obj, "dtype attribute says " + dtype + " but the element type is " + describe_type(tinfo));
    h5::Id space(h5::check(H5Dget_space(ds), file, obj, "cannot read dataspace"));
    const int rank = h5::check(H5Sget_simple_extent_ndims(space), file, obj, "cannot read dataspace rank");
    if (rank != layout_rank(m.layout))
      h5::fail(file, obj,
               "layout " + layout + " needs " + std::to_string(layout_rank(m.layout)) + " dims, the dataset has " +
                   std::to_string(rank));
    std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
    h5::check(H5Sget_simple_extent_dims(space, dims.data(), nullptr), file, obj, "cannot read dimensions");
    std::string dims_s;
    for (std::size_t i = 0; i < dims.size(); ++i) dims_s += (i ? "x" : "") + std::to_string(dims[i]);
    for (hsize_t x : dims) {
      if (x > static_cast<hsize_t>(INT64_MAX))
        h5::fail(file, obj, "dimensions " + dims_s + ": a dimension exceeds 2^63 - 1");
      m.dims.push_back(static_cast<std::int64_t>(x));
    }
    if (m.bytes() < 0)
      h5::fail(file, obj,
               "dimensions " + dims_s + " of " + dtype + " hold more than 2^63 - 1 bytes (the count overflows)");

    // Storage: the format allows contiguous or chunked data in this file; anything else would read
    // data that may not exist (a virtual dataset's missing source, a short external file).
    h5::Id dcpl(h5::check(H5Dget_create_plist(ds), file, obj, "cannot read creation properties"));
    const H5D_layout_t lay = h5::check(H5Pget_layout(dcpl), file, obj, "cannot read the storage layout");
    if (lay == H5D_VIRTUAL)
      h5::fail(file, obj,
               "virtual dataset (its data would come from other files); the format allows contiguous or "
               "chunked storage only");
    if (lay == H5D_COMPACT)
      h5::fail(file, obj, "compact storage; the format allows contiguous or chunked storage only");
    if (lay != H5D_CONTIGUOUS && lay != H5D_CHUNKED)
      h5::fail(file, obj, "unknown storage layout; the format allows contiguous or chunked storage only");
    const int nexternal = h5::check(H5Pget_external_count(dcpl), file, obj, "cannot count external files");
    if (nexternal != 0)
      h5::fail(file, obj, "data in external raw file(s); the format allows data stored in the trace file only");
    const int nfilters = h5::check(H5Pget_nfilters(dcpl), file, obj, "cannot count filters");
    for (int i = 0; i < nfilters; ++i) {
      unsigned flags = 0, cfg = 0;
      std::size_t nelem = 0;
      char fname[64] = {};
      const H5Z_filter_t id =
          H5Pget_filter2(dcpl, static_cast<unsigned>(i), &flags, &nelem, nullptr, sizeof fname, fname, &cfg);
      if (id < 0 || H5Zfilter_avail(id) <= 0) {
        h5::take_error_stack();
        h5::fail(file, obj,
                 "filter " + std::to_string(id) + " ('" + clean_text(fname) +
                     "') is not available in this HDF5 library; the format allows the filters that ship with HDF5");
      }
    }
    if (m.elements() > 0) {
      // Data never written reads as the fill value: refuse it. (H5Dget_space_status cannot tell for
      // chunked data: it compares compressed chunk sizes with the full size; count chunks instead.)
      std::uint64_t stored = 1, needed = 1;
      if (lay == H5D_CHUNKED) {
        std::vector<hsize_t> chunk(dims.size());
        if (h5::check(H5Pget_chunk(dcpl, static_cast<int>(chunk.size()), chunk.data()), file, obj,
                      "cannot read the chunk shape") != static_cast<int>(chunk.size()))
          h5::fail(file, obj, "cannot read the chunk shape");
        for (std::size_t k = 0; k < dims.size(); ++k) needed *= chunk[k] ? (dims[k] + chunk[k] - 1) / chunk[k] : 0;
        hsize_t n = 0;
        h5::check(H5Dget_num_chunks(ds, space, &n), file, obj, "cannot count the stored chunks");
        stored = n;
      } else {
        H5D_space_status_t st{};
        h5::check(H5Dget_space_status(ds, &st), file, obj, "cannot read storage status");
        stored = st == H5D_SPACE_STATUS_ALLOCATED ? 1 : 0;
      }
      if (stored == 0) fail_incomplete(file, obj, "no data stored (the dataset was created but never written)");
      if (stored < needed)
        fail_incomplete(file, obj,
                        "only part of the data stored (" + std::to_string(stored) + " of " + std::to_string(needed) +
                            " chunks written)");
    }

    raw_out.reset();
    if (std::endian::native == std::endian::little && lay == H5D_CONTIGUOUS && nfilters == 0 && m.elements() > 0 &&
        h5::check(H5Tequal(ftype, memory_type_for(m.dtype)), file, obj, "cannot compare element types") > 0) {
      if (auto off = h5::data_offset(ds, static_cast<hsize_t>(m.bytes())))
        raw_out = static_cast<std::uint64_t>(*off) + userblock;
    }
    h5::take_error_stack();
    return m;
  }

  std::string pack() const;
  static std::string pack_error(const TraceError& e);
  bool unpack(std::string_view bytes);

  void open_file() {
    htri_t is = H5Fis_hdf5(file.c_str());
    if (is <= 0) {
      h5::take_error_stack();
      h5::fail(file, "", "not an HDF5 file (expected a cdma trace, format v1)");
    }
    const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0 && locked_by_writer(file)) {
      h5::take_error_stack();
      h5::fail(file, "",
               "the trace is locked by another process (a writer still has it open; HDF5 file locking): read it once "
               "the writer has closed it, or now with HDF5_USE_FILE_LOCKING=FALSE in the environment (the tensors "
               "flushed so far; docs/spec/TRACE_FORMAT.md, \"Reading a trace that is being written\")");
    }
    fid = h5::Id(h5::check(f, file, "", "cannot open HDF5 file (truncated or damaged?)"));
  }

  // Whether another process holds the file's HDF5 write lock (HDF5 1.10 takes flock(LOCK_EX) for
  // a writer, LOCK_SH for a reader): then H5Fopen failed for that, not for damage.
  static bool locked_by_writer(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return false;
    const bool locked = ::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    ::close(fd);  // releases the lock if it was taken
    return locked;
  }

  void list_tensors(const ReaderOptions& opts) {
    std::vector<Member> names;
    h5::Id g(h5::check(H5Gopen2(fid, "tensors", H5P_DEFAULT), file, "/tensors", "cannot open group"));
    hsize_t idx = 0;
    h5::check(H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_member, &names), file, "/tensors",
              "cannot list tensors");
    tensors.reserve(names.size());
    raw.reserve(names.size());
    index.reserve(names.size());
    for (const auto& [n, addr] : names) {
      std::optional<std::uint64_t> r;
      try {
        if (!is_clean_text(n))
          h5::fail(file, "/tensors/" + clean_text(n),
                   "dataset name is not valid UTF-8 text (expected a 10-digit sequence number)");
        tensors.push_back(read_meta(n, addr, r));
      } catch (const IncompleteTensor& e) {
        if (!attrs.complete) {
          warn("incomplete tensors",
               std::string(e.what()) + "; left out (complete = 0: the tensor being written when the producer stopped)");
          continue;
        }
        if (!opts.skip_bad_tensors) throw;
        skipped.push_back({e.object(), bare_reason(e)});
        continue;
      } catch (const TraceError& e) {
        if (!opts.skip_bad_tensors) throw;
        skipped.push_back({e.object(), bare_reason(e)});
        continue;
      }
      raw.push_back(r);
      index.emplace(n, tensors.size() - 1);
    }
  }

  // What went wrong, without the "file: object: " that SkippedTensor names separately.
  static std::string bare_reason(const TraceError& e) {
    const std::string prefix = e.file() + ": " + e.object() + ": ";
    std::string w = e.what();
    return w.rfind(prefix, 0) == 0 ? w.substr(prefix.size()) : w;
  }

  // Position of meta in tensors (meta may be a copy).
  std::optional<std::size_t> position(const TensorMeta& meta) const {
    if (!tensors.empty() && &meta >= tensors.data() && &meta < tensors.data() + tensors.size())
      return static_cast<std::size_t>(&meta - tensors.data());
    auto it = index.find(meta.name);
    if (it == index.end()) return std::nullopt;
    return it->second;
  }
};

namespace {
// Exit codes of the probe child. Anything else (a signal, or a sanitizer's exit code) means the
// HDF5 library failed on the file.
constexpr int kProbeOk = 0, kProbeRejected = 86;

// The probe's report, sent through a pipe: what the parent would otherwise read a second time.
class Packer {
 public:
  void u64(std::uint64_t v) { out_.append(reinterpret_cast<const char*>(&v), sizeof v); }
  void i64(std::int64_t v) { u64(static_cast<std::uint64_t>(v)); }
  void str(const std::string& s) {
    u64(s.size());
    out_ += s;
  }
  std::string& bytes() { return out_; }

 private:
  std::string out_;
};

class Unpacker {
 public:
  explicit Unpacker(std::string_view in) : in_(in) {}
  std::uint64_t u64() {
    std::uint64_t v = 0;
    if (in_.size() - pos_ < sizeof v) throw std::out_of_range("probe report truncated");
    std::memcpy(&v, in_.data() + pos_, sizeof v);
    pos_ += sizeof v;
    return v;
  }
  std::int64_t i64() { return static_cast<std::int64_t>(u64()); }
  std::string str() {
    const std::uint64_t n = u64();
    if (n > in_.size() - pos_) throw std::out_of_range("probe report truncated");
    std::string s(in_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  bool done() const { return pos_ == in_.size(); }

 private:
  std::string_view in_;
  std::size_t pos_ = 0;
};

void pack_opt(Packer& p, const std::optional<std::string>& v) {
  p.u64(v.has_value());
  if (v) p.str(*v);
}
std::optional<std::string> unpack_opt(Unpacker& u) {
  if (!u.u64()) return std::nullopt;
  return u.str();
}

bool write_all(int fd, const std::string& s) {
  std::size_t off = 0;
  while (off < s.size()) {
    const ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<std::size_t>(n);
  }
  return true;
}
}  // namespace

// Everything the constructor found, as the probe child reports it to its parent.
std::string TraceReader::Impl::pack() const {
  Packer p;
  p.u64(0x63646d6170726f62ull);  // "cdmaprob"
  p.u64(0);                      // 0: a reader's state follows
  p.str(attrs.producer);
  p.str(attrs.source);
  p.str(attrs.created);
  p.u64(attrs.complete);
  p.i64(attrs.format_version);
  for (const auto* o : {&attrs.model, &attrs.device, &attrs.framework, &attrs.command}) pack_opt(p, *o);
  p.u64(attrs.dropped_tensors.has_value());
  if (attrs.dropped_tensors) p.i64(*attrs.dropped_tensors);
  p.u64(userblock);
  p.u64(tensors.size());
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const TensorMeta& t = tensors[i];
    p.str(t.name);
    p.i64(t.iteration);
    p.str(t.layer);
    p.i64(t.layer_index);
    p.str(t.op);
    p.str(t.role);
    p.str(t.phase);
    p.u64(static_cast<std::uint64_t>(t.layout));
    p.u64(static_cast<std::uint64_t>(t.dtype));
    p.u64(t.dims.size());
    for (auto d : t.dims) p.i64(d);
    p.u64(t.call.has_value());
    if (t.call) p.i64(*t.call);
    p.u64(t.offload ? (*t.offload ? 2 : 1) : 0);
    p.u64(raw[i].has_value());
    if (raw[i]) p.u64(*raw[i]);
  }
  p.u64(warnings.size());
  for (const auto& w : warnings) p.str(w);
  p.u64(skipped.size());
  for (const auto& k : skipped) {
    p.str(k.object);
    p.str(k.reason);
  }
  return std::move(p.bytes());
}

std::string TraceReader::Impl::pack_error(const TraceError& e) {
  Packer p;
  p.u64(0x63646d6170726f62ull);
  p.u64(1);  // 1: the error the constructor threw
  p.str(e.file());
  p.str(e.object());
  p.str(e.what());
  return std::move(p.bytes());
}

// Restores what pack() wrote; throws the child's TraceError when it reported one. Returns false
// when the report is not well formed (then the caller reads the file itself).
bool TraceReader::Impl::unpack(std::string_view bytes) {
  try {
    Unpacker u(bytes);
    if (u.u64() != 0x63646d6170726f62ull) return false;
    const std::uint64_t kind = u.u64();
    if (kind == 1) {
      std::string f = u.str(), o = u.str(), w = u.str();
      if (!u.done()) return false;
      throw TraceError(std::move(f), std::move(o), w);
    }
    if (kind != 0) return false;
    attrs.producer = u.str();
    attrs.source = u.str();
    attrs.created = u.str();
    attrs.complete = u.u64() != 0;
    attrs.format_version = static_cast<int>(u.i64());
    for (auto* o : {&attrs.model, &attrs.device, &attrs.framework, &attrs.command}) *o = unpack_opt(u);
    if (u.u64()) attrs.dropped_tensors = u.i64();
    userblock = u.u64();
    const std::uint64_t n = u.u64();
    if (n > bytes.size()) return false;
    tensors.reserve(n);
    raw.reserve(n);
    index.reserve(n);
    for (std::uint64_t i = 0; i < n; ++i) {
      TensorMeta t;
      t.name = u.str();
      t.iteration = u.i64();
      t.layer = u.str();
      t.layer_index = static_cast<std::int32_t>(u.i64());
      t.op = u.str();
      t.role = u.str();
      t.phase = u.str();
      const std::uint64_t lay = u.u64(), dt = u.u64();
      if (lay > static_cast<std::uint64_t>(Layout::NC) || dt > static_cast<std::uint64_t>(DType::u8)) return false;
      t.layout = static_cast<Layout>(lay);
      t.dtype = static_cast<DType>(dt);
      const std::uint64_t rank = u.u64();
      if (rank > 32) return false;
      for (std::uint64_t k = 0; k < rank; ++k) t.dims.push_back(u.i64());
      if (u.u64()) t.call = u.i64();
      if (const std::uint64_t off = u.u64()) t.offload = off == 2;
      std::optional<std::uint64_t> r;
      if (u.u64()) r = u.u64();
      index.emplace(t.name, tensors.size());
      tensors.push_back(std::move(t));
      raw.push_back(r);
    }
    const std::uint64_t nw = u.u64();
    if (nw > bytes.size()) return false;
    for (std::uint64_t i = 0; i < nw; ++i) warnings.push_back(u.str());
    const std::uint64_t ns = u.u64();
    if (ns > bytes.size()) return false;
    for (std::uint64_t i = 0; i < ns; ++i) {
      SkippedTensor k;
      k.object = u.str();
      k.reason = u.str();
      skipped.push_back(std::move(k));
    }
    return u.done();
  } catch (const std::out_of_range&) {
    return false;
  }
}

namespace {
// Reads the file's metadata, /timeline and /stats in a child process, which reports what it found
// (or the TraceError it threw) through a pipe, so that the parent need not read them again.
// Returns the report; empty when the file could not be isolated (then the caller reads in-process).
// Throws TraceError when the child crashed, hung, or reported an error.
std::optional<std::string> probe_in_child(const std::filesystem::path& path, const ReaderOptions& opts,
                                          std::string (*run)(const std::filesystem::path&, const ReaderOptions&)) {
  const int timeout_s = opts.probe_timeout_s;
  const std::string file = path.string();
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return std::nullopt;  // cannot isolate; read in-process
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return std::nullopt;
  }
  if (pid == 0) {
    close(fds[0]);
    std::signal(SIGPIPE, SIG_DFL);
    int rc = kProbeOk;
    try {
      rc = write_all(fds[1], run(path, opts)) ? kProbeOk : kProbeRejected;
    } catch (...) {
      rc = kProbeRejected;
    }
    _exit(rc);
  }
  close(fds[1]);
  std::string report;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      close(fds[0]);
      kill(pid, SIGKILL);
      int st = 0;
      while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
      }
      h5::fail(file, "",
               "reading the file's metadata did not finish in " + std::to_string(timeout_s) +
                   " s (the file is damaged, or HDF5 loops on it)");
    }
    pollfd p{fds[0], POLLIN, 0};
    int n = poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 1000)));
    if (n < 0 && errno != EINTR) break;
    if (n <= 0) continue;
    char buf[1 << 16];
    const ssize_t got = ::read(fds[0], buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;  // EOF: the child exited (or closed its end)
    report.append(buf, static_cast<std::size_t>(got));
  }
  close(fds[0]);
  int st = 0;
  while (waitpid(pid, &st, 0) < 0) {
    if (errno != EINTR) return std::nullopt;
  }
  if (WIFSIGNALED(st))
    h5::fail(file, "",
             std::string("the HDF5 library crashed (") + strsignal(WTERMSIG(st)) +
                 ") reading the file's metadata: the file is damaged");
  if (WIFEXITED(st) && WEXITSTATUS(st) != kProbeOk && WEXITSTATUS(st) != kProbeRejected)
    h5::fail(file, "",
             "the HDF5 library crashed (exit " + std::to_string(WEXITSTATUS(st)) +
                 ") reading the file's metadata: the file is damaged");
  if (!WIFEXITED(st) || WEXITSTATUS(st) != kProbeOk) return std::nullopt;
  return report;
}

// What the probe child runs: the whole in-process read, then the rows, reported as bytes.
std::string probe_report(const std::filesystem::path& path, const ReaderOptions& opts) {
  ReaderOptions child = opts;
  child.isolate = false;
  try {
    // Never destroyed: the child _exits right after, and closing HDF5's caches would only cost time.
    auto* r = new TraceReader(path, child);
    std::string report = TraceReader::probe_report_of(*r);  // before the rows add their own warnings
    (void)r->timeline();
    (void)r->stats_unchecked();
    return report;
  } catch (const TraceError& e) {
    return TraceReader::probe_report_of(e);
  }
}
}  // namespace

namespace {
// The path must name a regular file that we may read: anything else (a FIFO would block the open
// forever, a device or socket is no trace) is refused before HDF5 touches it.
void check_regular_file(const std::string& file) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) h5::fail(file, "", "no such file");
    if (err == EACCES) h5::fail(file, "", "cannot open for reading (permission denied)");
    h5::fail(file, "", std::string("cannot open for reading (") + std::strerror(err) + ")");
  }
  struct stat st {};
  const int rc = fstat(fd, &st);
  ::close(fd);
  if (rc != 0) h5::fail(file, "", "cannot read file status");
  if (S_ISDIR(st.st_mode)) h5::fail(file, "", "is a directory, expected a trace file");
  if (!S_ISREG(st.st_mode))
    h5::fail(file, "",
             std::string("is not a regular file (") +
                 (S_ISFIFO(st.st_mode)   ? "a named pipe"
                  : S_ISSOCK(st.st_mode) ? "a socket"
                                         : "a device") +
                 "); expected a trace file");
}
}  // namespace

TraceReader::TraceReader(const std::filesystem::path& path, ReaderOptions opts) : impl_(std::make_unique<Impl>()) {
  h5::init();
  auto& m = *impl_;
  m.path = path;
  m.file = path.string();
  check_regular_file(m.file);
  if (opts.isolate) {
    if (auto report = probe_in_child(path, opts, probe_report)) {
      // The child read the metadata safely: take its findings (or its error) and open the file
      // for the tensor bytes only. A malformed report is ignored: the file is then read here.
      if (m.unpack(*report)) {
        m.open_file();
        return;
      }
      *impl_ = Impl{};
      m.path = path;
      m.file = path.string();
    }
  }
  m.open_file();
  hid_t f = m.fid;
  auto fmt = h5::read_attr_string_opt(f, "format", m.file, "/");
  if (!fmt || *fmt != kFormatName)
    h5::fail(m.file, "/",
             fmt ? "format attribute is '" + clean_text(*fmt) + "', expected 'cdma-trace'"
                 : "HDF5 file is not a cdma trace (no 'format' attribute; expected format = 'cdma-trace')");
  std::int64_t version = h5::read_attr_int(f, "format_version", m.file, "/");
  if (version > kFormatVersion)
    h5::fail(m.file, "/",
             "format_version " + std::to_string(version) + " is newer than this reader supports (" +
                 std::to_string(kFormatVersion) + "); update cdma");
  if (version < 1) h5::fail(m.file, "/", "format_version " + std::to_string(version) + " is invalid");
  m.attrs.format_version = static_cast<int>(version);
  m.attrs.producer = m.text(f, "producer", "/");
  m.attrs.source = m.text(f, "source", "/");
  m.attrs.created = m.text(f, "created", "/");
  const std::int64_t complete = h5::read_attr_int(f, "complete", m.file, "/");
  if (complete != 0 && complete != 1)
    h5::fail(m.file, "/", "attribute 'complete' is " + std::to_string(complete) + ", expected 0 or 1");
  m.attrs.complete = complete == 1;
  m.attrs.model = m.text_opt(f, "model", "/");
  m.attrs.device = m.text_opt(f, "device", "/");
  m.attrs.framework = m.text_opt(f, "framework", "/");
  m.attrs.command = m.text_opt(f, "command", "/");
  m.attrs.dropped_tensors = h5::read_attr_int_opt(f, "dropped_tensors", m.file, "/");
  if (m.attrs.dropped_tensors && *m.attrs.dropped_tensors < 0)
    h5::fail(m.file, "/",
             "attribute 'dropped_tensors' is " + std::to_string(*m.attrs.dropped_tensors) + ", expected a count >= 0");
  if (!m.attrs.complete)
    m.warnings.push_back(m.file +
                         ": complete = 0: the producer did not finish the trace (a crash, still writing, a "
                         "failed write or a run stopped by an error); reading the tensors that are whole");
  {
    // Addresses count from the superblock, which follows the user block when there is one.
    h5::Id fcpl(h5::check(H5Fget_create_plist(f), m.file, "/", "cannot read file creation properties"));
    hsize_t ub = 0;
    h5::check(H5Pget_userblock(fcpl, &ub), m.file, "/", "cannot read the user block size");
    m.userblock = ub;
  }

  if (h5::exists(f, "tensors", m.file, "/")) {
    m.list_tensors(opts);
  } else if (!has_stats() && !has_timeline()) {
    h5::take_error_stack();
    h5::fail(m.file, "/tensors", "missing: a trace needs /tensors, /stats or /timeline");
  }
  m.summarise_warnings();
}

TraceReader::~TraceReader() = default;
TraceReader::TraceReader(TraceReader&&) noexcept = default;
TraceReader& TraceReader::operator=(TraceReader&&) noexcept = default;

const std::filesystem::path& TraceReader::path() const noexcept { return impl_->path; }
const TraceAttrs& TraceReader::attrs() const noexcept { return impl_->attrs; }
const std::vector<TensorMeta>& TraceReader::tensors() const noexcept { return impl_->tensors; }
const std::vector<std::string>& TraceReader::warnings() const noexcept { return impl_->warnings; }
const std::vector<SkippedTensor>& TraceReader::skipped_tensors() const noexcept { return impl_->skipped; }

std::vector<std::byte> TraceReader::read(const TensorMeta& meta) const {
  if (meta.bytes() < 0) h5::fail(impl_->file, "/tensors/" + meta.name, "invalid dimensions");
  std::vector<std::byte> out(static_cast<std::size_t>(meta.bytes()));
  read_into(meta, out);
  return out;
}

void TraceReader::read_into(const TensorMeta& meta, std::span<std::byte> out) const {
  auto& m = *impl_;
  std::string obj = "/tensors/" + meta.name;
  if (meta.bytes() < 0 || static_cast<std::int64_t>(out.size()) != meta.bytes())
    h5::fail(m.file, obj, "output buffer size does not match the tensor");
  h5::Id ds(h5::check(H5Dopen2(m.fid, obj.c_str(), H5P_DEFAULT), m.file, obj, "cannot open dataset"));
  h5::Id space(h5::check(H5Dget_space(ds), m.file, obj, "cannot read dataspace"));
  if (h5::check(H5Sget_simple_extent_npoints(space), m.file, obj, "cannot read dataspace") != meta.elements())
    h5::fail(m.file, obj, "dataset size changed since the trace was opened");
  if (meta.elements() == 0) return;
  h5::check(H5Dread(ds, memory_type_for(meta.dtype), H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()), m.file, obj,
            "cannot read tensor data");
}

void TraceReader::read_elements(const TensorMeta& meta, std::uint64_t first, std::span<std::byte> out) const {
  auto& m = *impl_;
  const std::string obj = "/tensors/" + meta.name;
  const std::size_t w = dtype_size(meta.dtype);
  const std::int64_t total = meta.elements();
  const std::uint64_t count = out.size() / w;
  if (total < 0 || out.size() % w != 0 || first > static_cast<std::uint64_t>(total) ||
      count > static_cast<std::uint64_t>(total) - first)
    h5::fail(m.file, obj, "element range out of the tensor");
  if (count == 0) return;
  h5::Id ds(h5::check(H5Dopen2(m.fid, obj.c_str(), H5P_DEFAULT), m.file, obj, "cannot open dataset"));
  h5::Id fspace(h5::check(H5Dget_space(ds), m.file, obj, "cannot read dataspace"));
  if (h5::check(H5Sget_simple_extent_npoints(fspace), m.file, obj, "cannot read dataspace") != total)
    h5::fail(m.file, obj, "dataset size changed since the trace was opened");
  const std::size_t rank = meta.dims.size();
  std::vector<hsize_t> dims(meta.dims.begin(), meta.dims.end());
  // The row-major range [first, first + count) as a few hyperslabs, each contiguous in that order:
  // from the current position, as many whole rows of the innermost axes as fit, then the rest.
  std::uint64_t pos = first, done = 0;
  std::vector<hsize_t> start(rank), cnt(rank);
  while (done < count) {
    std::uint64_t rem = pos;
    for (std::size_t k = rank; k-- > 0;) {
      start[k] = rem % dims[k];
      rem /= dims[k];
    }
    const std::uint64_t left = count - done;
    // Innermost axis a such that start is 0 on every axis inside it and whole sub-blocks fit.
    std::size_t a = rank - 1;
    std::uint64_t inner = 1;  // elements of one step along axis a
    while (a > 0 && start[a] == 0 && inner * dims[a] <= left) {
      inner *= dims[a];
      --a;
    }
    const std::uint64_t steps = std::min<std::uint64_t>(dims[a] - start[a], left / inner);
    for (std::size_t k = 0; k < rank; ++k) cnt[k] = k < a ? 1 : (k == a ? steps : dims[k]);
    const std::uint64_t n = steps * inner;
    h5::check(H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start.data(), nullptr, cnt.data(), nullptr), m.file, obj,
              "cannot select elements");
    const hsize_t mn = n;
    h5::Id mspace(h5::check(H5Screate_simple(1, &mn, nullptr), m.file, obj, "cannot create dataspace"));
    h5::check(H5Dread(ds, memory_type_for(meta.dtype), mspace, fspace, H5P_DEFAULT, out.data() + done * w), m.file, obj,
              "cannot read tensor data");
    done += n;
    pos += n;
  }
}

std::optional<std::string> TraceReader::root_attribute(const std::string& name) const {
  return h5::read_attr_string_opt(impl_->fid, name.c_str(), impl_->file, "/");
}

std::string TraceReader::probe_report_of(const TraceReader& r) { return r.impl_->pack(); }
std::string TraceReader::probe_report_of(const TraceError& e) { return Impl::pack_error(e); }

std::optional<std::uint64_t> TraceReader::raw_offset(const TensorMeta& meta) const {
  // Found at open (no HDF5 call here): analysing many small tensors must not reopen each one.
  const auto i = impl_->position(meta);
  if (!i) h5::fail(impl_->file, "/tensors/" + meta.name, "not a tensor of this trace");
  return impl_->raw[*i];
}

bool TraceReader::has_timeline() const { return h5::exists(impl_->fid, "timeline", impl_->file, "/"); }
bool TraceReader::has_stats() const { return h5::exists(impl_->fid, "stats", impl_->file, "/"); }

namespace {
template <typename Rec>
std::vector<Rec> read_rows(hid_t fid, const char* name, hid_t mtype, const std::string& file) {
  std::string obj = std::string("/") + name;
  h5::Id ds(h5::check(H5Dopen2(fid, name, H5P_DEFAULT), file, obj, "cannot open dataset"));
  h5::Id ftype(h5::check(H5Dget_type(ds), file, obj, "cannot read type"));
  if (h5::type_info(ftype, file, obj).cls != H5T_COMPOUND) h5::fail(file, obj, "expected a compound dataset");
  h5::Id space(h5::check(H5Dget_space(ds), file, obj, "cannot read dataspace"));
  if (h5::check(H5Sget_simple_extent_ndims(space), file, obj, "cannot read dataspace rank") != 1)
    h5::fail(file, obj, "expected a 1-D dataset");
  const hssize_t n = h5::check(H5Sget_simple_extent_npoints(space), file, obj, "cannot read dataspace");
  std::vector<Rec> rows(static_cast<std::size_t>(std::max<hssize_t>(n, 0)));
  if (n > 0)
    h5::check(H5Dread(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows.data()), file, obj,
              "cannot read rows (fields must match docs/spec/TRACE_FORMAT.md)");
  return rows;
}
}  // namespace

namespace {
// Fixed-size text fields of /timeline and /stats rows as clean text; returns how many rows changed.
template <typename Row, std::size_t N>
std::size_t clean_rows(std::vector<Row>& rows, std::string Row::*const (&fields)[N]) {
  std::size_t changed = 0;
  for (auto& r : rows) {
    bool c = false;
    for (auto f : fields) {
      if (is_clean_text(r.*f)) continue;
      r.*f = clean_text(r.*f);
      c = true;
    }
    changed += c;
  }
  return changed;
}
}  // namespace

std::vector<TimelineRow> TraceReader::timeline() const {
  std::vector<TimelineRow> out;
  if (!has_timeline()) return out;
  h5::Id t = detail::timeline_mem_type();
  const auto recs = read_rows<detail::TimelineRec>(impl_->fid, "timeline", t, impl_->file);
  out.reserve(recs.size());
  for (const auto& r : recs) out.push_back(detail::from_rec(r));
  if (std::size_t n = clean_rows(out, detail::kTimelineText))
    impl_->warn("/timeline text findings", impl_->file + ": /timeline: " + std::to_string(n) +
                                               " rows hold text that is not valid UTF-8 (or control characters); "
                                               "read escaped as \\xHH");
  return out;
}

std::optional<std::string> stats_row_problem(const StatsRow& row) {
  const auto dt = parse_dtype(row.dtype);
  if (!dt) return "unknown dtype '" + row.dtype + "'";
  const auto n = static_cast<std::uint64_t>(row.elements), nnz = static_cast<std::uint64_t>(row.nonzeros),
             runs = static_cast<std::uint64_t>(row.zero_runs);
  const std::uint64_t zeros = n - nnz;
  if (row.elements < 0 || row.nonzeros < 0 || row.zero_runs < 0 || nnz > n || runs > zeros ||
      (zeros > 0 && runs == 0) || runs > nnz + 1)
    return "inconsistent counts (elements " + std::to_string(row.elements) + ", nonzeros " +
           std::to_string(row.nonzeros) + ", zero_runs " + std::to_string(row.zero_runs) + ")";
  // Sums over many rows must not overflow 64 bits either: no row may claim more than 2^62 bytes.
  if (n > (std::uint64_t{1} << 62) / dtype_size(*dt))
    return std::to_string(row.elements) + " elements of " + row.dtype + " exceed the 2^62 bytes a row may describe";
  return std::nullopt;
}

std::vector<StatsRow> TraceReader::stats() const {
  auto out = stats_unchecked();
  for (std::size_t i = 0; i < out.size(); ++i)
    if (const auto why = stats_row_problem(out[i])) {
      const std::string obj = "/stats[" + std::to_string(i) + "]";
      h5::fail(impl_->file, obj,
               "row (iteration " + std::to_string(out[i].iteration) + ", layer '" + out[i].layer + "'): " + *why);
    }
  return out;
}

std::vector<StatsRow> TraceReader::stats_unchecked() const {
  std::vector<StatsRow> out;
  if (!has_stats()) return out;
  h5::Id t = detail::stats_mem_type();
  const auto recs = read_rows<detail::StatsRec>(impl_->fid, "stats", t, impl_->file);
  out.reserve(recs.size());
  for (const auto& r : recs) out.push_back(detail::from_rec(r));
  if (std::size_t n = clean_rows(out, detail::kStatsText))
    impl_->warn("/stats text findings", impl_->file + ": /stats: " + std::to_string(n) +
                                            " rows hold text that is not valid UTF-8 (or control characters); read "
                                            "escaped as \\xHH");
  return out;
}

}  // namespace cdma::formats
