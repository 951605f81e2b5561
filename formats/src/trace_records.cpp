#include "trace_records.hpp"

#include <cdma/formats/text.hpp>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <string>
#include <type_traits>

namespace cdma::formats::detail {

namespace {
// Clean text, cut at a UTF-8 sequence boundary to fit the field.
void put(char* dst, std::size_t n, const std::string& s) {
  std::memset(dst, 0, n);
  const std::string clean = clean_text(s);
  const std::string_view fit = utf8_prefix(clean, n);
  std::memcpy(dst, fit.data(), fit.size());
}
std::string get(const char* src, std::size_t n) { return std::string(src, strnlen(src, n)); }

template <typename T>
hid_t native_int() {
  static_assert(std::is_same_v<T, std::int64_t> || std::is_same_v<T, std::int32_t> || std::is_same_v<T, std::int8_t>);
  if constexpr (std::is_same_v<T, std::int64_t>)
    return H5T_NATIVE_INT64;
  else if constexpr (std::is_same_v<T, std::int32_t>)
    return H5T_NATIVE_INT32;
  else
    return H5T_NATIVE_INT8;
}

void insert(hid_t t, const char* name, std::size_t off, hid_t type) {
  h5::check(H5Tinsert(t, name, off, type), "", name, "cannot build the compound type of a trace row");
}
void insert_str(hid_t t, const char* name, std::size_t off, std::size_t len) {
  h5::Id s = h5::string_type_fixed(len);
  insert(t, name, off, s);
}
h5::Id compound(std::size_t size) {
  return h5::Id(h5::check(H5Tcreate(H5T_COMPOUND, size), "", "", "cannot create the compound type of a trace row"));
}
}  // namespace

// Each generator below expands a column list of trace.hpp over one record type `Rec`.
#define CDMA_H5_INT_(type, name, init) insert(t, #name, offsetof(Rec, name), native_int<type>());
#define CDMA_H5_STR_(name, size) insert_str(t, #name, offsetof(Rec, name), size);
#define CDMA_TO_INT_(type, name, init) o.name = r.name;
#define CDMA_TO_STR_(name, size) put(o.name, size, r.name);
#define CDMA_FROM_INT_(type, name, init) o.name = r.name;
#define CDMA_FROM_STR_(name, size) o.name = get(r.name, size);

h5::Id timeline_mem_type() {
  using Rec = TimelineRec;
  h5::Id t = compound(sizeof(Rec));
  CDMA_TRACE_TIMELINE_COLUMNS(CDMA_H5_INT_, CDMA_H5_STR_)
  return t;
}

h5::Id stats_mem_type() {
  using Rec = StatsRec;
  h5::Id t = compound(sizeof(Rec));
  CDMA_TRACE_STATS_COLUMNS(CDMA_H5_INT_, CDMA_H5_STR_)
  return t;
}

TimelineRec to_rec(const TimelineRow& r) {
  TimelineRec o{};
  CDMA_TRACE_TIMELINE_COLUMNS(CDMA_TO_INT_, CDMA_TO_STR_)
  return o;
}

TimelineRow from_rec(const TimelineRec& r) {
  TimelineRow o;
  CDMA_TRACE_TIMELINE_COLUMNS(CDMA_FROM_INT_, CDMA_FROM_STR_)
  return o;
}

StatsRec to_rec(const StatsRow& r) {
  StatsRec o{};
  CDMA_TRACE_STATS_COLUMNS(CDMA_TO_INT_, CDMA_TO_STR_)
  return o;
}

StatsRow from_rec(const StatsRec& r) {
  StatsRow o;
  CDMA_TRACE_STATS_COLUMNS(CDMA_FROM_INT_, CDMA_FROM_STR_)
  return o;
}

}  // namespace cdma::formats::detail
