// The hardware model's front door: a study request (which networks or traces, on what hardware,
// under which offload policy and engines, with which compression ratios, swept over what) in, a
// typed report out (docs/spec/HWMODEL.md). `cdma replay` parses its options into a StudyRequest
// and prints the StudyReport; `cdma report` and the Python API call the same function.
#pragma once

#include <cdma/formats/table.hpp>
#include <cdma/hwmodel/facade.hpp>
#include <cdma/hwmodel/report.hpp>
#include <cdma/hwmodel/trace_input.hpp>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace cdma::hwmodel {

// Where a trace replay's compute times come from: the trace's /timeline (x compute_scale), the GPU
// preset's roofline over the trace's layer shapes, or automatic (roofline for CPU traces and for
// traces without a /timeline, else the timeline).
enum class ComputeSource { automatic, trace, roofline };
ComputeSource parse_compute_source(const std::string& s);  // "auto", "trace", "roofline"; UsageError
const char* to_string(ComputeSource c);

// A parameter replayed over a list of values, each value one more study of the same network.
enum class SweepParameter { none, link, density, ratio };
SweepParameter parse_sweep(const std::string& s);  // "", "link", "density", "ratio"; UsageError
const char* to_string(SweepParameter p);           // "" for none
// The built-in values of a sweep (link: GB/s effective; density; ratio).
std::vector<double> default_sweep_values(SweepParameter p);

// A finite number in [lo, hi], or (lo, hi] when !lo_closed.
struct ValueRange {
  double lo = 0, hi = 0;
  bool lo_closed = true;
};
// The ranges `validate` accepts; the CLI states the same ones in --help.
namespace ranges {
inline constexpr ValueRange link_gbps{1e-3, 1e6}, share{0, 1, false}, latency_us{0, 1e6}, bwd_factor{0, 100},
    gbps_override{0, 1e6}, compute_scale{1e-6, 1e6}, ratio{1e-3, 1e6}, density{0, 1}, link_sweep{0, 1e6, false},
    peak_tflops{0, 1e6, false}, dram_gbps{0, 1e7, false};
}  // namespace ranges

// Where compression ratios come from. At most one of ratio, density, table/table_file. A zoo
// network needs one (or a ratio/density sweep); a trace without one is measured on its own
// offloaded tensors with the engines' codecs.
struct RatioSource {
  std::optional<double> ratio;    // every offloaded tensor, every engine codec
  std::optional<double> density;  // ZVC at this density on post-ReLU tensors, dense elsewhere
  // Measured rows: given as a table (e.g. ratio_table_from_analysis) or read from a file, a
  // `cdma analyze --json` document (its trace `table_trace_index`) or a trace (.h5, measured with
  // the engines' codecs).
  std::optional<RatioTable> table;
  std::filesystem::path table_file;
  int table_trace_index = 0;
  std::string table_label;  // how ratio_sources name the table (default: its file)
  RatioFill fill = RatioFill::none;

  bool has_table() const { return table.has_value() || !table_file.empty(); }
  int count() const { return (ratio ? 1 : 0) + (density ? 1 : 0) + (has_table() ? 1 : 0); }
};

struct StudyRequest {
  std::vector<std::string> networks;          // zoo names (see expand_networks)
  std::vector<std::filesystem::path> traces;  // trace files (trace format v1)
  int batch = 256;                            // zoo networks
  std::string precision = "fp32";             // fp32, fp16, bf16, tf32
  std::filesystem::path presets;              // empty: default_preset_dir()
  std::string gpu = "titan-xp", link = "pcie3";
  // Overrides of the presets (unset: the preset's value).
  std::optional<double> link_gbps, link_eff, latency_us, compute_eff, dram_eff;
  std::optional<double> peak_tflops;  // the GPU's peak at `precision` (TFLOP/s)
  std::optional<double> dram_gbps;    // the GPU's DRAM bandwidth (GB/s)
  Policy policy = Policy::vdnn_all;
  std::vector<std::string> engines;     // PLACEMENT[:CODEC]; empty: dma:zvc mc:zvc sm:zvc
  double read_gbps = 0, comp_gbps = 0;  // engine overrides (0: presets)
  ComputeSource compute = ComputeSource::automatic;
  double compute_scale = 1.0;    // trace timelines
  double bwd_factor = 2.0;       // rooflines: backward = factor x forward
  int conv_kernel = 3;           // trace rooflines
  std::int64_t trace_batch = 0;  // traces: modelled batch (0: the trace's)
  RatioSource ratios;
  SweepParameter sweep = SweepParameter::none;
  std::vector<double> sweep_values;  // empty: default_sweep_values(sweep)
  bool keep_events = false;          // keep every event replay in the report (timelines, event traces)
};

// Expands "paper" (the cDMA paper's six networks) and "all" (the zoo); throws UsageError naming
// an unknown network and the known ones.
std::vector<std::string> expand_networks(const std::vector<std::string>& names);

// Checks the combinations a request must satisfy before any file is read: something to replay,
// one ratio source (a zoo network needs one; a ratio/density sweep counts as one), fill only with
// a table, sweep values only with a sweep, every value in range. Throws UsageError.
void validate(const StudyRequest& req);

struct SweepRow {
  double value = 0;
  Ps oracle_ps = 0, vdnn_ps = 0;
  std::vector<Ps> engine_ps;  // StudyReport::engines order
};

// One replayed network: its model, how it was set up, and its results by name.
struct RunReport {
  Network net;
  Scenario scenario;
  ReplayResult oracle, vdnn;
  std::vector<ReplayResult> engines;  // StudyReport::engines order
  // Event replays in the same order (oracle, vDNN, engines); empty unless keep_events.
  std::vector<EventReplay> events;
  std::vector<SweepRow> sweep;  // empty without a sweep

  // Oracle, vDNN, then the engines, as one list (JSON and tables show them in that order).
  std::vector<const ReplayResult*> configurations() const;
  double vdnn_overhead() const;              // vDNN / oracle - 1
  double speedup(std::size_t engine) const;  // vDNN / engine - 1
};

struct SummaryStat {
  double mean = 0, max = 0;
};

struct StudyReport {
  std::string gpu, link;  // preset names
  Policy policy = Policy::vdnn_all;
  LinkParams link_params;           // as replayed (before sweeps)
  std::vector<Engine> engines;      // the cDMA engines (vDNN is always replayed)
  std::vector<std::string> codecs;  // their codecs, first-seen order
  SweepParameter sweep = SweepParameter::none;
  std::vector<RunReport> runs;  // zoo networks first, then traces, in request order
  // Over the runs: vDNN overhead over the oracle and each engine's speedup over vDNN.
  SummaryStat vdnn_overhead;
  std::vector<SummaryStat> speedup;  // engines order
};

// Runs the study: validate(req) first (so a bad request fails before any file is read), then the
// replays. Throws UsageError for a bad name or value in the request, ModelError /
// formats::Error for bad files, and ModelError when a closed-form replay disagrees with its event
// replay (an internal check).
StudyReport run_study(const StudyRequest& req);

// The cdma-replay v1 document (docs/HWMODEL_RESULTS.md): schema, producer, runs[], summary[],
// sweeps[] when swept. This is the one writer of that schema.
nlohmann::json study_json(const StudyReport& report);
// {"replays": [cdma-replay-events documents]} of every kept event replay (labels prefixed by the
// network when there are several runs). Needs keep_events.
nlohmann::json study_events_json(const StudyReport& report);

// Every kept event replay as one Chrome trace-event document (the JSON object format that
// Perfetto, chrome://tracing and the PyTorch profiler read): a process per network x configuration,
// a thread (track) per stream: "compute" (forward, backward, compress, decompress), "offload" and
// "prefetch" (prefetch and on-demand fetch); complete events ("ph": "X", microseconds) named by kind
// and layer, with the layer, tensor and bytes in args. Needs keep_events.
nlohmann::json study_chrome_trace(const StudyReport& report);

// A cdma-replay v1 document (study_json) as tidy tables, flattened from the document so that every
// number is the JSON's; `cdma replay --csv` writes them and the Python API's cdma.replay() returns
// them as DataFrames:
//   totals:  one row per run x configuration (oracle, vDNN, each engine): the run's setup and the
//            configuration's totals (docs/HWMODEL_RESULTS.md "totals");
//   layers:  one row per run x layer x offloading configuration (vDNN, each engine), the layer's
//            compute times and bytes beside the configuration's per-layer times;
//   summary: one row per run x engine: vDNN overhead and the engine's speedup;
//   sweep:   one row per run x sweep value x configuration (empty without a sweep).
struct ReplayTables {
  formats::Table totals, layers, summary, sweep;
};
ReplayTables replay_tables(const nlohmann::json& study_doc);

// The text tables `cdma replay` prints: per run its totals, the per-layer table when per_layer,
// the sweep; then the summary when there are several runs.
void write_tables(std::ostream& os, const StudyReport& report, bool per_layer);
// The presets, zoo networks and engine placements (`cdma replay --list`).
void write_catalog(std::ostream& os, const PresetCatalog& presets);

}  // namespace cdma::hwmodel
