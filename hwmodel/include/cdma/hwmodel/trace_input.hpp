// Networks and ratios from measured data: a trace's /timeline and tensor metadata, and the
// analyzer's JSON (docs/ANALYSIS_JSON.md).
#pragma once

#include <cdma/hwmodel/network.hpp>
#include <cdma/hwmodel/presets.hpp>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

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
// and typed from them; U = bytes of the layer's forward role-"x" tensors per iteration, scaled to
// the modelled batch (TraceNetworkOptions::batch); layers without tensor data take U from
// their /stats rows (role x: elements x element size). Layers
// without a measured backward get B = 2F. Throws formats::TraceError / ModelError.
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
};
// Reads one trace's rows (trace_index) from an analysis JSON. Throws ModelError naming the file
// and the key when the schema, version or a required key is wrong.
RatioTable load_analysis_json(const std::filesystem::path& path, int trace_index = 0);

struct ApplyRatiosReport {
  int matched_by_name = 0, matched_by_index = 0, unmatched = 0;
};
// Sets each layer's ratios from the row with its name (else its layer_index, when match_index);
// unmatched layers get the network row's ratios. When take_bytes, also sets x_bytes = U from the
// row (trace replays). Layers without an x tensor are left alone.
ApplyRatiosReport apply_ratios(Network& net, const RatioTable& table, bool match_index, bool take_bytes);

// Applies measured ratios to a zoo network (whose layers are not the trace's): a layer whose name
// and op match a row takes that row's ratios; every other tensor that can hold ReLU zeros
// (x_sparse) takes the byte-weighted average over the rows of post-ReLU inputs (every row whose op
// is not relu or bn, except the first layer's, which is the network input); dense tensors keep
// ratio 1. Returns the per-codec averages used in `averages`.
ApplyRatiosReport apply_ratios_to_zoo(Network& net, const RatioTable& table,
                                      std::map<std::string, double>* averages = nullptr);

// Measures compression ratios of a trace's role-"x" tensors by running the analyzer
// (cdma::analyze; codec names as make_codec accepts them): its layer rows (ratio = sum of
// uncompressed / sum of compressed bytes over iterations, CODECS.md), and a network row over every
// layer but the first (whose input is the network input). Layers known only from /stats rows
// (in-situ captures) get the exact ZVC ratio from their counts and no byte-codec ratio. Throws
// formats::Error or ModelError.
RatioTable measure_ratio_table(const std::filesystem::path& trace, const std::vector<std::string>& codecs);

}  // namespace cdma::hwmodel
