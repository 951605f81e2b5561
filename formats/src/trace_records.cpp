#include "trace_records.hpp"

#include <cdma/formats/text.hpp>

#include <algorithm>
#include <cstring>
#include <string>

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

void insert_str(hid_t t, const char* name, std::size_t off, std::size_t len) {
  h5::Id s = h5::string_type_fixed(len);
  H5Tinsert(t, name, off, s);
}
}  // namespace

h5::Id timeline_mem_type() {
  h5::Id t(H5Tcreate(H5T_COMPOUND, sizeof(TimelineRec)));
  H5Tinsert(t, "iteration", HOFFSET(TimelineRec, iteration), H5T_NATIVE_INT64);
  H5Tinsert(t, "call", HOFFSET(TimelineRec, call), H5T_NATIVE_INT64);
  H5Tinsert(t, "layer_index", HOFFSET(TimelineRec, layer_index), H5T_NATIVE_INT32);
  H5Tinsert(t, "phase", HOFFSET(TimelineRec, phase), H5T_NATIVE_INT8);
  insert_str(t, "op", HOFFSET(TimelineRec, op), kOpLen);
  insert_str(t, "layer", HOFFSET(TimelineRec, layer), kLayerLen);
  H5Tinsert(t, "start_ns", HOFFSET(TimelineRec, start_ns), H5T_NATIVE_INT64);
  H5Tinsert(t, "end_ns", HOFFSET(TimelineRec, end_ns), H5T_NATIVE_INT64);
  H5Tinsert(t, "device_ns", HOFFSET(TimelineRec, device_ns), H5T_NATIVE_INT64);
  return t;
}

h5::Id stats_mem_type() {
  h5::Id t(H5Tcreate(H5T_COMPOUND, sizeof(StatsRec)));
  H5Tinsert(t, "iteration", HOFFSET(StatsRec, iteration), H5T_NATIVE_INT64);
  H5Tinsert(t, "call", HOFFSET(StatsRec, call), H5T_NATIVE_INT64);
  H5Tinsert(t, "layer_index", HOFFSET(StatsRec, layer_index), H5T_NATIVE_INT32);
  insert_str(t, "layer", HOFFSET(StatsRec, layer), kLayerLen);
  insert_str(t, "op", HOFFSET(StatsRec, op), kOpLen);
  insert_str(t, "role", HOFFSET(StatsRec, role), kRoleLen);
  insert_str(t, "dtype", HOFFSET(StatsRec, dtype), kDtypeLen);
  H5Tinsert(t, "elements", HOFFSET(StatsRec, elements), H5T_NATIVE_INT64);
  H5Tinsert(t, "nonzeros", HOFFSET(StatsRec, nonzeros), H5T_NATIVE_INT64);
  H5Tinsert(t, "zero_runs", HOFFSET(StatsRec, zero_runs), H5T_NATIVE_INT64);
  return t;
}

TimelineRec to_rec(const TimelineRow& r) {
  TimelineRec o{};
  o.iteration = r.iteration;
  o.call = r.call;
  o.layer_index = r.layer_index;
  o.phase = r.phase;
  put(o.op, kOpLen, r.op);
  put(o.layer, kLayerLen, r.layer);
  o.start_ns = r.start_ns;
  o.end_ns = r.end_ns;
  o.device_ns = r.device_ns;
  return o;
}

TimelineRow from_rec(const TimelineRec& r) {
  TimelineRow o;
  o.iteration = r.iteration;
  o.call = r.call;
  o.layer_index = r.layer_index;
  o.phase = r.phase;
  o.op = get(r.op, kOpLen);
  o.layer = get(r.layer, kLayerLen);
  o.start_ns = r.start_ns;
  o.end_ns = r.end_ns;
  o.device_ns = r.device_ns;
  return o;
}

StatsRec to_rec(const StatsRow& r) {
  StatsRec o{};
  o.iteration = r.iteration;
  o.call = r.call;
  o.layer_index = r.layer_index;
  put(o.layer, kLayerLen, r.layer);
  put(o.op, kOpLen, r.op);
  put(o.role, kRoleLen, r.role);
  put(o.dtype, kDtypeLen, r.dtype);
  o.elements = r.elements;
  o.nonzeros = r.nonzeros;
  o.zero_runs = r.zero_runs;
  return o;
}

StatsRow from_rec(const StatsRec& r) {
  StatsRow o;
  o.iteration = r.iteration;
  o.call = r.call;
  o.layer_index = r.layer_index;
  o.layer = get(r.layer, kLayerLen);
  o.op = get(r.op, kOpLen);
  o.role = get(r.role, kRoleLen);
  o.dtype = get(r.dtype, kDtypeLen);
  o.elements = r.elements;
  o.nonzeros = r.nonzeros;
  o.zero_runs = r.zero_runs;
  return o;
}

}  // namespace cdma::formats::detail
