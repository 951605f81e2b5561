// Trace format v1 (see docs/spec/TRACE_FORMAT.md): writer and streaming reader.
//
// All HDF5 access of the project goes through this library. Both classes throw TraceError
// (file and object named) on any failure; neither prints anything.
#pragma once

#include <cdma/formats/dtype.hpp>
#include <cdma/formats/error.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace cdma::formats {

inline constexpr int kFormatVersion = 1;
inline constexpr const char* kFormatName = "cdma-trace";

// Root attributes of a trace.
struct TraceAttrs {
  std::string producer;   // required, e.g. "cdma-train 0.1.0"
  std::string source;     // required: "cudnn", "torch-cpu", "synthetic", ...
  std::string created;    // ISO-8601 UTC; the writer fills it when empty
  bool complete = false;  // read side only: 1 once the writer closed cleanly
  int format_version = kFormatVersion;
  std::optional<std::string> model, device, framework, command;
  std::optional<std::int64_t> dropped_tensors;
};

// Metadata of one captured tensor (a dataset under /tensors).
struct TensorMeta {
  std::string name;  // dataset name: 10-digit sequence number (reader fills it)
  std::int64_t iteration = -1;
  std::string layer;
  std::int32_t layer_index = 0;
  std::string op;                 // conv, linear, relu, pool, bn, lrn, dropout, add, concat, softmax, other
  std::string role = "x";         // x, y, dy, dx
  std::string phase = "forward";  // forward, backward
  Layout layout = Layout::NCHW;
  DType dtype = DType::f32;
  std::vector<std::int64_t> dims;  // in stored layout order
  std::optional<std::int64_t> call;
  // The `offload` attribute as written (docs/spec/TRACE_FORMAT.md): true = kept for backward in a buffer of
  // its own, so a memory-virtualizing framework offloads it; false = recorded for study only (e.g.
  // the input of an in-place ReLU). Empty when the producer did not say; offloaded() then applies
  // the format's default rule.
  std::optional<bool> offload;

  // Whether a vDNN-style framework offloads this tensor: `offload` when present, else forward-phase x.
  bool offloaded() const noexcept { return offload.value_or(phase == "forward" && role == "x"); }
  // Product of dims (0 for no dims); -1 when a dim is negative or the product overflows int64.
  std::int64_t elements() const noexcept;
  // elements() x element size; -1 when that is invalid or overflows. Every tensor a TraceReader
  // lists has bytes() >= 0, and the writer refuses one with bytes() < 0.
  std::int64_t bytes() const noexcept;
};

// The columns of /timeline and /stats, in file order: the one definition of each row. The names,
// types, order and string sizes are the on-disk contract (docs/spec/TRACE_FORMAT.md; h5py and other tools
// read them). From each list come the row struct below, the HDF5 compound type and its
// fixed-size record (formats/src/trace_records.*), and the capture collector's copy of a spool
// record (by column name).
//   INT(type, name, initial value)  an integer column
//   STR(name, size)                 a fixed NUL-padded string of `size` bytes: at most size - 1
//                                   bytes of clean text kept, cut at a UTF-8 boundary
#define CDMA_TRACE_TIMELINE_COLUMNS(INT, STR)            \
  INT(std::int64_t, iteration, -1) /* -1 when unknown */ \
  INT(std::int64_t, call, 0)                             \
  INT(std::int32_t, layer_index, 0)                      \
  INT(std::int8_t, phase, 0) /* 0 forward, 1 backward */ \
  STR(op, 16)                                            \
  STR(layer, 64)                                         \
  INT(std::int64_t, start_ns, 0)                         \
  INT(std::int64_t, end_ns, 0)                           \
  INT(std::int64_t, device_ns, -1) /* GPU time of the call; -1 when unknown */

#define CDMA_TRACE_STATS_COLUMNS(INT, STR) \
  INT(std::int64_t, iteration, -1)         \
  INT(std::int64_t, call, 0)               \
  INT(std::int32_t, layer_index, 0)        \
  STR(layer, 64)                           \
  STR(op, 16)                              \
  STR(role, 8)                             \
  STR(dtype, 16)                           \
  INT(std::int64_t, elements, 0)           \
  INT(std::int64_t, nonzeros, 0)           \
  INT(std::int64_t, zero_runs, 0)

#define CDMA_TRACE_ROW_INT_(type, name, init) type name = init;
#define CDMA_TRACE_ROW_STR_(name, size) std::string name;

// One intercepted library call (row of /timeline).
struct TimelineRow {
  CDMA_TRACE_TIMELINE_COLUMNS(CDMA_TRACE_ROW_INT_, CDMA_TRACE_ROW_STR_)
};

// Statistics of a tensor whose bytes were not kept (row of /stats).
struct StatsRow {
  CDMA_TRACE_STATS_COLUMNS(CDMA_TRACE_ROW_INT_, CDMA_TRACE_ROW_STR_)
};

#undef CDMA_TRACE_ROW_INT_
#undef CDMA_TRACE_ROW_STR_

struct WriterOptions {
  bool overwrite = false;  // replace an existing file (else: error if it exists)
  int deflate_level = 0;   // 0: contiguous storage; 1-9: chunked + shuffle + deflate
  // Flush HDF5 metadata to the file after every N tensors (1 = after each; crash loses at most
  // the tensor being written). 0 disables (fast, not crash-safe).
  int flush_every = 1;
};

// Writes one trace file. Not thread-safe: one writer per thread (HDF5 is serial).
// The file carries complete=0 until close() succeeds. A write that fails on the file (disk full,
// I/O error; not a refused argument) marks the writer failed: the partial tensor is removed (best
// effort), further appends and flush() throw, and close() closes the file with complete=0 and
// throws, so a trace that lost data is never marked complete.
class TraceWriter {
 public:
  TraceWriter(const std::filesystem::path& path, const TraceAttrs& attrs, WriterOptions opts = {});
  ~TraceWriter();  // closes (complete=1, or 0 after a failed write) if close() was not called; never throws
  TraceWriter(const TraceWriter&) = delete;
  TraceWriter& operator=(const TraceWriter&) = delete;
  TraceWriter(TraceWriter&&) noexcept;
  TraceWriter& operator=(TraceWriter&&) noexcept;

  // Appends a tensor; meta.name is ignored (the writer numbers tensors 0, 1, ...), data must
  // hold exactly meta.bytes() bytes in little-endian element order. Returns the sequence number.
  std::int64_t append_tensor(const TensorMeta& meta, std::span<const std::byte> data);
  void append_timeline(const TimelineRow& row);
  void append_stats(const StatsRow& row);
  void set_dropped_tensors(std::int64_t n);
  // Sets or replaces an optional string root attribute (model, device, framework, command or an extension).
  void set_attribute(const std::string& name, const std::string& value);
  void flush();
  // Writes everything appended, then complete=1 (or, with complete = false, leaves complete=0: the
  // producer stopped before its run ended, e.g. by an exception, and the trace must not claim to
  // be whole; every tensor and row appended is still written and readable), and closes the file.
  // Further calls throw. After a failed write: closes the file with complete=0 and throws
  // TraceError naming the failure (whatever `complete` asks).
  void close(bool complete = true);

  std::int64_t tensor_count() const noexcept;
  const std::filesystem::path& path() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct ReaderOptions {
  // HDF5 (1.10) can crash or hang on deliberately damaged files (fuzzing finds SEGVs in its global
  // heap code). With isolate, the file's metadata, /timeline and /stats are first read in a forked
  // child process; a crash or hang there becomes a TraceError instead of taking the caller down.
  // Costs one fork per open. Open readers from one thread at a time (HDF5 is serial).
  bool isolate = true;
  int probe_timeout_s = 300;
  // false: the first tensor whose metadata is bad makes the constructor throw. true: such a tensor
  // is left out of tensors() and listed in skipped_tensors(), and the rest of the file is read.
  // Either way, in a file with complete = 0 a tensor that is incomplete (a required attribute
  // missing, or its data never stored: the tensor being written when the producer stopped) is left
  // out with a warning.
  bool skip_bad_tensors = false;
};

// A tensor the reader left out: its object ("/tensors/0000000042") and why.
struct SkippedTensor {
  std::string object;
  std::string reason;
};

// Opens a trace for reading, validates the root attributes, and lists tensor metadata in capture
// (name) order without reading tensor bytes. Accepts other producers' files: variable- or
// fixed-length strings, any integer attribute type, contiguous or chunked/filtered datasets.
// Refuses what the format does not allow or what would give data that does not exist: a path that
// is not a regular file (a FIFO would block), `complete` other than 0 or 1, compact, virtual or
// external storage, a tensor whose data is not (or only partly) stored, dims whose byte count
// overflows int64. Every string it returns (attributes, dataset names, /timeline and /stats text)
// is clean text (formats/text.hpp): invalid UTF-8 and control characters in attributes and rows
// are escaped with a warning naming the object; a dataset name that is not clean text is refused.
class TraceReader {
 public:
  explicit TraceReader(const std::filesystem::path& path, ReaderOptions opts = {});
  ~TraceReader();
  TraceReader(const TraceReader&) = delete;
  TraceReader& operator=(const TraceReader&) = delete;
  TraceReader(TraceReader&&) noexcept;
  TraceReader& operator=(TraceReader&&) noexcept;

  const std::filesystem::path& path() const noexcept;
  const TraceAttrs& attrs() const noexcept;
  // Tensors in capture order. Validated at open: required attributes present, dtype attribute
  // agrees with the element type, rank agrees with the layout.
  const std::vector<TensorMeta>& tensors() const noexcept;
  // Reads one tensor's bytes (little-endian elements). Throws TraceError when unreadable.
  std::vector<std::byte> read(const TensorMeta& meta) const;
  void read_into(const TensorMeta& meta, std::span<std::byte> out) const;
  // Reads elements [first, first + out.size() / element size) of a tensor, in stored (row-major)
  // order, so that a tensor of any size can be read window by window. Throws TraceError when
  // unreadable or when the range does not lie in the tensor.
  void read_elements(const TensorMeta& meta, std::uint64_t first, std::span<std::byte> out) const;
  // Byte offset in the file of a tensor's bytes when they lie there exactly as read() returns
  // them (contiguous storage, no filter, element type equal to the little-endian memory type,
  // space allocated), so that a reader may map the file and use them without a copy or read them
  // from several threads. Empty otherwise (then use read()). Throws TraceError when unreadable.
  std::optional<std::uint64_t> raw_offset(const TensorMeta& meta) const;
  // A string root attribute that this header does not model (an extension such as cdma-train's
  // "batch_size"); empty when absent. Throws TraceError when present but not a string.
  std::optional<std::string> root_attribute(const std::string& name) const;
  bool has_timeline() const;
  bool has_stats() const;
  std::vector<TimelineRow> timeline() const;
  // The /stats rows, each checked (stats_row_problem): a bad row throws TraceError naming the file
  // and the row ("/stats[i]").
  std::vector<StatsRow> stats() const;
  // The /stats rows as stored, for a caller that checks them one by one (the analysis, which skips
  // bad rows under --keep-going).
  std::vector<StatsRow> stats_unchecked() const;
  // Non-fatal findings (e.g. "complete = 0", an escaped name, an incomplete tensor left out), one
  // sentence each; repeated findings of one kind are summarised after the first few.
  const std::vector<std::string>& warnings() const noexcept;
  // Tensors left out because ReaderOptions::skip_bad_tensors was set (empty otherwise).
  const std::vector<SkippedTensor>& skipped_tensors() const noexcept;

  // Internal: what an isolating probe child reports to its parent (a reader's findings or the
  // error it threw), so that the parent does not read the metadata a second time.
  static std::string probe_report_of(const TraceReader& r);
  static std::string probe_report_of(const TraceError& e);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Why a /stats row cannot describe a tensor (an unknown dtype; negative counts, more nonzeros than
// elements, zero runs that do not fit the zeros; more than 2^62 bytes), or nullopt when it can.
std::optional<std::string> stats_row_problem(const StatsRow& row);

// Current time as ISO-8601 UTC ("2026-11-26T23:40:00Z").
std::string iso8601_utc_now();

}  // namespace cdma::formats
