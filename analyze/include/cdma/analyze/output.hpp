// Renderings of an Analysis: the versioned JSON of docs/ANALYSIS_JSON.md, CSV, and the aligned
// terminal table in the style of the cDMA paper. They write to a stream the caller owns.
#pragma once

#include <cdma/analyze/aggregate.hpp>
#include <cdma/analyze/pipeline.hpp>
#include <cdma/formats/table.hpp>

#include <ostream>
#include <string>

namespace cdma::analyze {

inline constexpr int kSchemaVersion = 1;
inline constexpr const char* kSchemaName = "cdma-analysis";

// The widest indent write_json takes (a wider one only makes the file bigger).
inline constexpr int kMaxJsonIndent = 64;

// The whole analysis, every aggregation level (schema cdma-analysis v1). Deterministic: the same
// inputs and options give the same bytes whatever the thread count or machine. indent: -1 for one
// line, else 0 .. kMaxJsonIndent spaces a level (the bytes of nlohmann's dump(indent)); any other
// value throws formats::UsageError.
void write_json(std::ostream& os, const Analysis& a, int indent = 1);

// One level as CSV (header line, then one line per row: trace index, path and model, the level's
// keys, the measures, then bytes / ratio / mean_ratio per codec). Unknown values are empty fields.
void write_csv(std::ostream& os, const Analysis& a, Level level);

// One level as a tidy (long) table: one row per group x variant x codec, with the trace's index,
// path and model, the level's keys, the group's measures (the same for each codec of a group), and
// the codec's name, compressed bytes, byte-weighted ratio, mean ratio and exactness. Empty cells
// where the JSON has null. The numbers are the JSON's (`cdma analyze --json`); `cdma analyze
// --csv FILE --long` writes it and the Python API's cdma.analyze() returns it.
formats::Table long_table(const Analysis& a, Level level);

// The terminal table of one level, then a network summary line per trace and variant, and a legend.
// Skipped objects and reader warnings are the caller's to show (TraceSummary).
void write_table(std::ostream& os, const Analysis& a, Level level);

}  // namespace cdma::analyze
