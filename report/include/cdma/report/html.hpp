// The self-contained HTML report: inline SVG charts and tables, no network access, no external
// files. Built from the analysis (typed rows: AnalysisTables, from the analyzer in memory or from
// its JSON, docs/ANALYSIS_JSON.md, schema cdma-analysis v1) and, optionally, the hardware model's
// JSON (`cdma replay --json` runs).
#pragma once

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace cdma::analyze {
struct Analysis;
}

namespace cdma::report {

// One row of an analysis level, with the fields the page shows.
struct AnalysisRow {
  int trace = 0;
  std::string layer, op;        // layer levels ("" otherwise)
  int layer_index = -1;         // layer levels
  std::int64_t iteration = -1;  // iteration levels
  std::string layout = "stored", dtype = "stored";
  std::uint64_t tensors = 0, bytes = 0;
  double density = std::nan("");
  std::vector<double> ratio;  // per AnalysisTables::codecs; NaN when unknown
};

// One tensor of the stored variant, for the distribution figures (CDFs, ratio against density).
struct TensorPoint {
  int trace = 0;
  double density = std::nan("");
  int width = 4;              // bytes per element as analysed (4: fp32; 2: fp16/bf16; 1: int8/uint8)
  std::vector<double> ratio;  // per AnalysisTables::codecs; NaN when unknown
};

struct AnalysisTrace {
  int index = 0;
  std::string path, model, source;  // model "" when unknown
};

// What the page draws from an analysis: the network rows of every layout/dtype variant; the layer,
// iteration and layer x iteration rows of the stored variant, and a point per tensor of the
// stored variant (density, width, ratios: a few numbers each, not the tensor rows).
struct AnalysisTables {
  std::vector<std::string> codecs, layouts, dtypes;
  std::vector<AnalysisTrace> traces;
  std::vector<AnalysisRow> network, layer, iteration, layer_iteration;
  std::vector<TensorPoint> tensors;
};

// From an analysis in memory (no JSON text in between).
AnalysisTables analysis_tables(const analyze::Analysis& analysis);
// From an analysis JSON document. Throws formats::Error when it is not schema cdma-analysis v1 or
// a field has the wrong type.
AnalysisTables analysis_tables(const nlohmann::json& document);

struct ReportInputs {
  AnalysisTables analysis;
  // Replay runs: {"runs": [run, ...]} where each run is hwmodel::run_json()'s object (schema
  // cdma-replay v1: network, gpu, link, policy, totals[], layers[]).
  std::optional<nlohmann::json> replay;
  std::vector<std::string> replay_timelines;  // pre-rendered SVG timelines (report::replay_timeline)
  std::string title = "cdma report";
  std::string command;    // the command line that made the report (shown in the page)
  std::string generated;  // ISO-8601 time
  // A comparison section (`cdma report --compare`): the traces as runs of one network, density over
  // training overlaid and per-layer ratios (layers matched by name) with their differences.
  bool compare = false;
};

std::string render_html(const ReportInputs& in);

}  // namespace cdma::report
