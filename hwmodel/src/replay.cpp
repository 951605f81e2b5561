// Offload plan, engine timing and the closed-form replay (docs/spec/HWMODEL.md).
#include <cdma/hwmodel/replay.hpp>

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace cdma::hwmodel {

std::string to_string(Policy p) {
  switch (p) {
    case Policy::none:
      return "none";
    case Policy::vdnn_all:
      return "vdnn-all";
    case Policy::vdnn_conv:
      return "vdnn-conv";
  }
  return "?";
}

std::string to_string(Placement p) {
  switch (p) {
    case Placement::none:
      return "none";
    case Placement::dma:
      return "dma";
    case Placement::mc:
      return "mc";
    case Placement::sm:
      return "sm";
  }
  return "?";
}

Policy parse_policy(const std::string& s) {
  if (s == "vdnn-all") return Policy::vdnn_all;
  if (s == "vdnn-conv") return Policy::vdnn_conv;
  if (s == "none") return Policy::none;
  throw ModelError(fmt::format("unknown policy '{}' (expected vdnn-all, vdnn-conv or none)", s));
}

Placement parse_placement(const std::string& s) {
  if (s == "none") return Placement::none;
  if (s == "dma") return Placement::dma;
  if (s == "mc") return Placement::mc;
  if (s == "sm") return Placement::sm;
  throw ModelError(fmt::format("unknown engine placement '{}' (expected dma, mc, sm or none)", s));
}

Engine make_engine(const PresetCatalog& presets, const GpuPreset& gpu, Placement placement, const std::string& codec,
                   double read_gbps_override, double comp_gbps_override) {
  Engine e;
  e.placement = placement;
  e.codec = codec;
  if (placement == Placement::none) {
    e.label = "vDNN";
    return e;
  }
  e.label = fmt::format("cDMA-{}-{}", codec, to_string(placement));
  const std::string fam = codec_family(codec);
  const auto& share = presets.engines.read_share_of_dram;
  auto sit = share.find(to_string(placement));
  double read_share = sit == share.end() ? 1.0 : sit->second;
  e.read_bytes_per_s = read_gbps_override > 0 ? read_gbps_override * 1e9 : read_share * gpu.dram_gbps * 1e9;
  if (placement == Placement::sm) {
    e.read_bytes_per_s = 0;  // the kernel, not the DMA engine, reads the data
    e.sm_stream_bytes_per_s = gpu.dram_gbps * gpu.dram_efficiency * 1e9;
    auto kit = presets.engines.software_kernel_gbps.find(fam);
    double k = comp_gbps_override > 0 ? comp_gbps_override
                                      : (kit == presets.engines.software_kernel_gbps.end() ? 0 : kit->second);
    e.sm_kernel_bytes_per_s = k * 1e9;
    return e;
  }
  auto cit = presets.engines.compressor_gbps.find(fam);
  double c =
      comp_gbps_override > 0 ? comp_gbps_override : (cit == presets.engines.compressor_gbps.end() ? 0 : cit->second);
  e.compressor_bytes_per_s = c * 1e9;
  return e;
}

OffloadPlan plan_offload(const Network& net, Policy policy) {
  OffloadPlan plan;
  plan.policy = policy;
  const int n = static_cast<int>(net.layers.size());
  plan.offload_item.assign(n, -1);
  plan.need_item.assign(n, -1);
  if (policy == Policy::none) return plan;
  // Tensor -> first and last consumer, and whether a conv consumes it.
  std::map<int, int> index_of;  // tensor -> item index
  std::vector<bool> has_conv;
  for (int i = 0; i < n; ++i) {
    const Layer& l = net.layers[i];
    if (l.x_tensor < 0 || l.x_tensor == net.input_tensor) continue;
    auto [it, fresh] = index_of.emplace(l.x_tensor, static_cast<int>(plan.items.size()));
    if (fresh) {
      OffloadItem item;
      item.tensor = l.x_tensor;
      item.offload_at = i;
      item.bytes = l.x_bytes;
      item.ratio = &l.ratio;
      plan.items.push_back(item);
      has_conv.push_back(false);
    }
    plan.items[it->second].need_at = i;
    if (l.op == "conv") has_conv[it->second] = true;
  }
  std::vector<OffloadItem> kept;
  for (size_t k = 0; k < plan.items.size(); ++k) {
    if (policy == Policy::vdnn_conv && !has_conv[k]) continue;
    if (plan.items[k].bytes <= 0) continue;
    kept.push_back(plan.items[k]);
  }
  plan.items = std::move(kept);
  for (size_t k = 0; k < plan.items.size(); ++k) {
    plan.offload_item[plan.items[k].offload_at] = static_cast<int>(k);
    plan.need_item[plan.items[k].need_at] = static_cast<int>(k);
  }
  return plan;
}

ItemTimes item_times(const OffloadItem& item, const Engine& engine, const LinkParams& link) {
  ItemTimes t;
  const double u = static_cast<double>(item.bytes);
  if (engine.placement != Placement::none && item.ratio) {
    auto it = item.ratio->find(engine.codec);
    if (it != item.ratio->end() && it->second > 1.0) t.ratio = it->second;  // below 1: sent raw
  }
  t.link_bytes = t.ratio == 1.0 ? item.bytes : static_cast<std::int64_t>(std::ceil(u / t.ratio));
  Ps wire = transfer_ps(static_cast<double>(t.link_bytes), link.bytes_per_s);
  switch (engine.placement) {
    case Placement::none:
      t.offload_ps = t.prefetch_ps = wire + link.latency_ps;
      break;
    case Placement::dma:
    case Placement::mc: {
      Ps read = engine.read_bytes_per_s > 0 ? transfer_ps(u, engine.read_bytes_per_s) : 0;
      Ps comp = engine.compressor_bytes_per_s > 0 ? transfer_ps(u, engine.compressor_bytes_per_s) : 0;
      t.offload_ps = t.prefetch_ps = std::max({wire, read, comp}) + link.latency_ps;
      break;
    }
    case Placement::sm: {
      t.offload_ps = t.prefetch_ps = wire + link.latency_ps;
      Ps k = engine.sm_kernel_bytes_per_s > 0
                 ? transfer_ps(u, engine.sm_kernel_bytes_per_s)
                 : transfer_ps(u + static_cast<double>(t.link_bytes), engine.sm_stream_bytes_per_s);
      t.compress_ps = t.decompress_ps = k;
      break;
    }
  }
  return t;
}

namespace {
// vDNN's prefetch rule: the nearest earlier layer whose tensor is offloaded and not yet fetched,
// searching back no further than a conv layer.
int find_prefetch(const Network& net, const OffloadPlan& plan, const std::vector<bool>& fetched, int i) {
  for (int m = i - 1; m >= 0; --m) {
    int it = plan.need_item[m];
    if (it >= 0 && !fetched[it]) return it;
    if (net.layers[m].op == "conv") return -1;
  }
  return -1;
}
}  // namespace

ReplayResult replay_closed_form(const Network& net, const OffloadPlan& plan, const Engine* engine,
                                const LinkParams& link) {
  ReplayResult r;
  const int n = static_cast<int>(net.layers.size());
  r.layers.resize(n);
  r.policy = engine ? plan.policy : Policy::none;
  r.label = (engine && plan.policy != Policy::none) ? engine->label : "oracle";
  const bool offload = engine && plan.policy != Policy::none;
  std::vector<ItemTimes> times;
  if (offload)
    for (const auto& item : plan.items) times.push_back(item_times(item, *engine, link));

  for (int i = 0; i < n; ++i) {
    const Layer& l = net.layers[i];
    LayerResult& lr = r.layers[i];
    Ps compute = l.fwd_ps, memory = 0;
    if (offload && plan.offload_item[i] >= 0) {
      const ItemTimes& t = times[plan.offload_item[i]];
      compute += t.compress_ps;
      memory = t.compress_ps + t.offload_ps;
      lr.offload_ps = t.offload_ps;
      lr.offload_bytes = plan.items[plan.offload_item[i]].bytes;
      lr.offload_link_bytes = t.link_bytes;
      lr.ratio = t.ratio;
      r.offloaded_bytes += lr.offload_bytes;
      r.link_bytes += t.link_bytes;
    }
    lr.fwd_ps = std::max(compute, memory);
    lr.fwd_stall_ps = lr.fwd_ps - l.fwd_ps;
    r.forward_ps += lr.fwd_ps;
  }
  std::vector<bool> fetched(plan.items.size(), false);
  for (int i = n - 1; i >= 0; --i) {
    const Layer& l = net.layers[i];
    LayerResult& lr = r.layers[i];
    Ps demand = 0, decompress = 0, prefetch = 0;
    if (offload) {
      if (int it = plan.need_item[i]; it >= 0) {
        if (!fetched[it]) demand = times[it].prefetch_ps;
        fetched[it] = true;
        decompress = times[it].decompress_ps;
      }
      if (int j = find_prefetch(net, plan, fetched, i); j >= 0) {
        fetched[j] = true;
        prefetch = times[j].prefetch_ps;
        lr.prefetch_layer = plan.items[j].need_at;
      }
    }
    lr.demand_ps = demand;
    lr.prefetch_ps = prefetch;
    lr.bwd_ps = demand + std::max(decompress + l.bwd_ps, prefetch);
    lr.bwd_stall_ps = lr.bwd_ps - l.bwd_ps;
    r.backward_ps += lr.bwd_ps;
  }
  r.total_ps = r.forward_ps + r.backward_ps;
  r.stall_ps = r.total_ps - net.oracle_ps();
  return r;
}

}  // namespace cdma::hwmodel
