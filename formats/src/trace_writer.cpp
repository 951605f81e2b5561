// TraceWriter: trace format v1 with crash safety by flush points.
//
// Why flush points: HDF5 keeps metadata (group B-trees, object headers) in a cache and writes it
// on flush. After H5Fflush the file on disk is a complete, consistent HDF5 file; what a killed
// process wrote after that (raw data of the next tensor in fresh space past the end of the
// flushed address space) is not referenced by it. So a SIGKILL loses at most the tensors written
// since the last flush point — with flush_every = 1, the one being written. The default file
// format (superblock v0/v2, no SWMR status flags) keeps such files openable by any reader
// without `h5clear`. `complete` stays 0 until close().
#include "h5.hpp"
#include "trace_records.hpp"

#include <cdma/formats/text.hpp>
#include <cdma/formats/trace.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <vector>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>

namespace cdma::formats {

std::int64_t TensorMeta::elements() const noexcept {
  if (dims.empty()) return 0;
  std::int64_t n = 1;
  for (auto d : dims)
    if (d < 0 || __builtin_mul_overflow(n, d, &n)) return -1;
  return n;
}

std::int64_t TensorMeta::bytes() const noexcept {
  const std::int64_t n = elements();
  std::int64_t b = 0;
  if (n < 0 || __builtin_mul_overflow(n, static_cast<std::int64_t>(dtype_size(dtype)), &b)) return -1;
  return b;
}

std::string iso8601_utc_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

namespace {
constexpr std::size_t kRowBuffer = 4096;
constexpr hsize_t kRowChunk = 1024;
constexpr std::size_t kMaxChunkBytes = 1u << 20;

bool valid_op(const std::string& s) {
  static const char* ops[] = {"conv",    "linear", "relu",   "pool",    "bn",   "lrn",
                              "dropout", "add",    "concat", "softmax", "other"};
  for (auto* o : ops)
    if (s == o) return true;
  return false;
}

// Why a layer_index is refused: readers accept 0 .. 2^31 - 1 only (docs/spec/TRACE_FORMAT.md), so the
// writer refuses the rest rather than write a file no reader opens.
std::string negative_layer_index(std::int32_t li) {
  return "layer_index " + std::to_string(li) +
         " is negative; expected 0 .. 2^31 - 1 (the layer's position in forward order)";
}

hid_t file_type_for(DType t) {
  switch (t) {
    case DType::f32:
      return H5T_IEEE_F32LE;
    case DType::f16:
      return h5::float16_type();
    case DType::bf16:
      return H5T_STD_U16LE;
    case DType::i8:
      return H5T_STD_I8LE;
    case DType::u8:
      return H5T_STD_U8LE;
  }
  return H5T_STD_U8LE;
}
}  // namespace

hid_t memory_type_for(DType t);  // shared with the reader (trace_reader.cpp)

struct TraceWriter::Impl {
  std::filesystem::path path;
  std::string file;  // path as string, for messages
  WriterOptions opts;
  h5::Id fid, tensors;
  h5::Id timeline_type, stats_type;
  std::vector<detail::TimelineRec> timeline_buf;
  std::vector<detail::StatsRec> stats_buf;
  std::int64_t count = 0;
  std::int64_t since_flush = 0;
  bool closed = false;
  // Why a write to the file failed (disk full, I/O error), empty while none has: from then on the
  // trace can no longer be marked complete (close() leaves complete = 0) and appends are refused.
  std::string failed;

  // Disk space reserved so far: every block below this offset is allocated (written, or reserved
  // with fallocate), so that HDF5's writes there cannot fail for want of space.
  std::uint64_t reserved_until = 0;
  bool can_reserve = true;  // false once the file system said it cannot (EOPNOTSUPP: best effort then)

  // Reserves the disk blocks of the file up to its current end + `more` bytes + a margin for the
  // metadata HDF5 writes with them (256 KiB + 1/256 of the file: object headers, B-tree nodes, a
  // local heap that doubles), with fallocate(FALLOC_FL_KEEP_SIZE): the file's size does not change.
  // A full disk (or a file size limit) is so met here, before HDF5 has written anything of the
  // next tensor: HDF5 cannot flush its metadata halfway (a failed flush may leave the file's
  // structures inconsistent), so running out of space in the middle of one is what must not happen.
  // Throws TraceError (the trace as it was, complete = 0) when the space is not there.
  void reserve(std::uint64_t more, const std::string& obj) {
    if (!can_reserve) return;
    void* handle = nullptr;
    if (H5Fget_vfd_handle(fid, H5P_DEFAULT, &handle) < 0 || handle == nullptr) {
      h5::take_error_stack();
      can_reserve = false;
      return;
    }
    const int fd = *static_cast<int*>(handle);  // the sec2 driver's descriptor
    struct stat st {};
    if (fstat(fd, &st) != 0) return;
    const auto end = static_cast<std::uint64_t>(st.st_size);
    const std::uint64_t want = end + more + (256u << 10) + end / 256;
    // A file size limit (RLIMIT_FSIZE) is not met by a reservation that keeps the size: HDF5 would
    // meet it when it extends the file at its next flush, halfway through.
    rlimit fsize{};
    if (getrlimit(RLIMIT_FSIZE, &fsize) == 0 && fsize.rlim_cur != RLIM_INFINITY && want > fsize.rlim_cur)
      h5::fail(file, obj,
               "the next write would take the file to about " + std::to_string(want) +
                   " bytes, past the file size limit of " + std::to_string(fsize.rlim_cur) +
                   " bytes (ulimit -f); nothing of it was written");
    if (want <= reserved_until) return;
    if (fallocate(fd, FALLOC_FL_KEEP_SIZE, static_cast<off_t>(reserved_until),
                  static_cast<off_t>(want - reserved_until)) == 0) {
      reserved_until = want;
      return;
    }
    const int e = errno;
    if (e == EOPNOTSUPP || e == ENOSYS || e == EINVAL) {
      can_reserve = false;
      return;
    }
    h5::fail(file, obj,
             "cannot reserve " + std::to_string(want - reserved_until) + " bytes of disk space for the next write (" +
                 std::strerror(e) + "); nothing of it was written");
  }

  // Gives back the blocks reserved past the file's end (at close).
  void release_reserve() noexcept {
    if (!can_reserve || reserved_until == 0) return;
    void* handle = nullptr;
    if (H5Fget_vfd_handle(fid, H5P_DEFAULT, &handle) < 0 || handle == nullptr) {
      H5Eclear2(H5E_DEFAULT);
      return;
    }
    const int fd = *static_cast<int*>(handle);
    struct stat st {};
    if (fstat(fd, &st) != 0 || static_cast<std::uint64_t>(st.st_size) >= reserved_until) return;
    fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, st.st_size,
              static_cast<off_t>(reserved_until - static_cast<std::uint64_t>(st.st_size)));
  }

  // Runs a step that writes to the file; a failure marks the writer failed (see `failed`) and
  // rethrows.
  template <class F>
  auto writing(F&& f) -> decltype(f()) {
    try {
      return f();
    } catch (const std::exception& e) {
      if (failed.empty()) failed = e.what();
      throw;
    }
  }

  void append_rows(const char* name, hid_t mtype, const void* rows, std::size_t n) {
    if (n == 0) return;
    std::string obj = std::string("/") + name;
    h5::Id ds;
    if (h5::exists(fid, name, file, "/")) {
      ds = h5::Id(h5::check(H5Dopen2(fid, name, H5P_DEFAULT), file, obj, "cannot open dataset"));
    } else {
      hsize_t zero = 0, unlimited = H5S_UNLIMITED;
      h5::Id space(h5::check(H5Screate_simple(1, &zero, &unlimited), file, obj, "cannot create dataspace"));
      h5::Id dcpl(h5::check(H5Pcreate(H5P_DATASET_CREATE), file, obj, "cannot create dataset properties"));
      h5::check(H5Pset_chunk(dcpl, 1, &kRowChunk), file, obj, "cannot set the chunk shape");
      h5::Id ftype(h5::check(H5Tcopy(mtype), file, obj, "cannot copy the row type"));
      h5::check(H5Tpack(ftype), file, obj, "cannot pack the row type");
      ds = h5::Id(h5::check(H5Dcreate2(fid, name, ftype, space, H5P_DEFAULT, dcpl, H5P_DEFAULT), file, obj,
                            "cannot create dataset"));
    }
    h5::Id space(h5::check(H5Dget_space(ds), file, obj, "cannot read dataspace"));
    hsize_t old = 0;
    h5::check(H5Sget_simple_extent_dims(space, &old, nullptr), file, obj, "cannot read the row count");
    hsize_t now = old + n, count_n = n;
    h5::check(H5Dset_extent(ds, &now), file, obj, "cannot extend dataset");
    h5::Id fspace(h5::check(H5Dget_space(ds), file, obj, "cannot read dataspace"));
    h5::check(H5Sselect_hyperslab(fspace, H5S_SELECT_SET, &old, nullptr, &count_n, nullptr), file, obj,
              "cannot select the new rows");
    h5::Id mspace(h5::check(H5Screate_simple(1, &count_n, nullptr), file, obj, "cannot create dataspace"));
    h5::check(H5Dwrite(ds, mtype, mspace, fspace, H5P_DEFAULT, rows), file, obj, "cannot write rows");
  }

  void drain_rows() {
    writing([&] {
      reserve(
          (timeline_buf.size() + stats_buf.size()) * std::max(sizeof(detail::TimelineRec), sizeof(detail::StatsRec)),
          "/");
      append_rows("timeline", timeline_type, timeline_buf.data(), timeline_buf.size());
      timeline_buf.clear();
      append_rows("stats", stats_type, stats_buf.data(), stats_buf.size());
      stats_buf.clear();
    });
  }

  void flush() {
    drain_rows();
    writing([&] { h5::check(H5Fflush(fid, H5F_SCOPE_GLOBAL), file, "", "cannot flush file"); });
    since_flush = 0;
  }

  void require_open() const {
    if (closed) h5::fail(file, "", "trace writer already closed");
  }

  // For appends: also refused once a write failed (the trace stays complete = 0; close() closes it).
  void require_writable() const {
    require_open();
    if (!failed.empty())
      h5::fail(file, "", "an earlier write failed, the trace stays incomplete (complete = 0): " + failed);
  }

  // After a failed append of tensor `name`: removes its dataset if it was created (it may hold no
  // data or no attributes), and flushes, so that the file on disk holds the tensors appended
  // before it and complete = 0. Best effort: on a full disk the removal or the flush may fail too;
  // a reader then still finds the state of the last flush point (complete = 0) and leaves out a
  // tensor without attributes (docs/spec/TRACE_FORMAT.md, "complete, partial files").
  // Creates tensor `name` (dataset, data, attributes); throws on the first failure.
  void write_tensor(const char* name, const std::string& obj, const TensorMeta& meta, std::span<const std::byte> data);

  void drop_partial(const char* name) noexcept {
    if (H5Lexists(tensors, name, H5P_DEFAULT) > 0) H5Ldelete(tensors, name, H5P_DEFAULT);
    H5Fflush(fid, H5F_SCOPE_GLOBAL);
    H5Eclear2(H5E_DEFAULT);
  }
};

TraceWriter::TraceWriter(const std::filesystem::path& path, const TraceAttrs& attrs, WriterOptions opts)
    : impl_(std::make_unique<Impl>()) {
  h5::init();
  auto& m = *impl_;
  m.path = path;
  m.file = path.string();
  m.opts = opts;
  if (attrs.producer.empty()) h5::fail(m.file, "/", "producer attribute must not be empty");
  if (attrs.source.empty()) h5::fail(m.file, "/", "source attribute must not be empty");
  if (!opts.overwrite && std::filesystem::exists(path))
    h5::fail(m.file, "",
             "file exists (use --force to replace it; WriterOptions::overwrite / overwrite=True in the libraries)");
  m.fid = h5::Id(
      h5::check(H5Fcreate(m.file.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), m.file, "", "cannot create file"));
  hid_t f = m.fid;
  h5::write_attr_string(f, "format", kFormatName, m.file, "/");
  h5::write_attr_int(f, "format_version", kFormatVersion, H5T_STD_I32LE, m.file, "/");
  h5::write_attr_string(f, "producer", clean_text(attrs.producer), m.file, "/");
  h5::write_attr_string(f, "source", clean_text(attrs.source), m.file, "/");
  h5::write_attr_string(f, "created", attrs.created.empty() ? iso8601_utc_now() : clean_text(attrs.created), m.file,
                        "/");
  h5::write_attr_int(f, "complete", 0, H5T_STD_I8LE, m.file, "/");
  const std::pair<const char*, const std::optional<std::string>*> opt[] = {
      {"model", &attrs.model}, {"device", &attrs.device}, {"framework", &attrs.framework}, {"command", &attrs.command}};
  for (auto& [name, v] : opt)
    if (*v) h5::write_attr_string(f, name, clean_text(**v), m.file, "/");
  if (attrs.dropped_tensors)
    h5::write_attr_int(f, "dropped_tensors", *attrs.dropped_tensors, H5T_STD_I64LE, m.file, "/");
  m.tensors = h5::Id(h5::check(H5Gcreate2(f, "tensors", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), m.file, "/tensors",
                               "cannot create group"));
  m.timeline_type = detail::timeline_mem_type();
  m.stats_type = detail::stats_mem_type();
  m.flush();
}

TraceWriter::~TraceWriter() {
  if (impl_ && !impl_->closed) {
    try {
      close();
    } catch (...) {  // a destructor must not throw; the file stays complete=0
    }
  }
}

TraceWriter::TraceWriter(TraceWriter&&) noexcept = default;
TraceWriter& TraceWriter::operator=(TraceWriter&&) noexcept = default;

std::int64_t TraceWriter::append_tensor(const TensorMeta& meta, std::span<const std::byte> data) {
  auto& m = *impl_;
  m.require_writable();
  char name[16];
  std::snprintf(name, sizeof name, "%010lld", static_cast<long long>(m.count));
  std::string obj = std::string("/tensors/") + name;
  if (static_cast<int>(meta.dims.size()) != layout_rank(meta.layout))
    h5::fail(m.file, obj,
             "layout " + std::string(to_string(meta.layout)) + " needs " + std::to_string(layout_rank(meta.layout)) +
                 " dims, got " + std::to_string(meta.dims.size()));
  for (auto d : meta.dims)
    if (d < 0) h5::fail(m.file, obj, "negative dimension");
  if (meta.bytes() < 0) h5::fail(m.file, obj, "dimensions " + dims_text(meta.dims) + " overflow a 64-bit byte count");
  if (static_cast<std::int64_t>(data.size()) != meta.bytes())
    h5::fail(
        m.file, obj,
        "data holds " + std::to_string(data.size()) + " bytes, dims and dtype need " + std::to_string(meta.bytes()));
  if (!valid_op(meta.op)) h5::fail(m.file, obj, "unknown op '" + meta.op + "'");
  if (meta.role != "x" && meta.role != "y" && meta.role != "dy" && meta.role != "dx")
    h5::fail(m.file, obj, "unknown role '" + meta.role + "'");
  if (meta.phase != "forward" && meta.phase != "backward") h5::fail(m.file, obj, "unknown phase '" + meta.phase + "'");
  // Readers refuse a layer_index outside 0 .. 2^31 - 1: a file holding one would be unreadable.
  if (meta.layer_index < 0) h5::fail(m.file, obj, negative_layer_index(meta.layer_index));

  // The checks above refuse bad arguments and leave the writer as it was; from here on a failure
  // is the file's (disk full, I/O error): the partial tensor is removed and the trace can no longer
  // be marked complete.
  try {
    m.reserve(data.size(), obj);
  } catch (const std::exception& e) {
    if (m.failed.empty()) m.failed = e.what();
    throw;  // nothing of the tensor was written
  }
  try {
    m.write_tensor(name, obj, meta, data);
  } catch (const std::exception& e) {
    if (m.failed.empty()) m.failed = e.what();
    m.drop_partial(name);
    throw;
  }
  std::int64_t seq = m.count++;
  if (m.opts.flush_every > 0 && ++m.since_flush >= m.opts.flush_every) m.flush();
  return seq;
}

void TraceWriter::Impl::write_tensor(const char* name, const std::string& obj, const TensorMeta& meta,
                                     std::span<const std::byte> data) {
  auto& m = *this;
  std::vector<hsize_t> dims(meta.dims.begin(), meta.dims.end());
  h5::Id space(h5::check(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), m.file, obj,
                         "cannot create dataspace"));
  h5::Id dcpl(h5::check(H5Pcreate(H5P_DATASET_CREATE), m.file, obj, "cannot create dataset properties"));
  if (m.opts.deflate_level > 0 && meta.elements() > 0) {
    // Chunk: the whole tensor, halving leading dims until a chunk is at most 1 MiB.
    std::vector<hsize_t> chunk = dims;
    std::size_t w = dtype_size(meta.dtype);
    auto bytes = [&] {
      std::size_t b = w;
      for (auto c : chunk) b *= c;
      return b;
    };
    for (std::size_t i = 0; i < chunk.size() && bytes() > kMaxChunkBytes; ++i) {
      while (chunk[i] > 1 && bytes() > kMaxChunkBytes) chunk[i] = (chunk[i] + 1) / 2;
    }
    h5::check(H5Pset_chunk(dcpl, static_cast<int>(chunk.size()), chunk.data()), m.file, obj,
              "cannot set the chunk shape");
    h5::check(H5Pset_shuffle(dcpl), m.file, obj, "cannot set the shuffle filter");
    h5::check(H5Pset_deflate(dcpl, static_cast<unsigned>(std::min(9, m.opts.deflate_level))), m.file, obj,
              "cannot set the deflate filter");
  }
  h5::Id ds(h5::check(H5Dcreate2(m.tensors, name, file_type_for(meta.dtype), space, H5P_DEFAULT, dcpl, H5P_DEFAULT),
                      m.file, obj, "cannot create dataset"));
  if (meta.elements() > 0)
    h5::check(H5Dwrite(ds, memory_type_for(meta.dtype), H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data()), m.file, obj,
              "cannot write tensor data");
  h5::write_attr_int(ds, "iteration", meta.iteration, H5T_STD_I64LE, m.file, obj);
  // Names come from producers and spools: store them as clean text (escaped), so that every reader
  // and writer of the trace sees valid UTF-8.
  h5::write_attr_string(ds, "layer", clean_text(meta.layer), m.file, obj);
  h5::write_attr_int(ds, "layer_index", meta.layer_index, H5T_STD_I32LE, m.file, obj);
  h5::write_attr_string(ds, "op", meta.op, m.file, obj);
  h5::write_attr_string(ds, "role", meta.role, m.file, obj);
  h5::write_attr_string(ds, "phase", meta.phase, m.file, obj);
  h5::write_attr_string(ds, "layout", std::string(to_string(meta.layout)), m.file, obj);
  h5::write_attr_string(ds, "dtype", std::string(to_string(meta.dtype)), m.file, obj);
  if (meta.call) h5::write_attr_int(ds, "call", *meta.call, H5T_STD_I64LE, m.file, obj);
  if (meta.offload) h5::write_attr_int(ds, "offload", *meta.offload ? 1 : 0, H5T_STD_I8LE, m.file, obj);
}

void TraceWriter::append_timeline(const TimelineRow& row) {
  auto& m = *impl_;
  m.require_writable();
  if (row.layer_index < 0)
    h5::fail(m.file, "/timeline",
             "row of call " + std::to_string(row.call) + ": " + negative_layer_index(row.layer_index));
  m.timeline_buf.push_back(detail::to_rec(row));
  if (m.timeline_buf.size() >= kRowBuffer) m.drain_rows();
}

void TraceWriter::append_stats(const StatsRow& row) {
  auto& m = *impl_;
  m.require_writable();
  if (row.layer_index < 0)
    h5::fail(m.file, "/stats",
             "row of call " + std::to_string(row.call) + ": " + negative_layer_index(row.layer_index));
  m.stats_buf.push_back(detail::to_rec(row));
  if (m.stats_buf.size() >= kRowBuffer) m.drain_rows();
}

void TraceWriter::set_dropped_tensors(std::int64_t n) {
  auto& m = *impl_;
  m.require_open();
  m.writing([&] { h5::write_attr_int(m.fid, "dropped_tensors", n, H5T_STD_I64LE, m.file, "/"); });
}

void TraceWriter::set_attribute(const std::string& name, const std::string& value) {
  auto& m = *impl_;
  m.require_open();
  static const char* reserved[] = {"format", "format_version", "complete", "dropped_tensors"};
  for (auto* r : reserved)
    if (name == r) h5::fail(m.file, "/", "attribute '" + name + "' is managed by the writer");
  if (!is_clean_text(name) || name.empty() || name.find('\0') != std::string::npos)
    h5::fail(m.file, "/", "attribute name '" + clean_text(name) + "' is not valid UTF-8 text");
  m.writing([&] { h5::write_attr_string(m.fid, name.c_str(), clean_text(value), m.file, "/"); });
}

void TraceWriter::flush() {
  impl_->require_writable();
  impl_->flush();
}

void TraceWriter::close(bool complete) {
  auto& m = *impl_;
  m.require_open();
  if (!m.failed.empty()) {
    // complete stays 0: what was appended before the failure is what the file holds. The file is
    // closed (best effort: the disk may still be full) and the failure reported.
    m.closed = true;
    m.tensors.reset();
    H5Fflush(m.fid, H5F_SCOPE_GLOBAL);
    m.release_reserve();
    h5::close_id(m.fid.release());  // a failure is noted there (the library is then not terminated)
    H5Eclear2(H5E_DEFAULT);
    h5::fail(m.file, "", "closed incomplete (complete = 0): an earlier write failed: " + m.failed);
  }
  try {
    m.drain_rows();
  } catch (...) {
    // The rows could not be written: the file is closed incomplete (as above) and the error thrown.
    m.closed = true;
    m.tensors.reset();
    h5::close_id(m.fid.release());  // a failure is noted there (the library is then not terminated)
    H5Eclear2(H5E_DEFAULT);
    throw;
  }
  m.tensors.reset();
  // The rows are on disk before complete = 1 is: complete = 1 is set only over a file that holds
  // everything appended.
  try {
    m.reserve(0, "/");
    h5::check(H5Fflush(m.fid, H5F_SCOPE_GLOBAL), m.file, "", "cannot flush file");
  } catch (...) {
    m.closed = true;
    h5::close_id(m.fid.release());  // a failure is noted there (the library is then not terminated)
    H5Eclear2(H5E_DEFAULT);
    throw;
  }
  if (complete) {
    try {
      h5::write_attr_int(m.fid, "complete", 1, H5T_STD_I8LE, m.file, "/");
      h5::check(H5Fflush(m.fid, H5F_SCOPE_GLOBAL), m.file, "", "cannot flush file");
    } catch (...) {
      m.closed = true;
      h5::close_id(m.fid.release());
      H5Eclear2(H5E_DEFAULT);
      throw;
    }
  }
  m.release_reserve();
  m.closed = true;
  if (!h5::close_id(m.fid.release()))
    h5::fail(m.file, "", "cannot close file (its last metadata could not be written)");
}

std::int64_t TraceWriter::tensor_count() const noexcept { return impl_->count; }
const std::filesystem::path& TraceWriter::path() const noexcept { return impl_->path; }

}  // namespace cdma::formats
