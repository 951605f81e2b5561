// Loading the preset JSON files (data/presets). Every failure names the file and the key.
#include <cdma/hwmodel/presets.hpp>

#include <fmt/core.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdlib>
#include <fstream>

namespace cdma::hwmodel {

namespace {
using nlohmann::json;

json read_json(const std::filesystem::path& p) {
  std::ifstream in(p);
  if (!in) throw ModelError(fmt::format("cannot open preset file {}", p.string()));
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    throw ModelError(fmt::format("{}: not valid JSON ({})", p.string(), e.what()));
  }
}

double positive(const json& j, const char* key, const std::filesystem::path& file, const std::string& who,
                bool allow_zero = false) {
  if (!j.contains(key) || !j[key].is_number())
    throw ModelError(fmt::format("{}: {} needs a number '{}'", file.string(), who, key));
  double v = j[key].get<double>();
  if (!std::isfinite(v) || v < 0 || (!allow_zero && v == 0))
    throw ModelError(fmt::format("{}: {}.{} = {} must be {}", file.string(), who, key, v, allow_zero ? ">= 0" : "> 0"));
  return v;
}

std::string name_of(const json& j, const std::filesystem::path& file) {
  if (!j.contains("name") || !j["name"].is_string())
    throw ModelError(fmt::format("{}: every preset needs a string 'name'", file.string()));
  return j["name"].get<std::string>();
}

std::vector<std::string> strings(const json& j, const char* key) {
  std::vector<std::string> out;
  if (j.contains(key) && j[key].is_array())
    for (const auto& s : j[key])
      if (s.is_string()) out.push_back(s.get<std::string>());
  return out;
}

const json& array_of(const json& root, const char* key, const std::filesystem::path& file) {
  if (!root.is_object() || !root.contains(key) || !root[key].is_array())
    throw ModelError(fmt::format("{}: expected an object with an array '{}'", file.string(), key));
  return root[key];
}

std::map<std::string, double> number_map(const json& j, const std::filesystem::path& file, const std::string& who) {
  std::map<std::string, double> out;
  if (!j.is_object()) throw ModelError(fmt::format("{}: '{}' must be an object", file.string(), who));
  for (const auto& [k, v] : j.items()) {
    if (!v.is_number() || v.get<double>() < 0)
      throw ModelError(fmt::format("{}: {}.{} must be a number >= 0", file.string(), who, k));
    out[k] = v.get<double>();
  }
  return out;
}
}  // namespace

double GpuPreset::peak_flops(const std::string& precision) const {
  auto it = peak_tflops.find(precision);
  if (it == peak_tflops.end()) {
    std::vector<std::string> have;
    for (const auto& [k, v] : peak_tflops) have.push_back(k);
    throw ModelError(fmt::format("GPU preset '{}' has no peak for precision '{}' (it has: {})", name, precision,
                                 fmt::join(have, ", ")));
  }
  return it->second * 1e12;
}

PresetCatalog PresetCatalog::load(const std::filesystem::path& dir) {
  PresetCatalog c;
  c.dir = dir;
  {
    auto file = dir / "gpus.json";
    json root = read_json(file);
    for (const auto& g : array_of(root, "gpus", file)) {
      GpuPreset p;
      p.name = name_of(g, file);
      p.long_name = g.value("long_name", p.name);
      p.dram_gbps = positive(g, "dram_gbps", file, p.name);
      p.memory_gib = positive(g, "memory_gib", file, p.name);
      p.compute_efficiency = positive(g, "compute_efficiency", file, p.name);
      p.dram_efficiency = positive(g, "dram_efficiency", file, p.name);
      if (!g.contains("peak_tflops"))
        throw ModelError(fmt::format("{}: {} needs 'peak_tflops'", file.string(), p.name));
      p.peak_tflops = number_map(g["peak_tflops"], file, p.name + ".peak_tflops");
      if (!p.peak_tflops.count("fp32"))
        throw ModelError(fmt::format("{}: {}.peak_tflops needs 'fp32'", file.string(), p.name));
      p.sources = strings(g, "sources");
      c.gpus.push_back(std::move(p));
    }
  }
  {
    auto file = dir / "links.json";
    json root = read_json(file);
    for (const auto& l : array_of(root, "links", file)) {
      LinkPreset p;
      p.name = name_of(l, file);
      p.long_name = l.value("long_name", p.name);
      p.nominal_gbps = positive(l, "nominal_gbps", file, p.name);
      p.efficiency = positive(l, "efficiency", file, p.name);
      p.latency_us = positive(l, "latency_us", file, p.name, true);
      p.sources = strings(l, "sources");
      c.links.push_back(std::move(p));
    }
  }
  {
    auto file = dir / "engines.json";
    json root = read_json(file);
    if (!root.is_object() || !root.contains("placements") || !root["placements"].is_object())
      throw ModelError(fmt::format("{}: expected an object 'placements'", file.string()));
    for (const auto& [k, v] : root["placements"].items())
      c.engines.read_share_of_dram[k] = positive(v, "read_share_of_dram", file, "placements." + k);
    if (root.contains("compressor_gbps"))
      c.engines.compressor_gbps = number_map(root["compressor_gbps"], file, "compressor_gbps");
    if (root.contains("software_kernel_gbps"))
      c.engines.software_kernel_gbps = number_map(root["software_kernel_gbps"], file, "software_kernel_gbps");
  }
  return c;
}

const GpuPreset& PresetCatalog::gpu(const std::string& name) const {
  for (const auto& g : gpus)
    if (g.name == name) return g;
  std::vector<std::string> have;
  for (const auto& g : gpus) have.push_back(g.name);
  throw ModelError(fmt::format("unknown GPU preset '{}' (known: {})", name, fmt::join(have, ", ")));
}

const LinkPreset& PresetCatalog::link(const std::string& name) const {
  for (const auto& l : links)
    if (l.name == name) return l;
  std::vector<std::string> have;
  for (const auto& l : links) have.push_back(l.name);
  throw ModelError(fmt::format("unknown link preset '{}' (known: {})", name, fmt::join(have, ", ")));
}

std::filesystem::path default_preset_dir() {
  if (const char* env = std::getenv("CDMA_PRESETS"); env && *env) return env;
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    auto installed = exe.parent_path().parent_path() / "share" / "cdma" / "presets";
    if (std::filesystem::exists(installed / "gpus.json", ec)) return installed;
  }
  return CDMA_HWMODEL_PRESET_DIR;
}

std::string codec_family(const std::string& codec) {
  auto dash = codec.find('-');
  return dash == std::string::npos ? codec : codec.substr(0, dash);
}

}  // namespace cdma::hwmodel
