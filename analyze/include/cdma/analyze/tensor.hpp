// Analysis of one tensor: a pure function of its bytes, its metadata and the options.
//
// For every variant (requested layout x requested dtype) it gives elements, bytes, nonzeros,
// zero runs and the compressed size under every chosen codec (docs/spec/CODECS.md). Aggregation is separate
// (aggregate.hpp), so that tests can compare these numbers with independent computations.
#pragma once

#include <cdma/analyze/options.hpp>
#include <cdma/formats/codec.hpp>
#include <cdma/formats/error.hpp>
#include <cdma/formats/trace.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace cdma::analyze {

// `--verify` found an encoding that does not decode to the original bytes.
class VerifyError : public formats::Error {
 public:
  using formats::Error::Error;
};

// One analysed form of a tensor: a layout label and a dtype label as requested.
struct Variant {
  std::string layout;  // "stored", "NCHW", "NHWC", "CHWN"
  std::string dtype;   // "stored", "float16", "bfloat16", "fp8-e4m3", "fp8-e5m2"
};

// Compressed size under one codec. bytes is empty when unknown (byte codecs on /stats rows).
// exact is false when bytes is a lower bound (ZRLE-k from a /stats row whose runs may exceed 2^k).
struct CodecSize {
  std::optional<std::uint64_t> bytes;
  bool exact = true;
};

// Measures of one tensor in one variant.
struct VariantMeasures {
  bool present = true;        // false: this variant cannot be formed (dtype conversion of a /stats row)
  std::string actual_layout;  // layout analysed ("NC" when a 4-D layout was asked of a 2-D tensor)
  std::string actual_dtype;   // dtype analysed ("int8" when a float conversion was asked of int8)
  std::uint64_t elements = 0;
  std::uint64_t bytes = 0;  // uncompressed, at actual_dtype
  std::uint64_t nonzeros = 0;
  std::uint64_t zero_runs = 0;
  std::vector<CodecSize> codecs;  // in TensorAnalyzer::codec_names() order
};

// Scratch buffers reused between calls by one thread.
struct Workspace {
  std::vector<std::byte> converted, permuted, encoded, decoded;
  std::vector<std::byte> io;   // pread mode: the worker's reused read buffer
  std::uint64_t codec_ns = 0;  // thread CPU time spent in zero scans and codecs (pipeline accounting)
};

class TensorStream;

class TensorAnalyzer {
 public:
  // `opts` must have been validate()d. Builds the codecs once; analyze() is then thread-safe
  // (each thread brings its own Workspace).
  explicit TensorAnalyzer(const Options& opts);
  ~TensorAnalyzer();

  const std::vector<Variant>& variants() const noexcept { return variants_; }
  const std::vector<std::string>& codec_names() const noexcept { return codec_names_; }

  // Measures of a tensor's bytes (stored layout and dtype as in meta), one entry per variant.
  // Throws formats::Error when data does not hold meta.bytes() bytes; VerifyError on a
  // round-trip mismatch when verifying. `where` names the tensor in error messages.
  std::vector<VariantMeasures> analyze(std::span<const std::byte> data, const formats::TensorMeta& meta, Workspace& ws,
                                       const std::string& where = "") const;

  // Measures of a /stats row: ZVC exact, ZRLE-k exact or a lower bound, byte codecs unknown.
  // Variants that convert the dtype are not present (the converted density is unknown).
  // Throws formats::Error when its counts are inconsistent or its byte count overflows 2^62.
  std::vector<VariantMeasures> analyze_stats(const formats::StatsRow& row) const;

  // True when the tensor is larger than Options::max_block_bytes: it is then analysed in windows
  // (TensorStream) instead of whole.
  bool needs_windows(const formats::TensorMeta& meta) const noexcept;
  // True when every codec is counted from the zero scan (ZVC, ZRLE-k): then a tensor may be fed to
  // a TensorStream in pieces of any whole number of elements at no extra cost (no block to gather).
  bool counts_only() const noexcept;
  // Empty when the tensor can be analysed window by window; else why not (a layout permutation
  // of a 4-D tensor needs all of it in memory). Callers check this before any work.
  std::optional<std::string> why_not_windowed(const formats::TensorMeta& meta) const;
  // Elements per window: pieces of this many elements (the last may hold fewer) reach the codecs
  // without a copy. At most max_block_bytes, and a whole number of chunks (--chunk) when the chunk
  // is smaller.
  std::uint64_t window_elements(const formats::TensorMeta& meta) const noexcept;

 private:
  friend class TensorStream;
  struct CodecSlot {
    std::string name;
    enum Kind { zvc, zrle, bytes } kind = bytes;
    int k = 0;
    std::unique_ptr<formats::Codec> codec;
  };
  class VariantStream;

  Options opts_;
  std::vector<Variant> variants_;
  std::vector<std::string> codec_names_;
  std::vector<CodecSlot> slots_;
};

// Analysis of one tensor fed in consecutive windows (element order, stored layout and dtype), so
// that memory is bounded by the window, not by the tensor. Gives exactly what
// TensorAnalyzer::analyze() gives on the whole tensor. Not thread-safe; one per tensor.
class TensorStream {
 public:
  // Throws formats::Error when why_not_windowed(meta) is set.
  TensorStream(const TensorAnalyzer& an, const formats::TensorMeta& meta, Workspace& ws, std::string where);
  ~TensorStream();
  TensorStream(const TensorStream&) = delete;
  TensorStream& operator=(const TensorStream&) = delete;

  // The next piece: any whole number of elements (window_elements() of them avoid gathering
  // byte-codec blocks; with counts_only() any size is as cheap). Throws formats::Error when a piece
  // is not a whole number of elements or exceeds the tensor; VerifyError as analyze() does.
  void feed(std::span<const std::byte> window);
  // Throws formats::Error unless every element was fed.
  std::vector<VariantMeasures> finish();

 private:
  const TensorAnalyzer& an_;
  formats::TensorMeta meta_;
  Workspace& ws_;
  std::string where_;
  std::uint64_t fed_ = 0;
  std::vector<std::unique_ptr<TensorAnalyzer::VariantStream>> streams_;
  std::vector<VariantMeasures> out_;
};

}  // namespace cdma::analyze
