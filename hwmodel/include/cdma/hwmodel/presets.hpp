// GPU, link and engine presets of the hardware model, loaded from JSON data files
// (data/presets/{gpus,links,engines}.json; docs/spec/HWMODEL.md "Inputs").
#pragma once

#include <cdma/formats/error.hpp>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace cdma::hwmodel {

// A preset file is missing, malformed, or a name/parameter is invalid. what() names the file or
// the parameter and what was expected.
class ModelError : public formats::Error {
 public:
  using formats::Error::Error;
};

struct GpuPreset {
  std::string name, long_name;
  double dram_gbps = 0;  // GB/s = 1e9 B/s
  double memory_gib = 0;
  std::map<std::string, double> peak_tflops;  // precision ("fp32", "fp16", ...) -> TFLOP/s
  double compute_efficiency = 0.6;            // share of peak a large conv/GEMM reaches
  double dram_efficiency = 0.8;               // share of DRAM bandwidth a streaming kernel reaches
  std::vector<std::string> sources;

  // Peak FLOP/s at a precision; throws ModelError naming the precisions it has.
  double peak_flops(const std::string& precision) const;
};

struct LinkPreset {
  std::string name, long_name;
  double nominal_gbps = 0;  // one direction
  double efficiency = 0.8;
  double latency_us = 0;  // per transfer
  std::vector<std::string> sources;

  double effective_bytes_per_s() const { return nominal_gbps * efficiency * 1e9; }
};

struct EnginePresets {
  std::map<std::string, double> read_share_of_dram;    // placement -> share
  std::map<std::string, double> compressor_gbps;       // codec family -> GB/s (0 = unlimited)
  std::map<std::string, double> software_kernel_gbps;  // codec family -> GB/s (absent = streaming)
};

struct PresetCatalog {
  std::vector<GpuPreset> gpus;
  std::vector<LinkPreset> links;
  EnginePresets engines;
  std::filesystem::path dir;

  // Loads gpus.json, links.json and engines.json from dir. Throws ModelError naming the file and
  // the field ("titan-xp.dram_gbps") on anything else than: regular files of JSON objects with
  // "schema" cdma-gpu-presets / cdma-link-presets / cdma-engine-presets and "schema_version" 1;
  // non-empty arrays "gpus" / "links" of objects with unique string names; bandwidths (GB/s) in
  // (0, 1e6]; peak_tflops in (0, 1e6] with fp32 present; memory_gib in (0, 1e6]; efficiencies
  // and read_share_of_dram in (0, 1]; latency_us in [0, 1e6]; placements dma, mc and sm, no other;
  // compressor_gbps / software_kernel_gbps keyed by codec family, in [0, 1e6] (0: no limit /
  // streaming); strings where strings are expected.
  static PresetCatalog load(const std::filesystem::path& dir);
  const GpuPreset& gpu(const std::string& name) const;    // throws ModelError listing the names
  const LinkPreset& link(const std::string& name) const;  // throws ModelError listing the names
};

// Where the presets are: $CDMA_PRESETS when set, else installed_data_dir("presets", "gpus.json")
// when found, else the source tree's data/presets (compiled in; not in a pip-built package, where the
// error then names the installed folder looked at).
std::filesystem::path default_preset_dir();

// The data folder `sub` ("presets", "zoo") of an installation, found from `binary` (the file that
// holds this library's code: the executable, or the Python module cdma/_native*.so): the first of
// <binary dir>/data/<sub> (the Python package: cdma/data/ beside the module),
// <binary dir>/../share/cdma/<sub> (an installed executable, <prefix>/bin/cdma) and
// <binary dir>/../data/<sub> (the executable inside the Python package, cdma/bin/cdma) that holds
// the file `marker`; empty when none does.
std::filesystem::path installed_data_dir(const std::filesystem::path& binary, const std::string& sub,
                                         const std::string& marker);
// As above from the file that holds this code (dladdr), or an empty path when that is unknown.
std::filesystem::path installed_data_dir(const std::string& sub, const std::string& marker);

// Codec family of a canonical codec name: "zlib-6" -> "zlib", "zrle-4" -> "zrle", "zvc" -> "zvc".
std::string codec_family(const std::string& codec);

}  // namespace cdma::hwmodel
