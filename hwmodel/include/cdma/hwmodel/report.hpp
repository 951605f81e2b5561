// The JSON of a replay: one run of the "cdma-replay" v1 document (docs/HWMODEL_RESULTS.md; the whole
// document is study_json in study.hpp) and the event trace of one replay. This file is the one writer
// of both schemas.
#pragma once

#include <cdma/hwmodel/replay.hpp>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace cdma::hwmodel {

inline constexpr int kReplaySchemaVersion = 1;

// What a run was replayed on (for the JSON and table headers).
struct Scenario {
  std::string gpu, link, precision, compute;  // compute: "roofline" or "trace" (+ scale)
  double link_gbps_effective = 0;
  double latency_us = 0;
  Policy policy = Policy::vdnn_all;
  std::vector<std::string> ratio_sources;  // how ratios were obtained, one phrase each
  // Offloaded tensors with no measured ratio (for some engine's codec): "layer" or "layer (codec)",
  // their bytes per iteration, and the fill rule they were replayed with ("none" = ratio 1).
  std::vector<std::string> unmeasured;
  std::int64_t unmeasured_bytes = 0;
  std::string fill = "none";
};

// One run: results[0] is the oracle, results[1] vDNN, then each cDMA engine (same policy).
// Totals carry overhead_vs_oracle = t / oracle - 1 and speedup_vs_vdnn = vDNN / t - 1.
nlohmann::json run_json(const Network& net, const Scenario& sc, const std::vector<const ReplayResult*>& results);

// The event trace of one replay: {"schema": "cdma-replay-events", "schema_version": 1, "total_ps",
// "forward_ps", "link_bytes_per_s", "latency_ps", "layers": [{name, op, fwd_ps, bwd_ps}],
// "events": [{stream, kind, layer, tensor, start_ps, end_ps, bytes}]}.
nlohmann::json events_json(const Network& net, const EventReplay& replay, const std::string& label,
                           const LinkParams& link);

}  // namespace cdma::hwmodel
