// Fixed-size records of /timeline and /stats and their HDF5 compound types (internal), derived
// from the column lists of trace.hpp.
#pragma once

#include "h5.hpp"

#include <cdma/formats/trace.hpp>

#include <cstdint>
#include <string>

namespace cdma::formats::detail {

#define CDMA_TRACE_REC_INT_(type, name, init) type name;
#define CDMA_TRACE_REC_STR_(name, size) char name[size];

struct TimelineRec {
  CDMA_TRACE_TIMELINE_COLUMNS(CDMA_TRACE_REC_INT_, CDMA_TRACE_REC_STR_)
};

struct StatsRec {
  CDMA_TRACE_STATS_COLUMNS(CDMA_TRACE_REC_INT_, CDMA_TRACE_REC_STR_)
};

#undef CDMA_TRACE_REC_INT_
#undef CDMA_TRACE_REC_STR_

// The text columns of each row (the STR columns of the list).
#define CDMA_TRACE_NO_INT_(type, name, init)
#define CDMA_TRACE_TL_STR_(name, size) &TimelineRow::name,
#define CDMA_TRACE_ST_STR_(name, size) &StatsRow::name,
inline constexpr std::string TimelineRow::*kTimelineText[] = {
    CDMA_TRACE_TIMELINE_COLUMNS(CDMA_TRACE_NO_INT_, CDMA_TRACE_TL_STR_)};
inline constexpr std::string StatsRow::*kStatsText[] = {
    CDMA_TRACE_STATS_COLUMNS(CDMA_TRACE_NO_INT_, CDMA_TRACE_ST_STR_)};
#undef CDMA_TRACE_NO_INT_
#undef CDMA_TRACE_TL_STR_
#undef CDMA_TRACE_ST_STR_

// Memory compound types matching the structs (fixed NULLPAD strings). File types are the
// packed copies of these.
h5::Id timeline_mem_type();
h5::Id stats_mem_type();

TimelineRec to_rec(const TimelineRow& r);
TimelineRow from_rec(const TimelineRec& r);
StatsRec to_rec(const StatsRow& r);
StatsRow from_rec(const StatsRec& r);

}  // namespace cdma::formats::detail
