// vDNN / cDMA timing model: offload policies, engines, a closed-form replay and an event-by-event
// reference replay that must agree with it (docs/spec/HWMODEL.md "Inputs", "Outputs", "Checks").
//
// Mechanics (vDNN, MICRO 2016, as PAPERS.md records them): one compute stream and one memory
// stream. In forward, layer i's compute and the offload of the tensor first consumed by layer i
// start together, and both streams synchronise at the layer's end. In backward (layers in reverse
// order), a layer whose tensor is not back yet fetches it on demand first (a stall); then its
// backward compute runs beside the prefetch of one earlier tensor, chosen by vDNN's rule: walk back
// from layer i-1, take the first layer whose tensor is offloaded and not yet fetched, and stop
// (prefetch nothing) at a conv layer that offers none. Both streams synchronise at the layer's end.
#pragma once

#include <cdma/hwmodel/network.hpp>
#include <cdma/hwmodel/presets.hpp>

#include <optional>
#include <string>
#include <vector>

namespace cdma::hwmodel {

enum class Policy { none, vdnn_all, vdnn_conv };
enum class Placement { none, dma, mc, sm };

std::string to_string(Policy p);
std::string to_string(Placement p);
Policy parse_policy(const std::string& s);        // "vdnn-all", "vdnn-conv", "none"; throws ModelError
Placement parse_placement(const std::string& s);  // "none", "dma", "mc", "sm"; throws ModelError

// How offloaded bytes cross the link. placement none = plain vDNN DMA.
struct Engine {
  std::string label;  // shown in tables ("vDNN", "cDMA-zvc-mc")
  Placement placement = Placement::none;
  std::string codec = "zvc";          // key into Layer::ratio
  double read_bytes_per_s = 0;        // engine's read bandwidth of uncompressed data (0 = unlimited)
  double compressor_bytes_per_s = 0;  // compressor/decompressor throughput over uncompressed bytes (0 = unlimited)
  // sm only: software kernel throughput over uncompressed bytes; 0 = streaming kernel whose time
  // is (U + U/r) / sm_stream_bytes_per_s.
  double sm_kernel_bytes_per_s = 0;
  double sm_stream_bytes_per_s = 0;
};

struct LinkParams {
  double bytes_per_s = 0;  // effective, one direction; may be +inf
  Ps latency_ps = 0;       // per transfer
};

// Builds an engine from presets. label empty -> "cDMA-<codec>-<placement>" (or "vDNN").
// Overrides (> 0) replace the preset read bandwidth / compressor throughput.
Engine make_engine(const PresetCatalog& presets, const GpuPreset& gpu, Placement placement, const std::string& codec,
                   double read_gbps_override = 0, double comp_gbps_override = 0);

// Per-tensor offload decisions, computed once per (network, policy).
struct OffloadItem {
  int tensor = -1;
  int offload_at = -1;  // layer whose forward offloads it (first consumer)
  int need_at = -1;     // layer whose backward needs it first (last consumer)
  std::int64_t bytes = 0;
  const std::map<std::string, double>* ratio = nullptr;  // owned by the network's layer
};
struct OffloadPlan {
  Policy policy = Policy::none;
  std::vector<OffloadItem> items;
  std::vector<int> offload_item;  // per layer: item offloaded in its forward, or -1
  std::vector<int> need_item;     // per layer: item its backward needs first, or -1
};
OffloadPlan plan_offload(const Network& net, Policy policy);

// Transfer and kernel times of one item under one engine and link.
struct ItemTimes {
  double ratio = 1;             // effective ratio (a ratio below 1 is sent raw: ratio 1)
  std::int64_t link_bytes = 0;  // ceil(U / ratio)
  Ps offload_ps = 0;            // memory stream, forward
  Ps prefetch_ps = 0;           // memory stream, backward
  Ps compress_ps = 0;           // compute stream before the offload (sm only)
  Ps decompress_ps = 0;         // compute stream before the layer's backward (sm only)
};
ItemTimes item_times(const OffloadItem& item, const Engine& engine, const LinkParams& link);

struct LayerResult {
  Ps fwd_ps = 0, bwd_ps = 0;              // layer durations including stalls
  Ps fwd_stall_ps = 0, bwd_stall_ps = 0;  // duration minus the layer's own compute (F or B)
  Ps offload_ps = 0;                      // offload issued in this layer's forward (0 if none)
  Ps prefetch_ps = 0;                     // prefetch issued in this layer's backward (of an earlier tensor)
  Ps demand_ps = 0;                       // on-demand fetch of this layer's own tensor
  int prefetch_layer = -1;                // need_at layer of the tensor prefetched here
  std::int64_t offload_bytes = 0, offload_link_bytes = 0;
  double ratio = 1;
};

struct ReplayResult {
  std::string label;
  Policy policy = Policy::none;
  Ps forward_ps = 0, backward_ps = 0, total_ps = 0;
  Ps stall_ps = 0;
  std::int64_t offloaded_bytes = 0, link_bytes = 0;  // per iteration, one direction
  std::vector<LayerResult> layers;
};

// Closed form: per-layer max(compute, transfer) sums. engine == nullptr or policy none: oracle.
ReplayResult replay_closed_form(const Network& net, const OffloadPlan& plan, const Engine* engine,
                                const LinkParams& link);

// One operation of the event-by-event replay (also its exported event trace).
struct Event {
  std::string stream;  // "compute" or "memory"
  std::string kind;    // forward, backward, compress, decompress, offload, prefetch, fetch
  int layer = -1;      // the layer in whose step it runs
  int tensor = -1;     // the tensor moved or (de)compressed, else -1
  Ps start_ps = 0, end_ps = 0;
  std::int64_t bytes = 0;  // bytes over the link (transfers) or uncompressed bytes (kernels)
};
struct EventReplay {
  Ps total_ps = 0, forward_ps = 0;
  std::vector<Event> events;  // in start order
};

// Reference: builds the two streams' operations with their dependencies (layer-boundary
// synchronisations, "tensor resident before backward") and runs them in a discrete-event loop.
// Independent of replay_closed_form's arithmetic; the two must give the same times.
EventReplay replay_events(const Network& net, Policy policy, const Engine* engine, const LinkParams& link);

}  // namespace cdma::hwmodel
