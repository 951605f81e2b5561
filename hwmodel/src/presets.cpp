// Loading the preset JSON files (data/presets). Every failure names the file and the key.
#include <cdma/hwmodel/presets.hpp>

#include "data_file.hpp"

#include <fmt/core.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <cdma/formats/codec.hpp>
#include <cdma/formats/text.hpp>

#include <dlfcn.h>
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <optional>

namespace cdma::hwmodel {

namespace {
using nlohmann::json;

using detail::shown;  // the file's name for messages: what the user passed (dir / name), as clean text

json read_json(const std::filesystem::path& p) { return detail::read_json_file(p, "preset"); }

// Checked access to one preset file: every message names the file and the field ("who.key").
class Fields {
 public:
  explicit Fields(std::filesystem::path file) : file_(std::move(file)) {}

  [[noreturn]] void fail(const std::string& what) const { throw ModelError(shown(file_) + ": " + what); }

  // `schema` must be `name` and `schema_version` an integer this loader knows (1).
  void check_schema(const json& root, const char* name) const { detail::check_schema(file_, root, name); }

  // A number in [lo, hi] (lo itself allowed only when lo_ok), named who.key.
  double number(const json& j, const char* key, const std::string& who, double lo, bool lo_ok, double hi) const {
    if (!j.contains(key)) fail(fmt::format("{} needs a number '{}'", who, key));
    return number_value(j[key], who + "." + key, lo, lo_ok, hi);
  }
  double number_value(const json& v, const std::string& field, double lo, bool lo_ok, double hi) const {
    if (!v.is_number()) fail(fmt::format("{} must be a number, not {}", field, v.type_name()));
    const double x = v.get<double>();
    const bool ok = std::isfinite(x) && (lo_ok ? x >= lo : x > lo) && x <= hi;
    if (!ok) fail(fmt::format("{} = {} must be in {}{}, {}]", field, v.dump(), lo_ok ? "[" : "(", lo, hi));
    return x;
  }

  std::string string(const json& j, const char* key, const std::string& who, std::optional<std::string> dflt) const {
    if (!j.contains(key)) {
      if (dflt) return *dflt;
      fail(fmt::format("{} needs a string '{}'", who, key));
    }
    if (!j[key].is_string()) fail(fmt::format("{}.{} must be a string, not {}", who, key, j[key].type_name()));
    return j[key].get<std::string>();
  }

  std::vector<std::string> strings(const json& j, const char* key, const std::string& who) const {
    std::vector<std::string> out;
    if (!j.contains(key)) return out;
    if (!j[key].is_array()) fail(fmt::format("{}.{} must be an array of strings", who, key));
    for (const auto& s : j[key]) {
      if (!s.is_string()) fail(fmt::format("{}.{} must be an array of strings", who, key));
      out.push_back(s.get<std::string>());
    }
    return out;
  }

  const json& array(const json& root, const char* key) const {
    if (!root.contains(key) || !root[key].is_array() || root[key].empty())
      fail(fmt::format("expected a non-empty array '{}'", key));
    for (const auto& e : root[key])
      if (!e.is_object()) fail(fmt::format("every entry of '{}' must be an object", key));
    return root[key];
  }

  // An object of name -> number in [lo, hi]; names, when given, limited to `known`.
  std::map<std::string, double> number_map(const json& j, const std::string& who, double lo, bool lo_ok, double hi,
                                           const std::vector<std::string>& known = {}) const {
    if (!j.is_object()) fail(fmt::format("'{}' must be an object", who));
    std::map<std::string, double> out;
    for (const auto& [k, v] : j.items()) {
      if (!known.empty() && std::find(known.begin(), known.end(), k) == known.end())
        fail(fmt::format("{}: unknown key '{}' (expected one of: {})", who, formats::clean_text(k),
                         fmt::join(known, ", ")));
      out[k] = number_value(v, who + "." + k, lo, lo_ok, hi);
    }
    return out;
  }

  // Preset names: strings, unique in the file.
  std::string name(const json& j, std::vector<std::string>& seen) const {
    if (!j.contains("name") || !j["name"].is_string()) fail("every preset needs a string 'name'");
    std::string n = j["name"].get<std::string>();
    if (n.empty()) fail("a preset 'name' is empty");
    if (std::find(seen.begin(), seen.end(), n) != seen.end()) fail(fmt::format("preset '{}' appears twice", n));
    seen.push_back(n);
    return n;
  }

 private:
  std::filesystem::path file_;
};

// Plausibility ceilings: far above any real device, low enough that the replay's arithmetic (times
// in picoseconds, bytes per second) cannot overflow.
constexpr double kMaxGbps = 1e6;       // 1 PB/s
constexpr double kMaxTflops = 1e6;     // 1 EFLOP/s
constexpr double kMaxGib = 1e6;        // 1 PiB of device memory
constexpr double kMaxLatencyUs = 1e6;  // 1 s per transfer
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
    const Fields f(dir / "gpus.json");
    const json root = read_json(dir / "gpus.json");
    f.check_schema(root, "cdma-gpu-presets");
    std::vector<std::string> seen;
    for (const auto& g : f.array(root, "gpus")) {
      GpuPreset p;
      p.name = f.name(g, seen);
      p.long_name = f.string(g, "long_name", p.name, p.name);
      p.dram_gbps = f.number(g, "dram_gbps", p.name, 0, false, kMaxGbps);
      p.memory_gib = f.number(g, "memory_gib", p.name, 0, false, kMaxGib);
      p.compute_efficiency = f.number(g, "compute_efficiency", p.name, 0, false, 1);
      p.dram_efficiency = f.number(g, "dram_efficiency", p.name, 0, false, 1);
      if (!g.contains("peak_tflops")) f.fail(p.name + " needs 'peak_tflops'");
      p.peak_tflops = f.number_map(g["peak_tflops"], p.name + ".peak_tflops", 0, false, kMaxTflops);
      if (!p.peak_tflops.count("fp32")) f.fail(p.name + ".peak_tflops needs 'fp32'");
      p.sources = f.strings(g, "sources", p.name);
      c.gpus.push_back(std::move(p));
    }
  }
  {
    const Fields f(dir / "links.json");
    const json root = read_json(dir / "links.json");
    f.check_schema(root, "cdma-link-presets");
    std::vector<std::string> seen;
    for (const auto& l : f.array(root, "links")) {
      LinkPreset p;
      p.name = f.name(l, seen);
      p.long_name = f.string(l, "long_name", p.name, p.name);
      p.nominal_gbps = f.number(l, "nominal_gbps", p.name, 0, false, kMaxGbps);
      p.efficiency = f.number(l, "efficiency", p.name, 0, false, 1);
      p.latency_us = f.number(l, "latency_us", p.name, 0, true, kMaxLatencyUs);
      p.sources = f.strings(l, "sources", p.name);
      c.links.push_back(std::move(p));
    }
  }
  {
    const Fields f(dir / "engines.json");
    const json root = read_json(dir / "engines.json");
    f.check_schema(root, "cdma-engine-presets");
    if (!root.contains("placements") || !root["placements"].is_object()) f.fail("expected an object 'placements'");
    const std::vector<std::string> placements{"dma", "mc", "sm"};
    for (const auto& [k, v] : root["placements"].items()) {
      if (std::find(placements.begin(), placements.end(), k) == placements.end())
        f.fail(fmt::format("placements: unknown placement '{}' (expected dma, mc, sm)", formats::clean_text(k)));
      if (!v.is_object()) f.fail(fmt::format("placements.{} must be an object", k));
      c.engines.read_share_of_dram[k] = f.number(v, "read_share_of_dram", "placements." + k, 0, false, 1);
    }
    for (const auto& k : placements)
      if (!c.engines.read_share_of_dram.count(k)) f.fail(fmt::format("placements needs '{}'", k));
    const auto families = formats::codec_families();
    if (root.contains("compressor_gbps"))  // 0 = no limit
      c.engines.compressor_gbps = f.number_map(root["compressor_gbps"], "compressor_gbps", 0, true, kMaxGbps, families);
    if (root.contains("software_kernel_gbps"))  // 0 = streaming, as when absent
      c.engines.software_kernel_gbps =
          f.number_map(root["software_kernel_gbps"], "software_kernel_gbps", 0, true, kMaxGbps, families);
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

std::filesystem::path installed_data_dir(const std::filesystem::path& binary, const std::string& sub,
                                         const std::string& marker) {
  if (binary.empty()) return {};
  const auto dir = binary.parent_path();
  std::error_code ec;
  for (auto c : {dir / "data" / sub, dir.parent_path() / "share" / "cdma" / sub, dir.parent_path() / "data" / sub})
    if (std::filesystem::is_regular_file(c / marker, ec)) return c;
  return {};
}

std::filesystem::path installed_data_dir(const std::string& sub, const std::string& marker) {
  // The executable, or the shared object (the Python module) this library is linked into.
  Dl_info info{};
  if (::dladdr(reinterpret_cast<void*>(&default_preset_dir), &info) == 0 || info.dli_fname == nullptr) return {};
  std::error_code ec;
  auto file = std::filesystem::canonical(info.dli_fname, ec);
  if (ec) {
    // An executable started by name through PATH can report its bare name: the kernel knows the path.
    file = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (ec) return {};
  }
  return installed_data_dir(file, sub, marker);
}

std::filesystem::path default_preset_dir() {
  if (const char* env = std::getenv("CDMA_PRESETS"); env && *env) return env;
  if (auto dir = installed_data_dir("presets", "gpus.json"); !dir.empty()) return dir;
#ifdef CDMA_HWMODEL_PRESET_DIR
  return CDMA_HWMODEL_PRESET_DIR;
#else
  throw ModelError(
      "the hardware presets were not found: no data/presets/gpus.json beside the cdma module or executable "
      "(a broken install: reinstall cdma), and CDMA_PRESETS is not set");
#endif
}

std::string codec_family(const std::string& codec) {
  auto dash = codec.find('-');
  return dash == std::string::npos ? codec : codec.substr(0, dash);
}

}  // namespace cdma::hwmodel
