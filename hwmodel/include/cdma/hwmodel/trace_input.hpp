// Networks and ratios from measured data: a trace's /timeline and tensor metadata, and the
// analyzer's JSON (docs/ANALYSIS_JSON.md).
#pragma once

#include <cdma/hwmodel/network.hpp>
#include <cdma/hwmodel/presets.hpp>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace cdma::analyze {
struct Analysis;
}

namespace cdma::hwmodel {

struct TraceNetworkOptions {
  // Compute times: measured (timeline; device_ns when known, else end - start; averaged over
  // iterations) times compute_scale; or, when roofline is set, the roofline of `gpu` over the
  // layer shapes in the tensor metadata (conv FLOPs assume conv_kernel x conv_kernel kernels,
  // since kernel sizes are not in the trace).
  double compute_scale = 1.0;
  bool roofline = false;
  const GpuPreset* gpu = nullptr;
  std::string precision = "fp32";
  int conv_kernel = 3;
  double bwd_factor = 2.0;  // roofline only
  // Batch size to model. The tensors of a trace may hold only the first K samples of each batch
  // (cdma train --capture-batch); U and the roofline shapes are scaled from the captured N to this
  // batch. 0: the trace's "batch_size" root attribute when present, else the captured N.
  std::int64_t batch = 0;
};

// Builds the network of a trace: one layer per layer_index seen in /timeline or /tensors, named
// and typed from them; U = bytes of the layer's offloaded tensors (TensorMeta::offloaded(): the
// `offload` attribute, else forward role "x") per iteration, scaled to the modelled batch
// (TraceNetworkOptions::batch); layers without tensor data take U from their /stats rows (role x:
// elements x element size). A layer with no offloaded tensor (an in-place ReLU) offloads nothing.
// When the producer wrote no `offload` attributes, the first layer's input is taken to be the
// network input (never offloaded, docs/spec/HWMODEL.md); when it did, its offload set is used as stated.
// Layers without a measured backward get B = 2F. Throws formats::TraceError / ModelError.
Network network_from_trace(const std::filesystem::path& trace, const TraceNetworkOptions& opts);

// Per-layer bytes and ratios read from `cdma analyze --json` (schema "cdma-analysis" v1).
struct LayerRatios {
  std::string layer;
  int layer_index = -1;
  std::string op;
  std::int64_t bytes_per_iteration = 0;  // U = bytes / iterations
  double density = -1;
  std::map<std::string, double> ratio;  // codec -> byte-weighted ratio (null codecs omitted)
};
struct RatioTable {
  std::filesystem::path path;
  std::vector<LayerRatios> layers;        // "layer" rows, role x, layout/dtype "stored"
  std::map<std::string, double> network;  // codec -> ratio of the "network" row (stored/stored)
  double network_density = -1;
  // layer_index of the row that is the network input (never offloaded), -1 when none is: the
  // trace's producer stated its offload set (`offload` attributes), so no row is the network input.
  // Else (the format's default rule) the row with the lowest layer_index.
  int input_layer_index = -1;
};

// What a layer whose offloaded tensor has no measured ratio is replayed with.
enum class RatioFill {
  none,     // ratio 1 (sent uncompressed); the layer is listed as unmeasured
  average,  // a measured average (see apply_ratios / apply_ratios_to_zoo); still listed
};
// "none" or "average"; throws ModelError naming the accepted values.
RatioFill parse_fill(const std::string& s);
const char* to_string(RatioFill f);
// Reads one trace's rows (trace_index) from an analysis JSON. Throws ModelError naming the file
// and the key when the schema, version or a required key is wrong.
RatioTable load_analysis_json(const std::filesystem::path& path, int trace_index = 0);

struct ApplyRatiosReport {
  int matched_by_name = 0, matched_by_index = 0, unmatched = 0;
  // Offloaded tensors without a measured row: their layers and bytes per iteration (U).
  std::vector<std::string> unmeasured;
  std::int64_t unmeasured_bytes = 0;
};
// Sets each layer's ratios from the row with its name (else its layer_index, when match_index).
// Layers without a row are unmeasured: ratio 1 with RatioFill::none, the table's network ratios
// with RatioFill::average. When take_bytes, also sets x_bytes = U from the row (trace replays).
// Layers that offload nothing (no tensor, or the network input) are left alone.
ApplyRatiosReport apply_ratios(Network& net, const RatioTable& table, bool match_index, bool take_bytes,
                               RatioFill fill);

// Applies measured ratios to a zoo network (whose layers are not the trace's): a layer whose name
// and op match a row takes that row's ratios ('/' and '.' in names match each other: Caffe's
// "fire2/squeeze1x1" is PyTorch's "fire2.squeeze1x1"). Every other layer is unmeasured: ratio 1 with
// RatioFill::none; with RatioFill::average, a tensor that can hold ReLU zeros (x_sparse) takes the
// byte-weighted average over the measured rows of post-ReLU inputs (every row whose op is not relu
// or bn, except the network input's) and a dense one keeps ratio 1. `averages` (when given)
// receives those per-codec averages whatever the fill rule.
ApplyRatiosReport apply_ratios_to_zoo(Network& net, const RatioTable& table, RatioFill fill,
                                      std::map<std::string, double>* averages = nullptr);

// The rows of one trace (trace_index) of an analysis in memory: its layer rows of role x in the
// stored layout and dtype, and its network row (the same rows `load_analysis_json` reads back from
// the analysis JSON, without the text). Throws ModelError when the trace index does not exist.
RatioTable ratio_table_from_analysis(const analyze::Analysis& analysis, int trace_index = 0);

// Measures compression ratios of a trace's offloaded tensors by running the analyzer
// (cdma::analyze; codec names as make_codec accepts them): its layer rows (ratio = sum of
// uncompressed / sum of compressed bytes over iterations, docs/spec/CODECS.md), and a network row over every
// layer but the network input's (RatioTable::input_layer_index). Layers known only from /stats rows
// (in-situ captures) get the exact ZVC ratio from their counts and no byte-codec ratio. Throws
// formats::Error or ModelError.
RatioTable measure_ratio_table(const std::filesystem::path& trace, const std::vector<std::string>& codecs);

}  // namespace cdma::hwmodel
