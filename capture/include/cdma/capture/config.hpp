// Capture options: what the interposer records, shared by the interposer (which reads them from
// the environment) and `cdma capture` (which validates them and sets the environment).
//
// Header-only, no dependencies beyond the standard library: the interposer includes it.
#pragma once

// Byte sizes (CDMA_CAPTURE_BUDGET, _RING) follow cdma's one grammar. Included by relative path so
// that the standalone interposer build (capture/interposer, scripts/build-capture.sh) needs no
// include directory for formats/: the header is header-only and standard-library-only.
#include "../../../../formats/include/cdma/formats/byte_size.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cdma::capture {

enum class Mode : std::uint8_t {
  kFull,      // copy tensor bytes to the trace
  kInsitu,    // count nonzeros / zero runs on the GPU, write /stats rows, copy nothing
  kTimeline,  // timeline only (no tensor data, no stats)
};

enum class IterationMode : std::uint8_t {
  kAuto,    // heuristic (docs/CAPTURE.md): the first forward op of the run, seen again after backward
  kMarker,  // only calls of cdma_capture_mark_iteration() advance the iteration
  kCalls,   // a new iteration every `iteration_calls` intercepted forward calls
};

enum class CuptiMode : std::uint8_t { kAuto, kOn, kOff };

// Bit sets over op kinds, roles and phases.
enum OpBit : std::uint32_t {
  kOpConv = 1u << 0,
  kOpLinear = 1u << 1,
  kOpRelu = 1u << 2,
  kOpPool = 1u << 3,
  kOpBn = 1u << 4,
  kOpLrn = 1u << 5,
  kOpDropout = 1u << 6,
  kOpAdd = 1u << 7,
  kOpConcat = 1u << 8,
  kOpSoftmax = 1u << 9,
  kOpOther = 1u << 10,
  kOpAll = (1u << 11) - 1,
};
enum RoleBit : std::uint32_t { kRoleX = 1, kRoleY = 2, kRoleDy = 4, kRoleDx = 8, kRoleAll = 15 };
enum PhaseBit : std::uint32_t { kPhaseForward = 1, kPhaseBackward = 2, kPhaseAll = 3 };

inline constexpr std::pair<std::string_view, std::uint32_t> kOpNames[] = {
    {"conv", kOpConv},     {"linear", kOpLinear},   {"relu", kOpRelu},       {"pool", kOpPool},
    {"bn", kOpBn},         {"lrn", kOpLrn},         {"dropout", kOpDropout}, {"add", kOpAdd},
    {"concat", kOpConcat}, {"softmax", kOpSoftmax}, {"other", kOpOther},     {"all", kOpAll}};
inline constexpr std::pair<std::string_view, std::uint32_t> kRoleNames[] = {
    {"x", kRoleX}, {"y", kRoleY}, {"dy", kRoleDy}, {"dx", kRoleDx}, {"all", kRoleAll}};
inline constexpr std::pair<std::string_view, std::uint32_t> kPhaseNames[] = {
    {"forward", kPhaseForward}, {"backward", kPhaseBackward}, {"all", kPhaseAll}};

struct Config {
  std::string dir = ".";                           // CDMA_CAPTURE_DIR: where spool files go
  Mode mode = Mode::kFull;                         // CDMA_CAPTURE_MODE: full | insitu | timeline
  std::uint32_t ops = kOpAll;                      // CDMA_CAPTURE_OPS: comma list of op names
  std::uint32_t roles = kRoleX;                    // CDMA_CAPTURE_ROLES: x,y,dy,dx
  std::uint32_t phases = kPhaseForward;            // CDMA_CAPTURE_PHASES: forward,backward
  std::int64_t every = 1;                          // CDMA_CAPTURE_EVERY: every N-th iteration
  std::int64_t skip = 0;                           // CDMA_CAPTURE_SKIP: skip the first K iterations
  std::int64_t first = 0;                          // CDMA_CAPTURE_FIRST: at most K sampled iterations (0: all)
  std::int64_t budget = std::int64_t{1} << 30;     // CDMA_CAPTURE_BUDGET: tensor bytes kept, total
  std::int64_t ring = std::int64_t{256} << 20;     // CDMA_CAPTURE_RING: pinned staging bytes
  std::int64_t ring_wait_ms = 0;                   // CDMA_CAPTURE_RING_WAIT_MS: wait for ring space, then drop
  IterationMode iteration = IterationMode::kAuto;  // CDMA_CAPTURE_ITERATION: auto|marker|calls:N
  std::int64_t iteration_calls = 0;
  CuptiMode cupti = CuptiMode::kAuto;  // CDMA_CAPTURE_CUPTI: auto|on|off
  std::string cupti_path;              // CDMA_CAPTURE_CUPTI_PATH: libcupti to load when `on`
  bool inline_copy = false;            // CDMA_CAPTURE_COPY=inline: copy on the cuDNN stream
  bool verbose = false;                // CDMA_CAPTURE_VERBOSE=1: one line per event on stderr
};

namespace config_detail {
inline bool parse_int(std::string_view s, std::int64_t& out) {
  if (s.empty()) return false;
  std::int64_t mult = 1;
  char last = s.back();
  if (last == 'k' || last == 'K') mult = std::int64_t{1} << 10;
  if (last == 'm' || last == 'M') mult = std::int64_t{1} << 20;
  if (last == 'g' || last == 'G') mult = std::int64_t{1} << 30;
  if (mult != 1) s.remove_suffix(1);
  if (s.empty()) return false;
  std::int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    if (v > (INT64_MAX - 9) / 10) return false;
    v = v * 10 + (c - '0');
  }
  if (v > INT64_MAX / mult) return false;
  out = v * mult;
  return true;
}

template <std::size_t N>
inline bool parse_set(std::string_view s, const std::pair<std::string_view, std::uint32_t> (&names)[N],
                      std::uint32_t& out) {
  std::uint32_t v = 0;
  while (!s.empty()) {
    auto comma = s.find(',');
    std::string_view item = s.substr(0, comma);
    bool found = false;
    for (const auto& [n, bit] : names) {
      if (n == item) {
        v |= bit;
        found = true;
      }
    }
    if (!found) return false;
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
  }
  if (v == 0) return false;
  out = v;
  return true;
}
}  // namespace config_detail

// Sets one option from its environment name and value. Returns an error sentence, or "" when
// the value is valid. Unknown names are errors too (they are all CDMA_CAPTURE_*).
inline std::string set_option(Config& c, std::string_view name, std::string_view value) {
  using namespace config_detail;
  auto bad = [&](std::string_view expected) {
    return std::string(name) + "='" + std::string(value) + "': expected " + std::string(expected);
  };
  std::int64_t n = 0;
  if (name == "CDMA_CAPTURE_DIR") {
    if (value.empty()) return bad("a directory");
    c.dir = std::string(value);
  } else if (name == "CDMA_CAPTURE_MODE") {
    if (value == "full")
      c.mode = Mode::kFull;
    else if (value == "insitu")
      c.mode = Mode::kInsitu;
    else if (value == "timeline")
      c.mode = Mode::kTimeline;
    else
      return bad("full, insitu or timeline");
  } else if (name == "CDMA_CAPTURE_OPS") {
    if (!parse_set(value, kOpNames, c.ops))
      return bad("a comma list of conv,linear,relu,pool,bn,lrn,dropout,add,concat,softmax,other,all");
  } else if (name == "CDMA_CAPTURE_ROLES") {
    if (!parse_set(value, kRoleNames, c.roles)) return bad("a comma list of x,y,dy,dx,all");
  } else if (name == "CDMA_CAPTURE_PHASES") {
    if (!parse_set(value, kPhaseNames, c.phases)) return bad("a comma list of forward,backward,all");
  } else if (name == "CDMA_CAPTURE_EVERY") {
    if (!parse_int(value, n) || n < 1) return bad("an integer >= 1");
    c.every = n;
  } else if (name == "CDMA_CAPTURE_SKIP") {
    if (!parse_int(value, n)) return bad("an integer >= 0");
    c.skip = n;
  } else if (name == "CDMA_CAPTURE_FIRST") {
    if (!parse_int(value, n)) return bad("an integer >= 0 (0: no limit)");
    c.first = n;
  } else if (name == "CDMA_CAPTURE_BUDGET") {
    std::string why;
    const auto v = formats::parse_byte_size(value, &why);
    if (!v) return bad("a byte count such as 512M or 2G (" + why + ")");
    c.budget = static_cast<std::int64_t>(*v);
  } else if (name == "CDMA_CAPTURE_RING") {
    std::string why;
    const auto v = formats::parse_byte_size(value, &why);
    if (!v || *v < 4096) return bad("a byte count >= 4096 such as 256M" + (v ? std::string() : " (" + why + ")"));
    c.ring = static_cast<std::int64_t>(*v);
  } else if (name == "CDMA_CAPTURE_RING_WAIT_MS") {
    if (!parse_int(value, n)) return bad("milliseconds >= 0");
    c.ring_wait_ms = n;
  } else if (name == "CDMA_CAPTURE_ITERATION") {
    if (value == "auto")
      c.iteration = IterationMode::kAuto;
    else if (value == "marker")
      c.iteration = IterationMode::kMarker;
    else if (value.substr(0, 6) == "calls:" && parse_int(value.substr(6), n) && n >= 1) {
      c.iteration = IterationMode::kCalls;
      c.iteration_calls = n;
    } else
      return bad("auto, marker or calls:N");
  } else if (name == "CDMA_CAPTURE_CUPTI") {
    if (value == "auto")
      c.cupti = CuptiMode::kAuto;
    else if (value == "on")
      c.cupti = CuptiMode::kOn;
    else if (value == "off")
      c.cupti = CuptiMode::kOff;
    else
      return bad("auto, on or off");
  } else if (name == "CDMA_CAPTURE_CUPTI_PATH") {
    c.cupti_path = std::string(value);
  } else if (name == "CDMA_CAPTURE_COPY") {
    if (value == "fork")
      c.inline_copy = false;
    else if (value == "inline")
      c.inline_copy = true;
    else
      return bad("fork or inline");
  } else if (name == "CDMA_CAPTURE_VERBOSE") {
    c.verbose = !(value.empty() || value == "0");
  } else {
    return std::string(name) + ": unknown capture option";
  }
  return {};
}

// Every option name set_option() knows, in documentation order.
inline constexpr std::string_view kOptionNames[] = {
    "CDMA_CAPTURE_DIR",    "CDMA_CAPTURE_MODE",       "CDMA_CAPTURE_OPS",          "CDMA_CAPTURE_ROLES",
    "CDMA_CAPTURE_PHASES", "CDMA_CAPTURE_EVERY",      "CDMA_CAPTURE_SKIP",         "CDMA_CAPTURE_FIRST",
    "CDMA_CAPTURE_BUDGET", "CDMA_CAPTURE_RING",       "CDMA_CAPTURE_RING_WAIT_MS", "CDMA_CAPTURE_ITERATION",
    "CDMA_CAPTURE_CUPTI",  "CDMA_CAPTURE_CUPTI_PATH", "CDMA_CAPTURE_COPY",         "CDMA_CAPTURE_VERBOSE"};

// Reads every CDMA_CAPTURE_* option from the environment. Returns "" or the first error.
inline std::string config_from_env(Config& c) {
  for (auto name : kOptionNames) {
    const char* v = std::getenv(std::string(name).c_str());
    if (!v) continue;
    std::string err = set_option(c, name, v);
    if (!err.empty()) return err;
  }
  return {};
}

// True when iteration `it` is sampled by (skip, every, first).
inline bool iteration_sampled(const Config& c, std::int64_t it) {
  if (it < 0) return c.skip == 0 && c.first == 0 && c.every == 1;  // unknown: only when sampling all
  if (it < c.skip) return false;
  std::int64_t k = it - c.skip;
  if (k % c.every != 0) return false;
  return c.first == 0 || k / c.every < c.first;
}

}  // namespace cdma::capture
