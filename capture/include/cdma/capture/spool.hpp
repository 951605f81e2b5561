// The capture spool, version 1: the only thing the preloaded interposer (libcdma_capture.so) and
// the collector (`cdma capture`) share. Specified in docs/spec/SPOOL_FORMAT.md; a reference reader in
// Python lives in tools/gpu-check/cdma_spool.py.
//
// Header-only and dependency-free on purpose: the interposer must not bring HDF5, fmt or any
// other library into the traced process.
//
// A spool is one file per traced process: a 64-byte file header, then records. Every record is a
// 16-byte record header followed by `payload_bytes` bytes. All integers are little-endian; the
// fixed-size string fields are NUL-padded. The interposer writes each record with whole write()
// calls from one writer thread, so after a crash a spool is a valid prefix plus at most one
// truncated record, which readers drop.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace cdma::capture::spool {

inline constexpr char kMagic[8] = {'C', 'D', 'M', 'A', 'S', 'P', 'L', '1'};
inline constexpr std::uint32_t kVersion = 1;
inline constexpr std::uint32_t kRecordMagic = 0x52414D43u;  // "CMAR" little-endian

#pragma pack(push, 1)
struct FileHeader {
  char magic[8];               // kMagic
  std::uint32_t version;       // kVersion
  std::uint32_t header_bytes;  // sizeof(FileHeader) == 64
  std::int64_t pid;
  std::int64_t start_unix_ns;  // wall clock at spool creation
  std::int64_t start_mono_ns;  // CLOCK_MONOTONIC at creation (timeline clock origin)
  char reserved[24];
};
static_assert(sizeof(FileHeader) == 64);

enum class RecordType : std::uint16_t {
  kAttr = 1,      // AttrRecord + key bytes + value bytes
  kTensor = 2,    // TensorRecord + data_bytes bytes of packed tensor data
  kTimeline = 3,  // TimelineRecord
  kStats = 4,     // StatsRecord
  kCorr = 5,      // CorrRecord: CUPTI correlation id -> call
  kKernel = 6,    // KernelRecord: one GPU kernel/memset interval (CUPTI)
  kCounters = 7,  // CountersRecord: running totals (latest wins)
  kEnd = 8,       // CountersRecord: written once at clean finalize
};

struct RecordHeader {
  std::uint32_t magic;  // kRecordMagic
  std::uint16_t type;   // RecordType
  std::uint16_t flags;  // RecordFlags on tensor and stats records; 0 on the others
  std::uint64_t payload_bytes;
};
static_assert(sizeof(RecordHeader) == 16);

// Flags of a tensor or stats record (RecordHeader::flags). Spools written before these existed
// have 0 there: the offload decision is then unknown, and the collector leaves the trace's
// `offload` attribute out (docs/spec/TRACE_FORMAT.md's default rule applies). Readers ignore unknown bits.
enum RecordFlags : std::uint16_t {
  kRecOffloadKnown = 1u << 0,  // the interposer decided whether the tensor is offloaded (kRecOffload)
  kRecOffload = 1u << 1,       // kept for backward in its own buffer: forward-phase x of a call that
                               // does not overwrite it (what vDNN offloads)
  kRecInPlace = 1u << 2,       // an output of the same call overlaps this input (in-place ReLU,
                               // cudnnAddTensor): its bytes are overwritten, so it is never offloaded
};

struct AttrRecord {
  std::uint32_t key_bytes;
  std::uint32_t value_bytes;
};

// Element types (same order as cdma::formats::DType) and stored layouts (as cdma::formats::Layout).
enum class DType : std::uint8_t { f32 = 0, f16 = 1, bf16 = 2, i8 = 3, u8 = 4 };
enum class Layout : std::uint8_t { NCHW = 0, NHWC = 1, CHWN = 2, NC = 3 };

inline constexpr int kMaxDims = 8;

struct TensorRecord {
  std::int64_t call;            // sequence number of the intercepted call
  std::int64_t iteration;       // -1 when unknown
  std::int32_t layer_index;     // -1 when unknown
  std::uint8_t phase;           // 0 forward, 1 backward
  std::uint8_t dtype;           // DType
  std::uint8_t layout;          // Layout
  std::uint8_t ndims;           // 2 (NC) or 4
  std::int64_t dims[kMaxDims];  // in stored layout order
  char op[16];
  char role[8];
  char layer[64];
  std::uint64_t data_bytes;  // == product(dims) * element size
};

enum TimelineFlags : std::uint32_t {
  kTlDataCaptured = 1u << 0,  // at least one tensor of the call was copied
  kTlGraphCapture = 1u << 1,  // the stream was capturing a CUDA graph: metadata only
  kTlUnsafe = 1u << 2,        // device/context check failed: metadata only
  kTlFailed = 1u << 3,        // the real call returned an error status
  kTlBackend = 1u << 4,       // cudnnBackendExecute (graph API)
  kTlUnknownPlan = 1u << 5,   // backend plan whose operations were not shadowed
};

struct TimelineRecord {
  std::int64_t call;
  std::int64_t iteration;
  std::int32_t layer_index;
  std::int8_t phase;
  std::uint8_t pad0[3];
  char op[16];
  char layer[64];
  char api[48];           // the intercepted function, e.g. "cudnnConvolutionForward"
  std::int64_t start_ns;  // CLOCK_MONOTONIC
  std::int64_t end_ns;
  std::int32_t status;  // the real call's return value
  std::uint32_t flags;  // TimelineFlags
};

struct StatsRecord {
  std::int64_t call;
  std::int64_t iteration;
  std::int32_t layer_index;
  std::uint8_t phase;
  std::uint8_t pad0[3];
  char layer[64];
  char op[16];
  char role[8];
  char dtype[16];
  std::int64_t elements;
  std::int64_t nonzeros;
  std::int64_t zero_runs;
};

struct CorrRecord {
  std::uint64_t correlation_id;
  std::uint64_t call;
};

struct KernelRecord {
  std::uint64_t correlation_id;
  std::uint64_t start_ns;  // GPU timestamps (CUPTI clock)
  std::uint64_t end_ns;
  std::uint32_t device;
  std::uint32_t kind;  // 0 kernel, 1 memset, 2 memcpy
};

struct CountersRecord {
  std::int64_t calls;            // intercepted calls
  std::int64_t tensors;          // tensor records written
  std::int64_t stats;            // stats records written
  std::int64_t bytes;            // tensor bytes written
  std::int64_t dropped_tensors;  // chosen but not kept (budget, ring full, copy error)
  std::int64_t dropped_budget;   // of which: byte budget reached
  std::int64_t dropped_ring;     // of which: pinned ring full or tensor larger than the ring
  std::int64_t skipped_graph;    // tensors not copied because a CUDA graph was being captured
  std::int64_t skipped_unsafe;   // tensors not copied: pointer/device/dtype not supported
  std::int64_t cupti_dropped;    // CUPTI records lost
  std::int64_t iterations;       // iterations seen (last iteration + 1)
  std::int64_t skipped_failed;   // tensors not kept because their call returned an error status
                                 // (0 in spools written before this counter existed)
  std::int64_t reserved[4];
};
#pragma pack(pop)

// The binary layout, pinned (tools/gpu-check/cdma_spool.py reads the same sizes). The collector
// copies timeline and stats fields into trace rows by name (trace.hpp's column lists), so a field
// shared with a trace column keeps the column's name and string size.
static_assert(sizeof(AttrRecord) == 8);
static_assert(sizeof(TensorRecord) == 184);
static_assert(sizeof(TimelineRecord) == 176);
static_assert(sizeof(StatsRecord) == 152);
static_assert(sizeof(CorrRecord) == 16);
static_assert(sizeof(KernelRecord) == 32);
static_assert(sizeof(CountersRecord) == 128);

// Copies a string into a fixed, NUL-padded field (truncating; the field always ends in NUL).
template <std::size_t N>
inline void put_str(char (&dst)[N], const char* src) noexcept {
  std::memset(dst, 0, N);
  if (!src) return;
  std::size_t n = std::strlen(src);
  if (n > N - 1) n = N - 1;
  std::memcpy(dst, src, n);
}

// Reads a fixed field as a string (stops at the first NUL).
template <std::size_t N>
inline std::size_t str_len(const char (&src)[N]) noexcept {
  std::size_t n = 0;
  while (n < N && src[n] != '\0') ++n;
  return n;
}

}  // namespace cdma::capture::spool
