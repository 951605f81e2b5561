// Renderings of an Analysis: the versioned JSON of docs/ANALYSIS_JSON.md, CSV, and the aligned
// terminal table in the style of the cDMA paper. They write to a stream the caller owns.
#pragma once

#include <cdma/analyze/aggregate.hpp>
#include <cdma/analyze/pipeline.hpp>

#include <ostream>
#include <string>

namespace cdma::analyze {

inline constexpr int kSchemaVersion = 1;
inline constexpr const char* kSchemaName = "cdma-analysis";

// The whole analysis, every aggregation level (schema cdma-analysis v1). Deterministic: the same
// inputs and options give the same bytes whatever the thread count or machine.
void write_json(std::ostream& os, const Analysis& a, int indent = 1);

// One level as CSV (header line, then one line per row). Unknown values are empty fields.
void write_csv(std::ostream& os, const Analysis& a, Level level);

// The terminal table of one level, then a network summary line per trace and variant, and a legend.
// Skipped objects and reader warnings are the caller's to show (TraceSummary).
void write_table(std::ostream& os, const Analysis& a, Level level);

}  // namespace cdma::analyze
