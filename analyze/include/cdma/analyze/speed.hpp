// Codec speed on a trace's own tensors (`cdma bench`): encode and decode throughput of each codec
// against memcpy of the same bytes, measured in the same run, per layer and in total, as lzbench
// and TurboBench report it. The ratios are the quantity; absolute GB/s depend on the machine and
// its load, so the result names the CPU and the SIMD path it ran on.
#pragma once

#include <cdma/analyze/options.hpp>
#include <cdma/formats/table.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace cdma::analyze {

struct SpeedOptions {
  std::vector<std::string> codecs = kDefaultCodecs;
  Filters filters;     // the offload set by default, as the analysis
  int rounds = 3;      // each timing is the best of this many rounds
  double min_ms = 2;   // a round repeats an operation until it has run at least this long
  bool verify = true;  // compare every decode with the original bytes (CodecError otherwise)
};

// Seconds of the best round per byte-moving operation, summed over a group's tensors.
struct SpeedRow {
  int trace = 0;
  std::string layer;  // empty for a trace's total row
  std::int32_t layer_index = -1;
  std::string op;
  std::uint64_t tensors = 0, bytes = 0;
  double memcpy_s = 0;
  // Per codec (SpeedReport::codecs order).
  std::vector<std::uint64_t> compressed;
  std::vector<double> encode_s, decode_s;
};

struct SpeedReport {
  std::vector<std::string> paths;
  std::vector<std::string> codecs;  // canonical names
  std::string cpu, simd;            // CPU model name (/proc/cpuinfo) and formats::active_simd_level()
  std::vector<SpeedRow> layers;     // per trace, layer order
  std::vector<SpeedRow> totals;     // one per trace
};

// Reads each trace's tensors that pass the filters one at a time and times memcpy, encode and
// decode of each with every codec. progress(done, total) is called after each tensor. Throws
// formats::Error (TraceError naming file and object, CodecError) on bad input.
SpeedReport measure_codec_speed(const std::vector<std::filesystem::path>& paths, const SpeedOptions& opts,
                                const std::function<void(std::uint64_t, std::uint64_t)>& progress = {});

// Tidy table: one row per (trace, layer or total) x codec: trace, path, layer_index, layer, op,
// tensors, bytes, codec, compressed_bytes, ratio, memcpy_gbps, encode_gbps, decode_gbps,
// encode_vs_memcpy, decode_vs_memcpy (speed / memcpy speed on the same bytes), cpu, simd.
// Total rows have an empty layer.
formats::Table speed_table(const SpeedReport& r);

}  // namespace cdma::analyze
