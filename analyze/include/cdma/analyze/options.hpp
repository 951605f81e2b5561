// Options of an analysis run (`cdma analyze`): codecs, chunking, layout and dtype variants, filters.
#pragma once

#include <cdma/formats/codec.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cdma::analyze {

// Default codec list: the paper's three (ZVC, zero-RLE, zlib) plus zstd and lz4, each at its
// default parameter (formats::codec_table(): zvc, zrle-4, zlib-6, zstd-1, lz4).
inline const std::vector<std::string> kDefaultCodecs = formats::default_codecs();

// An inclusive range of iterations.
struct IterRange {
  std::int64_t first = 0;
  std::int64_t last = 0;
};

// Which tensors take part. An empty/unset filter passes everything; by default only the offload set
// (docs/spec/TRACE_FORMAT.md: tensors with offload = 1, or forward-phase x where the attribute is absent) does.
struct Filters {
  // true: only what a memory-virtualizing framework offloads; false: every recorded tensor.
  // /stats rows (no offload column) count as offloaded when their role is x.
  bool offloaded_only = true;
  std::optional<std::vector<IterRange>> iterations;
  std::optional<std::vector<std::string>> layers;  // exact layer names
  std::optional<std::vector<std::string>> ops;
  std::optional<std::vector<std::string>> roles;

  bool pass(std::int64_t iteration, const std::string& layer, const std::string& op, const std::string& role,
            bool offloaded) const;
};

// Parses "0-3,7,10-" style iteration lists ("10-" = from 10 on). Throws formats::Error on bad text.
std::vector<IterRange> parse_iteration_ranges(const std::string& text);

enum class ReadMode { mmap, pread, hdf5 };
// "mmap", "pread", "hdf5" (the CLI's --read and cdma.analysis(read=...)); nullopt for anything else.
std::optional<ReadMode> parse_read_mode(std::string_view s) noexcept;

struct Options {
  // Codec specs as make_codec() accepts them; canonicalised ("zrle" -> "zrle-4") by validate().
  std::vector<std::string> codecs = kDefaultCodecs;
  std::size_t chunk_bytes = 0;                 // 0 = whole tensors
  std::vector<std::string> layouts{"stored"};  // "stored", "NCHW", "NHWC", "CHWN"
  std::vector<std::string> dtypes{"stored"};   // "stored", "float16", "bfloat16", "fp8-e4m3", "fp8-e5m2"
  Filters filters;
  bool verify = false;      // decode every encoding and compare with the original bytes
  bool keep_going = false;  // skip unreadable files/tensors instead of failing
  unsigned threads = 0;     // worker threads; 0 = all cores
  // How the bytes of contiguous, unfiltered tensors reach the workers (other tensors always go
  // through HDF5 in the reader thread). mmap: the trace is mapped and analysed in place, the
  // workers fault the pages in and drop them, in parallel. pread: the workers pread() straight from
  // the file into small buffers each reuses, analysed piece by piece. hdf5: every tensor is copied
  // through HDF5. Results are the same bytes in every mode (bench/README.md measures them).
  ReadMode read = ReadMode::mmap;
  // Byte codecs never compress more than this many bytes as one block, and a tensor larger than
  // this is analysed in windows of at most this size, so that memory stays bounded whatever the
  // tensor size (docs/ANALYSIS_JSON.md, "Big tensors"). At least 16; tests lower it.
  std::size_t max_block_bytes = std::size_t{64} << 20;

  // Checks and canonicalises codec, layout and dtype names. Throws formats::Error naming the
  // offending value and the accepted ones.
  void validate();
};

}  // namespace cdma::analyze
