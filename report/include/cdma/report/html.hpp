// The self-contained HTML report: inline SVG charts and tables, no network access, no external
// files. Built from the analyzer's JSON (docs/ANALYSIS_JSON.md, schema cdma-analysis v1) and,
// optionally, the hardware model's JSON (`cdma replay --json`).
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace cdma::report {

struct ReportInputs {
  nlohmann::json analysis;  // cdma-analysis v1
  // Replay runs: {"runs": [run, ...]} where each run is hwmodel::run_json()'s object (schema
  // cdma-replay v1: network, gpu, link, policy, totals[], layers[]).
  std::optional<nlohmann::json> replay;
  std::vector<std::string> replay_timelines;  // pre-rendered SVG timelines (report::replay_timeline)
  std::string title = "cdma report";
  std::string command;    // the command line that made the report (shown in the page)
  std::string generated;  // ISO-8601 time
};

// Throws formats::Error when the analysis document is not schema cdma-analysis v1.
std::string render_html(const ReportInputs& in);

}  // namespace cdma::report
