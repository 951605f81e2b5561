// Built-in network zoo: layer-by-layer shapes of the cDMA paper's networks (and ResNet-50) at
// ImageNet input size, with FLOPs and DRAM traffic per layer, and the roofline that turns them
// into compute times on a GPU preset.
#pragma once

#include <cdma/hwmodel/network.hpp>
#include <cdma/hwmodel/presets.hpp>

#include <string>
#include <vector>

namespace cdma::hwmodel {

// Names accepted by zoo_network: alexnet, overfeat, nin, vgg16, squeezenet (v1.0),
// squeezenet1.1, googlenet, resnet50.
std::vector<std::string> zoo_names();
// The six networks of the cDMA paper, in its order.
std::vector<std::string> paper_networks();

// Layers in forward order. ReLU is fused into the conv/linear/bn/add layer before it (in place, as
// Torch7/cuDNN run it), so a layer's input X is the post-ReLU activation vDNN offloads. Times are
// 0 until apply_roofline. element_bytes: 4 (fp32) or 2 (fp16/bf16). Throws ModelError on an
// unknown name or batch < 1.
Network zoo_network(const std::string& name, int batch, int element_bytes = 4);

// F = max(flops / (peak(precision) x compute_eff), dram_bytes / (DRAM x dram_eff)); B = bwd_factor x F.
void apply_roofline(Network& net, const GpuPreset& gpu, const std::string& precision, double bwd_factor = 2.0);

}  // namespace cdma::hwmodel
