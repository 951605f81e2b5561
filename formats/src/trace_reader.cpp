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
#include <fstream>

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

namespace cdma::formats {

hid_t memory_type_for(DType t) {
  switch (t) {
    case DType::f32: return H5T_NATIVE_FLOAT;
    case DType::f16: return h5::float16_type();
    case DType::bf16: return H5T_NATIVE_UINT16;
    case DType::i8: return H5T_NATIVE_INT8;
    case DType::u8: return H5T_NATIVE_UINT8;
  }
  return H5T_NATIVE_UINT8;
}

namespace {

// Which dtypes an HDF5 element type can hold, judged by class, size and sign.
bool type_agrees(hid_t ftype, DType d) {
  H5T_class_t cls = H5Tget_class(ftype);
  std::size_t size = H5Tget_size(ftype);
  switch (d) {
    case DType::f32: return cls == H5T_FLOAT && size == 4;
    case DType::f16: return cls == H5T_FLOAT && size == 2;
    case DType::bf16: return cls == H5T_INTEGER && size == 2 && H5Tget_sign(ftype) == H5T_SGN_NONE;
    case DType::i8: return cls == H5T_INTEGER && size == 1 && H5Tget_sign(ftype) == H5T_SGN_2;
    case DType::u8: return cls == H5T_INTEGER && size == 1 && H5Tget_sign(ftype) == H5T_SGN_NONE;
  }
  return false;
}

std::string describe_type(hid_t ftype) {
  H5T_class_t cls = H5Tget_class(ftype);
  std::string c = cls == H5T_FLOAT     ? "float"
                  : cls == H5T_INTEGER ? (H5Tget_sign(ftype) == H5T_SGN_NONE ? "unsigned integer" : "integer")
                  : cls == H5T_STRING  ? "string"
                  : cls == H5T_COMPOUND ? "compound"
                                        : "non-numeric";
  return std::to_string(H5Tget_size(ftype) * 8) + "-bit " + c;
}

herr_t collect_name(hid_t, const char* name, const H5L_info_t*, void* data) {
  static_cast<std::vector<std::string>*>(data)->emplace_back(name);
  return 0;
}

}  // namespace

struct TraceReader::Impl {
  std::filesystem::path path;
  std::string file;
  h5::Id fid;
  TraceAttrs attrs;
  std::vector<TensorMeta> tensors;
  std::vector<std::string> warnings;

  TensorMeta read_meta(const std::string& name) {
    std::string obj = "/tensors/" + name;
    H5O_info_t info{};
    if (H5Oget_info_by_name2(fid, obj.c_str(), &info, H5O_INFO_BASIC, H5P_DEFAULT) < 0 ||
        info.type != H5O_TYPE_DATASET) {
      h5::take_error_stack();
      h5::fail(file, obj, "expected a dataset (one per captured tensor)");
    }
    h5::Id ds(h5::check(H5Dopen2(fid, obj.c_str(), H5P_DEFAULT), file, obj, "cannot open dataset"));
    TensorMeta m;
    m.name = name;
    m.iteration = h5::read_attr_int(ds, "iteration", file, obj);
    m.layer = h5::read_attr_string(ds, "layer", file, obj);
    std::int64_t li = h5::read_attr_int(ds, "layer_index", file, obj);
    if (li < 0 || li > INT32_MAX) h5::fail(file, obj, "layer_index " + std::to_string(li) + " out of range");
    m.layer_index = static_cast<std::int32_t>(li);
    m.op = h5::read_attr_string(ds, "op", file, obj);
    m.role = h5::read_attr_string(ds, "role", file, obj);
    m.phase = h5::read_attr_string(ds, "phase", file, obj);
    std::string layout = h5::read_attr_string(ds, "layout", file, obj);
    auto l = parse_layout(layout);
    if (!l) h5::fail(file, obj, "layout '" + layout + "' is not one of NCHW, NHWC, CHWN, NC");
    m.layout = *l;
    std::string dtype = h5::read_attr_string(ds, "dtype", file, obj);
    auto d = parse_dtype(dtype);
    if (!d) h5::fail(file, obj, "dtype '" + dtype + "' is not one of float32, float16, bfloat16, int8, uint8");
    m.dtype = *d;
    m.call = h5::read_attr_int_opt(ds, "call", file, obj);
    if (auto off = h5::read_attr_int_opt(ds, "offload", file, obj)) {
      if (*off != 0 && *off != 1)
        h5::fail(file, obj, "attribute 'offload' is " + std::to_string(*off) + ", expected 0 or 1");
      m.offload = *off == 1;
    }

    h5::Id ftype(h5::check(H5Dget_type(ds), file, obj, "cannot read element type"));
    if (!type_agrees(ftype, m.dtype))
      h5::fail(file, obj,
               "dtype attribute says " + dtype + " but the element type is " + describe_type(ftype));
    h5::Id space(h5::check(H5Dget_space(ds), file, obj, "cannot read dataspace"));
    int rank = H5Sget_simple_extent_ndims(space);
    if (rank < 0) h5::fail(file, obj, "cannot read dataspace rank");
    if (rank != layout_rank(m.layout))
      h5::fail(file, obj,
               "layout " + layout + " needs " + std::to_string(layout_rank(m.layout)) + " dims, the dataset has " +
                   std::to_string(rank));
    std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
    H5Sget_simple_extent_dims(space, dims.data(), nullptr);
    m.dims.assign(dims.begin(), dims.end());
    return m;
  }
};

namespace {
// Reads the file's metadata, /timeline and /stats in a child process. Returns normally when the
// child finished (with or without a TraceError: the caller then reads in-process and gets the same
// result); throws TraceError when the child crashed or hung.
// Exit codes of the probe child. Anything else (a signal, or a sanitizer's exit code) means the
// HDF5 library failed on the file.
constexpr int kProbeOk = 0, kProbeRejected = 86;

void probe_in_child(const std::filesystem::path& path, int timeout_s) {
  const std::string file = path.string();
  // The child holds the write end of a pipe and never writes: its exit closes it, which wakes the
  // parent's poll() at once (no polling interval added to every open).
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return;  // cannot isolate; read in-process
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return;
  }
  if (pid == 0) {
    close(fds[0]);
    int rc = kProbeOk;
    try {
      TraceReader r(path, ReaderOptions{false, 0});
      (void)r.timeline();
      (void)r.stats();
    } catch (...) {
      rc = kProbeRejected;
    }
    _exit(rc);
  }
  close(fds[1]);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      close(fds[0]);
      kill(pid, SIGKILL);
      int st = 0;
      while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
      }
      h5::fail(file, "", "reading the file's metadata did not finish in " + std::to_string(timeout_s) +
                             " s (the file is damaged, or HDF5 loops on it)");
    }
    pollfd p{fds[0], POLLIN, 0};
    int n = poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 1000)));
    if (n > 0) break;  // EOF (POLLHUP): the child exited
    if (n < 0 && errno != EINTR) break;
  }
  close(fds[0]);
  int st = 0;
  while (waitpid(pid, &st, 0) < 0) {
    if (errno != EINTR) return;
  }
  if (WIFSIGNALED(st))
    h5::fail(file, "",
             std::string("the HDF5 library crashed (") + strsignal(WTERMSIG(st)) +
                 ") reading the file's metadata: the file is damaged");
  if (WIFEXITED(st) && WEXITSTATUS(st) != kProbeOk && WEXITSTATUS(st) != kProbeRejected)
    h5::fail(file, "",
             "the HDF5 library crashed (exit " + std::to_string(WEXITSTATUS(st)) +
                 ") reading the file's metadata: the file is damaged");
}
}  // namespace

TraceReader::TraceReader(const std::filesystem::path& path, ReaderOptions opts) : impl_(std::make_unique<Impl>()) {
  h5::init();
  auto& m = *impl_;
  m.path = path;
  m.file = path.string();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) h5::fail(m.file, "", "no such file");
  if (std::filesystem::is_directory(path, ec)) h5::fail(m.file, "", "is a directory, expected a trace file");
  {
    std::ifstream probe(path, std::ios::binary);
    if (!probe) h5::fail(m.file, "", "cannot open for reading (permission denied?)");
  }
  if (opts.isolate) probe_in_child(path, opts.probe_timeout_s);
  htri_t is = H5Fis_hdf5(m.file.c_str());
  if (is <= 0) {
    h5::take_error_stack();
    h5::fail(m.file, "", "not an HDF5 file (expected a cdma trace, format v1)");
  }
  m.fid = h5::Id(h5::check(H5Fopen(m.file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), m.file, "",
                           "cannot open HDF5 file (truncated or damaged?)"));
  hid_t f = m.fid;
  auto fmt = h5::read_attr_string_opt(f, "format", m.file, "/");
  if (!fmt || *fmt != kFormatName)
    h5::fail(m.file, "/",
             fmt ? "format attribute is '" + *fmt + "', expected 'cdma-trace'"
                 : "HDF5 file is not a cdma trace (no 'format' attribute; expected format = 'cdma-trace')");
  std::int64_t version = h5::read_attr_int(f, "format_version", m.file, "/");
  if (version > kFormatVersion)
    h5::fail(m.file, "/",
             "format_version " + std::to_string(version) + " is newer than this reader supports (" +
                 std::to_string(kFormatVersion) + "); update cdma");
  if (version < 1) h5::fail(m.file, "/", "format_version " + std::to_string(version) + " is invalid");
  m.attrs.format_version = static_cast<int>(version);
  m.attrs.producer = h5::read_attr_string(f, "producer", m.file, "/");
  m.attrs.source = h5::read_attr_string(f, "source", m.file, "/");
  m.attrs.created = h5::read_attr_string(f, "created", m.file, "/");
  m.attrs.complete = h5::read_attr_int(f, "complete", m.file, "/") != 0;
  m.attrs.model = h5::read_attr_string_opt(f, "model", m.file, "/");
  m.attrs.device = h5::read_attr_string_opt(f, "device", m.file, "/");
  m.attrs.framework = h5::read_attr_string_opt(f, "framework", m.file, "/");
  m.attrs.command = h5::read_attr_string_opt(f, "command", m.file, "/");
  m.attrs.dropped_tensors = h5::read_attr_int_opt(f, "dropped_tensors", m.file, "/");
  if (!m.attrs.complete)
    m.warnings.push_back(m.file +
                         ": complete = 0: the producer did not close the trace cleanly (crash or still "
                         "writing); reading the tensors that are whole");

  if (H5Lexists(f, "tensors", H5P_DEFAULT) > 0) {
    std::vector<std::string> names;
    h5::Id g(h5::check(H5Gopen2(f, "tensors", H5P_DEFAULT), m.file, "/tensors", "cannot open group"));
    hsize_t idx = 0;
    h5::check(H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_name, &names), m.file, "/tensors",
              "cannot list tensors");
    m.tensors.reserve(names.size());
    for (const auto& n : names) m.tensors.push_back(m.read_meta(n));
  } else if (!has_stats() && !has_timeline()) {
    h5::take_error_stack();
    h5::fail(m.file, "/tensors", "missing: a trace needs /tensors, /stats or /timeline");
  }
}

TraceReader::~TraceReader() = default;
TraceReader::TraceReader(TraceReader&&) noexcept = default;
TraceReader& TraceReader::operator=(TraceReader&&) noexcept = default;

const std::filesystem::path& TraceReader::path() const noexcept { return impl_->path; }
const TraceAttrs& TraceReader::attrs() const noexcept { return impl_->attrs; }
const std::vector<TensorMeta>& TraceReader::tensors() const noexcept { return impl_->tensors; }
const std::vector<std::string>& TraceReader::warnings() const noexcept { return impl_->warnings; }

std::vector<std::byte> TraceReader::read(const TensorMeta& meta) const {
  std::vector<std::byte> out(static_cast<std::size_t>(meta.bytes()));
  read_into(meta, out);
  return out;
}

void TraceReader::read_into(const TensorMeta& meta, std::span<std::byte> out) const {
  auto& m = *impl_;
  std::string obj = "/tensors/" + meta.name;
  if (static_cast<std::int64_t>(out.size()) != meta.bytes())
    h5::fail(m.file, obj, "output buffer size does not match the tensor");
  h5::Id ds(h5::check(H5Dopen2(m.fid, obj.c_str(), H5P_DEFAULT), m.file, obj, "cannot open dataset"));
  h5::Id space(h5::check(H5Dget_space(ds), m.file, obj, "cannot read dataspace"));
  if (H5Sget_simple_extent_npoints(space) != meta.elements())
    h5::fail(m.file, obj, "dataset size changed since the trace was opened");
  if (meta.elements() == 0) return;
  h5::check(H5Dread(ds, memory_type_for(meta.dtype), H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()), m.file, obj,
            "cannot read tensor data");
}

std::optional<std::string> TraceReader::root_attribute(const std::string& name) const {
  return h5::read_attr_string_opt(impl_->fid, name.c_str(), impl_->file, "/");
}

std::optional<std::uint64_t> TraceReader::raw_offset(const TensorMeta& meta) const {
  if constexpr (std::endian::native != std::endian::little) return std::nullopt;
  auto& m = *impl_;
  std::string obj = "/tensors/" + meta.name;
  if (meta.elements() == 0) return std::nullopt;
  h5::Id ds(h5::check(H5Dopen2(m.fid, obj.c_str(), H5P_DEFAULT), m.file, obj, "cannot open dataset"));
  h5::Id dcpl(h5::check(H5Dget_create_plist(ds), m.file, obj, "cannot read creation properties"));
  if (H5Pget_layout(dcpl) != H5D_CONTIGUOUS || H5Pget_nfilters(dcpl) != 0) return std::nullopt;
  h5::Id ftype(h5::check(H5Dget_type(ds), m.file, obj, "cannot read type"));
  if (H5Tequal(ftype, memory_type_for(meta.dtype)) <= 0) return std::nullopt;
  if (H5Dget_storage_size(ds) != static_cast<hsize_t>(meta.bytes())) return std::nullopt;
  const haddr_t addr = H5Dget_offset(ds);
  if (addr == HADDR_UNDEF) return std::nullopt;
  // Addresses count from the superblock, which follows the user block when there is one.
  h5::Id fcpl(h5::check(H5Fget_create_plist(m.fid), m.file, "/", "cannot read file creation properties"));
  hsize_t userblock = 0;
  if (H5Pget_userblock(fcpl, &userblock) < 0) return std::nullopt;
  return static_cast<std::uint64_t>(addr) + static_cast<std::uint64_t>(userblock);
}

bool TraceReader::has_timeline() const { return H5Lexists(impl_->fid, "timeline", H5P_DEFAULT) > 0; }
bool TraceReader::has_stats() const { return H5Lexists(impl_->fid, "stats", H5P_DEFAULT) > 0; }

namespace {
template <typename Rec>
std::vector<Rec> read_rows(hid_t fid, const char* name, hid_t mtype, const std::string& file) {
  std::string obj = std::string("/") + name;
  h5::Id ds(h5::check(H5Dopen2(fid, name, H5P_DEFAULT), file, obj, "cannot open dataset"));
  h5::Id ftype(h5::check(H5Dget_type(ds), file, obj, "cannot read type"));
  if (H5Tget_class(ftype) != H5T_COMPOUND) h5::fail(file, obj, "expected a compound dataset");
  h5::Id space(h5::check(H5Dget_space(ds), file, obj, "cannot read dataspace"));
  if (H5Sget_simple_extent_ndims(space) != 1) h5::fail(file, obj, "expected a 1-D dataset");
  hssize_t n = H5Sget_simple_extent_npoints(space);
  std::vector<Rec> rows(static_cast<std::size_t>(std::max<hssize_t>(n, 0)));
  if (n > 0)
    h5::check(H5Dread(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows.data()), file, obj,
              "cannot read rows (fields must match TRACE_FORMAT.md)");
  return rows;
}
}  // namespace

std::vector<TimelineRow> TraceReader::timeline() const {
  std::vector<TimelineRow> out;
  if (!has_timeline()) return out;
  h5::Id t = detail::timeline_mem_type();
  for (const auto& r : read_rows<detail::TimelineRec>(impl_->fid, "timeline", t, impl_->file))
    out.push_back(detail::from_rec(r));
  return out;
}

std::vector<StatsRow> TraceReader::stats() const {
  std::vector<StatsRow> out;
  if (!has_stats()) return out;
  h5::Id t = detail::stats_mem_type();
  for (const auto& r : read_rows<detail::StatsRec>(impl_->fid, "stats", t, impl_->file))
    out.push_back(detail::from_rec(r));
  return out;
}

}  // namespace cdma::formats
