// The collector side of capture: reads the spools the interposer wrote (spool.hpp), converts
// them into trace v1 files (cdma::formats::TraceWriter), and launches a command with the
// interposer preloaded. Used by `cdma capture`; no HDF5 or CLI code in the preloaded library.
#pragma once

#include <cdma/capture/spool.hpp>
#include <cdma/formats/error.hpp>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace cdma::capture {

// A spool could not be read or converted, or a command could not be launched. what() names the
// file and what was expected.
class CaptureError : public formats::Error {
 public:
  using formats::Error::Error;
};

// One record of a spool: its type and payload (tensor payloads hold the fixed part followed by
// the data; skip_data readers get the fixed part only and `data_offset` to read the rest).
struct SpoolRecord {
  spool::RecordType type{};
  std::uint16_t flags = 0;  // spool::RecordFlags (tensor and stats records)
  std::vector<unsigned char> payload;
  std::uint64_t payload_bytes = 0;
  std::uint64_t offset = 0;       // file offset of the record header
  std::uint64_t data_offset = 0;  // file offset of the payload
};

// Sequential reader. A last record cut short (the process died while writing it, or its length
// field points past the end of the file) ends the stream and sets truncated(). A record header
// whose magic is wrong while a whole header's bytes remain cannot come from a crash (one writer
// thread appends whole records): it ends the stream and sets damaged(), with damage() saying where.
class SpoolReader {
 public:
  explicit SpoolReader(const std::filesystem::path& path);  // throws CaptureError
  ~SpoolReader();
  SpoolReader(const SpoolReader&) = delete;
  SpoolReader& operator=(const SpoolReader&) = delete;

  const spool::FileHeader& header() const noexcept { return header_; }
  // Reads the next record; tensor data is read only when `with_tensor_data`. False at the end.
  bool next(SpoolRecord& rec, bool with_tensor_data);
  // Reads `n` bytes at file offset `off` into `out`.
  void read_at(std::uint64_t off, void* out, std::size_t n);
  bool truncated() const noexcept { return truncated_; }
  bool damaged() const noexcept { return damaged_; }
  const std::string& damage() const noexcept { return damage_; }  // "record at offset N: ..."
  const std::filesystem::path& path() const noexcept { return path_; }

 private:
  std::filesystem::path path_;
  std::FILE* f_ = nullptr;
  spool::FileHeader header_{};
  std::uint64_t size_ = 0, pos_ = 0;
  bool truncated_ = false, damaged_ = false;
  std::string damage_;
};

// Checks one record's payload against its type (fixed sizes, string and attribute lengths, tensor
// dtype/layout/rank/dims/byte count, op/role/phase names). Returns an empty string when the record
// is whole, else what is wrong (without the file name). Needs only the fixed part of a tensor.
std::string check_record(const SpoolRecord& rec);

struct ConvertOptions {
  std::string model;      // root attribute `model` when not empty
  std::string framework;  // root attribute `framework` when not empty
  std::string command;    // overrides the spool's own command line when not empty
  int deflate_level = 0;  // 0: contiguous tensors; 1-9: chunked + shuffle + deflate
  bool overwrite = true;
  std::vector<std::pair<std::string, std::string>> extra_attrs;
};

struct ConvertSummary {
  std::filesystem::path spool, trace;
  std::int64_t pid = 0;
  std::int64_t tensors = 0, tensor_bytes = 0, stats_rows = 0, timeline_rows = 0, timed_rows = 0;
  std::int64_t dropped = 0, iterations = 0 /* seen by the interposer */, calls = 0, skipped_graph = 0,
               skipped_unsafe = 0;
  std::int64_t skipped_failed = 0;           // tensors of calls that returned an error (not kept)
  std::int64_t tensor_iterations = 0;        // distinct iterations of the tensors written (what cdma info lists)
  std::int64_t offloaded = 0;                // tensors written with offload = 1
  std::int64_t not_offloaded = 0;            // tensors written with offload = 0 (in-place inputs, y, dy, dx)
  std::int64_t offload_unknown = 0;          // tensors of an older spool: attribute left out
  std::int64_t stats_not_offloaded = 0;      // /stats rows of role x left out: not offloaded (in place, backward)
  bool clean_end = false;                    // the process finalised its spool (exit or handled signal)
  bool truncated = false;                    // the spool ended inside a record
  std::map<std::string, std::string> attrs;  // producer, command, device, cudnn_version, ...
  std::map<std::string, std::int64_t> ops;   // tensors per op
  // Records of backward calls the interposer matched to no forward layer (spool layer_index -1):
  // left out of the trace (its layer_index must be 0 .. 2^31 - 1), counted, and named in warnings.
  std::int64_t unmatched_tensors = 0, unmatched_stats_rows = 0, unmatched_timeline_rows = 0;
  std::vector<std::string> warnings;  // one sentence each (no prefix, no newline)
};

// Converts one spool into one trace (complete = 1 once written). Every record is checked first: a
// damaged spool (SpoolReader::damaged(), or a record check_record() refuses) throws CaptureError
// naming the spool and the record's offset, and no trace is written. The trace is written under a
// temporary name beside `trace` and renamed into place only once closed, so a conversion that
// fails (damage, full disk, any HDF5 error) leaves no file at `trace` (an older one there stays
// as it was). A spool whose last record is cut short (crash) converts what precedes it, with
// capture_end saying so. Records with layer_index -1 (a backward call matched to no forward layer)
// are left out and counted (ConvertSummary::unmatched_*, capture_counters; tensors and stats rows
// also in dropped_tensors), with a warning. Throws CaptureError or formats::TraceError.
ConvertSummary convert_spool(const std::filesystem::path& spool, const std::filesystem::path& trace,
                             const ConvertOptions& opts);

// Spool files (cdma-*.spool) in a directory, sorted by name.
std::vector<std::filesystem::path> find_spools(const std::filesystem::path& dir);

struct LaunchOptions {
  std::vector<std::string> argv;                         // the command; argv[0] searched in PATH
  std::filesystem::path preload;                         // libcdma_capture.so
  std::vector<std::pair<std::string, std::string>> env;  // CDMA_CAPTURE_* settings
};

struct LaunchResult {
  int exit_code = 0;         // the command's exit status, or 128 + signal when it was killed
  int signal = 0;            // the signal that ended it, 0 if it exited
  bool interrupted = false;  // this process got SIGINT while the command ran (and forwarded it)
};

// Runs the command with the interposer preloaded (prepended to LD_PRELOAD) and the given
// environment; forwards SIGINT, SIGTERM and SIGHUP (unless this process ignores SIGHUP: nohup) to it
// while it runs, the command starting with SIGINT and SIGTERM at their default action; waits for it.
// Throws CaptureError when it cannot be started.
LaunchResult run_traced(const LaunchOptions& opts);

// The interposer next to this executable: <dir of /proc/self/exe>/../lib/libcdma_capture.so.
std::filesystem::path default_preload_library();

}  // namespace cdma::capture
