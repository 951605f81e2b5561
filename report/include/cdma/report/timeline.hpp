// The timeline picture of hardware-model replays: for each replay a compute lane and a memory lane
// on one time axis (the one SVG timeline writer of cdma: `cdma replay --svg` and the report use it).
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace cdma::report {

// Draws each replay of `replays` (cdma-replay-events v1 documents: hwmodel::events_json) as two
// lanes: forward and backward compute, (de)compression kernels, stalls as gaps; offloads and
// prefetches, on-demand fetches. Colours are the report's colour-blind-safe palette. standalone:
// a file of its own (styles embedded). Throws formats::Error naming the field when a document is
// not of that schema.
std::string replay_timeline(const std::vector<nlohmann::json>& replays, const std::string& title, bool standalone);

}  // namespace cdma::report
