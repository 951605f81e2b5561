// Aggregation of per-tensor measures into groups (tensor, layer, iteration, layer x iteration,
// network) with byte-weighted ratios (docs/spec/CODECS.md "Ratios").
#pragma once

#include <cdma/analyze/tensor.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cdma::analyze {

enum class Level { tensor, layer, iteration, layer_iteration, network };
// "tensor", "layer", "iteration", "layer_iteration", "network" (JSON keys); parse also takes
// "layer-iteration".
std::string_view to_string(Level l) noexcept;
std::optional<Level> parse_level(std::string_view s) noexcept;

// What is known about one analysed tensor besides its measures.
struct TensorInfo {
  int trace = 0;
  std::string name;         // dataset name ("0000000042") or "stats/<row>"
  bool from_stats = false;  // a /stats row: no bytes
  std::int64_t iteration = -1;
  std::string layer;
  std::int32_t layer_index = 0;
  std::string op, role, phase;
  bool offload = true;             // in the offload set (TensorMeta::offloaded(); /stats: role x)
  std::vector<std::int64_t> dims;  // stored order; empty for /stats rows
  std::string stored_dtype, stored_layout;
};

struct TensorResult {
  TensorInfo info;
  std::vector<VariantMeasures> variants;  // one per TensorAnalyzer::variants()
};

// Summed measures of a group, per codec: bytes summed (empty when any member's is unknown),
// ratio = bytes / compressed bytes (byte-weighted), mean_ratio = unweighted mean of per-tensor ratios.
struct CodecTotal {
  std::optional<std::uint64_t> bytes;
  std::optional<double> ratio;
  std::optional<double> mean_ratio;
  bool exact = true;  // false when some member's size is a lower bound (ZRLE from /stats)
};

struct Measures {
  std::uint64_t tensors = 0;
  std::uint64_t iterations = 0;  // distinct iterations
  std::uint64_t elements = 0, bytes = 0, nonzeros = 0, zero_runs = 0;
  std::vector<CodecTotal> codecs;
  double density() const noexcept {
    return elements ? static_cast<double>(nonzeros) / static_cast<double>(elements) : 0.0;
  }
};

// One row of an aggregation level. Fields that are not part of the level's key are unset/empty.
struct GroupRow {
  int trace = 0;
  std::size_t variant = 0;
  std::optional<std::int64_t> iteration;
  std::optional<std::string> layer;
  std::optional<std::int32_t> layer_index;
  std::optional<std::string> op, role;
  std::vector<std::int64_t> dims;        // layer, layer_iteration, tensor: dims of the first member
  const TensorResult* tensor = nullptr;  // tensor level only
  Measures m;
};

// Groups `tensors` at `level`, in a deterministic order: by trace, then variant, then layer index /
// layer / role (layer levels), iteration, and capture order (tensor level). `ncodecs` is the
// number of codecs each VariantMeasures holds. only_variant: the rows of that variant alone (a
// reader that needs one variant does not pay for the others).
std::vector<GroupRow> aggregate(const std::vector<TensorResult>& tensors, Level level, std::size_t nvariants,
                                std::size_t ncodecs, std::optional<std::size_t> only_variant = std::nullopt);

}  // namespace cdma::analyze
