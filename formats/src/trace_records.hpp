// In-memory records of /timeline and /stats and their HDF5 compound types (internal).
#pragma once

#include "h5.hpp"

#include <cdma/formats/trace.hpp>

#include <cstdint>

namespace cdma::formats::detail {

inline constexpr std::size_t kOpLen = 16, kLayerLen = 64, kRoleLen = 8, kDtypeLen = 16;

struct TimelineRec {
  std::int64_t iteration;
  std::int64_t call;
  std::int32_t layer_index;
  std::int8_t phase;
  char op[kOpLen];
  char layer[kLayerLen];
  std::int64_t start_ns;
  std::int64_t end_ns;
  std::int64_t device_ns;
};

struct StatsRec {
  std::int64_t iteration;
  std::int64_t call;
  std::int32_t layer_index;
  char layer[kLayerLen];
  char op[kOpLen];
  char role[kRoleLen];
  char dtype[kDtypeLen];
  std::int64_t elements;
  std::int64_t nonzeros;
  std::int64_t zero_runs;
};

// Memory compound types matching the structs (fixed NULLPAD strings). File types are the
// packed copies of these.
h5::Id timeline_mem_type();
h5::Id stats_mem_type();

TimelineRec to_rec(const TimelineRow& r);
TimelineRow from_rec(const TimelineRec& r);
StatsRec to_rec(const StatsRow& r);
StatsRow from_rec(const StatsRec& r);

}  // namespace cdma::formats::detail
