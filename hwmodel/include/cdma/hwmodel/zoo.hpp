// Built-in network zoo: layer-by-layer shapes of the cDMA paper's networks (and ResNet-50) at
// ImageNet input size, with FLOPs and DRAM traffic per layer, and the roofline that turns them
// into compute times on a GPU preset.
//
// The networks are data files (data/zoo, installed to share/cdma/zoo): zoo.json lists them in
// order (names, aliases, whether the cDMA paper uses them) and <name>.json holds each one's layer
// list (schema "cdma-zoo-network", its source in "source" and "reference"). This file computes
// the shapes, FLOPs and bytes from them.
#pragma once

#include <cdma/hwmodel/network.hpp>
#include <cdma/hwmodel/presets.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace cdma::hwmodel {

// The zoo directory: $CDMA_ZOO when set; else installed_data_dir("zoo", "zoo.json") (presets.hpp)
// when found; else data/zoo of the source tree (as default_preset_dir does for presets).
std::filesystem::path default_zoo_dir();

// Names accepted by zoo_network, in the zoo's order: alexnet, overfeat, nin, vgg16, squeezenet
// (v1.0), squeezenet1.1, googlenet, resnet50. Throws ModelError when zoo.json is missing or bad.
std::vector<std::string> zoo_names();
// The zoo name of a name or an alias (zoo.json: "vgg" -> "vgg16"); nullopt when neither.
std::optional<std::string> zoo_canonical(const std::string& name);
// The six networks of the cDMA paper, in its order.
std::vector<std::string> paper_networks();

// Layers in forward order. ReLU is fused into the conv/linear/bn/add layer before it (in place, as
// Torch7/cuDNN run it), so a layer's input X is the post-ReLU activation vDNN offloads. Times are
// 0 until apply_roofline. element_bytes: 4 (fp32) or 2 (fp16/bf16). Throws ModelError on an
// unknown name, batch < 1, or a zoo file that is missing or invalid (naming the file and field).
Network zoo_network(const std::string& name, int batch, int element_bytes = 4);
// As above, from the zoo in `dir` instead of default_zoo_dir().
Network zoo_network(const std::string& name, int batch, int element_bytes, const std::filesystem::path& dir);

// One network file (schema cdma-zoo-network) at `batch` and `element_bytes`. Throws ModelError
// naming the file and the field on anything invalid (unknown keys, out-of-range numbers, a layer
// input that does not exist, a kernel larger than its input, sizes beyond 2^62 bytes).
Network load_zoo_network(const std::filesystem::path& file, int batch, int element_bytes = 4);

// F = max(flops / (peak(precision) x compute_eff), dram_bytes / (DRAM x dram_eff)); B = bwd_factor x F.
void apply_roofline(Network& net, const GpuPreset& gpu, const std::string& precision, double bwd_factor = 2.0);

}  // namespace cdma::hwmodel
